// The account page's two-step verification: set up an authenticator app (QR code + code), the
// recovery codes shown once (download as .txt), new codes, turning it off (docs/mfa.md).
import { $, auth, complain, onSubmit, say, withBusy } from './ui.js';
import { withStepUp } from './step-up.js';

const startForm = $('#totp-start-form');
const confirmForm = $('#totp-confirm-form');

function showCodes(codes) {
  const text = codes.join('\n') + '\n';
  $('#recovery-codes-list').textContent = text;
  $('#recovery-codes-download').href = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  $('#recovery-codes').hidden = false;
  $('#recovery-codes-title').focus();
}

async function load() {
  const status = await auth.mfaStatus();
  const left = status.recovery_codes_left;
  $('#mfa-state').textContent = status.totp
    ? `An authenticator app is on; ${left} recovery code${left === 1 ? '' : 's'} left.`
    : 'Off: your password alone signs you in.' +
      (status.required ? ' Your role requires a second factor.' : '');
  startForm.hidden = status.totp || !confirmForm.hidden;
  $('#mfa-actions').hidden = !status.totp;
}

onSubmit(startForm, async (data) => {
  const password = String(data.get('password') || '');
  if (!password) throw { fields: { password: 'Enter your password.' } };
  const setup = await auth.enrollTotp(password);
  $('#totp-qr').innerHTML = setup.qr_svg;  // an SVG element made by the server
  $('#totp-qr svg')?.setAttribute('role', 'img');
  $('#totp-qr svg')?.setAttribute('aria-label', 'QR code for your authenticator app');
  $('#totp-secret').textContent = setup.secret;
  startForm.reset();
  startForm.hidden = true;
  confirmForm.hidden = false;
  $('#totp-confirm-title').focus();
});

onSubmit(confirmForm, async (data) => {
  const code = String(data.get('code') || '').replace(/\s/g, '');
  if (!code) throw { fields: { code: 'Enter the code your app shows.' } };
  const codes = await auth.confirmTotp(code);
  confirmForm.reset();
  confirmForm.hidden = true;
  await load();
  showCodes(codes);
});

$('#new-recovery-codes').addEventListener('click', (event) => withBusy(event.currentTarget, async () => {
  showCodes(await withStepUp(() => auth.regenerateRecoveryCodes()));
  await load();
}));

$('#totp-off').addEventListener('click', (event) => withBusy(event.currentTarget, async () => {
  await withStepUp(() => auth.disableTotp());
  $('#recovery-codes').hidden = true;
  await load();
  say('The authenticator app is off.');
}));

// Not logged in (401): account.js takes the visitor to the login page; saying so here too would
// cover the reason account.js shows when the server cannot tell who is logged in.
load().catch((error) => { if (error?.status !== 401) complain(error); });
