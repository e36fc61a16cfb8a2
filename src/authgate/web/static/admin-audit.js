import { $, auth, complain, fillTable, onSubmit, requireUser, say, withBusy } from './ui.js';
import { eventRow, nameUsers } from './audit-events.js';

const PER_PAGE = 50;
// The types authgate records (the filter takes any type verbatim: these are suggestions).
const TYPES = [
  'login.succeeded', 'login.failed', 'login.throttled', 'logout', 'session.revoked',
  'sessions.revoked_all', 'refresh.reuse_detected', 'password.changed',
  'password.reset_requested', 'password.reset', 'email.verified', 'email.change_requested',
  'email.changed', 'user.created', 'user.deleted', 'user.roles_changed', 'user.disabled',
  'user.enabled', 'user.imported', 'api_token.created', 'api_token.revoked', 'tenant.created',
  'tenant.deleted', 'member.added', 'member.removed', 'member.role_changed',
  'invitation.created', 'invitation.accepted', 'oauth.linked', 'oauth.unlinked',
  'oauth.login_failed', 'key.rotated', 'avatar.changed', 'legacy_session.exchanged',
  'mfa.totp_enabled', 'mfa.totp_disabled', 'mfa.recovery_codes_regenerated', 'mfa.verified',
  'mfa.failed', 'mfa.reset_by_admin', 'passkey.registered', 'passkey.removed',
  'reauthenticated',
];

let me = null;
let filters = {};
let cursor = null;
let shown = 0;
let loads = 0;  // only the latest load shows its answer

/** The filters of the form, as the API takes them; a local date-time becomes UTC ISO 8601. */
function readFilters(data) {
  const value = (name) => String(data.get(name) ?? '').trim();
  const instant = (name) => (value(name) ? new Date(value(name)).toISOString() : undefined);
  return {
    type: value('type') || undefined,
    userId: value('user_id') || undefined,
    since: instant('since'),
    until: instant('until'),
  };
}

/** Keep the filters in the address (?type=&user_id=&since=&until=) so a view can be shared. */
function remember() {
  const params = new URLSearchParams();
  for (const [name, key] of [['type', 'type'], ['user_id', 'userId'], ['since', 'since'], ['until', 'until']]) {
    if (filters[key]) params.set(name, filters[key]);
  }
  const query = params.toString();
  history.replaceState(null, '', `${location.pathname}${query ? `?${query}` : ''}`);
}

/** The form filled from the address (a link from a user's page: ?user_id=…). */
function restore() {
  const params = new URLSearchParams(location.search);
  const local = (iso) => {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return '';
    return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  };
  $('#type').value = params.get('type') ?? '';
  $('#user_id').value = params.get('user_id') ?? '';
  $('#since').value = params.has('since') ? local(params.get('since')) : '';
  $('#until').value = params.has('until') ? local(params.get('until')) : '';
  return readFilters(new FormData($('#filters')));
}

async function load({ more = false } = {}) {
  const ticket = ++loads;
  const page = await auth.listAudit({ ...filters, cursor: more ? cursor : undefined, limit: PER_PAGE });
  if (ticket !== loads) return;
  const rows = page.events.map((event) => eventRow(event, { me, withUser: true }));
  const tbody = $('#events');
  const kept = more ? [...tbody.rows].filter((tr) => !tr.querySelector('td.empty')) : [];
  fillTable(tbody, [...kept, ...rows], 'No events match these filters.');
  shown = kept.length + rows.length;
  cursor = page.next_cursor;
  $('#more').hidden = !cursor;
  $('#count').textContent = `${shown} event${shown === 1 ? '' : 's'} shown${cursor ? ', more older ones' : ''}.`;
  await nameUsers(tbody);
}

onSubmit($('#filters'), async (data) => {
  filters = readFilters(data);
  remember();
  await load();
});

$('#clear').addEventListener('click', (event) => withBusy(event.currentTarget, async () => {
  $('#filters').reset();
  filters = {};
  remember();
  await load();
}));

$('#more').addEventListener('click', (event) => withBusy(event.currentTarget, () => load({ more: true })));

for (const type of TYPES) {
  const option = document.createElement('option');
  option.value = type;
  $('#event-types').append(option);
}

me = await requireUser();
if (!me.roles.includes('admin')) {
  say('Only administrators can read the audit log.');
  $('#filters').hidden = true;
} else {
  filters = restore();
  await load().catch(complain);  // e.g. a refused filter in the address
}
