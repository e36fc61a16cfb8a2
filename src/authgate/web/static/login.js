import { OAUTH_ERRORS } from '/authgate.js';
import { $, auth, nextPath, onSubmit, setDisabled, withBusy } from './ui.js';

const form = $('#login-form');
const unverified = $('#unverified');
const resend = $('#resend-verification');
// The login a `email_not_verified` refusal was for: the resend proves it with the password.
let refused = null;

onSubmit(form, async (data) => {
  const login = String(data.get('login') || '').trim();
  const password = String(data.get('password') || '');
  const missing = {};
  if (!login) missing.login = 'Enter your email or username.';
  if (!password) missing.password = 'Enter your password.';
  if (Object.keys(missing).length) throw { fields: missing };
  unverified.hidden = true;
  try {
    await auth.login(login, password);
  } catch (error) {
    if (error.code !== 'email_not_verified') throw error;
    refused = { login, password };
    setDisabled(resend, false);
    unverified.hidden = false;
    unverified.focus();
    return;
  }
  location.assign(nextPath());
});

resend.addEventListener('click', () => withBusy(resend, async () => {
  if (!refused) return;
  if (!refused.login.includes('@')) {
    // The resend proves the account by its address and password, not by a username.
    throw new Error('Log in with your email address instead of your username, then send the mail.');
  }
  await auth.resendVerification(refused.login, refused.password);
  refused = null;
  setDisabled(resend, true);  // once per refused login
  const notice = $('#notice');
  notice.textContent = 'We sent a new verification mail. Open the link in it, then log in.';
  notice.focus();
}));

// On the way somewhere (an invitation): registering goes there too.
if (new URLSearchParams(location.search).has('next')) {
  $('#register-link').href = `/register?next=${encodeURIComponent(nextPath())}`;
}

// Plain words for the `?notice=` another page sends the visitor here with.
const NOTICES = {
  'password-reset': 'Your password was changed and every device was logged out. Log in with the new password.',
};
const notice = new URLSearchParams(location.search).get('notice');
if (NOTICES[notice]) $('#notice').textContent = NOTICES[notice];

const error = new URLSearchParams(location.search).get('error');
if (error) {
  const alert = $('#oauth-error');
  alert.textContent = OAUTH_ERRORS[error] ?? `Sign-in failed (${error}).`;
  alert.focus();
}

auth.providers().then((providers) => {
  const list = $('#providers');
  for (const provider of providers) {
    const link = document.createElement('a');
    link.className = 'button secondary';
    link.href = auth.providerLoginUrl(provider.name, new URL(nextPath(), location.origin).href);
    link.textContent = `Continue with ${provider.display_name}`;
    list.append(link);
  }
}).catch(() => {});

// Already logged in: go on — unless the page was opened to explain a failed provider login.
// Only a browser that holds a session or refresh cookie asks /me: for anyone else its 401 would
// be a console error on every visit (the diagnosis says which cookies arrive, with a 200).
if (!error) {
  auth.diagnose()
    .then((seen) => (seen.session_cookie_received || seen.refresh_cookie_received ? auth.me() : null))
    .then((user) => { if (user) location.assign(nextPath()); })
    .catch(() => {});
}
