// authgate.js — the browser client for an authgate server. An ES module with no dependencies:
//
//   import { createClient } from 'https://auth.example.com/authgate.js';   // or a copy of this file
//   const auth = createClient({ baseUrl: 'https://auth.example.com' });
//   await auth.login('ada@example.com', 'correct horse battery staple');
//   const notes = await auth.fetch('/api/notes');                 // Response; cookies included
//
// Every request carries `credentials: 'include'` (the session lives in HttpOnly cookies that this
// code never sees) and the `X-Requested-With` header that authgate's CSRF check requires. An
// expired access token is refreshed once, automatically, and the request retried (unless its
// body is a ReadableStream, which can be sent only once).
//
// Errors are `AuthgateError`s with a `kind` a UI can act on:
//   'http'           the server answered 4xx/5xx: `status`, `code`, `message`, `fields` from its body
//   'origin'         this page's origin is not in the server's AUTHGATE_ORIGINS
//   'cookie'         logged in, but the browser did not send the session cookie back
//   'unreachable'    the server is down, or the URL is wrong, or something blocks the request
//                    (an https page calling a plain-http server: mixed content, said so)
// A network failure ("Failed to fetch", which may be CORS or a dead server) is diagnosed against
// GET /api/auth/diagnose to say which, in `message`. A request that cannot be built at all (a
// stream body without `duplex: 'half'`, a GET with a body) throws fetch's own TypeError instead.
//
// The links authgate mails (verify an address, reset a password, confirm a new address, join a
// tenant) carry their token in the URL fragment — `https://app.example.com/reset-password#token=…`
// — which never reaches a server log or a Referer. The page they open reads it with
// `tokenFromFragment()` (which also removes it from the address bar) and posts it:
//
//   const token = tokenFromFragment();               // null when the page was opened without one
//   await auth.resetPassword(token, newPassword);    // verifyEmail(token), confirmEmailChange(token),
//                                                    // previewInvitation(token), acceptInvitation(token)
//
// The other account functions: requestEmailVerification(), resendVerification(email, password)
// (for a login refused with `email_not_verified`), forgotPassword(email), changeEmail(email,
// password), createInvitation(tenantId, email, role), listInvitations(tenantId),
// revokeInvitation(tenantId, invitationId). Each throws an AuthgateError like the others.
//
// For admins (the admin console's calls): adminListUsers, adminGetUser, adminUpdateUser,
// adminDeleteUser, listRoles, adminListUserSessions, adminRevokeUserSession,
// adminRevokeAllUserSessions, adminGetUserMfa, adminRemoveUserMfa, adminListUserTokens, adminRevokeUserToken, adminListUserIdentities,
// adminUnlinkUserIdentity, listAudit({userId, type, since, until, cursor, limit}).
//
// Passkeys: registerPasskey(name) (logged in, recently), loginWithPasskey() (no email, no
// password), verifyMfaWithPasskey(mfaToken) (the second step of a password login),
// reauthenticateWithPasskey() (step-up), listPasskeys(), renamePasskey(id, name),
// deletePasskey(id). They work from a page on another origin too, given that origin can use the
// server's RP ID (AUTHGATE_WEBAUTHN_RP_ID, docs/passkeys.md).

const CSRF_HEADER = 'X-Requested-With';

export class AuthgateError extends Error {
  constructor(kind, message,
              { status = 0, code = null, fields = null, diagnosis = null, mfa = null } = {}) {
    super(message);
    this.name = 'AuthgateError';
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.diagnosis = diagnosis;
    // For `mfa_required` / `mfa_enrollment_required`: `{token, methods}` of the second step.
    this.mfa = mfa;
  }
}

/** The base URL for this page: `local` when the page itself runs on localhost/127.0.0.1,
 * `deployed` otherwise (both without a trailing slash). */
export function chooseBaseUrl({ local = 'http://localhost:8086', deployed = '' } = {},
                              hostname = globalThis.location?.hostname ?? '') {
  const isLocal = hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]';
  return (isLocal ? local : deployed).replace(/\/+$/, '');
}

export function createClient({ baseUrl, local, deployed } = {}) {
  const base = (baseUrl ?? (local || deployed ? chooseBaseUrl({ local, deployed })
                                              : globalThis.location?.origin ?? '')).replace(/\/+$/, '');
  let refreshing = null;
  let refreshed = 0;  // successful refreshes so far

  async function send(path, options = {}) {
    const headers = new Headers(options.headers || {});
    headers.set(CSRF_HEADER, 'fetch');
    let body = options.body;
    if (body !== undefined && body !== null && !isBodyInit(body)) {
      headers.set('Content-Type', 'application/json');
      body = JSON.stringify(body);
    }
    if (!headers.has('Accept')) headers.set('Accept', 'application/json');
    // Built first, outside the try: a request that cannot be made (a stream without `duplex:
    // 'half'` or already read, a GET with a body, a bad URL) throws its own TypeError here,
    // which is the caller's bug, not a network failure to diagnose.
    const prepared = new Request(base + path, { ...options, headers, body, credentials: 'include' });
    try {
      return await globalThis.fetch(prepared);
    } catch (error) {
      if (error?.name === 'AbortError') throw error;
      throw await explainNetworkFailure(error);
    }
  }

  async function refreshOnce() {
    // Concurrent requests that all meet an expired token share one refresh, and other tabs
    // wait for it (Web Locks): two refreshes with the same refresh token would look like a
    // replay, which revokes the session.
    refreshing ??= withRefreshLock(() => send('/api/auth/refresh', { method: 'POST' }))
      .then((response) => { if (response.ok) refreshed += 1; return response; })
      .finally(() => { refreshing = null; });
    const response = await refreshing;
    return response.ok;
  }

  /** fetch() against the server: a Response, after one automatic refresh if the access token
   * expired. Throws AuthgateError only when the request could not be made at all. A
   * ReadableStream body is read by the first attempt, so that request is not retried: its 401
   * is the answer (the refresh still happens, so sending it again with a new stream works). */
  async function request(path, options = {}) {
    const before = refreshed;
    const response = await send(path, options);
    if (response.status === 401 && !path.startsWith('/api/auth/refresh')) {
      const code = await peekCode(response);
      if (code === 'token_expired' || code === 'authentication_required') {
        // A refresh that finished while this request was out already renewed the token: its
        // late 401 is retried with it, not answered with a second refresh.
        const renewed = refreshed !== before || await refreshOnce();
        if (renewed && !isStream(options.body)) return send(path, options);
      }
    }
    return response;
  }

  /** The JSON body of a successful request, or an AuthgateError with the server's message. */
  async function json(path, options = {}) {
    const response = await request(path, options);
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) throw httpError(response, data);
    return data;
  }

  async function explainNetworkFailure(error) {
    // Blocked before it leaves the browser: asking the server why would be blocked too.
    const mixed = mixedContentProblem(base);
    if (mixed !== null) return new AuthgateError('unreachable', mixed);
    const diagnosis = await diagnose().catch(() => null);
    if (diagnosis === null) {
      return new AuthgateError('unreachable',
        `Cannot reach the authentication server at ${base}: it may be down, the URL may be wrong, ` +
        `or it answers without CORS headers (a proxy in front of it?). (${error?.message ?? error})`);
    }
    if (diagnosis.origin_allowed === false) {
      // The server's own words: they also cover an `Origin: null` page, which no allowlist fixes.
      const explanation = finding(diagnosis, 'origin') ??
        `Origin ${diagnosis.origin} is not allowed: add it to AUTHGATE_ORIGINS (scheme, host and ` +
        `port exactly) and restart the server.`;
      return new AuthgateError('origin', `The server at ${base} refuses this page. ${explanation}`,
        { diagnosis });
    }
    // A missing cookie does not make fetch() reject: only what can (a scheme the proxy hides).
    const problem = finding(diagnosis, 'scheme');
    return new AuthgateError('unreachable',
      `The request to ${base} failed although the server answers and allows this origin` +
      (problem ? `: ${problem}` : ` (a CORS preflight refused? a blocked header?).`), { diagnosis });
  }

  /** What the server saw of a request from this page (GET /api/auth/diagnose). First without
   * credentials — readable even from an origin that is not allowed — then, if allowed, with
   * them, to learn whether the session cookie arrives. */
  async function diagnose() {
    const anonymous = await globalThis.fetch(base + '/api/auth/diagnose', { credentials: 'omit' });
    const first = await anonymous.json();
    if (first.origin_allowed === false) return first;
    const withCookies = await globalThis.fetch(base + '/api/auth/diagnose', { credentials: 'include' });
    return withCookies.json();
  }

  /** After a login: a `cookie` error when /me says 401 and the server saw no session cookie;
   * any other failure is what it is (an `http` error). */
  async function checkCookieArrives() {
    const response = await send('/api/auth/me');
    if (response.ok) return;
    const data = await response.json().catch(() => null);
    if (response.status !== 401) throw httpError(response, data);
    const diagnosis = await diagnose().catch(() => null);
    if (diagnosis?.session_cookie_received) throw httpError(response, data);
    const problem = finding(diagnosis, 'cookie') ?? plainHttpProblem(base) ??
      (sameOrigin(base) ? 'The browser did not keep the session cookie.'
                        : 'The browser did not send the session cookie back (third-party cookies blocked?).');
    throw new AuthgateError('cookie', `Logged in, but the session cookie does not come back: ${problem}`,
      { status: response.status, diagnosis });
  }

  return {
    baseUrl: base,
    fetch: request,
    json,
    diagnose,
    async login(login, password) {
      const data = await json('/api/auth/login', { method: 'POST', body: { login, password } });
      await checkCookieArrives();
      return data.user;
    },
    /** Create an account (no login). `invitationToken`: the token of an invitation link to
     * `email`, so that the account starts verified; any other token is ignored. */
    async register({ email, password, name, username, invitationToken } = {}) {
      const body = { email, password };
      if (name) body.name = name;
      if (username) body.username = username;
      if (invitationToken) body.invitation_token = invitationToken;
      return (await json('/api/auth/register', { method: 'POST', body })).user;
    },
    async me() {
      const response = await request('/api/auth/me');
      if (response.status === 401) return null;
      const data = await response.json().catch(() => null);
      if (!response.ok) throw httpError(response, data);
      return data.user;
    },
    async logout() { await json('/api/auth/logout', { method: 'POST' }); },
    // Second factors (docs/mfa.md) ----------------------------------------------------------
    /** The second step of a login refused with `mfa_required` (`error.mfa.token`): a code of
     * the authenticator app, or `{ recoveryCode }`. The user, logged in. */
    async verifyMfa(mfaToken, { code, recoveryCode } = {}) {
      const body = { mfa_token: mfaToken };
      if (recoveryCode) body.recovery_code = recoveryCode; else body.code = code;
      const data = await json('/api/auth/mfa/verify', { method: 'POST', body });
      await checkCookieArrives();
      return data.user;
    },
    /** Which second factors the logged-in user has: `{totp, recovery_codes_left, passkeys, ...}`. */
    mfaStatus() { return json('/api/auth/mfa'); },
    /** Start setting up an authenticator app: `{secret, otpauth_uri, qr_svg}` (pending until
     * `confirmTotp`). With `{ mfaToken }` instead of a password: the enrollment a login
     * refused with `mfa_enrollment_required` asks for. */
    enrollTotp(password, { mfaToken } = {}) {
      const body = mfaToken ? { mfa_token: mfaToken } : { password };
      return json('/api/auth/mfa/totp', { method: 'POST', body });
    },
    /** Turn the app on with a code it shows: the 10 recovery codes, shown this once. With
     * `{ mfaToken }`: also completes that login. */
    async confirmTotp(code, { mfaToken } = {}) {
      const body = mfaToken ? { code, mfa_token: mfaToken } : { code };
      const data = await json('/api/auth/mfa/totp/confirm', { method: 'POST', body });
      if (mfaToken) await checkCookieArrives();
      return data.recovery_codes;
    },
    /** Turn the authenticator app off (a recent login is needed, else `reauthentication_required`). */
    async disableTotp() { await json('/api/auth/mfa/totp', { method: 'DELETE' }); },
    /** A new set of recovery codes (the old set stops working); recent login needed. */
    async regenerateRecoveryCodes() {
      return (await json('/api/auth/mfa/recovery-codes', { method: 'POST' })).recovery_codes;
    },
    /** Step-up for an action refused with `reauthentication_required`: `{ password }` or
     * `{ code }`. The session counts as freshly authenticated; retry the action. */
    async reauthenticate({ password, code } = {}) {
      const body = password !== undefined ? { password } : { code };
      return (await json('/api/auth/reauthenticate', { method: 'POST', body })).user;
    },
    // Email verification, password reset, email change -----------------------------------------
    /** Mail a verification link to the logged-in user's current address. */
    async requestEmailVerification() {
      await json('/api/auth/email/verify/request', { method: 'POST' });
    },
    /** Verify the address with the token of a mailed link: the user, now `email_verified`. */
    async verifyEmail(token) {
      return (await json('/api/auth/email/verify', { method: 'POST', body: { token } })).user;
    },
    /** Mail a new verification link to someone whose login was refused with
     * `email_not_verified` (they have no session: the password proves who asks). */
    async resendVerification(email, password) {
      await json('/api/auth/email/verify/resend', { method: 'POST', body: { email, password } });
    },
    /** Mail a password-reset link to `email` if an account has it. The answer is the same
     * whether one does or not: say "if an account exists, we sent a link". */
    async forgotPassword(email) {
      await json('/api/auth/password/forgot', { method: 'POST', body: { email } });
    },
    /** Set a new password with the token of a reset link; every session of the user ends (log
     * in afterwards). */
    async resetPassword(token, password, { code, recoveryCode } = {}) {
      const body = { token, password };
      if (code) body.code = code;
      if (recoveryCode) body.recovery_code = recoveryCode;
      await json('/api/auth/password/reset', { method: 'POST', body });
    },
    /** Ask to change the logged-in user's address to `email`: a link goes to the new address,
     * and the address changes when it is opened (`confirmEmailChange`). */
    async changeEmail(email, password) {
      await json('/api/auth/email/change', { method: 'POST', body: { email, password } });
    },
    /** Confirm an address change with the token of the link mailed to the new address: the user. */
    async confirmEmailChange(token) {
      return (await json('/api/auth/email/change/confirm', { method: 'POST', body: { token } })).user;
    },
    // Tenant invitations -----------------------------------------------------------------------
    /** Invite `email` into a tenant with `role` (a tenant owner or admin): the invitation. */
    async createInvitation(tenantId, email, role) {
      return (await json(`/api/tenants/${encodeURIComponent(tenantId)}/invitations`,
        { method: 'POST', body: { email, role } })).invitation;
    },
    /** The tenant's pending invitations. */
    async listInvitations(tenantId) {
      return (await json(`/api/tenants/${encodeURIComponent(tenantId)}/invitations`)).invitations;
    },
    async revokeInvitation(tenantId, invitationId) {
      await json(`/api/tenants/${encodeURIComponent(tenantId)}/invitations/` +
        encodeURIComponent(invitationId), { method: 'DELETE' });
    },
    /** What an invitation link offers, without logging in (the token is the secret):
     * `{tenant_name, email, role, inviter_name}`. */
    previewInvitation(token) {
      return json('/api/invitations/preview', { method: 'POST', body: { token } });
    },
    /** Join the tenant of an invitation, logged in with the invited address: `{tenant, role}`. */
    acceptInvitation(token) {
      return json('/api/invitations/accept', { method: 'POST', body: { token } });
    },
    async logoutAll() { await json('/api/auth/logout-all', { method: 'POST' }); },
    // Administration (a login session with the `admin` role) -----------------------------------
    /** One page of users: `{users, page, per_page, total}`; `q` searches email, username, name. */
    adminListUsers({ q = '', page = 1, perPage = 20 } = {}) {
      const params = new URLSearchParams({ page, per_page: perPage });
      if (q) params.set('q', q);
      return json(`/api/users?${params}`);
    },
    async adminGetUser(userId) { return (await json(userPath(userId))).user; },
    /** Set `roles` (among `listRoles()`) and/or `status` ('active' | 'disabled'): the user. */
    async adminUpdateUser(userId, { roles, status } = {}) {
      const body = {};
      if (roles !== undefined) body.roles = roles;
      if (status !== undefined) body.status = status;
      return (await json(userPath(userId), { method: 'PATCH', body })).user;
    },
    async adminDeleteUser(userId) { await json(userPath(userId), { method: 'DELETE' }); },
    /** The roles an admin can give: 'user', 'admin', then the deployment's AUTHGATE_ROLES. */
    async listRoles() { return (await json('/api/roles')).roles; },
    /** The user's live sessions, each with `device` ("Chrome 156 on Linux") and `user_agent`. */
    async adminListUserSessions(userId) {
      return (await json(userPath(userId, 'sessions'))).sessions;
    },
    async adminRevokeUserSession(userId, sessionId) {
      await json(userPath(userId, 'sessions', sessionId), { method: 'DELETE' });
    },
    async adminRevokeAllUserSessions(userId) {
      await json(userPath(userId, 'sessions'), { method: 'DELETE' });
    },
    /** The second factors the user has on: among 'totp', 'passkey', 'recovery_code'. */
    async adminGetUserMfa(userId) { return (await json(userPath(userId, 'mfa'))).methods; },
    /** Remove every second factor of the user (they are logged out and told by mail). */
    async adminRemoveUserMfa(userId) { await json(userPath(userId, 'mfa'), { method: 'DELETE' }); },
    async adminListUserTokens(userId) { return (await json(userPath(userId, 'tokens'))).tokens; },
    async adminRevokeUserToken(userId, tokenId) {
      await json(userPath(userId, 'tokens', tokenId), { method: 'DELETE' });
    },
    async adminListUserIdentities(userId) {
      return (await json(userPath(userId, 'identities'))).identities;
    },
    async adminUnlinkUserIdentity(userId, identityId) {
      await json(userPath(userId, 'identities', identityId), { method: 'DELETE' });
    },
    /** One page of the audit trail, newest first: `{events, next_cursor}`; pass `next_cursor`
     * back as `cursor` for the next page (null: no more). Filters: `userId`, `type`, `since` and
     * `until` (ISO 8601 or Date), `limit`. */
    listAudit({ userId, type, since, until, cursor, limit } = {}) {
      const params = new URLSearchParams();
      for (const [name, value] of [['user_id', userId], ['type', type], ['since', since],
                                   ['until', until], ['cursor', cursor], ['limit', limit]]) {
        if (value !== undefined && value !== null && value !== '') {
          params.set(name, value instanceof Date ? value.toISOString() : String(value));
        }
      }
      const query = params.toString();
      return json(`/api/audit${query ? `?${query}` : ''}`);
    },
    // Passkeys (WebAuthn) ----------------------------------------------------------------------
    /** Whether this browser offers passkeys here (WebAuthn in a secure context). */
    passkeysSupported() {
      return Boolean(globalThis.PublicKeyCredential && globalThis.navigator?.credentials?.create);
    },
    /** Create a passkey for the logged-in user and register it (a recent login is needed, else
     * `reauthentication_required`); `name` tells it apart later. The passkey's record. */
    async registerPasskey(name) {
      const options = await json('/api/auth/passkeys/register/options', { method: 'POST' });
      const credential = await globalThis.navigator.credentials.create({
        publicKey: creationOptions(options),
      });
      const body = { credential: credentialJSON(credential) };
      if (name) body.name = name;
      return (await json('/api/auth/passkeys/register', { method: 'POST', body })).passkey;
    },
    /** Log in with a passkey, no email or password: the browser lets the user pick one of the
     * passkeys it holds for this server. The user. `signal` aborts the browser's prompt. */
    async loginWithPasskey({ signal } = {}) {
      const options = await json('/api/auth/passkeys/login/options', { method: 'POST' });
      const credential = await globalThis.navigator.credentials.get({
        publicKey: requestOptions(options), signal,
      });
      const data = await json('/api/auth/passkeys/login', {
        method: 'POST', body: { credential: credentialJSON(credential) },
      });
      await checkCookieArrives();
      return data.user;
    },
    /** The second step of a password login refused with `mfa_required` (whose `mfa.methods`
     * include 'passkey'), with a passkey: `mfaToken` is that answer's `mfa.token`. The user. */
    async verifyMfaWithPasskey(mfaToken) {
      const options = await json('/api/auth/passkeys/mfa/options', {
        method: 'POST', body: { mfa_token: mfaToken },
      });
      const credential = await globalThis.navigator.credentials.get({
        publicKey: requestOptions(options),
      });
      const data = await json('/api/auth/passkeys/mfa', {
        method: 'POST', body: { mfa_token: mfaToken, credential: credentialJSON(credential) },
      });
      await checkCookieArrives();
      return data.user;
    },
    /** Step-up with a passkey, for an action refused with `reauthentication_required`. */
    async reauthenticateWithPasskey() {
      const options = await json('/api/auth/passkeys/reauthenticate/options', { method: 'POST' });
      const credential = await globalThis.navigator.credentials.get({
        publicKey: requestOptions(options),
      });
      return (await json('/api/auth/passkeys/reauthenticate', {
        method: 'POST', body: { credential: credentialJSON(credential) },
      })).user;
    },
    /** The user's passkeys: `{id, name, created_at, last_used_at, backed_up, ...}`. */
    async listPasskeys() { return (await json('/api/auth/passkeys')).passkeys; },
    async renamePasskey(passkeyId, name) {
      return (await json(`/api/auth/passkeys/${encodeURIComponent(passkeyId)}`,
        { method: 'PATCH', body: { name } })).passkey;
    },
    /** Delete a passkey (a recent login is needed, else `reauthentication_required`). */
    async deletePasskey(passkeyId) {
      await json(`/api/auth/passkeys/${encodeURIComponent(passkeyId)}`, { method: 'DELETE' });
    },
    providers() { return json('/api/oauth/providers'); },
    /** The URL of a "Continue with <provider>" link for a page on the server's own site; the
     * session cookies are set during the redirect. `next` is where to land afterwards. */
    providerLoginUrl(name, next = globalThis.location?.href) {
      const url = new URL(`${base}/api/oauth/${encodeURIComponent(name)}/login`);
      if (next) url.searchParams.set('next', next);
      return url.toString();
    },
    /** Log in with a provider from a page on any site: the browser goes to the provider and
     * comes back to `next` (this page by default), where `completeProviderLogin()` collects the
     * login with a secret only this tab holds. Works with third-party cookies blocked. */
    async startProviderLogin(name, next = globalThis.location?.href) {
      const verifier = randomVerifier();
      globalThis.sessionStorage.setItem(VERIFIER_KEY, verifier);
      const url = new URL(`${base}/api/oauth/${encodeURIComponent(name)}/login`);
      url.searchParams.set('next', next.split('#')[0]);
      url.searchParams.set('handoff_challenge', await s256(verifier));
      globalThis.location.assign(url.toString());
    },
    /** On the page a provider login came back to: the user (or null when this page is not the
     * end of a provider login). A failed login throws, with the provider error explained. A
     * user with a second factor throws `mfa_required` (or `mfa_enrollment_required`) with
     * `error.mfa` = `{token, methods}`, exactly as `login()` does: go on with `verifyMfa`. */
    async completeProviderLogin() {
      const step = mfaStepFromFragment();
      if (step) throw step;
      const here = new URL(globalThis.location.href);
      const code = new URLSearchParams(here.hash.slice(1)).get(HANDOFF_FRAGMENT);
      const failure = here.searchParams.get('error');
      if (!code && !(failure && globalThis.sessionStorage.getItem(VERIFIER_KEY))) return null;
      const verifier = globalThis.sessionStorage.getItem(VERIFIER_KEY);
      globalThis.sessionStorage.removeItem(VERIFIER_KEY);
      here.hash = '';
      here.searchParams.delete('error');
      globalThis.history.replaceState(null, '', here.toString());  // the code leaves the URL
      if (!code) {
        throw new AuthgateError('http', OAUTH_ERRORS[failure] ?? `Sign-in failed (${failure}).`,
          { code: failure });
      }
      const data = await json('/api/oauth/exchange', {
        method: 'POST', body: { code, code_verifier: verifier ?? '' },
      });
      await checkCookieArrives();
      return data.user;
    },
  };
}

/** `/api/users/<id>[/<part>...]`, each segment encoded. */
function userPath(userId, ...parts) {
  return ['/api/users', userId, ...parts].map((part, index) => index ? encodeURIComponent(part) : part)
    .join('/');
}

/** The `token` of a mailed link's fragment (`#token=…`), or null; it is removed from the
 * address bar at once (history.replaceState), so it stays out of the history, bookmarks and
 * screenshots. Other parts of the fragment stay. */
export function tokenFromFragment(name = 'token') {
  const here = new URL(globalThis.location.href);
  const params = new URLSearchParams(here.hash.slice(1));
  const token = params.get(name);
  if (token === null) return null;
  params.delete(name);
  const rest = params.toString();
  here.hash = rest ? `#${rest}` : '';
  // A fragment set to '' still leaves a bare '#' in the URL: cut it.
  globalThis.history.replaceState(globalThis.history.state, '', here.href.replace(/#$/, ''));
  return token || null;
}

const VERIFIER_KEY = 'authgate.handoff_verifier';
const HANDOFF_FRAGMENT = 'authgate_handoff';

/** The second step a provider login stopped at (`#authgate_mfa=<token>&authgate_mfa_step=…&
 * authgate_mfa_methods=a,b`, set by the callback for a user with a second factor) as the
 * AuthgateError a password login throws, or null. The fragment leaves the address bar. */
export function mfaStepFromFragment() {
  const params = new URLSearchParams(globalThis.location.hash.slice(1));
  const step = params.get('authgate_mfa_step');
  const methods = (params.get('authgate_mfa_methods') || '').split(',').filter(Boolean);
  const token = tokenFromFragment('authgate_mfa');
  if (!token) return null;
  tokenFromFragment('authgate_mfa_step');
  tokenFromFragment('authgate_mfa_methods');
  const code = step === 'mfa_enrollment_required' ? step : 'mfa_required';
  const message = code === 'mfa_required'
    ? 'Enter a code from your authenticator app (or a recovery code).'
    : 'Your account requires a second factor: set up an authenticator app.';
  return new AuthgateError('http', message, { status: 401, code, mfa: { token, methods } });
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64url(text) {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** The server's creation options (JSON, binary fields base64url) as WebAuthn wants them. */
function creationOptions(options) {
  return {
    ...options,
    challenge: fromBase64url(options.challenge),
    user: { ...options.user, id: fromBase64url(options.user.id) },
    excludeCredentials: (options.excludeCredentials ?? [])
      .map((c) => ({ ...c, id: fromBase64url(c.id) })),
  };
}

/** The server's request options (JSON, binary fields base64url) as WebAuthn wants them. */
function requestOptions(options) {
  return {
    ...options,
    challenge: fromBase64url(options.challenge),
    allowCredentials: (options.allowCredentials ?? [])
      .map((c) => ({ ...c, id: fromBase64url(c.id) })),
  };
}

/** A PublicKeyCredential as JSON for the server (its binary fields base64url). */
function credentialJSON(credential) {
  const r = credential.response;
  const response = { clientDataJSON: base64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = base64url(r.attestationObject);
    response.transports = r.getTransports?.() ?? [];
  } else {
    response.authenticatorData = base64url(r.authenticatorData);
    response.signature = base64url(r.signature);
    if (r.userHandle) response.userHandle = base64url(r.userHandle);
  }
  return {
    id: credential.id,
    rawId: base64url(credential.rawId),
    type: credential.type,
    response,
    clientExtensionResults: credential.getClientExtensionResults?.() ?? {},
    authenticatorAttachment: credential.authenticatorAttachment ?? undefined,
  };
}

function randomVerifier() {
  return base64url(globalThis.crypto.getRandomValues(new Uint8Array(32)));
}

async function s256(verifier) {
  return base64url(await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
}

/** Hosts on which browsers treat plain http as secure: Secure cookies are kept, and an https
 * page may call them (no mixed content). */
function isLoopbackHost(hostname) {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]'
    || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function parseUrl(url) {
  try { return new URL(url); } catch { return null; }
}

function sameOrigin(base) {
  return Boolean(globalThis.location?.origin) && parseUrl(base)?.origin === globalThis.location.origin;
}

/** Why an https page's request to a plain-http server never leaves the browser, or null. */
function mixedContentProblem(base) {
  const url = parseUrl(base);
  if (globalThis.location?.protocol !== 'https:' || url?.protocol !== 'http:'
      || isLoopbackHost(url.hostname)) return null;
  return `This page is https and the authentication server's URL ${base} is plain http: the ` +
    `browser blocks the request as mixed content, so it never reaches the server. Serve the ` +
    `API over https (for development \`authgate tls dev\` makes a certificate) and use its ` +
    `https:// URL as baseUrl.`;
}

/** Why no cookie survives a server on plain http at a host that is not loopback, or null. */
function plainHttpProblem(base) {
  const url = parseUrl(base);
  if (url?.protocol !== 'http:' || isLoopbackHost(url.hostname)) return null;
  return `The server's URL ${base} is plain http on ${url.hostname}, not localhost: browsers ` +
    `drop the Secure cookies authgate sets over plain http except on localhost. Serve the API ` +
    `over https (for development \`authgate tls dev\` makes a certificate), or use ` +
    `http://localhost while developing.`;
}

/** What the server's diagnosis says about one `kind` of failure (origin, cookie, scheme). */
function finding(diagnosis, kind) {
  return (diagnosis?.findings ?? []).find((item) => item.kind === kind)?.message ?? null;
}

/** A body fetch() takes as it is; anything else (a plain object, an array) is sent as JSON. */
function isBodyInit(body) {
  return typeof body === 'string' || body instanceof FormData || body instanceof Blob
    || body instanceof URLSearchParams || body instanceof ArrayBuffer || ArrayBuffer.isView(body)
    || isStream(body);
}

/** A body that can be sent only once (the others are read afresh for every request). */
function isStream(body) {
  return typeof ReadableStream !== 'undefined' && body instanceof ReadableStream;
}

function withRefreshLock(task) {
  const locks = globalThis.navigator?.locks;
  return locks ? locks.request('authgate-refresh', task) : task();
}

async function peekCode(response) {
  try {
    return (await response.clone().json())?.error?.code ?? null;
  } catch {
    return null;
  }
}

function httpError(response, data) {
  const error = data?.error ?? {};
  const message = error.message ??
    (response.status >= 500 ? `The server failed (HTTP ${response.status}).`
                             : `The request was refused (HTTP ${response.status}).`);
  return new AuthgateError('http', message, {
    status: response.status, code: error.code ?? null, fields: error.details?.fields ?? null,
    mfa: data?.mfa ?? null,
  });
}

/** Plain words for the `?error=` codes a provider login redirects back with. */
export const OAUTH_ERRORS = {
  oauth_state_mismatch: 'That sign-in did not start in this browser, was already used, or took too long. Please try again.',
  oauth_denied: 'The sign-in was cancelled at the provider.',
  oauth_issuer_mismatch: 'That sign-in answer did not come from the provider you chose. Please try again.',
  oauth_failed: 'The provider refused the sign-in. Please try again.',
  oauth_provider_unavailable: 'The provider cannot be reached right now. Please try again later.',
  oauth_provider_error: 'The provider answered in a way we cannot accept.',
  oauth_invalid_id_token: 'The provider\'s identity token was invalid.',
  oauth_account_exists: 'An account with this email already exists. Log in with your password, then link the provider from your account page.',
  oauth_identity_taken: 'That provider account is already linked to another user.',
  oauth_email_missing: 'The provider did not share an email address.',
  oauth_handoff_invalid: 'That sign-in could not be completed on this page (already used or too slow). Please try again.',
  account_disabled: 'This account is disabled.',
  authentication_required: 'Please log in again, then link the provider.',
};
