import {
  $, auth, button, complain, fillTable, onSubmit, requireUser, row, say, setDisabled, withBusy,
} from './ui.js';

const PER_PAGE = 50;
let me = null;  // the signed-in user, once known (at the end: the handlers are in place first)
let page = 1;
let pages = 1;
let query = '';
let loads = 0;  // loads started: only the latest one shows its answer

async function load() {
  const ticket = ++loads;
  const data = await auth.adminListUsers({ q: query, page, perPage: PER_PAGE });
  if (ticket !== loads) return;  // a later search or page answers instead of this one
  fillTable($('#users'), data.users.map(userRow), 'No users found.');
  pages = Math.max(1, Math.ceil(data.total / PER_PAGE));
  $('#page-label').textContent = `Page ${page} of ${pages} (${data.total} users)`;
  showPaging();
}

function showPaging() {
  setDisabled($('#previous'), page <= 1);
  setDisabled($('#next'), page >= pages);
}

function userRow(user) {
  // The email opens the user's page: roles (a choice among the deployment's), sessions, tokens,
  // linked accounts, activity.
  const link = document.createElement('a');
  link.href = `/admin/users/${encodeURIComponent(user.id)}`;
  link.textContent = user.email;
  const manage = document.createElement('a');
  manage.href = link.getAttribute('href');
  manage.className = 'button secondary';
  manage.textContent = 'Manage';
  manage.setAttribute('aria-label', `Manage ${user.email}`);
  const actions = document.createElement('div');
  actions.className = 'actions';
  actions.append(manage);
  // No "Disable" on your own row: it would lock you out of this page.
  if (user.id !== me?.id) {
    const disabled = user.status === 'disabled';
    actions.append(button(disabled ? 'Enable' : 'Disable',
      () => update(user, { status: disabled ? 'active' : 'disabled' }),
      { className: disabled ? 'secondary' : 'danger', ariaLabel: `${disabled ? 'Enable' : 'Disable'} ${user.email}` }));
  }
  return row(link, user.name, user.roles.join(', '), user.status, actions);
}

async function update(user, body) {
  try {
    await auth.adminUpdateUser(user.id, body);
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

// Last: a search submitted while the page still loads is handled above, not sent as a plain form.
me = await requireUser();
if (!me.roles.includes('admin')) {
  say('Only administrators can manage users.');
  $('#search-form').hidden = true;
  $('#paging').hidden = true;
} else {
  await load().catch(complain);
}
