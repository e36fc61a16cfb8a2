"""Storage protocols. The SQLAlchemy implementation lives in ``authgate.store.sqlalchemy``.

Every method that revokes sessions or changes what a user may do also appends to the revocation
log in the same transaction, so the log can never miss a change that was committed. Every method
that revokes all of a user's sessions also moves the user's session epoch on in that transaction,
so that a login already past its password check cannot open a session after it
(``SessionStore.create_session``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Literal, Protocol

from authgate.core.account_tokens import TokenPurpose
from authgate.core.audit import AuditEvent, AuditQuery
from authgate.core.user_imports import ImportedUser, ImportLedger, ImportOutcome
from authgate.store.records import (
    AccountTokenRecord,
    ApiTokenRecord,
    AvatarImageRecord,
    AvatarImageTag,
    IdentityRecord,
    InvitationRecord,
    LoginHandoffRecord,
    MemberRecord,
    MfaChallengeRecord,
    OAuthFlowRecord,
    OutgoingMail,
    PasskeyRecord,
    QueuedMail,
    RefreshOutcome,
    RevocationEvent,
    Revocations,
    SessionRecord,
    SigningKeyRecord,
    TenantRecord,
    TenantRole,
    TotpRecord,
    UserRecord,
    UserStatus,
    WebAuthnChallengeRecord,
)


class UserStore(Protocol):
    def create_user(
        self,
        *,
        email: str,
        username: str | None,
        name: str | None,
        password_hash: str | None,
        roles: Sequence[str],
        now: datetime,
        email_verified: bool = False,
        audit: AuditEvent | None = None,
    ) -> UserRecord:
        """Insert a user (its address verified only when ``email_verified``: an invitation link
        proved it); raise ``UserExistsError`` when email or username is taken."""
        ...

    def get_user(self, user_id: str) -> UserRecord | None: ...

    def find_user_by_login(self, login: str) -> UserRecord | None:
        """A user by email or username, case-insensitively."""
        ...

    def update_profile(
        self, user_id: str, *, name: str | None, username: str | None, now: datetime
    ) -> UserRecord | None:
        """Set name and username (logged as a user event); ``UserExistsError`` if taken."""
        ...

    def set_avatar_url(
        self, user_id: str, url: str | None, *, now: datetime, audit: AuditEvent | None = None
    ) -> tuple[UserRecord, str | None] | None:
        """Set (or clear) the avatar URL, logged as a user event; the updated user and the URL
        it replaced, or None when there is no such user."""
        ...

    def update_access(
        self,
        user_id: str,
        *,
        roles: Sequence[str] | None = None,
        status: UserStatus | None = None,
        now: datetime,
        keep_role: str | None = None,
        audit: AuditEvent | None = None,
    ) -> tuple[UserRecord, Revocations] | None:
        """Change roles/status and log a user event (disabling also revokes sessions and API
        tokens, and deletes the user's mailed-link tokens); the user and what was revoked.
        With ``keep_role``: ``LastAdminError`` (nothing changed) if afterwards no active user
        would hold that role, decided in the change's transaction (race-free)."""
        ...

    def set_password_hash(
        self,
        user_id: str,
        password_hash: str,
        *,
        keep_session_id: str | None,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> list[str]:
        """Store a new hash and revoke every session but ``keep_session_id`` (moving the session
        epoch on); the ids revoked."""
        ...

    def delete_user(
        self,
        user_id: str,
        *,
        now: datetime,
        keep_role: str | None = None,
        audit: AuditEvent | None = None,
    ) -> Revocations | None:
        """Delete the user (sessions revoked, the rest cascades); what was revoked. With
        ``keep_role``: ``LastAdminError`` if the user is the last active holder of that role."""
        ...

    def list_users(
        self, *, query: str | None, offset: int, limit: int
    ) -> tuple[list[UserRecord], int]: ...

    def count_users(self) -> int: ...


class SessionStore(Protocol):
    def create_session(
        self,
        *,
        user_id: str,
        session_epoch: int | None,
        refresh_token_hash: str,
        expires_at: datetime,
        user_agent: str | None,
        ip: str | None,
        now: datetime,
        password_hash: str | None = None,
        amr: Sequence[str] = (),
        audit: AuditEvent | None = None,
        authenticated: bool = True,
    ) -> tuple[SessionRecord, UserRecord] | None:
        """Record a login in one transaction — the user's ``last_login_at`` (and a rehashed
        password), the new session and its first refresh token — if the user may still log in:
        it is active and, when ``session_epoch`` is given (the ``UserRecord.session_epoch`` the
        login read before checking the password), none of its "revoke all sessions" has
        committed since (password change, disable, logout everywhere: each moves the epoch on
        in its transaction). The session and the user as stored, or None with nothing written.

        Without that check a login that verified the old password while a password change
        committed would open a session the change never saw.

        ``authenticated``: the user proved who they are now (the session's ``auth_time`` is
        ``now``); False for a session that continues another one (no ``auth_time``: step-up
        needs a reauthentication first)."""
        ...

    def get_session(self, session_id: str) -> SessionRecord | None: ...

    def get_session_with_user(self, session_id: str) -> tuple[SessionRecord, UserRecord] | None:
        """The session and its user, read together (a token's first request in a process)."""
        ...

    def list_sessions(self, user_id: str, *, now: datetime) -> list[SessionRecord]:
        """The user's sessions that are neither revoked nor expired, newest first."""
        ...

    def rotate_refresh_token(
        self,
        presented_hash: str,
        new_hash: str,
        *,
        expires_at: datetime,
        now: datetime,
        reuse_audit: AuditEvent | None = None,
        grace_since: datetime | None = None,
        grace_audit: AuditEvent | None = None,
    ) -> RefreshOutcome:
        """Atomically consume a refresh token and store its successor, and read the session's
        user in the same transaction (a failure leaves the presented token current).

        A token already consumed revokes its whole session (reuse detection), unless it was
        consumed by a rotation at or after ``grace_since`` and no token that rotation (or a
        grace re-rotation of it) issued has been used: then it is rotated again, its unused
        successors spent (``superseded_at``), ``grace_audit`` written and ``graced`` set."""
        ...

    def reauthenticate_session(
        self, session_id: str, *, user_id: str, amr: Sequence[str], now: datetime
    ) -> SessionRecord | None:
        """Set a live session's ``auth_time`` to ``now`` (and its ``amr``); None when it is not
        the user's or no longer valid. Refreshes keep both."""
        ...

    def find_refresh_session(self, token_hash: str) -> str | None:
        """The session a refresh token (current or already rotated) belongs to."""
        ...

    def revoke_session(
        self,
        session_id: str,
        *,
        user_id: str | None,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> bool:
        """Revoke one session (of ``user_id`` when given); False when none matched."""
        ...

    def revoke_user_sessions(
        self, user_id: str, *, now: datetime, audit: AuditEvent | None = None
    ) -> list[str]:
        """Revoke all the user's sessions and move its session epoch on; the ids revoked."""
        ...

    def touch_sessions(self, last_seen: dict[str, datetime]) -> None:
        """Record last-seen times collected in memory (a batch, off the request path)."""
        ...


class RevocationLog(Protocol):
    def read_revocations(self, after_id: int, *, limit: int = 1000) -> list[RevocationEvent]: ...

    def latest_revocation_id(self) -> int: ...

    def prune_revocations(self, *, older_than: datetime) -> int: ...

    def prune_sessions(self, *, now: datetime, grace: timedelta) -> int:
        """Delete sessions expired, or revoked, more than ``grace`` ago."""
        ...


class TenantStore(Protocol):
    """Tenants and memberships. Every user has a personal tenant, created with the user."""

    def create_tenant(
        self, *, name: str, owner_id: str, now: datetime, audit: AuditEvent | None = None
    ) -> TenantRecord: ...

    def get_tenant(self, tenant_id: str) -> TenantRecord | None: ...

    def personal_tenant_id(self, user_id: str) -> str | None: ...

    def list_user_tenants(self, user_id: str) -> list[tuple[TenantRecord, TenantRole]]: ...

    def rename_tenant(self, tenant_id: str, name: str) -> TenantRecord | None: ...

    def delete_tenant(
        self, tenant_id: str, *, now: datetime, audit: AuditEvent | None = None
    ) -> Revocations | None:
        """Delete the tenant with its memberships and API tokens (logged as revoked); what
        was revoked, or None when there is no such tenant."""
        ...

    def get_member_role(self, tenant_id: str, user_id: str) -> TenantRole | None: ...

    def list_members(self, tenant_id: str) -> list[MemberRecord]: ...

    def add_member(
        self,
        tenant_id: str,
        user_id: str,
        role: TenantRole,
        *,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> None:
        """Raise ``ConflictError`` when already a member."""
        ...

    def set_member_role(
        self,
        tenant_id: str,
        user_id: str,
        role: TenantRole,
        *,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> bool:
        """False when not a member; ``ConflictError`` when it would leave no owner."""
        ...

    def remove_member(
        self, tenant_id: str, user_id: str, *, now: datetime, audit: AuditEvent | None = None
    ) -> Revocations | None:
        """Also revokes the member's API tokens for the tenant; keeps at least one owner.
        What was revoked, or None when not a member."""
        ...

    def sole_owned_tenants(self, user_id: str) -> list[str]: ...


class ApiTokenStore(Protocol):
    def create_api_token(
        self, record: ApiTokenRecord, *, audit: AuditEvent | None = None
    ) -> None: ...

    def get_api_token(self, token_id: str) -> ApiTokenRecord | None: ...

    def get_api_token_with_owner(
        self, token_id: str
    ) -> tuple[ApiTokenRecord, UserRecord, TenantRole | None] | None:
        """The token, its user and the user's role in the token's tenant (None when no longer
        a member), read together (a token's first request in a process)."""
        ...

    def list_api_tokens(self, user_id: str) -> list[ApiTokenRecord]: ...

    def revoke_api_token(
        self, token_id: str, *, user_id: str | None, now: datetime, audit: AuditEvent | None = None
    ) -> bool: ...

    def touch_api_tokens(self, used: dict[str, tuple[datetime, str | None]]) -> None:
        """Record last-use times and addresses collected in memory (a batch)."""
        ...


class IdentityStore(Protocol):
    """Accounts at login providers, and the flows that log in with them."""

    def create_oauth_flow(self, flow: OAuthFlowRecord, *, now: datetime) -> None:
        """Store a flow in progress (and forget the expired ones)."""
        ...

    def consume_oauth_flow(self, state_hash: str, *, now: datetime) -> OAuthFlowRecord | None:
        """Delete and return the flow: None when unknown, already consumed or expired."""
        ...

    def create_login_handoff(self, handoff: LoginHandoffRecord, *, now: datetime) -> None:
        """Store a finished login for the page that asked for it (and forget expired ones)."""
        ...

    def consume_login_handoff(
        self, code_hash: str, *, now: datetime
    ) -> LoginHandoffRecord | None: ...

    def find_identity(self, provider: str, subject: str) -> IdentityRecord | None: ...

    def find_user_by_email(self, email: str) -> UserRecord | None: ...

    def create_user_with_identity(
        self,
        *,
        email: str,
        name: str | None,
        avatar_url: str | None,
        email_verified: bool,
        roles: Sequence[str],
        provider: str,
        subject: str,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> UserRecord:
        """User, personal tenant and identity in one transaction; ``UserExistsError`` if the
        email or identity is taken."""
        ...

    def link_identity(
        self,
        user_id: str,
        *,
        provider: str,
        subject: str,
        email: str | None,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> IdentityRecord:
        """``OAuthIdentityTakenError`` when the identity is linked already."""
        ...

    def record_identity_login(
        self, identity_id: str, *, email: str | None, now: datetime
    ) -> None: ...

    def list_identities(self, user_id: str) -> list[IdentityRecord]: ...

    def unlink_identity(
        self,
        user_id: str,
        identity_id: str,
        *,
        login_providers: Collection[str],
        audit: AuditEvent | None = None,
    ) -> Literal["unlinked", "not_found", "last_login_method"]:
        """Refused (``last_login_method``) when the user has no password and no other
        identity of a provider in ``login_providers`` (those configured: an identity of a
        provider no longer configured logs nobody in), checked in the same transaction as the
        delete."""
        ...


class MailOutbox(Protocol):
    """The durable outbox: a mail is a row, written in the same transaction as whatever it
    announces (store methods that create a mailed token take the ``OutgoingMail`` and insert it
    themselves); senders lease rows, so that several processes and hosts deliver each mail once.
    """

    def enqueue_mail(self, mail: OutgoingMail) -> None:
        """Queue a mail that goes with no other change (a notice, a test mail)."""
        ...

    def lease_mails(self, *, now: datetime, lease_for: timedelta, limit: int) -> list[QueuedMail]:
        """Due mails (unsent, next attempt at or before ``now``, lease free or expired), oldest
        first, leased to the caller until ``now + lease_for``. On PostgreSQL concurrent
        senders skip each other's rows (``FOR UPDATE SKIP LOCKED``)."""
        ...

    def mark_mail_sent(self, mail_id: str, lease_token: str, *, now: datetime) -> bool:
        """False when the lease was lost (another sender took the row over). The same update
        blanks the mail's bodies: they hold a live token, which is not kept in clear."""
        ...

    def mark_mail_failed(
        self,
        mail_id: str,
        lease_token: str,
        *,
        error: str,
        retry_at: datetime | None,
        now: datetime,
    ) -> bool:
        """Record a failed attempt; ``retry_at`` None gives up on the mail (kept, as dead, with
        its bodies blanked in the same update)."""
        ...

    def count_pending_mails(self) -> int: ...

    def prune_mails(self, *, sent_before: datetime, dead_before: datetime) -> int:
        """Delete mails sent before ``sent_before`` and given up before ``dead_before``;
        how many went."""
        ...


class AccountTokenStore(Protocol):
    """Mailed single-use tokens (``core.account_tokens``). Each is consumed by the first request
    that uses it (a conditional update), and only while still bound to its user: same email,
    same password (``core.account_tokens.is_bound_to``), and the user active. What a token does
    happens in the transaction that consumes it."""

    def create_account_token(
        self,
        token: AccountTokenRecord,
        mail: OutgoingMail,
        *,
        notice: OutgoingMail | None = None,
        audit: AuditEvent | None = None,
    ) -> None:
        """Store the token and queue the mail that carries it (and ``notice``), in one
        transaction."""
        ...

    def find_account_token(
        self, token_hash: str, purpose: TokenPurpose, *, now: datetime
    ) -> tuple[AccountTokenRecord, UserRecord] | None:
        """The token and its user, while the token is usable (it stays so: nothing is
        consumed)."""
        ...

    def verify_email_with_token(
        self, token_hash: str, *, now: datetime, audit: AuditEvent | None = None
    ) -> UserRecord | None:
        """Consume a ``verify_email`` token and mark the user's address verified."""
        ...

    def reset_password_with_token(
        self,
        token_hash: str,
        password_hash: str,
        *,
        now: datetime,
        notice: OutgoingMail | None,
        audit: AuditEvent | None = None,
    ) -> tuple[UserRecord, Revocations] | None:
        """Consume a ``password_reset`` token, store the new hash, mark the address verified,
        revoke every session of the user (moving its session epoch on) and queue ``notice``;
        when the address was not verified before (the account changes hands), also revoke the
        user's API tokens and unlink its provider identities. The user and what was revoked
        (sessions, API tokens; the USER entry is the caller's to announce)."""
        ...

    def change_email_with_token(
        self, token_hash: str, *, now: datetime, audit: AuditEvent | None = None
    ) -> UserRecord | None:
        """Consume an ``email_change`` token and move the user to its new address (verified);
        ``UserExistsError``, with nothing changed, when another account has that address."""
        ...


class InvitationStore(Protocol):
    def create_invitation(
        self,
        invitation: InvitationRecord,
        token_hash: str,
        mail: OutgoingMail,
        *,
        audit: AuditEvent | None = None,
    ) -> None:
        """Store the invitation (revoking an open one of the same address to the same tenant)
        and queue its mail, in one transaction."""
        ...

    def list_invitations(self, tenant_id: str, *, now: datetime) -> list[InvitationRecord]:
        """Open invitations: not accepted, revoked or expired."""
        ...

    def revoke_invitation(self, tenant_id: str, invitation_id: str, *, now: datetime) -> bool:
        """False when no open invitation of the tenant has this id."""
        ...

    def find_invitation(self, token_hash: str, *, now: datetime) -> InvitationRecord | None:
        """The open invitation this token belongs to."""
        ...

    def accept_invitation(
        self,
        token_hash: str,
        *,
        user_id: str,
        email: str,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> tuple[InvitationRecord, Revocations] | None:
        """Accept an open invitation addressed to ``email`` (once: the first request wins):
        membership added and the address marked verified, in one transaction. None when the
        token opens no such invitation; ``ConflictError`` when already a member."""
        ...


class ImportStore(Protocol):
    """Users and API tokens brought in from another app (``authgate users import``)."""

    def import_users(
        self,
        users: Sequence[ImportedUser],
        *,
        on_conflict: Literal["skip", "update"],
        dry_run: bool,
        now: datetime,
        ledger: ImportLedger | None = None,
        audit: AuditEvent | None = None,
    ) -> tuple[list[ImportOutcome], Revocations]:
        """One batch in one transaction: each user is created (with its personal tenant, as at
        registration), or, when its email exists, skipped or updated with the fields it gives;
        a username or legacy id held by another user refuses the row. Every row is decided
        before anything is written, so the batch is written whole or not at all. The outcome of
        each user in order, and what the updates revoked (a changed password hash ends the
        user's sessions; the hash of a user who has logged in since is kept). ``dry_run``
        decides the same and writes nothing; its ``ledger`` holds what the dry run's earlier
        batches would have written (the real run finds that in the database), is read for the
        batch's keys and told what this batch would write."""
        ...

    def find_user_by_legacy_id(self, legacy_id: str) -> UserRecord | None: ...

    def use_legacy_session(
        self, token_hash: str, *, user_id: str, email: str, now: datetime, expires_at: datetime
    ) -> bool:
        """Remember, until ``expires_at``, that the legacy session token of hash ``token_hash``
        (of the user ``user_id``) was exchanged; False when it was already (atomic: of two
        exchanges at once, one wins)."""
        ...

    def import_api_tokens(self, records: Sequence[ApiTokenRecord], *, dry_run: bool) -> list[bool]:
        """Insert, in one transaction, the tokens whose id is not stored yet; for each token,
        whether it was new."""
        ...


class PasskeyStore(Protocol):
    """WebAuthn credentials and the challenges of their ceremonies."""

    def create_webauthn_challenge(
        self, challenge: WebAuthnChallengeRecord, *, now: datetime
    ) -> None:
        """Store a challenge (by its hash), and forget the expired ones."""
        ...

    def consume_webauthn_challenge(
        self, challenge_hash: str, *, now: datetime
    ) -> WebAuthnChallengeRecord | None:
        """Delete and return the challenge (one conditional DELETE: of two requests with the
        same challenge one gets it); None when unknown, already used or expired."""
        ...

    def add_passkey(self, passkey: PasskeyRecord, *, audit: AuditEvent | None = None) -> None:
        """``PasskeyExistsError`` when the credential is registered already (to anyone)."""
        ...

    def list_passkeys(self, user_id: str) -> list[PasskeyRecord]:
        """The user's passkeys, oldest first."""
        ...

    def find_passkey(self, credential_id: str) -> PasskeyRecord | None: ...

    def rename_passkey(self, user_id: str, passkey_id: str, name: str) -> PasskeyRecord | None:
        """None when the user has no passkey with this id."""
        ...

    def delete_passkey(
        self, user_id: str, passkey_id: str, *, audit: AuditEvent | None = None
    ) -> bool:
        """False when the user has no passkey with this id."""
        ...

    def record_passkey_use(
        self, passkey_id: str, *, sign_count: int, backed_up: bool, now: datetime
    ) -> bool:
        """Store the new signature counter and the use, only if the counter moved forward
        (or both the stored and the new one are 0: an authenticator without a counter).
        False: another use with this counter or a higher one was recorded meanwhile."""
        ...


class SecondFactorStore(Protocol):
    """TOTP seeds (sealed by the service), recovery codes (hashed) and mfa challenges (logins
    between password and second factor, by token hash). Everything single use is consumed by one
    conditional statement: of two concurrent requests, exactly one succeeds."""

    def get_totp(self, user_id: str) -> TotpRecord | None: ...

    def begin_totp(self, user_id: str, sealed_secret: str, *, now: datetime) -> bool:
        """Store a new, unconfirmed seed, replacing an unconfirmed one; False (nothing written)
        when the user has a confirmed TOTP."""
        ...

    def confirm_totp(
        self,
        user_id: str,
        *,
        sealed_secret: str,
        step: int,
        code_hashes: Sequence[str],
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> bool:
        """Turn the pending seed ``sealed_secret`` on, with ``step`` as its last used step, and
        replace the user's recovery codes; False when that seed is no longer pending."""
        ...

    def second_factor_counts(self, user_id: str) -> tuple[bool, int, int]:
        """In one query: whether the user's TOTP is on, how many passkeys and how many unused
        recovery codes it has (what every password login asks)."""
        ...

    def use_totp_step(self, user_id: str, step: int) -> bool:
        """Compare-and-set: record ``step`` as used if it is later than the last used one of the
        user's confirmed TOTP; False when it is not (a replay) or there is no confirmed TOTP."""
        ...

    def delete_totp(self, user_id: str, *, audit: AuditEvent | None = None) -> bool:
        """Turn TOTP off (confirmed or pending) and delete the recovery codes."""
        ...

    def replace_recovery_codes(
        self,
        user_id: str,
        code_hashes: Sequence[str],
        *,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> None: ...

    def use_recovery_code(self, user_id: str, code_hash: str) -> bool:
        """Delete the code if it is the user's; True only for the request that deleted it."""
        ...

    def count_recovery_codes(self, user_id: str) -> int: ...

    def create_mfa_challenge(self, challenge: MfaChallengeRecord) -> None: ...

    def attempt_mfa_challenge(
        self, token_hash: str, *, browser_hash: str | None, max_attempts: int, now: datetime
    ) -> MfaChallengeRecord | None:
        """Spend one attempt of a live challenge (one conditional UPDATE); the challenge with
        the attempt counted, or None when it is unknown, expired, out of attempts or bound to
        another browser (its ``browser_hash`` set and not ``browser_hash``: nothing is spent,
        so a stolen token cannot even use up the attempts)."""
        ...

    def finish_mfa_challenge(self, token_hash: str) -> bool:
        """Delete the challenge; True only for the request that deleted it (single use)."""
        ...

    def remove_second_factors(
        self, user_id: str, *, now: datetime, audit: AuditEvent | None = None
    ) -> list[str] | None:
        """Delete every second factor of the user (TOTP, recovery codes, passkeys, pending
        challenges) and revoke all its sessions; the session ids revoked, None without user."""
        ...

    def prune_mfa_challenges(self, *, now: datetime) -> int: ...


class AuditStore(Protocol):
    """The audit trail (``core.audit``). The methods that make a change take its event as
    ``audit`` and insert it in the change's transaction, only when the change happened (a
    revocation that found nothing writes nothing); the subject user or tenant the caller could
    not know is filled in there."""

    def record_audit(self, event: AuditEvent) -> None:
        """Write an event that goes with no change (a failed or throttled attempt)."""
        ...

    def list_audit_events(self, query: AuditQuery) -> list[AuditEvent]:
        """Events matching ``query``, newest first (or oldest first), keyset-paged by id."""
        ...

    def latest_audit_id(self) -> int: ...

    def purge_audit_events(
        self, *, older_than: datetime, batch: int = 1000, max_batches: int | None = None
    ) -> int:
        """Delete events older than ``older_than``, ``batch`` rows per short transaction (at
        most ``max_batches`` of them); how many went."""
        ...


class AvatarImageStore(Protocol):
    """Avatar images in the database (``AUTHGATE_AVATAR_STORAGE=database``, the default)."""

    def put_avatar_image(self, image: AvatarImageRecord, *, now: datetime) -> bool:
        """Store an image under its name; False (and nothing changed) when the name is taken."""
        ...

    def get_avatar_image(self, name: str) -> AvatarImageRecord | None: ...

    def get_avatar_image_tag(self, name: str) -> AvatarImageTag | None:
        """The image's type and digest, without reading its bytes (a revalidation)."""
        ...

    def delete_avatar_image(self, name: str) -> bool:
        """Whether an image of that name was there (and is now gone)."""
        ...


class SigningKeyStore(Protocol):
    """Signing keys kept in the database (``AUTHGATE_SIGNING_KEYS=database``)."""

    def list_signing_keys(self) -> list[SigningKeyRecord]:
        """Every stored key, in the order they sign: by ``activates_at``, then ``created_at``."""
        ...

    def add_signing_key(
        self,
        key: SigningKeyRecord,
        *,
        now: datetime,
        audit: AuditEvent | None = None,
        drop_pending: bool = False,
    ) -> bool:
        """Store ``key`` and log a ``SIGNING_KEYS`` event (one transaction); False, storing
        nothing, when its kid exists or another key already ``succeeds`` the same key.
        ``drop_pending``: in the same transaction, delete the keys that have not signed yet
        (``activates_at`` after ``now``) — an immediate rotation supersedes them."""
        ...

    def delete_signing_keys(self, kids: Collection[str]) -> int:
        """Delete these keys (retired long ago); how many went."""
        ...


class Store(
    UserStore,
    SessionStore,
    TenantStore,
    ApiTokenStore,
    IdentityStore,
    RevocationLog,
    MailOutbox,
    AccountTokenStore,
    InvitationStore,
    ImportStore,
    PasskeyStore,
    SecondFactorStore,
    AuditStore,
    AvatarImageStore,
    Protocol,
):
    """Everything the service needs, plus lifecycle."""

    def ping(self) -> bool: ...

    def dispose(self) -> None: ...
