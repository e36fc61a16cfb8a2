"""Audit events: who did what, when, from where (pure values; the store writes them).

An event is written by the store method that makes the change it records, in that change's
transaction, and only when the change happened; an attempt that changes nothing (a failed login,
a throttled one, a failed provider login) is written on its own. ``details`` names what changed
and never holds a password, a token, a hash or a secret: ``AuditEvent`` refuses such keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

ActorType = Literal["user", "cli", "system"]
Outcome = Literal["success", "failure"]

# The types authgate records. A type is a dotted name; the filter of ``GET /api/audit`` takes
# any of them (and those added later) verbatim.
LOGIN_SUCCEEDED = "login.succeeded"
LOGIN_FAILED = "login.failed"
LOGIN_THROTTLED = "login.throttled"
LOGOUT = "logout"
SESSION_REVOKED = "session.revoked"
SESSIONS_REVOKED_ALL = "sessions.revoked_all"
REFRESH_REUSE_DETECTED = "refresh.reuse_detected"
# A refresh token presented again within the grace window, its successor unused: rotated anew.
REFRESH_REUSE_GRACE = "refresh.reuse_grace"
PASSWORD_CHANGED = "password.changed"  # noqa: S105 (an event name)
PASSWORD_RESET_REQUESTED = "password.reset_requested"  # noqa: S105 (an event name)
PASSWORD_RESET = "password.reset"  # noqa: S105 (an event name)
EMAIL_VERIFIED = "email.verified"
EMAIL_CHANGE_REQUESTED = "email.change_requested"
EMAIL_CHANGED = "email.changed"
USER_CREATED = "user.created"
USER_DELETED = "user.deleted"
USER_ROLES_CHANGED = "user.roles_changed"
USER_DISABLED = "user.disabled"
USER_ENABLED = "user.enabled"
USER_IMPORTED = "user.imported"
API_TOKEN_CREATED = "api_token.created"  # noqa: S105 (an event name)
API_TOKEN_REVOKED = "api_token.revoked"  # noqa: S105 (an event name)
TENANT_CREATED = "tenant.created"
TENANT_DELETED = "tenant.deleted"
MEMBER_ADDED = "member.added"
MEMBER_REMOVED = "member.removed"
MEMBER_ROLE_CHANGED = "member.role_changed"
INVITATION_CREATED = "invitation.created"
INVITATION_ACCEPTED = "invitation.accepted"
OAUTH_LINKED = "oauth.linked"
OAUTH_UNLINKED = "oauth.unlinked"
OAUTH_LOGIN_FAILED = "oauth.login_failed"
KEY_ROTATED = "key.rotated"
AVATAR_CHANGED = "avatar.changed"
LEGACY_SESSION_EXCHANGED = "legacy_session.exchanged"
MFA_TOTP_ENABLED = "mfa.totp_enabled"
MFA_TOTP_DISABLED = "mfa.totp_disabled"
MFA_RECOVERY_CODES_REGENERATED = "mfa.recovery_codes_regenerated"
MFA_VERIFIED = "mfa.verified"
MFA_FAILED = "mfa.failed"
MFA_RESET_BY_ADMIN = "mfa.reset_by_admin"
PASSKEY_REGISTERED = "passkey.registered"
PASSKEY_REMOVED = "passkey.removed"
REAUTHENTICATED = "reauthenticated"

# What a user sees of their own account (``GET /api/auth/activity``): security events, not the
# administration of tenants.
SECURITY_TYPES = frozenset(
    {
        LOGIN_SUCCEEDED,
        LOGIN_FAILED,
        LOGIN_THROTTLED,
        LOGOUT,
        SESSION_REVOKED,
        SESSIONS_REVOKED_ALL,
        REFRESH_REUSE_DETECTED,
        REFRESH_REUSE_GRACE,
        PASSWORD_CHANGED,
        PASSWORD_RESET_REQUESTED,
        PASSWORD_RESET,
        EMAIL_VERIFIED,
        EMAIL_CHANGE_REQUESTED,
        EMAIL_CHANGED,
        USER_CREATED,
        USER_ROLES_CHANGED,
        USER_DISABLED,
        USER_ENABLED,
        API_TOKEN_CREATED,
        API_TOKEN_REVOKED,
        OAUTH_LINKED,
        OAUTH_UNLINKED,
        OAUTH_LOGIN_FAILED,
        AVATAR_CHANGED,
        LEGACY_SESSION_EXCHANGED,
        MFA_TOTP_ENABLED,
        MFA_TOTP_DISABLED,
        MFA_RECOVERY_CODES_REGENERATED,
        MFA_VERIFIED,
        MFA_FAILED,
        MFA_RESET_BY_ADMIN,
        PASSKEY_REGISTERED,
        PASSKEY_REMOVED,
        REAUTHENTICATED,
    }
)

# Keys ``details`` may never carry: what they would hold is a credential.
_SECRET_KEYS = frozenset(
    {
        "password",
        "password_hash",
        "new_password",
        "current_password",
        "hash",
        "token",
        "token_hash",
        "access_token",
        "refresh_token",
        "secret",
        "client_secret",
        "code",
        "recovery_code",
        "otp",
    }
)
MAX_TEXT = 512  # user agents and the like are cut to this


def _cut(value: str | None, limit: int = MAX_TEXT) -> str | None:
    return value[:limit] if value else None


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Where the current work comes from: a request (its client and id), a command or authgate
    itself. The adapter that runs the service provides it (``Audit.context``)."""

    actor_type: ActorType = "system"
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


SYSTEM = AuditContext()
CLI = AuditContext(actor_type="cli")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One row of the audit trail. ``id`` is given by the store (monotonic)."""

    type: str
    time: datetime
    outcome: Outcome = "success"
    actor_type: ActorType = "system"
    actor_id: str | None = None
    user_id: str | None = None
    tenant_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None

    def __post_init__(self) -> None:
        leaked = _SECRET_KEYS.intersection(k.lower() for k in self.details)
        if leaked:
            raise ValueError(f"audit details may not carry {sorted(leaked)}")
        if self.time.tzinfo is None:
            raise ValueError("audit time must be timezone-aware")

    def about(self, *, user_id: str | None = None, tenant_id: str | None = None) -> AuditEvent:
        """The event with its subject user or tenant filled in where the caller could not know
        it (the store learns it in the change's transaction)."""
        event = self
        if event.user_id is None and user_id is not None:
            event = replace(event, user_id=user_id)
        if event.tenant_id is None and tenant_id is not None:
            event = replace(event, tenant_id=tenant_id)
        return event

    def with_details(self, **more: Any) -> AuditEvent:
        """The event with more details (what the store learnt making the change)."""
        return replace(self, details={**self.details, **more})

    def row(self) -> dict[str, Any]:
        """The columns to insert."""
        return {
            "time": self.time,
            "type": self.type,
            "outcome": self.outcome,
            "actor_type": self.actor_type,
            "actor_id": self.actor_id,
            "user_id": self.user_id,
            "tenant_id": self.tenant_id,
            "ip": _cut(self.ip, 64),
            "user_agent": _cut(self.user_agent),
            "request_id": _cut(self.request_id, 64),
            "details": json.dumps(dict(self.details), separators=(",", ":"), sort_keys=True),
        }

    def as_json(self) -> dict[str, Any]:
        """The shape of the API, the export and the log line."""
        return {
            "id": self.id,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "type": self.type,
            "outcome": self.outcome,
            "actor": {"type": self.actor_type, "id": self.actor_id},
            "user_id": self.user_id,
            "tenant_id": self.tenant_id,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "request_id": self.request_id,
            "details": dict(self.details),
        }


def new_event(
    type: str,
    *,
    time: datetime,
    context: AuditContext,
    actor_id: str | None = None,
    user_id: str | None = None,
    tenant_id: str | None = None,
    outcome: Outcome = "success",
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """An event of the work of ``context``. A user acting (``actor_id``) is the actor; without
    one, a request's actor is the anonymous caller (``user`` with no id) and the rest are the
    command or authgate itself."""
    return AuditEvent(
        type=type,
        time=time,
        outcome=outcome,
        actor_type="user" if actor_id is not None else context.actor_type,
        actor_id=actor_id,
        user_id=user_id,
        tenant_id=tenant_id,
        ip=context.ip,
        user_agent=_cut(context.user_agent),
        request_id=context.request_id,
        details=dict(details or {}),
    )


def json_line(event: AuditEvent) -> str:
    """The event as one line of JSON (the export, the ``authgate.audit`` log)."""
    return json.dumps(event.as_json(), separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """A filter of the trail. Pages go newest first; ``before_id`` is the keyset cursor (the
    id of the last event of the previous page), so a page is the same whatever was inserted
    since."""

    user_id: str | None = None
    type: str | None = None
    types: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    after_id: int | None = None
    oldest_first: bool = False  # the export and the follower read forwards
    limit: int = 50


class BadCursorError(ValueError):
    pass


# A cursor is the id of the last event of a page, written out: opaque to clients (they pass it
# back as they got it), and any cursor of this shape is a valid place to continue from.
CURSOR_PATTERN = r"^[1-9][0-9]{0,18}$"
_MAX_ID = 2**63 - 1


def encode_cursor(last_id: int) -> str:
    """The cursor that continues after the event ``last_id``."""
    return str(last_id)


def decode_cursor(cursor: str) -> int:
    """The id a cursor continues below; ``BadCursorError`` for anything not of its shape."""
    if not (cursor.isascii() and cursor.isdigit()) or cursor.startswith("0") or len(cursor) > 19:
        raise BadCursorError()
    return min(int(cursor), _MAX_ID)
