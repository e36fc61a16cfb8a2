"""Plain immutable records passed between the store and the service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class UserStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    email: str
    username: str | None
    name: str | None
    password_hash: str | None
    roles: tuple[str, ...]
    status: UserStatus
    email_verified: bool
    created_at: datetime
    last_login_at: datetime | None

    @property
    def is_active(self) -> bool:
        return self.status is UserStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    user_id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    user_agent: str | None
    ip: str | None

    def is_valid_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """Result of presenting a refresh token.

    ``session`` is set when the token was current and has been rotated; ``reused_session_id`` when
    an already-rotated token was replayed (the store has revoked that session).
    """

    session: SessionRecord | None = None
    reused_session_id: str | None = None


class RevocationKind(StrEnum):
    SESSION = "session"
    USER = "user"


@dataclass(frozen=True, slots=True)
class RevocationEvent:
    """One entry of the revocation log: a session revoked, or a user's record changed."""

    id: int
    kind: RevocationKind
    subject: str
