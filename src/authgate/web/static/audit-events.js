// The rows of audit events, shared by the user page and the audit page.
import { auth, row, when } from './ui.js';

/** Who did it: "this user", "you", a user (a link to their page), "command line", "authgate". */
export function actorCell(event, { me = null, subject = null } = {}) {
  const actor = event.actor ?? {};
  if (actor.type === 'cli') return 'command line';
  if (actor.type === 'system') return 'authgate';
  if (!actor.id) return 'anonymous';
  if (me && actor.id === me.id) return 'you';
  if (subject && actor.id === subject) return 'this user';
  return userLink(actor.id);
}

/** A link to the user page of `userId`; its text is the id until `nameUsers` finds the email. */
export function userLink(userId) {
  const link = document.createElement('a');
  link.href = `/admin/users/${encodeURIComponent(userId)}`;
  link.dataset.userId = userId;
  link.textContent = userId;
  return link;
}

/** "reason: wrong_password, session_id: …" — the event's details in one line. */
export function detailsText(details) {
  return Object.entries(details ?? {})
    .map(([key, value]) => `${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(', ');
}

/** A table row: time, type, outcome, by whom, (the user, if asked,) IP, details. */
export function eventRow(event, { me = null, subject = null, withUser = false } = {}) {
  const cells = [when(event.time), event.type, event.outcome, actorCell(event, { me, subject })];
  if (withUser) cells.push(event.user_id ? userLink(event.user_id) : '—');
  cells.push(event.ip ?? '', detailsText(event.details));
  const tr = row(...cells);
  // Time, type, outcome and IP stay on one line (on a wide screen).
  for (const index of [0, 1, 2, cells.length - 2]) tr.cells[index].classList.add('keep');
  return tr;
}

// Emails of the users the events name, asked once per page view (a deleted user keeps its id).
const emails = new Map();

/** Show each user link under `root` with the user's email instead of the id. */
export async function nameUsers(root) {
  const links = [...root.querySelectorAll('a[data-user-id]')];
  const missing = [...new Set(links.map((link) => link.dataset.userId))].filter((id) => !emails.has(id));
  await Promise.all(missing.map(async (id) => {
    emails.set(id, await auth.adminGetUser(id).then((user) => user.email, () => null));
  }));
  for (const link of links) {
    const email = emails.get(link.dataset.userId);
    if (email) link.textContent = email;
  }
}
