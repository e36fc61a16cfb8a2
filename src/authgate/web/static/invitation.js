import {
  $, INVITATION_KEY, auth, complain, isDeadLink, linkToken, loggedInUser, say, withBusy,
} from './ui.js';

// The token comes in the link's fragment; it is kept in this tab's sessionStorage (never in a
// URL) while the visitor logs in or registers, and comes back here with ?next=/invitation.
const fresh = linkToken();
if (fresh) sessionStorage.setItem(INVITATION_KEY, fresh);
const token = fresh ?? sessionStorage.getItem(INVITATION_KEY);

function forget() {
  sessionStorage.removeItem(INVITATION_KEY);
}

function failed(message) {
  complain(message);
  $('#invitation').hidden = true;
  $('#page-error').focus();
}

async function show() {
  if (!token) {
    $('#notice').textContent = '';
    failed('This page needs the link from the invitation mail, which was not complete. ' +
      'Open the link from the mail again.');
    return;
  }
  let invitation;
  try {
    invitation = await auth.previewInvitation(token);
  } catch (error) {
    if (!isDeadLink(error)) throw error;
    forget();
    $('#notice').textContent = '';
    failed('This invitation has expired, was revoked or was already used. ' +
      'Ask the person who invited you for a new one.');
    return;
  }
  $('#tenant-name').textContent = invitation.tenant_name;
  $('#inviter-name').textContent = invitation.inviter_name || '—';
  $('#role').textContent = invitation.role;
  $('#invited-email').textContent = invitation.email;
  $('#notice').textContent = '';
  $('#invitation').hidden = false;

  const user = await loggedInUser();
  if (!user) {
    $('#anonymous').hidden = false;
  } else if (user.email.toLowerCase() === invitation.email.toLowerCase()) {
    $('#accept-actions').hidden = false;
  } else {
    $('#current-email').textContent = user.email;
    $('#other-user').hidden = false;
  }
}

$('#accept').addEventListener('click', (event) => withBusy(event.currentTarget, async () => {
  let joined;
  try {
    joined = await auth.acceptInvitation(token);
  } catch (error) {
    if (isDeadLink(error)) forget();
    throw error;
  }
  forget();
  $('#invitation').hidden = true;
  say(`You joined ${joined.tenant?.name ?? 'the tenant'} as ${joined.role}.`);
  $('#next-steps').hidden = false;
  $('#notice').focus();
}));

$('#switch-user').addEventListener('click', (event) => withBusy(event.currentTarget, async () => {
  await auth.logout().catch(() => {});
  location.assign('/?next=/invitation');
}));

show().catch((error) => {
  $('#notice').textContent = '';
  complain(error);
  $('#page-error').focus();
});
