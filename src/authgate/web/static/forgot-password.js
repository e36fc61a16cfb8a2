import { $, auth, onSubmit } from './ui.js';

const form = $('#forgot-form');

onSubmit(form, async (data) => {
  const email = String(data.get('email') || '').trim();
  if (!email) throw { fields: { email: 'Enter the email address of your account.' } };
  await auth.forgotPassword(email);
  // The same words whether an account has this address or not: the page must not tell.
  form.hidden = true;
  const notice = $('#notice');
  notice.textContent = `If an account exists for ${email}, we sent a link to it. ` +
    'It works for 30 minutes; check your spam folder if it does not arrive.';
  notice.focus();
});
