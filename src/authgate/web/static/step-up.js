// Step-up (docs/mfa.md): an action refused with `reauthentication_required` asks for the
// password (or a code of the authenticator app) in a #step-up dialog, then runs again. The
// dialog is this module's: added to the page's <main> by importing it (account, admin user).
import { $, auth, clearErrors, onSubmit } from './ui.js';

const MARKUP = `
  <form id="step-up-form" novalidate>
    <h2 id="step-up-title">Confirm it is you</h2>
    <p>This change needs a recent sign-in: enter your password (or a code of your authenticator app).</p>
    <p class="alert" role="alert" tabindex="-1"></p>
    <label for="step-up-secret">Password or code</label>
    <input id="step-up-secret" name="secret" type="password" autocomplete="current-password" aria-describedby="step-up-secret-error">
    <p class="field-error" id="step-up-secret-error" data-error-for="password"></p>
    <div class="actions"><button type="submit" disabled>Confirm</button>
      <button type="button" class="secondary" id="step-up-cancel">Cancel</button></div>
  </form>`;

let pending = null;  // {resolve, reject} of the dialog that is open

const dialog = addDialog();
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

function addDialog() {
  const main = document.querySelector('main');
  if (!main) return null;
  const added = document.createElement('dialog');
  added.id = 'step-up';
  added.setAttribute('aria-labelledby', 'step-up-title');
  added.innerHTML = MARKUP;
  main.append(added);
  return added;
}
