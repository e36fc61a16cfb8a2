import { $, auth, onSubmit } from './ui.js';

onSubmit($('#register-form'), async (data) => {
  const fields = Object.fromEntries(['email', 'password', 'name', 'username']
    .map((name) => [name, String(data.get(name) || '').trim()]));
  fields.password = String(data.get('password') || '');
  try {
    await auth.register(fields);
  } catch (error) {
    if (error.code === 'user_exists') error.fields = { email: error.message };
    throw error;
  }
  try {
    await auth.login(fields.email, fields.password);
  } catch (error) {
    // The account exists now: a second "Create account" would only say so. Send them to log in.
    $('#register-form').hidden = true;
    const done = $('#registered');
    $('#registered-reason').textContent = error.message;
    done.hidden = false;
    done.focus();
    return;
  }
  location.assign('/account');
});
