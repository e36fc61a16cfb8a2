"""``ResourceServer(app, ...)``: another backend that trusts authgate's access tokens offline.

It holds no secret and no database: it verifies ``Authorization: Bearer`` access tokens with the
public keys authgate publishes at ``/.well-known/jwks.json`` (cached for the document's
``max-age``, fetched again when a token names a key it has not seen, at most every
``jwks_refetch_seconds``).
``token_required(roles=[...])`` and ``current_user`` (a :class:`TokenUser`: id, roles, session id)
work in its views.

What it cannot know offline: a revocation (logout, a disabled user) takes effect when the access
token expires (15 minutes by default); API tokens, scopes and tenants need authgate itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from flask import Flask, Request

from authgate.core.keys import JWKS_MAX_AGE_SECONDS, PublicKeySet
from authgate.core.roles import require_roles
from authgate.core.tokens import AccessClaims, UnknownKeyError, decode_access_token
from authgate.errors import (
    AuthenticationRequiredError,
    ReauthenticationRequiredError,
    ServiceUnavailableError,
)
from authgate.integrations.flask.context import AUTHENTICATOR_KEY
from authgate.integrations.flask.decorators import Authenticator
from authgate.integrations.flask.errors import register_error_handlers
from authgate.integrations.flask.transport import read_bearer_token

log = logging.getLogger("authgate.resource_server")

_REFETCH_SECONDS = 10.0
# The JWKS's own ``Cache-Control: max-age``: a key authgate retired (a compromised one, after
# ``keys rotate --immediate``) stops verifying here that long after it left the document.
_MAX_AGE_SECONDS = float(JWKS_MAX_AGE_SECONDS)
_TIMEOUT = (3.0, 5.0)


@dataclass(frozen=True, slots=True)
class TokenUser:
    """Who an access token says the caller is; all a resource server knows offline."""

    id: str
    roles: tuple[str, ...]
    session_id: str
    expires_at: int
    auth_time: int | None = None  # when the user last authenticated (login, step-up)
    amr: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenPrincipal:
    """``current_principal`` in a resource server: the token's user; never an API token."""

    user: TokenUser
    transport: str = "bearer"
    api_token: None = None

    @property
    def roles(self) -> tuple[str, ...]:
        return self.user.roles


class JwksKeys:
    """authgate's public keys, from its JWKS URL, cached; fetched again on an unknown ``kid``."""

    def __init__(self, jwks_url: str, *, refetch_seconds: float = _REFETCH_SECONDS):
        self.jwks_url = jwks_url
        self.refetch_seconds = refetch_seconds
        self._lock = threading.Lock()
        self._keys = PublicKeySet({})
        self._fetched_at = -_MAX_AGE_SECONDS

    def current(self, *, refresh: bool = False) -> PublicKeySet:
        now = time.monotonic()
        with self._lock:
            age = now - self._fetched_at
            if (
                not len(self._keys)
                or age >= _MAX_AGE_SECONDS
                or (refresh and age >= self.refetch_seconds)
            ):
                self._keys = self._fetch()  # keeps the keys in hand (or raises) on failure
                self._fetched_at = now
            return self._keys

    def _fetch(self) -> PublicKeySet:
        import requests  # only where the keys are fetched: a worker need not load it to boot

        try:
            response = requests.get(self.jwks_url, timeout=_TIMEOUT, allow_redirects=False)
            response.raise_for_status()
            return PublicKeySet.from_jwks(response.json())
        except (requests.RequestException, ValueError) as e:
            log.error("cannot read authgate's keys at %s: %s", self.jwks_url, type(e).__name__)
            if len(self._keys):
                return self._keys
            raise ServiceUnavailableError(
                "The authentication server's keys are unavailable."
            ) from e


class ResourceServer:
    """Verify authgate access tokens in a Flask app that is not authgate."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        jwks_url: str,
        issuer: str,
        audience: str = "authgate",
        leeway_seconds: int = 30,
        jwks_refetch_seconds: float = _REFETCH_SECONDS,
        reauth_seconds: int = 600,
    ):
        self.keys = JwksKeys(jwks_url, refetch_seconds=jwks_refetch_seconds)
        self.issuer = issuer
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self.reauth_seconds = reauth_seconds
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        authenticator: Authenticator[TokenPrincipal] = self
        app.extensions[AUTHENTICATOR_KEY] = authenticator
        register_error_handlers(app)

    def authenticate(self, request: Request) -> TokenPrincipal:
        token = read_bearer_token(request.environ)
        if token is None:
            raise AuthenticationRequiredError()
        claims = self._decode(token)
        user = TokenUser(
            claims.subject,
            claims.roles,
            claims.session_id,
            claims.expires_at,
            auth_time=claims.auth_time,
            amr=claims.amr,
        )
        return TokenPrincipal(user)

    def authorize(
        self,
        caller: TokenPrincipal,
        *,
        roles: Sequence[str],
        scopes: Sequence[str],
        resource: str | None,
        tenant_id: str | None,
        tenant_roles: Sequence[str],
        sessions_only: bool,
    ) -> None:
        """Roles only: an access token is a login session's (``sessions_only`` holds), and
        scopes, resources and tenants need authgate itself."""
        if scopes or tenant_roles or resource is not None or tenant_id is not None:
            raise RuntimeError(
                "token_required(scopes=, resource=, tenant_roles=) and tenant views need "
                "AuthGate(app); a ResourceServer checks roles only."
            )
        require_roles(caller.roles, roles)

    def require_fresh(self, caller: TokenPrincipal) -> None:
        """``token_required(fresh=True)``: the token's ``auth_time`` within ``reauth_seconds``."""
        auth_time = caller.user.auth_time
        if auth_time is None or time.time() - auth_time > self.reauth_seconds:
            raise ReauthenticationRequiredError()

    def _decode(self, token: str) -> AccessClaims:
        try:
            return self._decode_with(self.keys.current(), token)
        except UnknownKeyError:
            return self._decode_with(self.keys.current(refresh=True), token)

    def _decode_with(self, keys: PublicKeySet, token: str) -> AccessClaims:
        return decode_access_token(
            token,
            keyring=keys,
            issuer=self.issuer,
            audience=self.audience,
            now=time.time(),
            leeway_seconds=self.leeway_seconds,
        )
