// Step-up (docs/mfa.md): an action refused with `reauthentication_required` asks for the
// password (or a code of the authenticator app) in the page's #step-up dialog, then runs again.
import { $, auth, clearErrors, onSubmit } from './ui.js';

let pending = null;  // {resolve, reject} of the dialog that is open

const dialog = $('#step-up');
if (dialog) {
  onSubmit($('#step-up-form'), async (data) => {
    const secret = String(data.get('secret') || '');
    if (!secret) throw { fields: { password: 'Enter your password or a code.' } };
    const digits = secret.replace(/\s/g, '');
    await auth.reauthenticate(/^\d{6}$/.test(digits) ? { code: digits } : { password: secret });
    dialog.close();
    pending?.resolve();
    pending = null;
  });
  $('#step-up-cancel').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    $('#step-up-form').reset();
    pending?.reject(new Error('Not changed: confirming it was you was cancelled.'));
    pending = null;
  });
}

function confirmItIsYou() {
  clearErrors($('#step-up-form'));
  dialog.showModal();
  $('#step-up-secret').focus();
  return new Promise((resolve, reject) => { pending = { resolve, reject }; });
}

/** Run `action`; when the server wants a recent sign-in first, ask for it and run it again. */
export async function withStepUp(action) {
  try {
    return await action();
  } catch (error) {
    if (error?.code !== 'reauthentication_required' || !dialog) throw error;
  }
  await confirmItIsYou();
  return action();
}
