// Small helpers shared by authgate's pages: forms with accessible errors, tables, the client.
import { createClient } from '/authgate.js';

export const auth = createClient({ baseUrl: location.origin });

export function $(selector, root = document) {
  const element = root.querySelector(selector);
  if (!element) throw new Error(`missing element ${selector}`);
  return element;
}

/** Show `error` on `form`: each field message under its input (aria-describedby, aria-invalid),
 * anything else in the form's alert; focus the first invalid field or the alert. */
export function showError(form, error) {
  clearErrors(form);
  const alert = form.querySelector('[role=alert]');
  let first = null;
  for (const [name, message] of Object.entries(error?.fields ?? {})) {
    const input = form.elements.namedItem(name);
    const slot = form.querySelector(`#${CSS.escape(name)}-error`) ?? form.querySelector(`[data-error-for="${name}"]`);
    if (input && slot) {
      slot.textContent = message;
      input.setAttribute('aria-invalid', 'true');
      first ??= input;
    } else if (alert) {
      alert.textContent += `${name}: ${message} `;
    }
  }
  if (!first && alert) alert.textContent = error?.message ?? String(error);
  (first ?? alert)?.focus?.();
}

export function clearErrors(form) {
  for (const slot of form.querySelectorAll('.field-error')) slot.textContent = '';
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  const alert = form.querySelector('[role=alert]');
  if (alert) alert.textContent = '';
}

/** Run `action` on submit with the button disabled; errors go to the form. */
export function onSubmit(form, action) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const button = form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    try {
      await action(new FormData(form));
    } catch (error) {
      showError(form, error);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

/** A table row from cells (strings or nodes). */
export function row(...cells) {
  const tr = document.createElement('tr');
  for (const cell of cells) {
    const td = document.createElement('td');
    if (cell instanceof Node) td.append(cell); else td.textContent = cell ?? '';
    tr.append(td);
  }
  return tr;
}

export function button(label, onClick, { className = 'secondary', ariaLabel } = {}) {
  const element = document.createElement('button');
  element.type = 'button';
  element.className = className;
  element.textContent = label;
  if (ariaLabel) element.setAttribute('aria-label', ariaLabel);
  element.addEventListener('click', onClick);
  return element;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

/** The signed-in user, or a redirect to the login page. */
export async function requireUser() {
  const user = await auth.me();
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

/** Where to go after logging in: ?next= if it resolves to this origin, else /account. The
 * browser's own URL parser decides (it drops tabs and newlines, so string checks are not enough). */
export function nextPath() {
  const next = new URLSearchParams(location.search).get('next');
  if (!next || !next.startsWith('/')) return '/account';
  const url = new URL(next, location.origin);
  return url.origin === location.origin ? url.pathname + url.search + url.hash : '/account';
}
