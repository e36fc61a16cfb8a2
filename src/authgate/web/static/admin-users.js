import { $, auth, button, onSubmit, requireUser, row } from './ui.js';

const me = await requireUser();
const notice = $('#notice');
const PER_PAGE = 50;
let page = 1;
let query = '';

if (!me.roles.includes('admin')) {
  notice.textContent = 'Only administrators can manage users.';
  $('#search-form').hidden = true;
} else {
  await load();
}

async function load() {
  const params = new URLSearchParams({ page, per_page: PER_PAGE });
  if (query) params.set('q', query);
  const data = await auth.json(`/api/users?${params}`);
  $('#users').replaceChildren(...data.users.map(userRow));
  const pages = Math.max(1, Math.ceil(data.total / PER_PAGE));
  $('#page-label').textContent = `Page ${page} of ${pages} (${data.total} users)`;
  $('#previous').disabled = page <= 1;
  $('#next').disabled = page >= pages;
}

function userRow(user) {
  const roles = document.createElement('input');
  roles.type = 'text';
  roles.value = user.roles.join(' ');
  roles.setAttribute('aria-label', `Roles of ${user.email} (space-separated)`);
  const save = button('Save roles', () => update(user, { roles: roles.value.split(/[\s,]+/).filter(Boolean) }),
    { ariaLabel: `Save roles of ${user.email}` });
  const disabled = user.status === 'disabled';
  const toggle = button(disabled ? 'Enable' : 'Disable',
    () => update(user, { status: disabled ? 'active' : 'disabled' }),
    { className: disabled ? 'secondary' : 'danger', ariaLabel: `${disabled ? 'Enable' : 'Disable'} ${user.email}` });
  const actions = document.createElement('div');
  actions.className = 'actions';
  actions.append(save, toggle);
  return row(user.email, user.name, roles, user.status, actions);
}

async function update(user, body) {
  try {
    await auth.json(`/api/users/${encodeURIComponent(user.id)}`, { method: 'PATCH', body });
    notice.textContent = `Updated ${user.email}.`;
  } catch (error) {
    notice.textContent = error.message;
  }
  await load();
}

onSubmit($('#search-form'), async (data) => {
  query = String(data.get('q') || '').trim();
  page = 1;
  await load();
});
$('#previous').addEventListener('click', () => { page -= 1; load(); });
$('#next').addEventListener('click', () => { page += 1; load(); });
