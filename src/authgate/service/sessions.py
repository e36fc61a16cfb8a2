"""Login sessions: log in, refresh, check an access token (the hot path), log out, list and
revoke sessions."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from authgate.core import audit as events
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
    RateLimitedError,
    TokenExpiredError,
    TokenRevokedError,
)
from authgate.service.principals import ClientInfo, IssuedTokens, Principal
from authgate.store.records import RevocationKind, SessionRecord, UserRecord


class LoginGate(Protocol):
    def before_session(
        self,
        user: UserRecord,
        *,
        login: str,
        password_hash: str | None,
        browser_binding: str | None,
        amr: Sequence[str] = ...,
    ) -> None: ...


if TYPE_CHECKING:
    from authgate.backends.auth_cache import AuthCache
    from authgate.backends.login_throttle import LoginThrottle
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.core.passwords import PasswordCheck, PasswordHasher
    from authgate.service.audit import Audit
    from authgate.service.authorization import Authorization
    from authgate.service.cached_reads import CachedReads
    from authgate.service.keys import SigningKeys
    from authgate.store.protocols import Store

log = logging.getLogger("authgate")

# An unknown name typed at login is kept in its ``login.failed`` only when it has the shape of
# an email address (local@domain.tld, no space): "P@ssw0rd!" or "ada@2024" typed in the wrong
# field are passwords, not addresses.
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")


@dataclass(eq=False, repr=False)
class Sessions:
    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    keys: SigningKeys
    hasher: PasswordHasher
    throttle: LoginThrottle
    cache: AuthCache
    feed: RevocationFeed
    reads: CachedReads
    authorization: Authorization
    audit: Audit
    # Asked after a login's password (and before its session): raises ``MfaRequiredError``
    # for a user with a second factor. Set by ``AuthService`` (``service.second_factors``).
    gate: LoginGate | None = None

    # Login and refresh -----------------------------------------------------------------------

    def login(
        self,
        login: str,
        password: str,
        client: ClientInfo,
        *,
        browser_binding: str | None = None,
    ) -> IssuedTokens:
        """Same error, same work, whether the user is unknown, disabled or the password wrong.

        Only a password check spends an attempt of the throttle: the user is looked up first, so
        a store failure (an outage) counts nothing, and one after a correct password neither
        (its success has given the attempt back)."""
        login = login.strip()
        # A login flood's surplus is refused first, before it costs a query (ServerBusyError).
        self.hasher.raise_if_busy()
        generation = self.cache.users.generation
        user = self.store.find_user_by_login(login)
        try:
            # The turn at the hash gate before the throttle counts: a login refused as busy
            # (503) spends none of the attempts of its name and address.
            with self.hasher.reserve():
                self.throttle.begin_attempt(login, client.ip)
                check = self._check_password(user, password)
        except RateLimitedError:
            self._login_failed(events.LOGIN_THROTTLED, login, user, client, reason="throttled")
            raise
        if user is None or user.password_hash is None or check is None:
            self.throttle.record_failure(login, client.ip)
            reason = "unknown_user" if user is None else "no_password"
            self._login_failed(events.LOGIN_FAILED, login, user, client, reason=reason)
            raise InvalidCredentialsError()
        if not check.ok or not user.is_active:
            self.throttle.record_failure(login, client.ip)
            reason = "wrong_password" if not check.ok else "disabled"
            self._login_failed(events.LOGIN_FAILED, login, user, client, reason=reason)
            raise InvalidCredentialsError()
        self.throttle.record_success(login, client.ip)
        if self.settings.email_verification == "required" and not user.email_verified:
            self._login_failed(events.LOGIN_FAILED, login, user, client, reason="email_unverified")
            raise EmailNotVerifiedError()
        new_hash = self.hasher.hash_password(password) if check.needs_rehash else None
        if self.gate is not None:  # raises MfaRequiredError when a second factor is due
            self.gate.before_session(
                user, login=login, password_hash=new_hash, browser_binding=browser_binding
            )
        issued = self._open_session(
            user,
            client,
            generation,
            session_epoch=user.session_epoch,
            password_hash=new_hash,
            method={"method": "password"},
            amr=("pwd",),
        )
        if issued is None:
            # All the user's sessions were revoked since it was read (its password changed, it
            # was disabled...): the password checked may no longer be the user's.
            self.throttle.record_failure(login, client.ip)
            reason = "sessions_revoked"
            self._login_failed(events.LOGIN_FAILED, login, user, client, reason=reason)
            raise InvalidCredentialsError()
        return issued

    def _check_password(self, user: UserRecord | None, password: str) -> PasswordCheck | None:
        """The password checked against the user's hash; None, after the same work on a dummy
        hash, when there is no user or no password (timing does not tell them apart)."""
        if user is None or user.password_hash is None:
            self.hasher.verify_dummy(password)
            return None
        return self.hasher.verify_password(password, user.password_hash)

    def _login_failed(
        self, type: str, login: str, user: UserRecord | None, client: ClientInfo, *, reason: str
    ) -> None:
        """Record a login that opened nothing (its own write: no change goes with it). Unknown
        and known names cost the same one insert. The name typed is kept when it is a user's or
        an email address: anything else may be a password typed in the wrong field."""
        details = {"reason": reason}
        if user is not None or _EMAIL_SHAPE.fullmatch(login):
            details["login"] = login[:320]
        self.audit.record(
            self.audit.event(
                type,
                user_id=user.id if user is not None else None,
                outcome="failure",
                details=details,
                context=self.audit.client_context(client),
            )
        )

    def open_session(
        self,
        user: UserRecord,
        client: ClientInfo,
        *,
        generation: int,
        method: dict[str, str] | None = None,
        amr: Sequence[str] = ("fed",),
        audit_type: str = events.LOGIN_SUCCEEDED,
        authenticated: bool = True,
    ) -> IssuedTokens:
        """A new login session for a user a provider authenticated (no password of ours to
        have changed: the store checks again that the user is active as it records the login).

        ``generation`` is the user cache's generation read before ``user`` was loaded;
        ``method`` says how the user logged in (the details of its ``login.succeeded``).
        ``authenticated=False``: the session continues another one (the previous app's) and
        proves no recent authentication (no ``auth_time``: step-up asks for one)."""
        issued = self._open_session(
            user,
            client,
            generation,
            session_epoch=None,
            method=method or {"method": "other"},
            amr=amr,
            audit_type=audit_type,
            authenticated=authenticated,
        )
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
        method: dict[str, str],
        amr: Sequence[str],
        audit_type: str = events.LOGIN_SUCCEEDED,
        authenticated: bool = True,
    ) -> IssuedTokens | None:
        """None when the store refused: the user is no longer active or (with
        ``session_epoch``) all its sessions were revoked since it was read. Its
        ``login.succeeded`` is written by the login's own transaction."""
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
            amr=amr,
            authenticated=authenticated,
            audit=self.audit.event(
                audit_type,
                actor=user.id,
                user_id=user.id,
                details=method,
                context=self.audit.client_context(client),
            ),
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
            auth_time=int(session.auth_time.timestamp()) if session.auth_time else None,
            amr=session.amr,
        )
        return IssuedTokens(user, session, token, ttl, refresh_token)

    def open_verified_session(
        self,
        user: UserRecord,
        client: ClientInfo,
        *,
        session_epoch: int,
        password_hash: str | None,
        amr: Sequence[str],
        method: dict[str, str],
    ) -> IssuedTokens:
        """The session of a login that passed its second factor (``SecondFactors``): opened
        only while no "revoke all sessions" committed since its password was checked."""
        generation = self.cache.users.generation
        issued = self._open_session(
            user,
            client,
            generation,
            session_epoch=session_epoch,
            password_hash=password_hash,
            method=method,
            amr=amr,
        )
        if issued is None:
            raise InvalidCredentialsError()
        return issued

    def reissue_access_token(self, principal: Principal, *, amr: Sequence[str]) -> IssuedTokens:
        """After a reauthentication: the session's ``auth_time`` becomes now, and a new access
        token says so (the refresh token is unchanged: ``IssuedTokens.refresh_token`` is "")."""
        session_id = self.authorization.require_session(principal)
        session = self.store.reauthenticate_session(
            session_id, user_id=principal.user.id, amr=amr, now=self.clock.now()
        )
        if session is None:
            raise TokenRevokedError()
        return self._issue(principal.user, session, "")

    def refresh(self, refresh_token: str) -> IssuedTokens:
        """Rotate a refresh token; replaying a rotated one revokes its whole session.

        The store reads the user in the rotation's transaction: a store failure leaves the
        presented token current (the client's retry is no replay), and after the commit
        nothing that can fail remains between the rotation and its tokens.

        A response lost after the commit (an instance killed mid-request, a flaky network):
        the token rotated less than ``refresh_reuse_grace_seconds`` ago whose successor is
        still unused is rotated again, that successor spent (``refresh.reuse_grace``)."""
        now = self.clock.now()
        generation = self.cache.users.generation
        new_token, new_hash = new_refresh_token()
        grace = self.settings.refresh_reuse_grace_seconds
        outcome = self.store.rotate_refresh_token(
            hash_refresh_token(refresh_token),
            new_hash,
            expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
            now=now,
            reuse_audit=self.audit.event(events.REFRESH_REUSE_DETECTED, outcome="failure"),
            grace_since=now - timedelta(seconds=grace) if grace > 0 else None,
            grace_audit=self.audit.event(events.REFRESH_REUSE_GRACE) if grace > 0 else None,
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
        user = None
        if self.cache.live_sessions.get(sid) != claims.subject:
            user = self._check_session(sid, claims.subject)
        user = user or self.cache.users.get(claims.subject) or self.reads.load_user(claims.subject)
        if user is None or not user.is_active:
            raise TokenRevokedError()
        self.cache.last_seen[sid] = now
        return Principal(user, transport, session_id=sid, claims=claims)

    def _decode(self, token: str, now: float) -> AccessClaims:
        # A token's first request only (then its claims are cached): apply the key schedule
        # first, or a retired (e.g. compromised) key keeps verifying new tokens in a process
        # that never signs nor serves the JWKS. One comparison (``DatabaseKeySource``), one
        # ``stat`` (``KeySource``).
        self.keys.refresh_if_changed()
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

    def _check_session(self, sid: str, user_id: str) -> UserRecord | None:
        """Check a session the process has not yet seen alive; its user is read with it (one
        query for a token's first request) and returned, None if it has none."""
        generation = self.cache.users.generation
        found = self.store.get_session_with_user(sid)
        session, user = found if found is not None else (None, None)
        if (
            session is None
            or session.user_id != user_id
            or not session.is_valid_at(self.clock.now())
        ):
            forget_at = self.clock.timestamp() + self.feed.remember_seconds
            self.cache.revoked_sessions[sid] = forget_at
            raise TokenRevokedError()
        self.cache.live_sessions.put(sid, user_id)
        if user is not None:
            self.cache.users.put_if_current(user.id, user, generation=generation)
        return user

    # Logging out -----------------------------------------------------------------------------

    def logout(self, principal: Principal) -> None:
        """End the caller's session; one already revoked meanwhile (a concurrent logout with
        the same token) is no error: the session has ended, as asked."""
        session_id = self.authorization.require_session(principal)
        audit = self.audit.event(
            events.LOGOUT,
            actor=principal,
            user_id=principal.user.id,
            details={"session_id": session_id},
        )
        if self.store.revoke_session(
            session_id, user_id=principal.user.id, now=self.clock.now(), audit=audit
        ):
            self.feed.announce([(RevocationKind.SESSION, session_id)])

    def logout_refresh_token(self, refresh_token: str) -> None:
        """Log out a browser whose access token has expired, by its refresh token."""
        session_id = self.store.find_refresh_session(hash_refresh_token(refresh_token))
        if session_id is None:
            return
        # The user is the session's, learnt in the revocation's transaction.
        audit = self.audit.event(events.LOGOUT, details={"session_id": session_id})
        if self.store.revoke_session(session_id, user_id=None, now=self.clock.now(), audit=audit):
            self.feed.announce([(RevocationKind.SESSION, session_id)])

    def logout_all(self, principal: Principal) -> None:
        self.authorization.require_session(principal)
        audit = self.audit.event(
            events.SESSIONS_REVOKED_ALL, actor=principal, user_id=principal.user.id
        )
        revoked = self.store.revoke_user_sessions(
            principal.user.id, now=self.clock.now(), audit=audit
        )
        self.feed.announce((RevocationKind.SESSION, sid) for sid in revoked)

    def list_sessions(self, principal: Principal) -> list[tuple[SessionRecord, bool]]:
        current = self.authorization.require_session(principal)
        sessions = self.store.list_sessions(principal.user.id, now=self.clock.now())
        return [(s, s.id == current) for s in sessions]

    # An admin's view of a user's sessions -----------------------------------------------------

    def list_user_sessions(
        self, actor: Principal, user_id: str
    ) -> list[tuple[SessionRecord, bool]]:
        """The user's live sessions (admins); ``True`` beside the actor's own."""
        self.authorization.require_admin(actor)
        self._require_user(user_id)
        sessions = self.store.list_sessions(user_id, now=self.clock.now())
        return [(s, s.id == actor.session_id) for s in sessions]

    def revoke_user_session(self, actor: Principal, user_id: str, session_id: str) -> None:
        """End one of the user's sessions (admins), on its very next request in every process."""
        self.authorization.require_admin(actor)
        self._require_user(user_id)
        audit = self.audit.event(
            events.SESSION_REVOKED,
            actor=actor,
            user_id=user_id,
            details={"session_id": session_id},
        )
        if not self.store.revoke_session(
            session_id, user_id=user_id, now=self.clock.now(), audit=audit
        ):
            raise NotFoundError("No such session.")
        self.feed.announce([(RevocationKind.SESSION, session_id)])

    def revoke_all_user_sessions(self, actor: Principal, user_id: str) -> int:
        """End every session of the user (admins); how many were live."""
        self.authorization.require_admin(actor)
        self._require_user(user_id)
        audit = self.audit.event(events.SESSIONS_REVOKED_ALL, actor=actor, user_id=user_id)
        revoked = self.store.revoke_user_sessions(user_id, now=self.clock.now(), audit=audit)
        self.feed.announce((RevocationKind.SESSION, sid) for sid in revoked)
        return len(revoked)

    def _require_user(self, user_id: str) -> None:
        if self.store.get_user(user_id) is None:
            raise NotFoundError("No such user.")

    def revoke_session(self, principal: Principal, session_id: str) -> None:
        self.authorization.require_session(principal)
        audit = self.audit.event(
            events.SESSION_REVOKED,
            actor=principal,
            user_id=principal.user.id,
            details={"session_id": session_id},
        )
        found = self.store.revoke_session(
            session_id, user_id=principal.user.id, now=self.clock.now(), audit=audit
        )
        if not found:
            raise NotFoundError("No such session.")
        self.feed.announce([(RevocationKind.SESSION, session_id)])
