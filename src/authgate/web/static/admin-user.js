import {
  $, auth, button, complain, fillTable, onSubmit, requireUser, row, say, withBusy, when,
} from './ui.js';
import { eventRow, nameUsers } from './audit-events.js';
// Changing someone's roles and removing their second factors need a recent sign-in of the admin
// (`reauthentication_required`): the "Confirm it is you" dialog asks for it, then they run again.
import { withStepUp } from './step-up.js';

const EVENTS_PER_PAGE = 20;
// The page is /admin/users/<id>: the id is its last segment.
const userId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() ?? '');
let me = null;
let user = null;
let eventsCursor = null;

// Profile and status -----------------------------------------------------------------------------

function showUser(shown) {
  user = shown;
  const label = user.email;
  document.title = `${label} — authgate`;
  $('#title').textContent = label;
  $('#email').textContent = user.email;
  $('#name').textContent = user.name ?? '—';
  $('#username').textContent = user.username ?? '—';
  $('#verified').textContent = user.email_verified ? 'yes' : 'no';
  $('#created').textContent = when(user.created_at);
  $('#last-login').textContent = when(user.last_login_at);
  $('#status').textContent = user.status;
  $('#user-id').textContent = user.id;
  const toggle = $('#toggle-status');
  const disabled = user.status === 'disabled';
  toggle.textContent = disabled ? 'Enable account' : 'Disable account';
  toggle.className = disabled ? 'secondary' : 'danger';
  toggle.disabled = false;
  for (const box of document.querySelectorAll('#roles input')) box.checked = user.roles.includes(box.value);
}

$('#toggle-status').addEventListener('click', (event) => withBusy(event.currentTarget, async () => {
  const status = user.status === 'disabled' ? 'active' : 'disabled';
  showUser(await withStepUp(() => auth.adminUpdateUser(userId, { status })));
  say(status === 'disabled'
    ? `Disabled ${user.email}: their sessions and API tokens were revoked.`
    : `Enabled ${user.email}.`);
  await Promise.all([loadSessions(), loadTokens(), loadEvents()]);
}));

// Roles: a choice among the deployment's ----------------------------------------------------------

function showRoleChoices(known) {
  const fieldset = $('#roles');
  // A role the user holds from before (the command line, an import) is shown too, to keep or drop.
  for (const role of [...new Set([...known, ...user.roles])]) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.name = 'roles';
    box.value = role;
    box.checked = user.roles.includes(role);
    label.append(box, role);
    fieldset.append(label);
  }
}

onSubmit($('#roles-form'), async (data) => {
  const roles = data.getAll('roles').map(String);
  showUser(await withStepUp(() => auth.adminUpdateUser(userId, { roles })));
  say(`Saved the roles of ${user.email}: ${user.roles.join(', ') || 'none'}.`);
  await loadEvents();
});

// Sessions --------------------------------------------------------------------------------------

async function loadSessions() {
  const sessions = await auth.adminListUserSessions(userId);
  fillTable($('#sessions'), sessions.map((session) => {
    const device = (session.device || session.user_agent || 'Unknown device') +
      (session.current ? ' (your session)' : '');
    const action = button('Log out', async () => {
      await auth.adminRevokeUserSession(userId, session.id);
      say(`Logged out ${device}.`);
      await Promise.all([loadSessions(), loadEvents()]);
    }, { ariaLabel: `Log out ${device}` });
    return row(device, session.ip, when(session.created_at), when(session.last_seen_at), action);
  }), 'No active sessions.');
  $('#revoke-all').hidden = sessions.length === 0;
}

$('#revoke-all').addEventListener('click', (event) => withBusy(event.currentTarget, async () => {
  await auth.adminRevokeAllUserSessions(userId);
  say(`Logged ${user.email} out everywhere.`);
  await Promise.all([loadSessions(), loadEvents()]);
}));

// Second factors ------------------------------------------------------------------------------

const FACTOR_NAMES = { totp: 'authenticator app', passkey: 'passkey', recovery_code: 'recovery codes' };

async function loadMfa() {
  const methods = await auth.adminGetUserMfa(userId);
  $('#mfa-methods').textContent = methods.length
    ? `On: ${methods.map((method) => FACTOR_NAMES[method] ?? method).join(', ')}.`
    : 'None: a password (or a provider) alone logs this user in.';
  $('#remove-mfa').hidden = methods.length === 0;
}

$('#remove-mfa').addEventListener('click', (event) => withBusy(event.currentTarget, async () => {
  await withStepUp(() => auth.adminRemoveUserMfa(userId));
  say(`Removed the second factors of ${user.email}; they were logged out everywhere.`);
  await Promise.all([loadMfa(), loadSessions(), loadEvents()]);
}));

// API tokens and linked accounts ----------------------------------------------------------------

async function loadTokens() {
  const tokens = await auth.adminListUserTokens(userId);
  fillTable($('#tokens'), tokens.map((token) => row(
    token.name, token.scopes.join(' '), when(token.created_at), when(token.last_used_at),
    when(token.expires_at),
    button('Revoke', async () => {
      await auth.adminRevokeUserToken(userId, token.id);
      say(`Revoked the token ${token.name}.`);
      await Promise.all([loadTokens(), loadEvents()]);
    }, { ariaLabel: `Revoke token ${token.name}` }),
  )), 'No API tokens.');
}

async function loadIdentities() {
  const identities = await auth.adminListUserIdentities(userId);
  fillTable($('#identities'), identities.map((identity) => row(
    identity.provider, identity.email, when(identity.linked_at), when(identity.last_login_at),
    button('Unlink', async () => {
      await auth.adminUnlinkUserIdentity(userId, identity.id);
      say(`Unlinked the ${identity.provider} account.`);
      await Promise.all([loadIdentities(), loadEvents()]);
    }, { ariaLabel: `Unlink ${identity.provider} ${identity.email ?? ''}`.trim() }),
  )), 'No linked accounts.');
}

// Activity: the user's audit events, newest first -------------------------------------------------

async function loadEvents({ more = false } = {}) {
  const page = await auth.listAudit({
    userId, cursor: more ? eventsCursor : undefined, limit: EVENTS_PER_PAGE,
  });
  const rows = page.events.map((event) => eventRow(event, { me, subject: userId }));
  if (more) {
    const tbody = $('#events');
    const shown = [...tbody.rows].filter((tr) => !tr.querySelector('td.empty'));
    fillTable(tbody, [...shown, ...rows], 'No events recorded.');
  } else {
    fillTable($('#events'), rows, 'No events recorded.');
  }
  eventsCursor = page.next_cursor;
  $('#more-events').hidden = !eventsCursor;
  await nameUsers($('#events'));
}

$('#more-events').addEventListener('click', (event) => withBusy(event.currentTarget,
  () => loadEvents({ more: true })));

// Start ---------------------------------------------------------------------------------------

me = await requireUser();
if (!me.roles.includes('admin')) {
  say('Only administrators can manage users.');
} else {
  try {
    const [shown, known] = await Promise.all([auth.adminGetUser(userId), auth.listRoles()]);
    user = shown;
    showRoleChoices(known);
    showUser(shown);
    $('#all-events').href = `/admin/audit?user_id=${encodeURIComponent(userId)}`;
    $('#details').hidden = false;
    await Promise.all([loadSessions(), loadMfa(), loadTokens(), loadIdentities(), loadEvents()]);
  } catch (error) {
    complain(error);
  }
}
