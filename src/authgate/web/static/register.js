import { $, INVITATION_KEY, auth, nextPath, onSubmit } from './ui.js';

// authgate's minimum (core/passwords.py MIN_PASSWORD_LENGTH), as the form's hint says.
const MIN_PASSWORD_LENGTH = 8;

onSubmit($('#register-form'), async (data) => {
  const fields = Object.fromEntries(['email', 'password', 'name', 'username']
    .map((name) => [name, String(data.get(name) || '').trim()]));
  fields.password = String(data.get('password') || '');
  // Registering through an invitation link (invitation.js keeps its token in this tab): the link
  // proved the address, so the account starts verified when the address is the one invited.
  const invitationToken = sessionStorage.getItem(INVITATION_KEY);
  try {
    await auth.register(invitationToken ? { ...fields, invitationToken } : fields);
  } catch (error) {
    if (error.code === 'user_exists') error.fields = { email: error.message };
    // The server checks the password's strength only once the other fields are valid: report a
    // password that is too short beside their errors, so that every invalid field shows at once.
    if (error.fields && !error.fields.password && fields.password.length < MIN_PASSWORD_LENGTH) {
      error.fields = { ...error.fields, password: `Use at least ${MIN_PASSWORD_LENGTH} characters.` };
    }
    throw error;
  }
  try {
    await auth.login(fields.email, fields.password);
  } catch (error) {
    // The account exists now: a second "Create account" would only say so. Send them to log in.
    $('#register-form').hidden = true;
    const done = $('#registered');
    if (error.code === 'email_not_verified') {
      $('#registered-message').textContent = `Your account was created. We sent a mail to ` +
        `${fields.email}: open the link in it to verify your address, then log in.`;
    } else {
      $('#registered-reason').textContent = error.message;
    }
    if (new URLSearchParams(location.search).has('next')) {
      $('#registered-login').href = `/?next=${encodeURIComponent(nextPath())}`;
    }
    done.hidden = false;
    done.focus();
    return;
  }
  location.assign(nextPath());
});
