// Passkeys on the login page (docs/passkeys.md): "Sign in with a passkey" — no email, no
// password: the browser offers the passkeys it holds for this server — and, when a password
// login asks for a second factor (login.js's `authgate:mfa-required` event) and the account has
// a passkey, "Use a passkey instead".
import { $, auth, nextPath, withBusy } from './ui.js';

const section = $('#passkey-login');
const start = $('#passkey-button');
const secondStep = $('#mfa-passkey');
const useForStep = $('#mfa-passkey-button');

// What the browser's own errors mean to the person who clicked.
const BROWSER_ERRORS = {
  NotAllowedError: 'No passkey was used (the prompt was closed or timed out). Try again, or log in with your password.',
  SecurityError: 'Passkeys cannot be used on this address.',
  AbortError: 'The passkey prompt was cancelled.',
};

function explained(error) {
  if (BROWSER_ERRORS[error?.name]) return new Error(BROWSER_ERRORS[error.name]);
  if (error?.code === 'invalid_credentials') {
    return new Error('This passkey is not (or no longer) registered here. Log in with your password.');
  }
  if (error?.code === 'invalid_code') return new Error('That passkey is not one of this account\'s.');
  return error;
}

if (auth.passkeysSupported()) {
  section.hidden = false;
  start.addEventListener('click', () => withBusy(start, async () => {
    try {
      await auth.loginWithPasskey();
    } catch (error) {
      throw explained(error);
    }
    location.assign(nextPath());
  }));

  let mfaToken = null;
  document.addEventListener('authgate:mfa-required', (event) => {
    section.hidden = true;  // the password was right: this login goes on with its second step
    if (!event.detail?.methods?.includes('passkey')) return;
    mfaToken = event.detail.token;
    secondStep.hidden = false;
    if (event.detail.methods.every((method) => method === 'passkey')) passkeyOnly();
  });
  // An account whose only second factor is a passkey has no code to type: the step is the
  // passkey button (the code form keeps its heading and "Start again").
  function passkeyOnly() {
    const help = document.querySelector('#mfa-help');
    if (help) help.textContent = 'Confirm it is you with your passkey.';
    for (const selector of ['label[for=mfa-code]', '#mfa-code', '#code-error',
      '#mfa-form button[type=submit]']) {
      const element = document.querySelector(selector);
      if (element) element.hidden = true;
    }
    useForStep.textContent = 'Use your passkey';
  }

  useForStep.addEventListener('click', () => withBusy(useForStep, async () => {
    try {
      await auth.verifyMfaWithPasskey(mfaToken);
    } catch (error) {
      throw explained(error);
    }
    location.assign(nextPath());
  }));
}
