// A real OpenID Provider (panva's oidc-provider 9) for authgate's end-to-end OAuth/OIDC tests.
//
// Configuration comes from the environment:
//   PORT     the port to listen on (127.0.0.1 only)
//   ISSUER   the issuer identifier, e.g. http://127.0.0.1:PORT (plain http is accepted)
//   CLIENTS  JSON list of confidential clients:
//            [{"client_id": "...", "client_secret": "...", "redirect_uris": ["http://..."]}]
//   ISS_PARAMETER  "on" (the default): as oidc-provider 9 does, every authorization response
//            (success or error) carries iss (RFC 9207) and the discovery document says
//            authorization_response_iss_parameter_supported: true. "off": an OP from before
//            RFC 9207 — neither the parameter nor the metadata field.
//
// Every client authenticates at the token endpoint with client_secret_basic or client_secret_post
// (oidc-provider 9 accepts either for a client registered with one of them), must use PKCE with
// S256, and gets id_tokens signed RS256 with a key made at startup (its kid is in /jwks).
//
// Logging in goes through oidc-provider's development interactions: GET /interaction/<uid> shows
// a form (fields prompt=login, login=<any account id>, password=<anything>), then a consent form
// (prompt=consent) that grants the requested scopes and claims. Any account id is accepted.
//
// Test-only endpoints (never in a real OP):
//   GET  /__test/health            200 "ok"
//   GET  /__test/requests          200 {"token": n, "userinfo": n}: the requests that reached
//                                  those endpoints since the start (answered or not)
//   GET  /__test/tamper            200 {"mode": "<armed mode or none>"}
//   POST /__test/tamper            JSON {"mode": "<mode>"} arms a one-shot change of the NEXT
//                                  successful token response's id_token (or, for
//                                  "userinfo_sub_mismatch", of the next userinfo response);
//                                  {"mode": "none"} disarms. See TAMPER_MODES below.
//   GET  /__test/public-key.pem    the signing key's public half as PEM (SPKI), the exact bytes
//                                  used as the HMAC secret by "hs256_with_public_key"
//   POST /__test/rotate-key        the OP rotates its signing key: a new RS256 key with a new
//                                  kid signs every later id_token, and /jwks lists it first
//                                  (the old key stays listed). Answers {"kid": "<new kid>"}.
//   POST /__test/fault             JSON {"endpoint": "discovery"|"jwks"|"token"|"userinfo",
//                                  "fault": "hang"|"503"|"429"} arms a one-shot failure of the
//                                  next request to that endpoint: "hang" accepts it and never
//                                  answers (until the client gives up), "503" answers an HTML
//                                  error page, "429" a JSON {"error": "slow_down"} with
//                                  Retry-After. {"endpoint": ..., "fault": "none"} disarms.
import * as crypto from 'node:crypto';
import * as http from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';

function log(...args) {
  console.log('[oidc-provider]', ...args);
}

function fail(message) {
  console.error(`[oidc-provider] ${message}`);
  process.exit(2);
}

const port = Number.parseInt(process.env.PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) fail('PORT must be a port number');
const issuer = process.env.ISSUER || `http://127.0.0.1:${port}`;
const issParameter = process.env.ISS_PARAMETER ?? 'on';
if (issParameter !== 'on' && issParameter !== 'off') fail('ISS_PARAMETER must be "on" or "off"');

let clientsInput;
try {
  clientsInput = JSON.parse(process.env.CLIENTS ?? '[]');
} catch (error) {
  fail(`CLIENTS is not valid JSON: ${error.message}`);
}
if (!Array.isArray(clientsInput) || clientsInput.length === 0) {
  fail('CLIENTS must be a non-empty JSON list of {client_id, client_secret, redirect_uris}');
}
const clients = clientsInput.map((client) => {
  const { client_id: clientId, client_secret: clientSecret, redirect_uris: redirectUris } = client;
  if (typeof clientId !== 'string' || typeof clientSecret !== 'string' || !Array.isArray(redirectUris)) {
    fail(`bad client ${JSON.stringify(client)}: client_id, client_secret, redirect_uris needed`);
  }
  return {
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    application_type: 'web',
    token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  };
});

// The signing key: made here, given to the provider, and kept for re-signing tampered tokens.
const { publicKey, privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const privateJwk = await jose.exportJWK(privateKey);
const kid = await jose.calculateJwkThumbprint(privateJwk);
Object.assign(privateJwk, { kid, alg: 'RS256', use: 'sig' });
const publicKeyPem = crypto.createPublicKey(await jose.exportSPKI(publicKey))
  .export({ type: 'spki', format: 'pem' });
// What signs id_tokens now: the provider's own key until /__test/rotate-key, then the newest.
let signing = { privateKey, kid, rotated: [] };

// Accounts: any id typed at the login page exists.
function accountClaims(id) {
  const local = id.includes('@') ? id.slice(0, id.indexOf('@')) : id;
  return {
    sub: id,
    email: id.includes('@') ? id : `${id}@example.test`,
    email_verified: !id.startsWith('unverified'),
    name: `User ${local}`,
    picture: `https://avatars.example.test/${id}.png`,
    preferred_username: local,
  };
}

const configuration = {
  clients,
  jwks: { keys: [privateJwk] },
  async findAccount(ctx, id) {
    if (typeof id !== 'string' || !id) return undefined;
    return {
      accountId: id,
      async claims() {
        return accountClaims(id);
      },
    };
  },
  scopes: ['openid', 'email', 'profile'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'picture', 'preferred_username'],
  },
  // Claims of the requested scopes go into the id_token as well as to /me.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  features: {
    devInteractions: { enabled: true },
    userinfo: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    rpInitiatedLogout: { enabled: false },
  },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 600,
    IdToken: 3600,
    Interaction: 3600,
    Session: 86400,
    Grant: 86400,
  },
  async renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const provider = new Provider(issuer, configuration);

// Tampering ---------------------------------------------------------------------------------------

const TOKEN_MODES = new Set([
  'wrong_iss',
  'wrong_aud',
  'multiple_aud_without_azp',
  'wrong_azp',
  'expired',
  'expired_exp_only',
  'issued_in_future',
  'wrong_nonce',
  'missing_nonce',
  'unknown_key',
  'alg_none',
  'hs256_with_public_key',
]);
const USERINFO_MODES = new Set(['userinfo_sub_mismatch']);
let armed = 'none';

const b64 = (value) => Buffer.from(value).toString('base64url');

async function tamperIdToken(idToken, mode) {
  const header = jose.decodeProtectedHeader(idToken);
  const claims = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'wrong_iss': claims.iss = 'https://evil.example'; break;
    case 'wrong_aud': claims.aud = 'someone-else'; break;
    case 'multiple_aud_without_azp': {
      const clientId = Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
      claims.aud = [clientId, 'other'];
      delete claims.azp;
      break;
    }
    case 'wrong_azp': claims.azp = 'other'; break;
    case 'expired': claims.exp = now - 3600; claims.iat = now - 7200; break;
    // Past exp (beyond a minute of leeway), but an iat recent enough: only exp is wrong.
    case 'expired_exp_only': claims.exp = now - 120; claims.iat = now - 300; break;
    case 'issued_in_future': claims.iat = now + 3600; claims.exp = now + 7200; break;
    case 'wrong_nonce': claims.nonce = 'not-the-nonce'; break;
    case 'missing_nonce': delete claims.nonce; break;
    case 'unknown_key': {
      const other = await jose.generateKeyPair('RS256');
      const otherKid = `unknown-${crypto.randomBytes(8).toString('hex')}`;
      return new jose.CompactSign(Buffer.from(JSON.stringify(claims)))
        .setProtectedHeader({ ...header, alg: 'RS256', kid: otherKid })
        .sign(other.privateKey);
    }
    case 'alg_none':
      return `${b64(JSON.stringify({ alg: 'none' }))}.${b64(JSON.stringify(claims))}.`;
    case 'hs256_with_public_key': {
      const input = `${b64(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid }))}.${b64(JSON.stringify(claims))}`;
      const mac = crypto.createHmac('sha256', Buffer.from(publicKeyPem)).update(input).digest();
      return `${input}.${mac.toString('base64url')}`;
    }
    default: throw new Error(`unknown tamper mode ${mode}`);
  }
  // Only the claim is wrong: same header (alg, kid), signed with the OP's real (current) key.
  return new jose.CompactSign(Buffer.from(JSON.stringify(claims)))
    .setProtectedHeader(header)
    .sign(signing.privateKey);
}

// Key rotation and faults -------------------------------------------------------------------------

async function rotateKey() {
  const pair = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = await jose.exportJWK(pair.publicKey);
  const newKid = `rotated-${await jose.calculateJwkThumbprint(jwk)}`;
  Object.assign(jwk, { kid: newKid, alg: 'RS256', use: 'sig' });
  signing = { privateKey: pair.privateKey, kid: newKid, rotated: [jwk, ...signing.rotated] };
  return newKid;
}

async function resignWithCurrentKey(idToken) {
  const header = jose.decodeProtectedHeader(idToken);
  return new jose.CompactSign(Buffer.from(JSON.stringify(jose.decodeJwt(idToken))))
    .setProtectedHeader({ ...header, kid: signing.kid })
    .sign(signing.privateKey);
}

const FAULT_ENDPOINTS = new Set(['discovery', 'jwks', 'token', 'userinfo']);
const FAULTS = new Set(['hang', '503', '429']);
const faults = new Map(); // endpoint -> fault, one-shot
const requestCounts = { token: 0, userinfo: 0 };

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

const tokenPath = new URL(provider.urlFor('token')).pathname;
const userinfoPath = new URL(provider.urlFor('userinfo')).pathname;
const jwksPath = new URL(provider.urlFor('jwks')).pathname;
const endpointPaths = {
  discovery: '/.well-known/openid-configuration',
  jwks: jwksPath,
  token: tokenPath,
  userinfo: userinfoPath,
};

async function applyFault(ctx, endpoint) {
  const fault = faults.get(endpoint);
  faults.delete(endpoint);
  log(`fault applied to ${endpoint}: ${fault}`);
  if (fault === 'hang') {
    ctx.respond = false; // accept the request, never answer: wait for the client to give up
    await new Promise((resolve) => ctx.req.socket.once('close', resolve));
  } else if (fault === '503') {
    ctx.status = 503;
    ctx.type = 'html';
    ctx.body = '<html><body>503 Service Unavailable</body></html>';
  } else {
    ctx.status = 429;
    ctx.set('Retry-After', '30');
    ctx.body = { error: 'slow_down', error_description: 'too many requests' };
  }
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/__test/health' && ctx.method === 'GET') {
    ctx.type = 'text';
    ctx.body = 'ok';
    return;
  }
  if (ctx.path === '/__test/requests' && ctx.method === 'GET') {
    ctx.body = { ...requestCounts };
    return;
  }
  if (ctx.path === tokenPath) requestCounts.token += 1;
  if (ctx.path === userinfoPath) requestCounts.userinfo += 1;
  if (ctx.path === '/__test/public-key.pem' && ctx.method === 'GET') {
    ctx.type = 'application/x-pem-file';
    ctx.body = publicKeyPem;
    return;
  }
  if (ctx.path === '/__test/rotate-key' && ctx.method === 'POST') {
    const newKid = await rotateKey();
    log(`signing key rotated: kid ${newKid}`);
    ctx.body = { kid: newKid };
    return;
  }
  if (ctx.path === '/__test/fault' && ctx.method === 'POST') {
    let endpoint;
    let fault;
    try {
      ({ endpoint, fault } = await readJson(ctx.req));
    } catch {
      endpoint = undefined;
    }
    if (!FAULT_ENDPOINTS.has(endpoint) || (fault !== 'none' && !FAULTS.has(fault))) {
      ctx.status = 400;
      ctx.body = { error: `unknown endpoint or fault ${JSON.stringify({ endpoint, fault })}` };
      return;
    }
    if (fault === 'none') faults.delete(endpoint);
    else faults.set(endpoint, fault);
    log(`fault armed: ${endpoint} ${fault}`);
    ctx.body = { endpoint, fault };
    return;
  }
  for (const [endpoint, path] of Object.entries(endpointPaths)) {
    if (ctx.path === path && faults.has(endpoint)) {
      await applyFault(ctx, endpoint);
      return;
    }
  }
  if (ctx.path === '/__test/tamper') {
    if (ctx.method === 'GET') {
      ctx.body = { mode: armed };
      return;
    }
    if (ctx.method !== 'POST') {
      ctx.status = 405;
      return;
    }
    let mode;
    try {
      ({ mode } = await readJson(ctx.req));
    } catch {
      ctx.status = 400;
      ctx.body = { error: 'body must be JSON {"mode": "..."}' };
      return;
    }
    if (mode !== 'none' && !TOKEN_MODES.has(mode) && !USERINFO_MODES.has(mode)) {
      ctx.status = 400;
      ctx.body = { error: `unknown mode ${JSON.stringify(mode)}` };
      return;
    }
    armed = mode;
    log(`tamper armed: ${mode}`);
    ctx.body = { mode };
    return;
  }

  await next();

  if (issParameter === 'off') withoutIssParameter(ctx);
  if (ctx.status !== 200 || !ctx.body || typeof ctx.body !== 'object') return;
  if (ctx.path === jwksPath && signing.rotated.length > 0) {
    ctx.body = { keys: [...signing.rotated, ...ctx.body.keys] };
  }
  if (ctx.path === tokenPath && signing.kid !== kid && typeof ctx.body.id_token === 'string') {
    ctx.body = { ...ctx.body, id_token: await resignWithCurrentKey(ctx.body.id_token) };
  }
  if (ctx.path === tokenPath && TOKEN_MODES.has(armed) && typeof ctx.body.id_token === 'string') {
    const mode = armed;
    armed = 'none';
    ctx.body = { ...ctx.body, id_token: await tamperIdToken(ctx.body.id_token, mode) };
    log(`tamper applied to the token response: ${mode}`);
  } else if (ctx.path === userinfoPath && armed === 'userinfo_sub_mismatch') {
    armed = 'none';
    ctx.body = { ...ctx.body, sub: 'someone-else' };
    log('tamper applied to the userinfo response: userinfo_sub_mismatch');
  }
});

// ISS_PARAMETER=off: the metadata field and the parameter of redirects to a relying party go.
function withoutIssParameter(ctx) {
  if (ctx.path === endpointPaths.discovery && ctx.body && typeof ctx.body === 'object') {
    const { authorization_response_iss_parameter_supported: _, ...rest } = ctx.body;
    ctx.body = rest;
    return;
  }
  const location = ctx.response.get('Location');
  if (ctx.status < 300 || ctx.status >= 400 || !location) return;
  const target = new URL(location, issuer);
  if (target.origin === new URL(issuer).origin || !target.searchParams.has('iss')) return;
  target.searchParams.delete('iss');
  ctx.set('Location', target.href);
}

provider.on('server_error', (ctx, error) => {
  console.error('[oidc-provider] server_error', error);
});
for (const event of ['authorization.error', 'grant.error', 'userinfo.error']) {
  provider.on(event, (ctx, error) => {
    log(`${event}: ${error.message}${error.error_description ? ` (${error.error_description})` : ''}`);
  });
}

// Serving -----------------------------------------------------------------------------------------

const server = http.createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  log(`listening on 127.0.0.1:${port}, issuer ${issuer}, kid ${kid}, clients ${clients.map((c) => c.client_id).join(', ')}`);
});
server.on('error', (error) => fail(`cannot listen: ${error.message}`));

function shutdown(signal) {
  log(`${signal}: shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
