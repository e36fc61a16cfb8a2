import { OAUTH_ERRORS, mfaStepFromFragment } from '/authgate.js';
import { $, auth, complain, nextPath, onSubmit, setDisabled, withBusy } from './ui.js';

// A provider login of an account with a second factor comes back here with its second step in
// the fragment (docs/mfa.md): taken out of the address bar at once, shown once every script of
// the page listens (passkey-login.js hears of it by the `authgate:mfa-required` event).
const providerStep = mfaStepFromFragment();

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
    if (error.code === 'mfa_required') return secondStep(error.mfa);
    if (error.code === 'mfa_enrollment_required') return enrollStep(error.mfa);
    if (error.code !== 'email_not_verified') throw error;
    refused = { login, password };
    setDisabled(resend, false);
    unverified.hidden = false;
    unverified.focus();
    return;
  }
  location.assign(nextPath());
});

// The second step: a code of the authenticator app or a recovery code (docs/mfa.md). Other
// scripts (passkeys) hear of it by the `authgate:mfa-required` event.
const mfaForm = $('#mfa-form');
let mfaToken = null;

function secondStep(mfa) {
  mfaToken = mfa.token;
  form.hidden = true;
  mfaForm.hidden = false;
  document.dispatchEvent(new CustomEvent('authgate:mfa-required', { detail: mfa }));
  $('#mfa-heading').focus();
}

onSubmit(mfaForm, async (data) => {
  const typed = String(data.get('code') || '').trim();
  if (!typed) throw { fields: { code: 'Enter the code.' } };
  // Six digits are the app's code; anything longer is a recovery code.
  const digits = typed.replace(/\s/g, '');
  const answer = /^\d{6}$/.test(digits) ? { code: digits } : { recoveryCode: typed };
  await auth.verifyMfa(mfaToken, answer);
  location.assign(nextPath());
});

const enrollForm = $('#enroll-form');

async function enrollStep(mfa) {
  mfaToken = mfa.token;
  const setup = await auth.enrollTotp(undefined, { mfaToken });
  $('#enroll-qr').innerHTML = setup.qr_svg;  // an SVG element made by the server
  $('#enroll-qr svg')?.setAttribute('role', 'img');
  $('#enroll-qr svg')?.setAttribute('aria-label', 'QR code for your authenticator app');
  $('#enroll-secret').textContent = setup.secret;
  form.hidden = true;
  enrollForm.hidden = false;
  $('#enroll-heading').focus();
}

onSubmit(enrollForm, async (data) => {
  const typed = String(data.get('code') || '').replace(/\s/g, '');
  if (!typed) throw { fields: { code: 'Enter the code your app shows.' } };
  const codes = await auth.confirmTotp(typed, { mfaToken });
  enrollForm.hidden = true;
  const text = codes.join('\n') + '\n';
  $('#enrolled-list').textContent = text;
  $('#enrolled-download').href = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  $('#enrolled-continue').href = nextPath();
  $('#enrolled-codes').hidden = false;
  $('#enrolled-heading').focus();
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

// A provider login comes back to this page (with its `next`): it opens the session and goes on,
// or, for an account with a second factor, asks for it here.
const providerNext = new URL(location.pathname, location.origin);
providerNext.searchParams.set('next', nextPath());

auth.providers().then((providers) => {
  const list = $('#providers');
  for (const provider of providers) {
    const link = document.createElement('a');
    link.className = 'button secondary';
    link.href = auth.providerLoginUrl(provider.name, providerNext.href);
    link.textContent = `Continue with ${provider.display_name}`;
    list.append(link);
  }
}).catch(() => {});

// Already logged in: go on — unless the page was opened to explain a failed provider login.
// Only a browser that holds a session or refresh cookie asks /me: for anyone else its 401 would
// be a console error on every visit (the diagnosis says which cookies arrive, with a 200).
if (providerStep) {
  document.addEventListener('DOMContentLoaded', () => {
    if (providerStep.code === 'mfa_enrollment_required') enrollStep(providerStep.mfa).catch(complain);
    else secondStep(providerStep.mfa);
  });
} else if (!error) {
  auth.diagnose()
    .then((seen) => (seen.session_cookie_received || seen.refresh_cookie_received ? auth.me() : null))
    .then((user) => { if (user) location.assign(nextPath()); })
    .catch(() => {});
}
