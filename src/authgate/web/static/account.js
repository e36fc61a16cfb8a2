import { OAUTH_ERRORS } from '/authgate.js';
import {
  $, auth, button, complain, copyText, fillTable, onSubmit, requireUser, row, say, when, withBusy,
} from './ui.js';
import { withStepUp } from './step-up.js';

let user = await requireUser();

function showUser() {
  $('#whoami').textContent = user.name || user.email;
  $('#email').textContent = user.email;
  $('#email-status').textContent = user.email_verified ? '(verified)' : '(not verified)';
  $('#send-verification').hidden = user.email_verified;
  $('#name').value = user.name ?? '';
  $('#username').value = user.username ?? '';
  $('#admin-link').hidden = !user.roles.includes('admin');
  const avatar = $('#avatar');
  avatar.hidden = !user.avatar_url;
  if (user.avatar_url) avatar.src = user.avatar_url;
}

// Profile ---------------------------------------------------------------------------------------

onSubmit($('#profile-form'), async (data) => {
  const body = {};
  for (const name of ['name', 'username']) body[name] = String(data.get(name) || '').trim() || null;
  user = (await auth.json('/api/auth/me', { method: 'PATCH', body })).user;
  showUser();
  say('Profile saved.');
});

// The server's limit (AUTHGATE_AVATAR_MAX_BYTES): checked here before a large file is sent.
let avatarLimit = null;

async function loadAvatarForm() {
  avatarLimit = await auth.json('/api/auth/me/avatar');
  const megabytes = Number((avatarLimit.max_bytes / (1024 * 1024)).toPrecision(3));
  $('#avatar-hint').textContent = `(JPEG, PNG or GIF, at most ${megabytes} MB)`;
}

onSubmit($('#avatar-form'), async (data) => {
  const file = data.get('avatar');
  if (!(file instanceof File) || !file.size) throw { fields: { avatar: 'Choose an image first.' } };
  if (avatarLimit && file.size > avatarLimit.max_bytes) {
    throw { fields: { avatar: avatarLimit.limit_message } };
  }
  const body = new FormData();
  body.append('avatar', file);
  try {
    user = (await auth.json('/api/auth/me/avatar', { method: 'POST', body })).user;
  } catch (error) {
    if (!error.fields && error.status && error.status !== 401) error.fields = { avatar: error.message };
    throw error;
  }
  $('#avatar-form').reset();
  showUser();
  say('Avatar updated.');
});

const sendVerification = $('#send-verification');
sendVerification.addEventListener('click', () => withBusy(sendVerification, async () => {
  await auth.requestEmailVerification();
  say(`We sent a verification mail to ${user.email}. Open the link in it to verify your address.`);
}));

// Email ---------------------------------------------------------------------------------------

onSubmit($('#email-form'), async (data) => {
  const email = String(data.get('email') || '').trim();
  const password = String(data.get('password') || '');
  const missing = {};
  if (!email) missing.email = 'Enter the new address.';
  if (!password) missing.password = 'Enter your current password.';
  if (Object.keys(missing).length) throw { fields: missing };
  try {
    await withStepUp(() => auth.changeEmail(email, password));
  } catch (error) {
    // A wrong password is a 401 about the password field, not a logged-out page.
    if (error.code === 'invalid_credentials') error.fields = { password: error.message };
    if (error.code === 'user_exists') error.fields = { email: error.message };
    throw error;
  }
  $('#email-form').reset();
  say(`We sent a link to ${email}. Your address changes to it when you open the link; ` +
    `until then you log in with ${user.email}.`);
});

onSubmit($('#password-form'), async (data) => {
  await withStepUp(() => auth.json('/api/auth/password', {
    method: 'POST',
    body: { current_password: data.get('current_password'), new_password: data.get('new_password') },
  }));
  $('#password-form').reset();
  say('Password changed. Your other sessions were logged out.');
  await loadSessions();
});

$('#logout').addEventListener('click', (event) => withBusy(event.currentTarget, async () => {
  await auth.logout().catch(() => {});
  location.assign('/');
}));

// Sessions --------------------------------------------------------------------------------------

async function loadSessions() {
  const { sessions } = await auth.json('/api/auth/sessions');
  fillTable($('#sessions'), sessions.map((session) => {
    // The device in words ("Chrome 156 on Linux"); an agent the server could not read, as sent.
    const label = (session.device || session.user_agent || 'Unknown device') +
      (session.current ? ' (this device)' : '');
    // The visible text is part of the accessible name ("Log out <device>"), as WCAG 2.5.3 asks.
    const action = button('Log out', async () => {
      await auth.json(`/api/auth/sessions/${encodeURIComponent(session.id)}`, { method: 'DELETE' });
      if (session.current) location.assign('/');
      else { say('That device was logged out.'); await loadSessions(); }
    }, { ariaLabel: `Log out ${label}` });
    return row(label, session.ip, when(session.last_seen_at), action);
  }));
}

$('#logout-all').addEventListener('click', (event) => withBusy(event.currentTarget, async () => {
  await auth.logoutAll();
  location.assign('/');
}));

// API tokens ------------------------------------------------------------------------------------

async function loadTokenForm() {
  const options = await auth.json('/api/tokens/scopes');
  const fieldset = $('#token-scopes');
  for (const scope of options.scopes) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.name = 'scopes';
    box.value = scope;
    box.defaultChecked = scope === 'read';  // what the form resets to
    label.append(box, scope);
    fieldset.append(label);
  }
  const days = $('#token-days');
  days.defaultValue = String(options.default_ttl_days);
  days.max = options.max_ttl_days;
}

async function loadTokens() {
  const { tokens } = await auth.json('/api/tokens');
  fillTable($('#tokens'), tokens.map((token) => row(
    token.name,
    token.scopes.join(', ') + (token.resource ? ` (only ${token.resource})` : ''),
    when(token.expires_at),
    when(token.last_used_at),
    button('Revoke', async () => {
      await auth.json(`/api/tokens/${encodeURIComponent(token.id)}`, { method: 'DELETE' });
      say(`Token "${token.name}" revoked.`);
      await loadTokens();
    }, { ariaLabel: `Revoke token ${token.name}` }),
  )), 'No API tokens yet.');
}

onSubmit($('#token-form'), async (data) => {
  const body = {
    name: String(data.get('name') || '').trim(),
    scopes: data.getAll('scopes'),
    tenant_id: data.get('tenant_id') || null,
    expires_in_days: Number(data.get('expires_in_days')) || null,
  };
  const created = await withStepUp(() => auth.json('/api/tokens', { method: 'POST', body }));
  $('#new-token-value').textContent = created.token;
  $('#new-token').hidden = false;
  $('#token-form').reset();
  $('#copy-token').focus();
  await loadTokens();
});

$('#copy-token').addEventListener('click', async () => {
  const copied = await copyText($('#new-token-value'));
  say(copied ? 'Token copied to the clipboard.'
    : 'The token is selected: press Ctrl+C (⌘C on a Mac) to copy it.');
});

// Linked accounts -------------------------------------------------------------------------------

async function loadIdentities() {
  const [{ identities }, providers] = await Promise.all([
    auth.json('/api/auth/identities'), auth.providers(),
  ]);
  const names = Object.fromEntries(providers.map((p) => [p.name, p.display_name]));
  $('#identities-section').hidden = !providers.length && !identities.length;
  fillTable($('#identities'), identities.map((identity) => row(
    names[identity.provider] ?? identity.provider,
    identity.email,
    when(identity.linked_at),
    button('Unlink', async () => {
      try {
        await auth.json(`/api/auth/identities/${encodeURIComponent(identity.id)}`, { method: 'DELETE' });
        say('Unlinked.');
      } catch (error) {
        complain(error);
      }
      await loadIdentities();
    }, { ariaLabel: `Unlink ${names[identity.provider] ?? identity.provider}` }),
  )));
  $('#link-buttons').replaceChildren(...providers.map((provider) => button(
    `Link ${provider.display_name}`,
    async () => {
      const next = encodeURIComponent(location.origin + '/account');
      const { authorization_url: url } = await auth.json(
        `/api/oauth/${encodeURIComponent(provider.name)}/link?next=${next}`, { method: 'POST' });
      location.assign(url);
    },
  )));
}

// Tenants ---------------------------------------------------------------------------------------

async function loadTenants() {
  const { tenants } = await auth.json('/api/tenants');
  fillTable($('#tenants'), tenants.map((tenant) => row(
    tenant.name + (tenant.personal ? ' (personal)' : ''), tenant.role,
  )));
  $('#token-tenant').replaceChildren(...tenants.map((tenant) => {
    const option = document.createElement('option');
    option.value = tenant.id;
    option.textContent = tenant.name + (tenant.personal ? ' (personal)' : '');
    option.selected = tenant.personal;
    return option;
  }));
  await loadInvitations(tenants);
}

onSubmit($('#tenant-form'), async (data) => {
  await auth.json('/api/tenants', { method: 'POST', body: { name: String(data.get('name') || '').trim() } });
  $('#tenant-form').reset();
  say('Tenant created.');
  await loadTenants();
});

// Invitations: into the team tenants this user manages (owner or admin) -----------------------

let managed = [];

async function loadInvitations(tenants) {
  if (tenants) {
    managed = tenants.filter((t) => !t.personal && (t.role === 'owner' || t.role === 'admin'));
    $('#invitations-section').hidden = !managed.length;
    $('#invite-tenant').replaceChildren(...managed.map((tenant) => {
      const option = document.createElement('option');
      option.value = tenant.id;
      option.textContent = tenant.name;
      return option;
    }));
  }
  const lists = await Promise.all(managed.map(async (tenant) =>
    (await auth.listInvitations(tenant.id)).map((invitation) => ({ tenant, invitation }))));
  fillTable($('#invitations'), lists.flat().map(({ tenant, invitation }) => row(
    tenant.name,
    invitation.email,
    invitation.role,
    when(invitation.expires_at),
    button('Revoke', async () => {
      await auth.revokeInvitation(tenant.id, invitation.id);
      say(`The invitation of ${invitation.email} to ${tenant.name} was revoked.`);
      await loadInvitations();
    }, { ariaLabel: `Revoke the invitation of ${invitation.email} to ${tenant.name}` }),
  )), 'No pending invitations.');
}

onSubmit($('#invite-form'), async (data) => {
  const tenantId = String(data.get('tenant_id') || '');
  const email = String(data.get('email') || '').trim();
  if (!email) throw { fields: { email: 'Enter the address to invite.' } };
  await auth.createInvitation(tenantId, email, String(data.get('role') || 'member'));
  $('#invite-email').value = '';
  say(`We mailed an invitation to ${email}.`);
  await loadInvitations();
});

const error = new URLSearchParams(location.search).get('error');
if (error) say(OAUTH_ERRORS[error] ?? `Linking failed (${error}).`);

showUser();
await Promise.all([
  loadAvatarForm(), loadSessions(), loadTokenForm(), loadTokens(), loadIdentities(), loadTenants(),
])
  .catch(complain);
