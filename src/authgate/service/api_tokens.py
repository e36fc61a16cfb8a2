"""API tokens: checking one (the hot path for SDKs and scripts), and managing them.

Only a login session manages tokens; an admin may list and revoke another user's; the CLI
(operator level) issues and revokes any."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from authgate.core import audit as events
from authgate.core.api_tokens import (
    api_token_secret_matches,
    generate_api_token,
    hash_api_token_secret,
    is_read_only_scope,
    legacy_api_token_id,
    parse_api_token,
)
from authgate.errors import (
    InvalidTokenError,
    NotFoundError,
    TokenExpiredError,
    TokenRevokedError,
    ValidationFailedError,
)
from authgate.service.principals import Principal
from authgate.store.records import ApiTokenRecord, RevocationKind, UserRecord

if TYPE_CHECKING:
    from authgate.backends.auth_cache import AuthCache
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.service.audit import Audit
    from authgate.service.authorization import Authorization
    from authgate.service.cached_reads import CachedReads
    from authgate.store.protocols import Store

BUILTIN_SCOPES = ("read", "write", "tenants:read", "tenants:write")


@dataclass(eq=False, repr=False)
class ApiTokens:
    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    cache: AuthCache
    feed: RevocationFeed
    reads: CachedReads
    authorization: Authorization
    audit: Audit

    @property
    def scopes(self) -> tuple[str, ...]:
        """Every scope a token may carry: the built-in ones and those the app registers."""
        return tuple(dict.fromkeys((*BUILTIN_SCOPES, *self.settings.api_token_scopes)))

    # The hot path ----------------------------------------------------------------------------

    def authenticate_api_token(self, plaintext: str, *, ip: str | None = None) -> Principal:
        """Check an API token: checksum first (no I/O), then its record, user and membership,
        from the cache, or read in one statement the first time (``CachedReads.api_token``)."""
        now = self.clock.timestamp()
        token_id = self.cache.verified_api_tokens.get(plaintext)
        secret = None
        if token_id is None:
            parts = parse_api_token(plaintext)
            token_id, secret = parts.token_id, parts.secret
        return self._authenticate(plaintext, token_id, secret, now=now, ip=ip)

    def authenticate_legacy_api_token(self, plaintext: str, *, ip: str | None = None) -> Principal:
        """Check a token imported from another app (``authgate tokens import``): stored under an
        id derived from it, the whole string its secret; then the same checks as ours."""
        now = self.clock.timestamp()
        token_id = self.cache.verified_api_tokens.get(plaintext)
        secret = None
        if token_id is None:
            token_id, secret = legacy_api_token_id(plaintext), plaintext
        return self._authenticate(plaintext, token_id, secret, now=now, ip=ip)

    def _authenticate(
        self, plaintext: str, token_id: str, secret: str | None, *, now: float, ip: str | None
    ) -> Principal:
        record = self.reads.api_token(token_id)
        if record is None:
            raise InvalidTokenError("Unknown API token.")
        if secret is not None:
            if not api_token_secret_matches(secret, record.secret_hash):
                raise InvalidTokenError("Unknown API token.")
            self.cache.verified_api_tokens.put(plaintext, token_id)
        if record.revoked_at is not None:
            raise TokenRevokedError()
        if record.expires_at.timestamp() <= now:
            raise TokenExpiredError("The API token has expired.")
        user = self.cache.users.get(record.user_id) or self.reads.load_user(record.user_id)
        if user is None or not user.is_active:
            raise TokenRevokedError()
        principal = Principal(user, "bearer", api_token=record)
        self.authorization.tenant_access(principal, record.tenant_id)  # still a member of it
        self.cache.api_token_use[record.id] = (now, ip)
        return principal

    # Management (login sessions only) --------------------------------------------------------

    def create_api_token(
        self,
        principal: Principal,
        *,
        name: str,
        scopes: Sequence[str],
        tenant_id: str | None = None,
        resource: str | None = None,
        expires_in_days: int | None = None,
    ) -> tuple[str, ApiTokenRecord]:
        """A new token; its plaintext is returned here and never again. One with a write scope
        (``is_read_only_scope``) needs a recent authentication (step-up)."""
        self.authorization.require_session(principal)
        if not all(is_read_only_scope(scope) for scope in scopes):
            self.authorization.require_recent_authentication(principal)
        return self.issue_api_token(
            principal.user,
            actor=principal,
            name=name,
            scopes=scopes,
            tenant_id=tenant_id,
            resource=resource,
            expires_in_days=expires_in_days,
        )

    def issue_api_token(
        self,
        user: UserRecord,
        *,
        name: str,
        scopes: Sequence[str],
        tenant_id: str | None = None,
        resource: str | None = None,
        expires_in_days: int | None = None,
        actor: Principal | None = None,
    ) -> tuple[str, ApiTokenRecord]:
        """Operator-level creation (the CLI; ``create_api_token`` after its checks)."""
        unknown = [scope for scope in scopes if scope not in self.scopes]
        if unknown:
            raise ValidationFailedError(
                {
                    "scopes": f"Unknown scope(s): {', '.join(unknown)}. "
                    f"Known: {', '.join(self.scopes)}."
                }
            )
        days = (
            self.settings.api_token_default_ttl_days if expires_in_days is None else expires_in_days
        )
        if not 1 <= days <= self.settings.api_token_max_ttl_days:
            raise ValidationFailedError(
                {"expires_in_days": f"Use 1 to {self.settings.api_token_max_ttl_days} days."}
            )
        tenant_id = tenant_id or self.store.personal_tenant_id(user.id)
        if tenant_id is None or self.store.get_member_role(tenant_id, user.id) is None:
            raise NotFoundError("No such tenant.")
        plaintext, parts = generate_api_token()
        now = self.clock.now()
        record = ApiTokenRecord(
            id=parts.token_id,
            user_id=user.id,
            tenant_id=tenant_id,
            name=name,
            secret_hash=hash_api_token_secret(parts.secret),
            scopes=tuple(dict.fromkeys(scopes)),
            resource=resource,
            created_at=now,
            expires_at=now + timedelta(days=days),
            revoked_at=None,
            last_used_at=None,
            last_used_ip=None,
        )
        audit = self.audit.event(
            events.API_TOKEN_CREATED,
            actor=actor,
            user_id=user.id,
            tenant_id=tenant_id,
            details={"token_id": record.id, "name": name, "scopes": list(record.scopes)},
        )
        self.store.create_api_token(record, audit=audit)
        return plaintext, record

    def list_api_tokens(self, principal: Principal) -> list[ApiTokenRecord]:
        self.authorization.require_session(principal)
        return self.store.list_api_tokens(principal.user.id)

    def revoke_api_token(self, principal: Principal, token_id: str) -> None:
        self.authorization.require_session(principal)
        self._revoke(token_id, user_id=principal.user.id, actor=principal)

    def revoke_any_api_token(self, token_id: str) -> None:
        """Operator-level revocation (the CLI), announced to every process."""
        self._revoke(token_id, user_id=None)

    def list_user_api_tokens(self, actor: Principal, user_id: str) -> list[ApiTokenRecord]:
        self.authorization.require_admin(actor)
        if self.store.get_user(user_id) is None:
            raise NotFoundError("No such user.")
        return self.store.list_api_tokens(user_id)

    def revoke_user_api_token(self, actor: Principal, user_id: str, token_id: str) -> None:
        self.authorization.require_admin(actor)
        self._revoke(token_id, user_id=user_id, actor=actor)

    def _revoke(
        self, token_id: str, *, user_id: str | None, actor: Principal | None = None
    ) -> None:
        audit = self.audit.event(
            events.API_TOKEN_REVOKED, actor=actor, details={"token_id": token_id}
        )
        if not self.store.revoke_api_token(
            token_id, user_id=user_id, now=self.clock.now(), audit=audit
        ):
            raise NotFoundError("No such API token.")
        self.feed.announce([(RevocationKind.API_TOKEN, token_id)])
