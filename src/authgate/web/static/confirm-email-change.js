import { $, auth, complain, isDeadLink, linkToken, say } from './ui.js';

const token = linkToken();  // taken out of the address bar before anything else

async function confirm() {
  if (!token) {
    complain('This page needs the link from the confirmation mail, which was not complete. ' +
      'Open the link from the mail again.');
    $('#again').hidden = false;
    return;
  }
  try {
    const user = await auth.confirmEmailChange(token);
    say(`Your email address is now ${user.email}.`);
    $('#next-steps').hidden = false;
    $('#notice').focus();
  } catch (error) {
    if (!isDeadLink(error)) throw error;
    complain('This link has expired or was already used.');
    $('#again').hidden = false;
    $('#page-error').focus();
  }
}

confirm().catch((error) => {
  complain(error);
  $('#page-error').focus();
});
