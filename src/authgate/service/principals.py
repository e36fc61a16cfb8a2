"""The values the service speaks in: who is calling, what a login hands out, where a request
comes from, and the tenant a request acts in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from authgate.core.tokens import AccessClaims
from authgate.store.records import ApiTokenRecord, SessionRecord, TenantRole, UserRecord

DEFAULT_ROLES = ("user",)
ADMIN_ROLE = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user through a login session (``session_id`` and the access token's
    ``claims``) or through an API token (``api_token``)."""

    user: UserRecord
    transport: Literal["bearer", "cookie"]
    session_id: str | None = None
    claims: AccessClaims | None = None
    api_token: ApiTokenRecord | None = None

    @property
    def roles(self) -> tuple[str, ...]:
        """The user's roles now; an API token never carries the admin role."""
        if self.api_token is None:
            return self.user.roles
        return tuple(role for role in self.user.roles if role != ADMIN_ROLE)


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    user: UserRecord
    session: SessionRecord
    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ClientInfo:
    user_agent: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class TenantAccess:
    """The tenant a request acts in, and the caller's role there."""

    tenant_id: str
    role: TenantRole
