"""Plain immutable records passed between the store and the service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from authgate.core.account_tokens import TokenPurpose


class UserStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    email: str
    username: str | None
    name: str | None
    password_hash: str | None = field(repr=False)
    roles: tuple[str, ...]
    status: UserStatus
    email_verified: bool
    created_at: datetime
    last_login_at: datetime | None
    avatar_url: str | None = None
    # Moves on whenever all of the user's sessions are revoked; see ``SessionStore.create_session``.
    session_epoch: int = 0

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
    # When and how the user last proved who they are in this session (RFC 8176 ``amr`` names):
    # the login, or a later reauthentication. None for sessions older than the columns.
    auth_time: datetime | None = None
    amr: tuple[str, ...] = ()

    def is_valid_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """Result of presenting a refresh token.

    ``session`` (and ``user``) is set when the token was current and has been rotated;
    ``reused_session_id`` when an already-rotated token was replayed (the store has revoked that
    session). ``graced``: the token was already rotated, within the reuse grace window and with
    its successor unused, and was rotated again (that successor is now spent).
    """

    session: SessionRecord | None = None
    reused_session_id: str | None = None
    user: UserRecord | None = None  # the session's user, read in the rotation's transaction
    graced: bool = False


class TenantRole(StrEnum):
    """A member's role in a tenant, strongest first."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _TENANT_ROLE_RANK[self]


_TENANT_ROLE_RANK = {
    TenantRole.OWNER: 3,
    TenantRole.ADMIN: 2,
    TenantRole.MEMBER: 1,
    TenantRole.VIEWER: 0,
}


@dataclass(frozen=True, slots=True)
class TenantRecord:
    id: str
    name: str
    personal: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MemberRecord:
    tenant_id: str
    user_id: str
    email: str
    name: str | None
    role: TenantRole
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiTokenRecord:
    id: str
    user_id: str
    tenant_id: str
    name: str
    secret_hash: str = field(repr=False)
    scopes: tuple[str, ...]
    resource: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    last_used_ip: str | None


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """An account at a login provider, linked to a user. ``(provider, subject)`` is the
    identity; ``email`` is what the provider last said, for display only."""

    id: str
    user_id: str
    provider: str
    subject: str
    email: str | None
    linked_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class OAuthFlowRecord:
    """A login (or link) in progress at a provider, found by its ``state`` and usable once, by
    the browser whose cookie hashes to ``binding_hash``."""

    state_hash: str
    binding_hash: str
    provider: str
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_to: str
    # Set when a logged-in user links a provider: who, from which session.
    user_id: str | None
    session_id: str | None
    created_at: datetime
    expires_at: datetime
    # Set when the login must be handed to a page on another site (see LoginHandoffRecord).
    handoff_challenge: str | None = None


@dataclass(frozen=True, slots=True)
class LoginHandoffRecord:
    """A finished provider login waiting for the page that asked for it: that page proves it
    is the one that started the login (PKCE-style: SHA-256 of its verifier is ``challenge``)
    and gets the session cookies set by its own request, in its own cookie partition."""

    code_hash: str
    user_id: str
    challenge: str = field(repr=False)
    provider: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A rendered mail, ready for the outbox: multipart text + HTML to one address.

    ``kind`` names the template it came from (``verify_email``, ``password_reset``, ...), for
    logs and metrics; the body may carry a single-use link and is never logged in production."""

    id: str
    kind: str
    to: str
    subject: str
    text: str = field(repr=False)
    html: str = field(repr=False)
    created_at: datetime


@dataclass(frozen=True, slots=True)
class QueuedMail:
    """A mail leased from the outbox by one sender until ``lease_until``: it must be marked
    sent or failed with the same ``lease_token``, or it is leased again after that time."""

    mail: OutgoingMail
    attempts: int
    lease_token: str = field(repr=False)
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class AccountTokenRecord:
    """A mailed single-use token (``core.account_tokens``) as stored: only its hash, and what it
    is bound to (the user's ``email`` and ``password_fingerprint`` when it was issued)."""

    token_hash: str = field(repr=False)
    purpose: TokenPurpose
    user_id: str
    email: str
    password_fingerprint: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    # The address an email change moves to.
    new_email: str | None = None


@dataclass(frozen=True, slots=True)
class InvitationRecord:
    """An invitation to join a tenant with ``role``, mailed to ``email``."""

    id: str
    tenant_id: str
    tenant_name: str
    email: str
    role: TenantRole
    inviter_id: str | None
    inviter_name: str | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None = None
    revoked_at: datetime | None = None


class RevocationKind(StrEnum):
    SESSION = "session"
    USER = "user"
    API_TOKEN = "api_token"  # noqa: S105 - an event kind, not a secret
    MEMBERSHIP = "membership"  # subject: membership_subject(tenant id, user id)
    # Not a revocation: the signing keys in the database changed (subject: the new key's kid);
    # every process re-reads them (``AUTHGATE_SIGNING_KEYS=database``). Logged and published as
    # ``user`` + ``signing_keys_subject(kid)`` (``revocation_entry``): a version that does not
    # know this kind reads it as the invalidation of a user that does not exist.
    SIGNING_KEYS = "signing_keys"


# A subject no user id can take (ids have no colon): a ``user`` entry naming it is SIGNING_KEYS.
SIGNING_KEYS_SUBJECT_PREFIX = "signing-keys:"


def revocation_entry(kind: RevocationKind, subject: str) -> tuple[str, str]:
    """How a change is written to the revocation log and Redis: ``(kind, subject)``."""
    if kind is RevocationKind.SIGNING_KEYS:
        return RevocationKind.USER.value, SIGNING_KEYS_SUBJECT_PREFIX + subject
    return kind.value, subject


def parse_revocation_entry(kind: str, subject: str) -> tuple[RevocationKind, str] | None:
    """The change an entry of the revocation log (or Redis) names; None for a kind this version
    does not know (written by a newer one: skipped, never an error)."""
    if kind == RevocationKind.USER.value and subject.startswith(SIGNING_KEYS_SUBJECT_PREFIX):
        return RevocationKind.SIGNING_KEYS, subject.removeprefix(SIGNING_KEYS_SUBJECT_PREFIX)
    try:
        return RevocationKind(kind), subject
    except ValueError:
        return None


def membership_subject(tenant_id: str, user_id: str) -> str:
    """How a membership is named in the revocation log and the per-process cache."""
    return f"{tenant_id}:{user_id}"


# What a store method revoked (and logged in the same transaction), for the service to announce.
Revocations = list[tuple[RevocationKind, str]]


@dataclass(frozen=True, slots=True)
class RevocationEvent:
    """One entry of the revocation log: a session revoked, or a user's record changed."""

    id: int
    kind: RevocationKind
    subject: str


class ChallengePurpose(StrEnum):
    """What a WebAuthn challenge was issued for; it is accepted for that only."""

    REGISTER = "register"
    LOGIN = "login"  # usernameless: no user known yet
    SECOND_FACTOR = "mfa"  # the second step of a password login
    REAUTHENTICATE = "reauth"  # step-up of a logged-in user


@dataclass(frozen=True, slots=True)
class WebAuthnChallengeRecord:
    """A challenge issued (stored by its hash): single use, short lived, maybe bound to the
    browser that asked (``binding_hash``) and to a user."""

    challenge_hash: str
    purpose: ChallengePurpose
    user_id: str | None
    binding_hash: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PasskeyRecord:
    """A registered WebAuthn credential. ``credential_id`` is base64url, as the browser
    sends it; ``public_key`` the COSE key."""

    id: str
    user_id: str
    credential_id: str
    public_key: bytes = field(repr=False)
    sign_count: int
    transports: tuple[str, ...]
    name: str
    aaguid: str
    backup_eligible: bool
    backed_up: bool
    created_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TotpRecord:
    user_id: str
    sealed_secret: str = field(repr=False)
    created_at: datetime
    confirmed_at: datetime | None  # None: set up but not yet confirmed with a code
    last_used_step: int | None


class MfaPurpose(StrEnum):
    LOGIN = "login"  # the second factor of a login
    ENROLL = "enroll"  # a login that must first set up a second factor (required by role)


@dataclass(frozen=True, slots=True)
class MfaChallengeRecord:
    """A login past its password, waiting for its second factor (or its enrollment)."""

    token_hash: str
    user_id: str
    purpose: MfaPurpose
    browser_hash: str | None  # the SHA-256 of the binding cookie, for a browser
    throttle_key: str  # the login as typed: wrong codes count against its throttle
    session_epoch: int  # the user's epoch when the password was checked
    amr: tuple[str, ...]  # how the login began ("pwd")
    password_hash: str | None = field(repr=False)  # a rehash to store when the login completes
    attempts: int
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AvatarImageTag:
    """What a revalidation needs of a stored avatar image, without its bytes: its name (the
    last part of its URL), type and SHA-256 (hex; the image's strong ``ETag``)."""

    name: str
    content_type: str
    digest: str


@dataclass(frozen=True, slots=True)
class AvatarImageRecord(AvatarImageTag):
    """A stored avatar image: its tag and its bytes. An image never changes under its name."""

    data: bytes = field(repr=False)


# A key stored with this ``succeeds`` is the first key of the database: there is only one.
FIRST_SIGNING_KEY = "-"


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    """A signing key kept in the database (``AUTHGATE_SIGNING_KEYS=database``): its private key
    sealed with the key-encryption key (``SecretBox``, context ``signing_key_context(kid)``).

    It is published in the JWKS from ``created_at`` and signs from ``activates_at`` until the
    next key (by ``activates_at``) does; then it verifies for the longest access-token lifetime."""

    kid: str
    sealed_private_key: str = field(repr=False)
    created_at: datetime
    activates_at: datetime
    dev: bool
    # The kid of the key this one replaced when a rotation was scheduled (``FIRST_SIGNING_KEY``
    # for the first key), unique: of two processes rotating at once one adds its key.
    succeeds: str | None = None


def signing_key_context(kid: str) -> str:
    """The associated data a signing key is sealed under: a sealed key copied onto another
    key's row does not open there."""
    return f"signing-key:{kid}"
