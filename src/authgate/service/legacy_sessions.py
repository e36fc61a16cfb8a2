"""The dual run: a session token of the app authgate replaced is exchanged, once, for an
authgate session, until the cut-off date (``Settings.legacy_jwt_*``); then it is refused.
Every exchange and every refusal after the cut-off is logged.

"Once" is kept in the database, so that every instance agrees: an exchanged token's SHA-256 is a
row of the single-use tokens' table (``Store.use_legacy_session``) until the token's ``exp`` or
the cut-off, whichever comes first; a copy of the token presented again (a stolen cookie, a
replay) is refused. A user with an unverified address is refused as a password login is, with
``AUTHGATE_EMAIL_VERIFICATION=required``."""

from __future__ import annotations

import logging
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING

from authgate.core import audit as events
from authgate.core.legacy_sessions import (
    decode_legacy_session_token,
    legacy_token_fingerprint,
    legacy_token_hash,
)
from authgate.errors import EmailNotVerifiedError, InvalidTokenError, LegacySessionEndedError

if TYPE_CHECKING:
    from authgate.backends.auth_cache import AuthCache
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.service.audit import Audit
    from authgate.service.principals import ClientInfo, IssuedTokens
    from authgate.service.sessions import Sessions
    from authgate.store.protocols import Store
    from authgate.store.records import UserRecord

log = logging.getLogger("authgate")


@dataclass(eq=False, repr=False)
class LegacySessions:
    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    cache: AuthCache
    sessions: Sessions
    audit: Audit

    def __post_init__(self) -> None:
        self._secret = self.settings.read_legacy_jwt_secret()

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def exchange(self, token: str, client: ClientInfo) -> IssuedTokens:
        """A new authgate session for the user a valid legacy token names.

        ``LegacySessionEndedError`` after the cut-off or for a token already exchanged,
        ``InvalidTokenError`` for a token that is not valid or names no active imported user,
        ``TokenExpiredError`` past its ``exp``, ``EmailNotVerifiedError`` for an unverified
        address when verification is required (the token is kept for after the verification)."""
        settings = self.settings
        fingerprint = legacy_token_fingerprint(token)
        cutoff = settings.legacy_jwt_cutoff
        if self._secret is None or cutoff is None:
            raise InvalidTokenError("Sessions of the previous app are not accepted.")
        if self.clock.now() >= cutoff:
            log.info("legacy session refused after the cut-off: token %s", fingerprint)
            raise LegacySessionEndedError(
                f"Sessions of the previous app ended on {cutoff.date().isoformat()}: log in again."
            )
        claims = decode_legacy_session_token(
            token,
            secret=self._secret,
            algorithms=settings.legacy_jwt_algorithms,
            claim=settings.legacy_jwt_claim,
        )
        generation = self.cache.users.generation
        user = self._find_user(claims.user)
        if user is None or not user.is_active:
            log.info("legacy session refused: token %s names no active user", fingerprint)
            raise InvalidTokenError("The previous app's session names no user here: log in.")
        if settings.email_verification == "required" and not user.email_verified:
            log.info("legacy session refused: token %s, user %s unverified", fingerprint, user.id)
            raise EmailNotVerifiedError()
        totp, passkeys, _ = self.store.second_factor_counts(user.id)
        required = any(role in settings.mfa_required_roles for role in user.roles)
        if totp or passkeys or required:
            # The previous app's session proves a password at most: an account with a second
            # factor logs in here with both, and one whose roles require a factor it has not
            # set up is sent to enrollment by a password login (docs/mfa.md).
            has = "has" if totp or passkeys else "needs"  # a role requires one not set up yet
            log.info(
                "legacy session refused: token %s, user %s %s a second factor",
                fingerprint,
                user.id,
                has,
            )
            raise InvalidTokenError(
                f"Log in again: this account {has} a second factor, which the previous app's "
                "session did not check."
            )
        now = self.clock.now()
        first = self.store.use_legacy_session(
            legacy_token_hash(token),
            user_id=user.id,
            email=user.email,
            now=now,
            expires_at=min(cutoff, claims.expires_at) if claims.expires_at else cutoff,
        )
        if not first:
            log.warning(
                "legacy session refused: token %s, user %s, was exchanged before (ip %s)",
                fingerprint,
                user.id,
                client.ip,
            )
            raise LegacySessionEndedError(
                "This session of the previous app was already exchanged for a session here: "
                "log in again."
            )
        issued = self.sessions.open_session(
            user,
            client,
            generation=generation,
            method={"method": "legacy_session"},
            audit_type=events.LEGACY_SESSION_EXCHANGED,
            # The previous app's cookie may be weeks old: no proof of a recent authentication.
            authenticated=False,
        )
        log.info(
            "legacy session exchanged: token %s, user %s, session %s, ip %s",
            fingerprint,
            user.id,
            issued.session.id,
            client.ip,
        )
        return issued

    def _find_user(self, value: str) -> UserRecord | None:
        """The user the claim names, matched exactly: authgate's logins ignore case, the old
        app's may not have. Its ``bob`` and ``Bob`` (two people; the import refused the second
        as a username already taken) must not both open ``Bob``'s account, so a username must
        be spelled as stored, and an email's local part too (its domain ignores case)."""
        column = self.settings.legacy_jwt_user_column
        if column == "legacy_id":
            return self.store.find_user_by_legacy_id(value)
        if column == "email":
            if "@" not in value:
                return None
            user = self.store.find_user_by_login(value)
            if user is None or _local_part(user.email) != _local_part(value):
                return None
            return user
        # A username never holds "@" (find_user_by_login would take it for an email).
        user = None if "@" in value else self.store.find_user_by_login(value)
        return user if user is not None and user.username == value else None


def _local_part(email: str) -> str:
    return email.rpartition("@")[0]
