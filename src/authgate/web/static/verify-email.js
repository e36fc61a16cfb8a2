import {
  $, INVITATION_KEY, auth, complain, isDeadLink, linkToken, loggedInUser, say, withBusy,
} from './ui.js';

const token = linkToken();  // taken out of the address bar before anything else

async function offerResend() {
  const user = await loggedInUser().catch(() => null);
  if (user && !user.email_verified) {
    $('#resend').hidden = false;
  } else if (!user) {
    $('#log-in-to-resend').hidden = false;
  }
}

async function verify() {
  if (!token) {
    complain('This page needs the link from the verification mail, which was not complete. ' +
      'Open the link from the mail again, or send a new one.');
    return offerResend();
  }
  try {
    const user = await auth.verifyEmail(token);
    say(`Your email address ${user.email} is verified. Thank you!`);
    $('#next-steps').hidden = false;
    // Came here on the way to accepting an invitation (this tab): offer the way back.
    $('#back-to-invitation').hidden = !sessionStorage.getItem(INVITATION_KEY);
    $('#notice').focus();
  } catch (error) {
    if (!isDeadLink(error)) throw error;
    complain('This link has expired or was already used — send a new one.');
    $('#page-error').focus();
    await offerResend();
  }
}

$('#resend-button').addEventListener('click', (event) => withBusy(event.currentTarget, async () => {
  await auth.requestEmailVerification();
  $('#resend').hidden = true;
  say('We sent a new verification mail. Open the link in it.');
}));

verify().catch((error) => {
  complain(error);
  $('#page-error').focus();
});
