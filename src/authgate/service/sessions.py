"""Login sessions: log in, refresh, check an access token (the hot path), log out, list and
revoke sessions."""

from __future__ import annotations

import logging
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from authgate.core.refresh_tokens import hash_refresh_token, new_refresh_token
from authgate.core.tokens import (
    AccessClaims,
    UnknownKeyError,
    decode_access_token,
    issue_access_token,
)
from authgate.errors import (
    AccountDisabledError,
    EmailNotVerifiedError,
    InvalidCredentialsError,
    InvalidTokenError,
    NotFoundError,
    TokenExpiredError,
    TokenRevokedError,
)
from authgate.service.principals import ClientInfo, IssuedTokens, Principal
from authgate.store.records import RevocationKind, SessionRecord, UserRecord

if TYPE_CHECKING:
    from authgate.backends.auth_cache import AuthCache
    from authgate.backends.login_throttle import LoginThrottle
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.core.passwords import PasswordHasher
    from authgate.service.authorization import Authorization
    from authgate.service.cached_reads import CachedReads
    from authgate.service.keys import KeySource
    from authgate.store.protocols import Store

log = logging.getLogger("authgate")


@dataclass(eq=False, repr=False)
class Sessions:
    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    keys: KeySource
    hasher: PasswordHasher
    throttle: LoginThrottle
    cache: AuthCache
    feed: RevocationFeed
    reads: CachedReads
    authorization: Authorization

    # Login and refresh -----------------------------------------------------------------------

    def login(self, login: str, password: str, client: ClientInfo) -> IssuedTokens:
        """Same error, same work, whether the user is unknown, disabled or the password wrong.

        Only a password check spends an attempt of the throttle: the user is looked up first, so
        a store failure (an outage) counts nothing, and one after a correct password neither
        (its success has given the attempt back)."""
        login = login.strip()
        generation = self.cache.users.generation
        user = self.store.find_user_by_login(login)
        self.throttle.begin_attempt(login, client.ip)
        if user is None or user.password_hash is None:
            self.hasher.verify_dummy(password)
            self.throttle.record_failure(login, client.ip)
            raise InvalidCredentialsError()
        check = self.hasher.verify_password(password, user.password_hash)
        if not check.ok or not user.is_active:
            self.throttle.record_failure(login, client.ip)
            raise InvalidCredentialsError()
        self.throttle.record_success(login, client.ip)
        if self.settings.email_verification == "required" and not user.email_verified:
            raise EmailNotVerifiedError()
        new_hash = self.hasher.hash_password(password) if check.needs_rehash else None
        issued = self._open_session(
            user, client, generation, session_epoch=user.session_epoch, password_hash=new_hash
        )
        if issued is None:
            # All the user's sessions were revoked since it was read (its password changed, it
            # was disabled...): the password checked may no longer be the user's.
            self.throttle.record_failure(login, client.ip)
            raise InvalidCredentialsError()
        return issued

    def open_session(
        self, user: UserRecord, client: ClientInfo, *, generation: int
    ) -> IssuedTokens:
        """A new login session for a user a provider authenticated (no password of ours to
        have changed: the store checks again that the user is active as it records the login).

        ``generation`` is the user cache's generation read before ``user`` was loaded."""
        issued = self._open_session(user, client, generation, session_epoch=None)
        if issued is None:
            raise AccountDisabledError()
        return issued

    def _open_session(
        self,
        user: UserRecord,
        client: ClientInfo,
        generation: int,
        *,
        session_epoch: int | None,
        password_hash: str | None = None,
    ) -> IssuedTokens | None:
        """None when the store refused: the user is no longer active or (with
        ``session_epoch``) all its sessions were revoked since it was read."""
        now = self.clock.now()
        refresh_token, refresh_hash = new_refresh_token()
        created = self.store.create_session(
            user_id=user.id,
            session_epoch=session_epoch,
            refresh_token_hash=refresh_hash,
            expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
            user_agent=client.user_agent,
            ip=client.ip,
            now=now,
            password_hash=password_hash,
        )
        if created is None:
            return None
        session, user = created
        self.cache.users.put_if_current(user.id, user, generation=generation)
        self.cache.live_sessions.put(session.id, user.id)
        return self._issue(user, session, refresh_token)

    def _issue(self, user: UserRecord, session: SessionRecord, refresh_token: str) -> IssuedTokens:
        ttl = self.settings.access_token_ttl_seconds
        self.keys.refresh_if_changed()
        token = issue_access_token(
            key=self.keys.ring.active,
            issuer=self.settings.resolved_issuer,
            audience=self.settings.audience,
            subject=user.id,
            session_id=session.id,
            roles=user.roles,
            ttl_seconds=ttl,
            now=self.clock.timestamp(),
        )
        return IssuedTokens(user, session, token, ttl, refresh_token)

    def refresh(self, refresh_token: str) -> IssuedTokens:
        """Rotate a refresh token; replaying a rotated one revokes its whole session.

        The store reads the user in the rotation's transaction: a store failure leaves the
        presented token current (the client's retry is no replay), and after the commit
        nothing that can fail remains between the rotation and its tokens."""
        now = self.clock.now()
        generation = self.cache.users.generation
        new_token, new_hash = new_refresh_token()
        outcome = self.store.rotate_refresh_token(
            hash_refresh_token(refresh_token),
            new_hash,
            expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
            now=now,
        )
        if outcome.reused_session_id is not None:
            log.warning("refresh token reuse: revoked session %s", outcome.reused_session_id)
            self.feed.announce([(RevocationKind.SESSION, outcome.reused_session_id)])
            raise TokenRevokedError("This refresh token was already used; the session is revoked.")
        if outcome.session is None:
            raise InvalidTokenError("The refresh token is invalid or expired.")
        user = outcome.user
        if user is None or not user.is_active:
            raise TokenRevokedError()
        self.cache.users.put_if_current(user.id, user, generation=generation)
        return self._issue(user, outcome.session, new_token)

    # The hot path ----------------------------------------------------------------------------

    def authenticate_access_token(
        self, token: str, transport: Literal["bearer", "cookie"]
    ) -> Principal:
        """Check an access token. In steady state: dict lookups, no database."""
        now = self.clock.timestamp()
        claims = self.cache.claims.get(token)
        if claims is None:
            claims = self._decode(token, now)
            self.cache.claims.put(token, claims)
        elif claims.expires_at <= now:
            raise TokenExpiredError()
        sid = claims.session_id
        if sid in self.cache.revoked_sessions:
            raise TokenRevokedError()
        if self.cache.live_sessions.get(sid) != claims.subject:
            self._check_session(sid, claims.subject)
        user = self.cache.users.get(claims.subject) or self.reads.load_user(claims.subject)
        if user is None or not user.is_active:
            raise TokenRevokedError()
        self.cache.last_seen[sid] = now
        return Principal(user, transport, session_id=sid, claims=claims)

    def _decode(self, token: str, now: float) -> AccessClaims:
        try:
            return self._decode_with_current_keys(token, now)
        except UnknownKeyError:
            if not self.keys.reload():
                raise
            return self._decode_with_current_keys(token, now)

    def _decode_with_current_keys(self, token: str, now: float) -> AccessClaims:
        return decode_access_token(
            token,
            keyring=self.keys.ring,
            issuer=self.settings.resolved_issuer,
            audience=self.settings.audience,
            now=now,
        )

    def _check_session(self, sid: str, user_id: str) -> None:
        session = self.store.get_session(sid)
        if (
            session is None
            or session.user_id != user_id
            or not session.is_valid_at(self.clock.now())
        ):
            forget_at = self.clock.timestamp() + self.feed.remember_seconds
            self.cache.revoked_sessions[sid] = forget_at
            raise TokenRevokedError()
        self.cache.live_sessions.put(sid, user_id)

    # Logging out -----------------------------------------------------------------------------

    def logout(self, principal: Principal) -> None:
        """End the caller's session; one already revoked meanwhile (a concurrent logout with
        the same token) is no error: the session has ended, as asked."""
        session_id = self.authorization.require_session(principal)
        if self.store.revoke_session(session_id, user_id=principal.user.id, now=self.clock.now()):
            self.feed.announce([(RevocationKind.SESSION, session_id)])

    def logout_refresh_token(self, refresh_token: str) -> None:
        """Log out a browser whose access token has expired, by its refresh token."""
        session_id = self.store.find_refresh_session(hash_refresh_token(refresh_token))
        if session_id is None:
            return
        if self.store.revoke_session(session_id, user_id=None, now=self.clock.now()):
            self.feed.announce([(RevocationKind.SESSION, session_id)])

    def logout_all(self, principal: Principal) -> None:
        self.authorization.require_session(principal)
        revoked = self.store.revoke_user_sessions(principal.user.id, now=self.clock.now())
        self.feed.announce((RevocationKind.SESSION, sid) for sid in revoked)

    def list_sessions(self, principal: Principal) -> list[tuple[SessionRecord, bool]]:
        current = self.authorization.require_session(principal)
        sessions = self.store.list_sessions(principal.user.id, now=self.clock.now())
        return [(s, s.id == current) for s in sessions]

    def revoke_session(self, principal: Principal, session_id: str) -> None:
        self.authorization.require_session(principal)
        found = self.store.revoke_session(
            session_id, user_id=principal.user.id, now=self.clock.now()
        )
        if not found:
            raise NotFoundError("No such session.")
        self.feed.announce([(RevocationKind.SESSION, session_id)])
