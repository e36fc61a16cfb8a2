import { OAUTH_ERRORS } from '/authgate.js';
import { $, auth, nextPath, onSubmit } from './ui.js';

const form = $('#login-form');

onSubmit(form, async (data) => {
  const login = String(data.get('login') || '').trim();
  const password = String(data.get('password') || '');
  const missing = {};
  if (!login) missing.login = 'Enter your email or username.';
  if (!password) missing.password = 'Enter your password.';
  if (Object.keys(missing).length) throw { fields: missing };
  await auth.login(login, password);
  location.assign(nextPath());
});

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
