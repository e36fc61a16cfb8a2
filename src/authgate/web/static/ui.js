// Small helpers shared by authgate's pages: forms with accessible errors, tables, the client.
import { createClient, tokenFromFragment } from '/authgate.js';

export const auth = createClient({ baseUrl: location.origin });

export function $(selector, root = document) {
  const element = root.querySelector(selector);
  if (!element) throw new Error(`missing element ${selector}`);
  return element;
}

/** Show `error` on `form`: each field message under its input or group of inputs (tied with
 * aria-describedby — to the group's fieldset — and marked aria-invalid), anything else in the
 * form's alert; focus the first invalid field (a group's first input) or the alert. */
export function showError(form, error) {
  clearErrors(form);
  const alert = form.querySelector('[role=alert]');
  let first = null;
  for (const [name, message] of Object.entries(error?.fields ?? {})) {
    const inputs = fieldInputs(form, name);
    const slot = form.querySelector(`#${CSS.escape(name)}-error`) ?? form.querySelector(`[data-error-for="${name}"]`);
    if (inputs.length && slot) {
      slot.textContent = message;
      if (!slot.id) slot.id = `${form.id || 'form'}-${name}-error`;
      for (const input of inputs) input.setAttribute('aria-invalid', 'true');
      describe(groupOf(inputs[0]) ?? inputs[0], slot.id);
      first ??= inputs[0];
    } else if (alert) {
      alert.textContent += `${name}: ${message} `;
    }
  }
  if (!first && alert) alert.textContent = error?.message ?? String(error);
  (first ?? alert)?.focus?.();
}

/** The inputs named `name`: one element, or every member of a group (a RadioNodeList). */
function fieldInputs(form, name) {
  const item = form.elements.namedItem(name);
  if (!item) return [];
  return item instanceof RadioNodeList ? [...item] : [item];
}

/** The fieldset that holds `input`'s group — its inputs and no other named ones (the token's
 * scope checkboxes, however many are configured) — or null: a group is described as a whole. */
function groupOf(input) {
  const fieldset = input.closest('fieldset');
  if (!fieldset) return null;
  const named = [...fieldset.elements].filter((element) => element.name);
  return named.every((element) => element.name === input.name) ? fieldset : null;
}

function describe(element, id) {
  const ids = (element.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
  if (!ids.includes(id)) element.setAttribute('aria-describedby', [...ids, id].join(' '));
}

export function clearErrors(form) {
  for (const slot of form.querySelectorAll('.field-error')) slot.textContent = '';
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  const alert = form.querySelector('[role=alert]');
  if (alert) alert.textContent = '';
}

/** Run `action` on submit with the button disabled; errors go to the form.
 *
 * The pages' submit buttons start disabled and are enabled here, once the handler is in place:
 * a form submitted before the page's script ran would go out as a plain GET, with its fields
 * (a password) in the URL. */
export function onSubmit(form, action) {
  const button = form.querySelector('button[type=submit]');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (button) button.disabled = true;
    try {
      await action(new FormData(form));
    } catch (error) {
      showError(form, error);
    } finally {
      if (button) button.disabled = false;
    }
  });
  if (button) button.disabled = false;
}

/** Messages of the page as a whole: `say` in the notice (role=status), `complain` in the
 * page's error area (role=alert), with the field messages of a 422 — each clears the other. */
export function say(message) {
  const notice = document.querySelector('#notice');
  const problem = document.querySelector('#page-error');
  if (problem) problem.textContent = '';
  if (notice) notice.textContent = message;
}

export function complain(error) {
  const notice = document.querySelector('#notice');
  const problem = document.querySelector('#page-error') ?? notice;
  if (notice && notice !== problem) notice.textContent = '';
  const fields = Object.values(error?.fields ?? {});
  if (problem) problem.textContent = [error?.message ?? String(error), ...fields].join(' ');
}

// The disabled state each busy button returns to: its state before, or what `setDisabled` asked
// for meanwhile.
const afterBusy = new WeakMap();

/** Run `action` for `button`: disabled (and aria-busy) while it works, so a double click does
 * not do it twice; a failure is shown with `complain` rather than lost. Afterwards the button
 * has its earlier disabled state, or the one `setDisabled` gave it while the action ran. */
export async function withBusy(button, action) {
  if (button.disabled) return;
  afterBusy.set(button, button.disabled);
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    await action();
  } catch (error) {
    complain(error);
  } finally {
    button.disabled = afterBusy.get(button);
    afterBusy.delete(button);
    button.removeAttribute('aria-busy');
  }
}

/** Disable or enable `button`; while `withBusy` runs for it, once its action is done. */
export function setDisabled(button, disabled) {
  if (afterBusy.has(button)) afterBusy.set(button, disabled);
  else button.disabled = disabled;
}

/** A table row from cells (strings or nodes); a cell holding buttons is an actions cell. */
export function row(...cells) {
  const tr = document.createElement('tr');
  for (const cell of cells) {
    const td = document.createElement('td');
    if (cell instanceof Node) td.append(cell); else td.textContent = cell ?? '';
    if (cell instanceof HTMLButtonElement || cell?.classList?.contains('actions')) {
      td.className = 'actions-cell';
    }
    tr.append(td);
  }
  return tr;
}

/** Fill `tbody` with `rows`, each cell labelled with its column's heading (`data-label`, shown
 * beside it where a narrow screen stacks the cells); none: one row saying `empty`. */
export function fillTable(tbody, rows, empty = '') {
  const headings = [...tbody.closest('table').tHead.rows[0].cells].map((th) => th.textContent.trim());
  for (const tr of rows) {
    [...tr.cells].forEach((td, index) => {
      if (headings[index] && td.className !== 'actions-cell') td.dataset.label = headings[index];
    });
  }
  if (!rows.length && empty) {
    const td = document.createElement('td');
    td.colSpan = headings.length;
    td.className = 'empty';
    td.textContent = empty;
    const tr = document.createElement('tr');
    tr.append(td);
    rows = [tr];
  }
  tbody.replaceChildren(...rows);
}

export function button(label, onClick, { className = 'secondary', ariaLabel } = {}) {
  const element = document.createElement('button');
  element.type = 'button';
  element.className = className;
  element.textContent = label;
  if (ariaLabel) element.setAttribute('aria-label', ariaLabel);
  element.addEventListener('click', () => withBusy(element, onClick));
  return element;
}

/** Copy `element`'s text; where the Clipboard API is missing (plain http on a host that is not
 * localhost) or refused, select the text for the user to copy. True when it was copied. */
export async function copyText(element) {
  try {
    await navigator.clipboard.writeText(element.textContent);
    return true;
  } catch {
    const range = document.createRange();
    range.selectNodeContents(element);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    return false;
  }
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

/** The signed-in user, or a redirect to the login page; if the server cannot say, the page
 * shows why and goes no further. */
export async function requireUser() {
  let user;
  try {
    user = await auth.me();
  } catch (error) {
    complain(error);
    return new Promise(() => {});
  }
  if (!user) {
    // A provider login that failed comes back here with ?error=: the login page explains it.
    const login = new URL('/', location.origin);
    login.searchParams.set('next', location.pathname);
    const error = new URLSearchParams(location.search).get('error');
    if (error) login.searchParams.set('error', error);
    location.assign(login.toString());
    return new Promise(() => {});
  }
  return user;
}

/** The logged-in user, or null. Only a browser that holds a session or refresh cookie asks
 * /api/auth/me: for anyone else its 401 would be a console error on every visit. */
export async function loggedInUser() {
  const seen = await auth.diagnose();
  return seen.session_cookie_received || seen.refresh_cookie_received ? auth.me() : null;
}

/** A mailed link's token, taken from the fragment (and out of the address bar). A second link
 * opened in the same tab changes only the fragment, which reloads nothing: reload for it. */
export function linkToken() {
  addEventListener('hashchange', () => {
    if (new URLSearchParams(location.hash.slice(1)).has('token')) location.reload();
  });
  return tokenFromFragment();
}

/** Where an invitation's token waits (this tab only) while its visitor logs in or registers. */
export const INVITATION_KEY = 'authgate.invitation_token';

/** Whether `error` is the server refusing a mailed link's token — expired, already used,
 * revoked, never issued (one answer for all), or mangled so that it is no token at all —
 * rather than a problem with the rest of the request. */
export function isDeadLink(error) {
  if (error?.kind !== 'http') return false;
  if (error.code === 'invalid_or_expired_token') return true;
  const fields = Object.keys(error.fields ?? {});
  return fields.length === 1 && fields[0] === 'token';
}

/** Where to go after logging in: ?next= if it resolves to this origin, else /account. The
 * browser's own URL parser decides (it drops tabs and newlines, so string checks are not enough). */
export function nextPath() {
  const next = new URLSearchParams(location.search).get('next');
  if (!next || !next.startsWith('/')) return '/account';
  const url = new URL(next, location.origin);
  return url.origin === location.origin ? url.pathname + url.search + url.hash : '/account';
}
