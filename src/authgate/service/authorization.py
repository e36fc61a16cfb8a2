"""The authorization decisions: roles, login-session-only actions, API-token scopes and resources,
and the caller's role in a tenant.

A caller is a ``Principal``: a user through a login session (all scopes, every role) or through an
API token (the token's scopes, bound to one tenant and optionally one resource, never the admin
role, never able to manage tokens or the account).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from authgate.core.roles import require_roles
from authgate.errors import (
    ForbiddenError,
    InsufficientRoleError,
    InsufficientScopeError,
    NotFoundError,
    ReauthenticationRequiredError,
    SessionRequiredError,
    TokenRevokedError,
)
from authgate.service.principals import ADMIN_ROLE, Principal, TenantAccess

if TYPE_CHECKING:
    from authgate.core.clocks import Clock
    from authgate.service.cached_reads import CachedReads


@dataclass(eq=False, repr=False)
class Authorization:
    reads: CachedReads
    # Step-up: how recent a session's authentication must be for sensitive actions.
    clock: Clock | None = None
    reauth_seconds: int = 600

    def require_roles(self, principal: Principal, roles: Sequence[str]) -> None:
        """Every role in ``roles`` is held by the caller now (not when the token was issued)."""
        if roles:  # the caller's roles are worked out only when a view requires some
            require_roles(principal.roles, roles)

    def require_session(self, principal: Principal) -> str:
        """The caller's login session id; ``SessionRequiredError`` for an API token."""
        if principal.session_id is None:
            raise SessionRequiredError()
        return principal.session_id

    def require_recent_authentication(self, principal: Principal) -> None:
        """A login session whose user proved who they are (login, ``/reauthenticate``) within
        ``AUTHGATE_REAUTH_SECONDS``, by its access token's ``auth_time``: else
        ``ReauthenticationRequiredError``. No I/O."""
        self.require_session(principal)
        claims = principal.claims
        now = self.clock.timestamp() if self.clock is not None else time.time()
        if claims is None or claims.auth_time is None:
            raise ReauthenticationRequiredError()
        if now - claims.auth_time > self.reauth_seconds:
            raise ReauthenticationRequiredError()

    def require_admin(self, actor: Principal) -> None:
        self.require_session(actor)
        self.require_roles(actor, [ADMIN_ROLE])

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
            missing = [scope for scope in scopes if scope not in token.scopes] if scopes else None
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
        role = self.reads.member_role(tenant_id, principal.user.id)
        if role is None:
            if token is not None:
                raise TokenRevokedError("The token's owner is no longer a member of its tenant.")
            raise NotFoundError("No such tenant.")
        return TenantAccess(tenant_id, role)
