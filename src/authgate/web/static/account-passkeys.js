// The account page's passkeys: list, add, rename, delete (docs/passkeys.md). Adding and deleting
// need a recent login: when the server asks for one, the user confirms with a passkey (if they
// have one) and the action is retried.
import {
  $, auth, button, complain, fillTable, onSubmit, row, say, when,
} from './ui.js';

const section = $('#passkeys-section');
const form = $('#passkey-form');

const BROWSER_ERRORS = {
  NotAllowedError: 'No passkey was made or used (the prompt was closed or timed out).',
  InvalidStateError: 'This authenticator already holds a passkey for your account.',
  SecurityError: 'Passkeys cannot be used on this address.',
  AbortError: 'The passkey prompt was cancelled.',
};

function explained(error) {
  return BROWSER_ERRORS[error?.name] ? new Error(BROWSER_ERRORS[error.name]) : error;
}

/** Run `action`; if the server wants a recent login first, confirm with a passkey and retry. */
async function withStepUp(action, havePasskeys) {
  try {
    return await action();
  } catch (error) {
    if (error?.code !== 'reauthentication_required' || !havePasskeys) throw explained(error);
  }
  try {
    await auth.reauthenticateWithPasskey();
    return await action();
  } catch (error) {
    throw explained(error);
  }
}

async function loadPasskeys() {
  const passkeys = await auth.listPasskeys();
  fillTable($('#passkeys'), passkeys.map((passkey) => {
    const rename = button('Rename', async () => {
      const name = prompt('New name for this passkey', passkey.name)?.trim();
      if (!name) return;
      await auth.renamePasskey(passkey.id, name);
      say('Renamed.');
      await loadPasskeys();
    }, { ariaLabel: `Rename ${passkey.name}` });
    const remove = button('Delete', async () => {
      await withStepUp(() => auth.deletePasskey(passkey.id), true);
      say('The passkey was deleted. Remove it from your device too.');
      await loadPasskeys();
    }, { className: 'danger', ariaLabel: `Delete ${passkey.name}` });
    const actions = document.createElement('div');
    actions.className = 'actions';
    actions.append(rename, remove);
    return row(passkey.name, when(passkey.created_at), when(passkey.last_used_at), actions);
  }), 'No passkeys yet.');
  return passkeys;
}

if (auth.passkeysSupported()) {
  let current = [];
  onSubmit(form, async (data) => {
    const name = String(data.get('name') || '').trim();
    await withStepUp(() => auth.registerPasskey(name || undefined), current.length > 0);
    form.reset();
    say('Your passkey was added: you can log in with it now.');
    current = await loadPasskeys();
  });
  loadPasskeys()
    .then((passkeys) => { current = passkeys; section.hidden = false; })
    .catch((error) => { if (error?.status !== 401) complain(error); });
}
