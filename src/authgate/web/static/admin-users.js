import {
  $, auth, button, complain, onSubmit, requireUser, row, say, setDisabled, withBusy,
} from './ui.js';

const me = await requireUser();
const PER_PAGE = 50;
let page = 1;
let pages = 1;
let query = '';

if (!me.roles.includes('admin')) {
  say('Only administrators can manage users.');
  $('#search-form').hidden = true;
  $('#paging').hidden = true;
} else {
  await load().catch(complain);
}

async function load() {
  const params = new URLSearchParams({ page, per_page: PER_PAGE });
  if (query) params.set('q', query);
  const data = await auth.json(`/api/users?${params}`);
  $('#users').replaceChildren(...data.users.map(userRow));
  pages = Math.max(1, Math.ceil(data.total / PER_PAGE));
  $('#page-label').textContent = `Page ${page} of ${pages} (${data.total} users)`;
  showPaging();
}

function showPaging() {
  setDisabled($('#previous'), page <= 1);
  setDisabled($('#next'), page >= pages);
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
    say(`Updated ${user.email}.`);
  } catch (error) {
    complain(error);
  }
  await load();
}

onSubmit($('#search-form'), async (data) => {
  query = String(data.get('q') || '').trim();
  page = 1;
  await load();
});
for (const [id, step] of [['#previous', -1], ['#next', 1]]) {
  $(id).addEventListener('click', (event) => withBusy(event.currentTarget, () => goTo(page + step)));
}

/** Show page `number`; on failure stay on the page shown. */
async function goTo(number) {
  const shown = page;
  page = number;
  try {
    await load();
  } catch (error) {
    page = shown;
    throw error;
  }
}
