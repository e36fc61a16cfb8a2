import { $, auth, isDeadLink, linkToken, onSubmit } from './ui.js';

// authgate's minimum (core/passwords.py MIN_PASSWORD_LENGTH), as the form's hint says.
const MIN_PASSWORD_LENGTH = 8;

const form = $('#reset-form');
const token = linkToken();  // taken out of the address bar at once

function showDeadLink(reason) {
  form.hidden = true;
  const box = $('#dead-link');
  if (reason) $('#dead-link-reason').textContent = reason;
  box.hidden = false;
  box.focus();
}

if (!token) {
  showDeadLink('This page needs the link from the password-reset mail, which was not complete. ' +
    'Open the link from the mail again, or ask for a new one.');
}

onSubmit(form, async (data) => {
  const password = String(data.get('password') || '');
  const again = String(data.get('password_again') || '');
  const fields = {};
  if (password.length < MIN_PASSWORD_LENGTH) fields.password = `Use at least ${MIN_PASSWORD_LENGTH} characters.`;
  if (again !== password) fields.password_again = 'The two passwords differ.';
  if (Object.keys(fields).length) throw { fields };
  // An account with a second factor needs it too (six digits: the app's code; else a recovery code).
  const typed = String(data.get('code') || '').trim();
  const digits = typed.replace(/\s/g, '');
  const factor = !typed ? {} : /^\d{6}$/.test(digits) ? { code: digits } : { recoveryCode: typed };
  try {
    await auth.resetPassword(token, password, factor);
  } catch (error) {
    if (error.code === 'invalid_code') {
      const box = $('#second-factor');
      const first = box.hidden;
      box.hidden = false;
      $('#code').focus();
      throw { fields: { code: first ? 'Enter a code from your authenticator app or a recovery code.' : error.message } };
    }
    if (isDeadLink(error)) {
      showDeadLink('This link has expired or was already used. Ask for a new one.');
      return;
    }
    throw error;
  }
  location.assign('/?notice=password-reset');
});
