"""Tenants, API tokens, and the authorization decisions that involve them (mixed into the service).

A caller is a ``Principal``: a user through a login session (all scopes, every role) or through an
API token (the token's scopes, bound to one tenant and optionally one resource, never the admin
role, never able to manage tokens or the account).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from authgate.core.api_tokens import (
    api_token_secret_matches,
    generate_api_token,
    hash_api_token_secret,
    parse_api_token,
)
from authgate.errors import (
    ConflictError,
    ForbiddenError,
    InsufficientRoleError,
    InsufficientScopeError,
    InvalidTokenError,
    NotFoundError,
    SessionRequiredError,
    TokenExpiredError,
    TokenRevokedError,
    ValidationFailedError,
)
from authgate.store.records import (
    ApiTokenRecord,
    MemberRecord,
    RevocationKind,
    TenantRecord,
    TenantRole,
    UserRecord,
    membership_subject,
)

if TYPE_CHECKING:
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.revocations import AuthCache, RevocationFeed
    from authgate.service import Principal
    from authgate.store.protocols import Store

BUILTIN_SCOPES = ("read", "write", "tenants:read", "tenants:write")
TENANT_MANAGERS = (TenantRole.OWNER, TenantRole.ADMIN)


@dataclass(frozen=True, slots=True)
class TenantAccess:
    """The tenant a request acts in, and the caller's role there."""

    tenant_id: str
    role: TenantRole


class TenancyMixin:
    """Tenant, API-token and authorization decisions of ``AuthService``."""

    if TYPE_CHECKING:
        settings: Settings
        store: Store
        clock: Clock
        cache: AuthCache
        feed: RevocationFeed

        def require_roles(self, principal: Principal, roles: Sequence[str]) -> None: ...

        def _load_user(self, user_id: str) -> UserRecord | None: ...

        def _require_admin(self, actor: Principal) -> None: ...

    # Authorization ---------------------------------------------------------------------------

    @property
    def api_token_scopes(self) -> tuple[str, ...]:
        """Every scope a token may carry: the built-in ones and those the app registers."""
        return tuple(dict.fromkeys((*BUILTIN_SCOPES, *self.settings.api_token_scopes)))

    def authorize(
        self,
        principal: Principal,
        *,
        roles: Sequence[str] = (),
        scopes: Sequence[str] = (),
        resource: str | None = None,
        tenant_id: str | None = None,
        tenant_roles: Sequence[str] = (),
        sessions_only: bool = False,
    ) -> TenantAccess | None:
        """Decide whether ``principal`` may do what a view declares; the tenant in scope."""
        token = principal.api_token
        if token is not None:
            if sessions_only:
                raise SessionRequiredError()
            missing = [scope for scope in scopes if scope not in token.scopes]
            if missing:
                raise InsufficientScopeError(
                    f"This API token lacks the scope(s): {', '.join(missing)}."
                )
            if token.resource is not None and token.resource != resource:
                raise ForbiddenError("This API token is bound to another resource.")
        self.require_roles(principal, roles)
        if tenant_id is None and token is None:
            if tenant_roles:
                raise NotFoundError("No tenant in this request.")
            return None
        access = self.tenant_access(principal, tenant_id)
        if tenant_roles and access.role.value not in tenant_roles:
            raise InsufficientRoleError(
                f"This action requires the tenant role(s): {', '.join(tenant_roles)}."
            )
        return access

    def tenant_access(self, principal: Principal, tenant_id: str | None) -> TenantAccess:
        """The caller's role in a tenant; 404 for a tenant the caller cannot see."""
        token = principal.api_token
        if token is not None:
            if tenant_id is not None and tenant_id != token.tenant_id:
                raise ForbiddenError("This API token belongs to another tenant.")
            tenant_id = token.tenant_id
        assert tenant_id is not None
        role = self._member_role(tenant_id, principal.user.id)
        if role is None:
            if token is not None:
                raise TokenRevokedError("The token's owner is no longer a member of its tenant.")
            raise NotFoundError("No such tenant.")
        return TenantAccess(tenant_id, role)

    def _member_role(self, tenant_id: str, user_id: str) -> TenantRole | None:
        key = membership_subject(tenant_id, user_id)
        role = self.cache.memberships.get(key)
        if role is None:
            generation = self.cache.memberships.generation
            role = self.store.get_member_role(tenant_id, user_id)
            if role is not None:
                self.cache.memberships.put_if_current(key, role, generation=generation)
        return role

    def _require_session(self, principal: Principal) -> None:
        if principal.api_token is not None:
            raise SessionRequiredError()

    # API tokens: the hot path ----------------------------------------------------------------

    def authenticate_api_token(self, plaintext: str, *, ip: str | None = None) -> Principal:
        """Check an API token: checksum first (no I/O), then cached record, user, membership."""
        from authgate.service import Principal

        now = self.clock.timestamp()
        token_id = self.cache.verified_api_tokens.get(plaintext)
        secret = None
        if token_id is None:
            parts = parse_api_token(plaintext)
            token_id, secret = parts.token_id, parts.secret
        record = self.cache.api_tokens.get(token_id) or self._load_api_token(token_id)
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
        user = self.cache.users.get(record.user_id) or self._load_user(record.user_id)
        if user is None or not user.is_active:
            raise TokenRevokedError()
        principal = Principal(user, "bearer", api_token=record)
        self.tenant_access(principal, record.tenant_id)  # still a member of its tenant
        self.cache.api_token_use[record.id] = (now, ip)
        return principal

    def _load_api_token(self, token_id: str) -> ApiTokenRecord | None:
        generation = self.cache.api_tokens.generation
        record = self.store.get_api_token(token_id)
        if record is not None:
            self.cache.api_tokens.put_if_current(token_id, record, generation=generation)
        return record

    # API tokens: management (login sessions only) --------------------------------------------

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
        """A new token; its plaintext is returned here and never again."""
        self._require_session(principal)
        return self.issue_api_token(
            principal.user,
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
    ) -> tuple[str, ApiTokenRecord]:
        """Operator-level creation (the CLI; ``create_api_token`` after its checks)."""
        unknown = [scope for scope in scopes if scope not in self.api_token_scopes]
        if unknown:
            raise ValidationFailedError(
                {
                    "scopes": f"Unknown scope(s): {', '.join(unknown)}. "
                    f"Known: {', '.join(self.api_token_scopes)}."
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
        self.store.create_api_token(record)
        return plaintext, record

    def list_api_tokens(self, principal: Principal) -> list[ApiTokenRecord]:
        self._require_session(principal)
        return self.store.list_api_tokens(principal.user.id)

    def revoke_api_token(self, principal: Principal, token_id: str) -> None:
        self._require_session(principal)
        self._revoke_api_token(token_id, user_id=principal.user.id)

    def revoke_any_api_token(self, token_id: str) -> None:
        """Operator-level revocation (the CLI), announced to every process."""
        self._revoke_api_token(token_id, user_id=None)

    def _revoke_api_token(self, token_id: str, *, user_id: str | None) -> None:
        if not self.store.revoke_api_token(token_id, user_id=user_id, now=self.clock.now()):
            raise NotFoundError("No such API token.")
        self.feed.announce([(RevocationKind.API_TOKEN, token_id)])

    def list_user_api_tokens(self, actor: Principal, user_id: str) -> list[ApiTokenRecord]:
        self._require_admin(actor)
        return self.store.list_api_tokens(user_id)

    def revoke_user_api_token(self, actor: Principal, user_id: str, token_id: str) -> None:
        self._require_admin(actor)
        self._revoke_api_token(token_id, user_id=user_id)

    # Tenants ---------------------------------------------------------------------------------

    def list_tenants(self, principal: Principal) -> list[tuple[TenantRecord, TenantRole]]:
        tenants = self.store.list_user_tenants(principal.user.id)
        if principal.api_token is not None:
            self.authorize(principal, scopes=["tenants:read"])
            tenants = [(t, r) for t, r in tenants if t.id == principal.api_token.tenant_id]
        return tenants

    def create_tenant(self, principal: Principal, name: str) -> TenantRecord:
        self._require_session(principal)
        return self.store.create_tenant(name=name, owner_id=principal.user.id, now=self.clock.now())

    def get_tenant(self, principal: Principal, tenant_id: str) -> tuple[TenantRecord, TenantRole]:
        access = self.authorize(principal, scopes=["tenants:read"], tenant_id=tenant_id)
        assert access is not None
        tenant = self.store.get_tenant(tenant_id)
        if tenant is None:
            raise NotFoundError("No such tenant.")
        return tenant, access.role

    def rename_tenant(
        self, principal: Principal, tenant_id: str, name: str
    ) -> tuple[TenantRecord, TenantRole]:
        access = self._manage(principal, tenant_id, TENANT_MANAGERS)
        tenant = self.store.rename_tenant(tenant_id, name)
        if tenant is None:
            raise NotFoundError("No such tenant.")
        return tenant, access.role

    def delete_tenant(self, principal: Principal, tenant_id: str) -> None:
        self._manage(principal, tenant_id, (TenantRole.OWNER,))
        tenant = self.store.get_tenant(tenant_id)
        if tenant is not None and tenant.personal:
            raise ConflictError("A personal tenant is deleted only with its user.")
        revoked = self.store.delete_tenant(tenant_id, now=self.clock.now())
        if revoked is None:
            raise NotFoundError("No such tenant.")
        self.feed.announce(revoked)

    def list_members(self, principal: Principal, tenant_id: str) -> list[MemberRecord]:
        self.authorize(principal, scopes=["tenants:read"], tenant_id=tenant_id)
        return self.store.list_members(tenant_id)

    def add_member(
        self, principal: Principal, tenant_id: str, *, email: str, role: TenantRole
    ) -> MemberRecord:
        access = self._manage(principal, tenant_id, TENANT_MANAGERS)
        self._check_grant(access, role)
        tenant = self.store.get_tenant(tenant_id)
        if tenant is None or tenant.personal:
            raise ConflictError("A personal tenant has no other members; create a team tenant.")
        user = self.store.find_user_by_login(email)
        if user is None:
            raise NotFoundError("No account uses this email address.")
        self.store.add_member(tenant_id, user.id, role, now=self.clock.now())
        self.feed.announce([(RevocationKind.MEMBERSHIP, membership_subject(tenant_id, user.id))])
        return self._member(tenant_id, user.id)

    def set_member_role(
        self, principal: Principal, tenant_id: str, user_id: str, role: TenantRole
    ) -> MemberRecord:
        access = self._manage(principal, tenant_id, TENANT_MANAGERS)
        current = self.store.get_member_role(tenant_id, user_id)
        if current is None:
            raise NotFoundError("No such member.")
        self._check_grant(access, role)
        self._check_grant(access, current)
        self.store.set_member_role(tenant_id, user_id, role, now=self.clock.now())
        self.feed.announce([(RevocationKind.MEMBERSHIP, membership_subject(tenant_id, user_id))])
        return self._member(tenant_id, user_id)

    def remove_member(self, principal: Principal, tenant_id: str, user_id: str) -> None:
        """Remove a member (or leave, when it is the caller); their tokens for it stop at once."""
        leaving = user_id == principal.user.id
        access = self._manage(
            principal, tenant_id, tuple(TenantRole) if leaving else TENANT_MANAGERS
        )
        current = self.store.get_member_role(tenant_id, user_id)
        if current is None:
            raise NotFoundError("No such member.")
        if not leaving:
            self._check_grant(access, current)
        revoked = self.store.remove_member(tenant_id, user_id, now=self.clock.now())
        if revoked is None:
            raise NotFoundError("No such member.")
        self.feed.announce(revoked)

    def _manage(
        self, principal: Principal, tenant_id: str, roles: Sequence[TenantRole]
    ) -> TenantAccess:
        access = self.authorize(
            principal,
            scopes=["tenants:write"],
            tenant_id=tenant_id,
            tenant_roles=[role.value for role in roles],
        )
        assert access is not None
        return access

    @staticmethod
    def _check_grant(access: TenantAccess, role: TenantRole) -> None:
        """Admins manage admins, members and viewers; only owners touch owners."""
        if role is TenantRole.OWNER and access.role is not TenantRole.OWNER:
            raise InsufficientRoleError("Only an owner can grant, change or remove an owner.")

    def _member(self, tenant_id: str, user_id: str) -> MemberRecord:
        for member in self.store.list_members(tenant_id):
            if member.user_id == user_id:
                return member
        raise NotFoundError("No such member.")
