"""Tables. Alembic migrations beside this module create them; a test checks the two agree."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from authgate.store.records import UserRecord, UserStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # ``value.replace(tzinfo=UTC)``, by position: a keyword costs ~7,000 instructions
            # (the C parser makes a string of each of its eight keyword names to look them up).
            return datetime.combine(value.date(), value.time(), UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UserRow(Base):
    __tablename__ = "authgate_users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str | None] = mapped_column(String(64))
    username_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(512))
    roles: Mapped[str] = mapped_column(Text, default='["user"]')
    status: Mapped[str] = mapped_column(String(16), default="active")
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    # One more each time all of the user's sessions are revoked (password change, disable, ...):
    # a login opens its session only while the epoch it read is still the current one.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The user's id in the app it was imported from (``authgate users import``), if given.
    legacy_id: Mapped[str | None] = mapped_column(String(255), unique=True)


class SessionRow(Base):
    __tablename__ = "authgate_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(String(64))
    # When the user last proved who they are in this session (login, reauthentication), and
    # how: RFC 8176 method names, space-separated ("pwd otp"). Refreshes keep both.
    auth_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    amr: Mapped[str | None] = mapped_column(String(64))


class RefreshTokenRow(Base):
    __tablename__ = "authgate_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("authgate_sessions.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The token whose rotation issued this one (NULL: a login's), and when a grace re-rotation
    # of that parent killed this one unused (it is then spent too: presenting it is a reuse).
    # See ``AUTHGATE_REFRESH_REUSE_GRACE_SECONDS`` (migration 0015).
    rotated_from: Mapped[str | None] = mapped_column(String(64))
    superseded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RevocationRow(Base):
    __tablename__ = "authgate_revocations"
    # The pollers' cursor: an id is never handed out again, even after pruning emptied the table
    # (SQLite would otherwise reuse max(id) + 1; migration 0012).
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy's own attribute

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class TenantRow(Base):
    __tablename__ = "authgate_tenants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Set for a user's personal tenant (one per user, deleted with the user).
    personal_owner_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MembershipRow(Base):
    __tablename__ = "authgate_memberships"

    tenant_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("authgate_tenants.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        String(32),
        ForeignKey("authgate_users.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiTokenRow(Base):
    __tablename__ = "authgate_api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("authgate_tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(Text)
    resource: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_ip: Mapped[str | None] = mapped_column(String(64))


class IdentityRow(Base):
    __tablename__ = "authgate_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OAuthFlowRow(Base):
    __tablename__ = "authgate_oauth_flows"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    binding_hash: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    redirect_to: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="CASCADE")
    )
    session_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    handoff_challenge: Mapped[str | None] = mapped_column(String(64))


class LoginHandoffRow(Base):
    __tablename__ = "authgate_login_handoffs"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="CASCADE")
    )
    challenge: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


def columns_by_name(keys: Sequence[str], values: Sequence[Any]) -> Any:
    """``values`` (a row's, or a run of them) as attributes named ``keys`` of a plain namespace,
    for a record built from many of them: reading a column as an attribute of a Core ``Row``
    costs ~3,000 instructions (the row first asks its class whether the name is an attribute of
    its own, and the class formats an ``AttributeError``)."""
    return SimpleNamespace(**dict(zip(keys, values, strict=True)))


# The users table's columns in order: a statement that selects the table first and others
# after it (a token's first request) splits its row with ``split_user_row``.
USER_COLUMNS = tuple(column.name for column in UserRow.__table__.c)


def user_record(row: UserRow | Row[Any]) -> UserRecord:
    return UserRecord(
        id=row.id,
        email=row.email,
        username=row.username,
        name=row.name,
        password_hash=row.password_hash,
        roles=tuple(json.loads(row.roles)),
        status=UserStatus(row.status),
        email_verified=row.email_verified,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        avatar_url=row.avatar_url,
        session_epoch=row.session_epoch,
    )


def split_user_row(row: Row[Any]) -> tuple[UserRecord, tuple[Any, ...]]:
    """A row whose first columns are a user's (``USER_COLUMNS``): that user, and the rest."""
    values = tuple(row)
    users = len(USER_COLUMNS)
    return user_record(columns_by_name(USER_COLUMNS, values[:users])), values[users:]


Index("ix_authgate_sessions_expires_at", SessionRow.expires_at)


class OutboxMailRow(Base):
    """A mail waiting for (or done with) delivery; see ``store.protocols.MailOutbox``."""

    __tablename__ = "authgate_mail_outbox"
    __table_args__ = (Index("ix_authgate_mail_outbox_next_attempt_at", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Given up after the last retry; kept for the operator to see.
    dead_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AccountTokenRow(Base):
    """A single-use mailed token (``core.account_tokens``): found by its hash, bound to the
    user's email and password fingerprint at issue, consumed by setting ``used_at``."""

    __tablename__ = "authgate_account_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="CASCADE"), index=True
    )
    # The user's address when the token was issued (where the link went, but for an email
    # change: that goes to ``new_email``).
    email: Mapped[str] = mapped_column(String(320))
    password_fingerprint: Mapped[str] = mapped_column(String(64))
    new_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class InvitationRow(Base):
    """An invitation to join a tenant, mailed to ``email`` with a single-use token."""

    __tablename__ = "authgate_invitations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("authgate_tenants.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    inviter_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="SET NULL")
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    accepted_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEventRow(Base):
    """One event of the audit trail (``core.audit``): append-only, newest read first."""

    __tablename__ = "authgate_audit_events"
    __table_args__ = (
        Index("ix_authgate_audit_events_user_id_id", "user_id", "id"),
        Index("ix_authgate_audit_events_type_id", "type", "id"),
        Index("ix_authgate_audit_events_time", "time"),
        # Ids never come back on SQLite either, even after a purge emptied the table: a cursor
        # or an ``audit tail`` that has seen id N must never meet a newer event below it.
        {"sqlite_autoincrement": True},
    )

    # Monotonic: the keyset cursor of ``GET /api/audit`` and the follower of ``audit tail``.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    time: Mapped[datetime] = mapped_column(UtcDateTime)
    type: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    # No foreign keys: the trail outlives the users, tenants and sessions it speaks of.
    user_id: Mapped[str | None] = mapped_column(String(32))
    tenant_id: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text, default="{}")


class TotpSecretRow(Base):
    """A user's TOTP seed, sealed with the key-encryption key; pending until confirmed."""

    __tablename__ = "authgate_totp_secrets"

    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="CASCADE"), primary_key=True
    )
    sealed_secret: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The last time step a code was accepted for: only a later one is accepted next.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCodeRow(Base):
    __tablename__ = "authgate_recovery_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MfaChallengeRow(Base):
    """A login between its password and its second factor (or its enrollment)."""

    __tablename__ = "authgate_mfa_challenges"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))
    browser_hash: Mapped[str | None] = mapped_column(String(64))
    throttle_key: Mapped[str] = mapped_column(String(320))
    session_epoch: Mapped[int] = mapped_column(Integer)
    amr: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str | None] = mapped_column(String(512))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class PasskeyRow(Base):
    """A WebAuthn credential (a passkey); see ``store.protocols.PasskeyStore``. The
    credential id is looked up by its SHA-256 (``credential_key``, unique across users)."""

    __tablename__ = "authgate_passkeys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="CASCADE"), index=True
    )
    credential_key: Mapped[str] = mapped_column(String(64), unique=True)
    credential_id: Mapped[str] = mapped_column(Text)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[str] = mapped_column(Text, default="[]")
    name: Mapped[str] = mapped_column(String(100))
    aaguid: Mapped[str] = mapped_column(String(36))
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebAuthnChallengeRow(Base):
    """A challenge of a passkey ceremony in progress, by its SHA-256; deleted when used."""

    __tablename__ = "authgate_webauthn_challenges"

    challenge_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("authgate_users.id", ondelete="CASCADE"), index=True
    )
    binding_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class SigningKeyRow(Base):
    """A signing key (``AUTHGATE_SIGNING_KEYS=database``); see ``store.records.SigningKeyRecord``.
    ``succeeds`` is unique: two processes rotating after the same key add one key between them."""

    __tablename__ = "authgate_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed_private_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    activates_at: Mapped[datetime] = mapped_column(UtcDateTime)
    dev: Mapped[bool] = mapped_column(Boolean, default=False)
    succeeds: Mapped[str | None] = mapped_column(String(64), unique=True)


class AvatarImageRow(Base):
    """An avatar image (``AUTHGATE_AVATAR_STORAGE=database``): re-encoded, at most 512x512, so
    small; written once under a random name, deleted when its user replaces or removes it."""

    __tablename__ = "authgate_avatar_images"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
