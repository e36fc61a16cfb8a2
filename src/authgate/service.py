"""``AuthService``: every authentication and authorization decision, framework-free.

Adapters (Flask, CLI) parse input and render output; they ask the service and never decide.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Literal

from authgate.avatars import AvatarMixin
from authgate.config import Settings
from authgate.core.api_tokens import looks_like_api_token
from authgate.core.clocks import Clock
from authgate.core.keys import KeyRing, generate_key, insecure_key_files, load_keyring
from authgate.core.passwords import PasswordHasher, find_password_problem
from authgate.core.refresh_tokens import hash_refresh_token, new_refresh_token
from authgate.core.tokens import (
    AccessClaims,
    UnknownKeyError,
    decode_access_token,
    issue_access_token,
)
from authgate.errors import (
    ConfigError,
    ConflictError,
    ForbiddenError,
    InsufficientRoleError,
    InvalidCredentialsError,
    InvalidTokenError,
    NotFoundError,
    SessionRequiredError,
    TokenExpiredError,
    TokenRevokedError,
    ValidationFailedError,
)
from authgate.oauth import OAuthMixin
from authgate.providers import ProviderClient, build_provider_clients
from authgate.revocations import AuthCache, RevocationFeed
from authgate.store.protocols import Store
from authgate.store.records import (
    ApiTokenRecord,
    RevocationKind,
    SessionRecord,
    UserRecord,
    UserStatus,
)
from authgate.tenancy import TenancyMixin
from authgate.throttling import LoginThrottle

log = logging.getLogger("authgate")

DEFAULT_ROLES = ("user",)
ADMIN_ROLE = "admin"
_KEY_RELOAD_INTERVAL_SECONDS = 10.0


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


class KeySource:
    """The signing keys, reloaded from their directory when a token names an unknown ``kid``."""

    def __init__(self, settings: Settings, clock: Clock):
        self._directory = settings.resolved_keys_dir
        self._production = settings.is_production
        self._clock = clock
        self._last_reload = 0.0
        self._directory_mtime = self._mtime()
        ring = load_keyring(self._directory)
        if ring is None:
            if self._production:
                raise ConfigError(
                    f"No signing key in {self._directory}. Create one with "
                    f"`authgate keys rotate --keys-dir {self._directory}`."
                )
            key = generate_key(self._directory, dev=True, now=clock.now())
            log.warning(
                "Generated a development signing key %s in %s (mode 0600). "
                "Production refuses development keys; run `authgate keys rotate`.",
                key.kid,
                self._directory,
            )
            ring = KeyRing([key])
        self.ring = self._checked(ring)

    def _checked(self, ring: KeyRing) -> KeyRing:
        """The ring, if production may sign with it; ``ConfigError`` saying why otherwise."""
        if not self._production:
            return ring
        exposed = insecure_key_files(self._directory)
        if exposed:
            raise ConfigError(
                f"Signing key files are readable by other users: "
                f"{', '.join(str(p) for p in exposed)}. Run `chmod 600` on them."
            )
        if ring.active.dev:
            raise ConfigError(
                f"The active signing key {ring.active.kid} was generated for development. "
                f"Create a production key with `authgate keys rotate --keys-dir {self._directory}`."
            )
        return ring

    def _mtime(self) -> int:
        try:
            return self._directory.stat().st_mtime_ns
        except OSError:
            return 0

    def refresh_if_changed(self) -> None:
        """Pick up a key added by ``authgate keys rotate`` before signing: one ``stat``."""
        mtime = self._mtime()
        if mtime != self._directory_mtime:
            self._directory_mtime = mtime
            self._last_reload = 0.0
            self.reload()

    def reload(self) -> bool:
        """Re-read the key directory, at most every few seconds; True when it was re-read.

        A directory that cannot be used now (a key being written, a bad file) keeps the keys
        in use and is logged: a request never fails on it."""
        now = self._clock.timestamp()
        if now - self._last_reload < _KEY_RELOAD_INTERVAL_SECONDS:
            return False
        self._last_reload = now
        try:
            ring = load_keyring(self._directory)
            if ring is not None:
                self.ring = self._checked(ring)
        except ConfigError as e:
            log.error("kept the current signing keys: %s", e)
        return True


class AuthService(OAuthMixin, TenancyMixin, AvatarMixin):
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock,
        keys: KeySource,
        hasher: PasswordHasher | None = None,
        oauth_clients: dict[str, ProviderClient] | None = None,
    ):
        self.settings = settings
        self.store = store
        self.clock = clock
        self.keys = keys
        self.hasher = hasher or PasswordHasher(
            time_cost=settings.password_time_cost,
            memory_cost_kib=settings.password_memory_cost_kib,
            parallelism=settings.password_parallelism,
        )
        self.throttle = LoginThrottle(
            per_account=settings.login_rate_limit_per_account,
            per_ip=settings.login_rate_limit_per_ip,
            storage_uri=settings.redis_url.get_secret_value()
            if settings.redis_url
            else "memory://",
        )
        self.oauth_clients = (
            build_provider_clients(
                settings.oauth_providers,
                clock,
                timeout_seconds=settings.oauth_http_timeout_seconds,
            )
            if oauth_clients is None
            else oauth_clients
        )
        # A revoked session's access tokens all expire within one TTL: remember it that long.
        self._remember_seconds = float(settings.access_token_ttl_seconds + 60)
        self.cache = AuthCache()
        self.feed = RevocationFeed(
            store,
            self.cache,
            clock,
            poll_interval_seconds=settings.revocation_poll_interval_seconds,
            remember_seconds=self._remember_seconds,
            redis_url=settings.redis_url.get_secret_value() if settings.redis_url else None,
        )

    # Registration and login ----------------------------------------------------------------

    def register(
        self,
        *,
        email: str,
        password: str,
        name: str | None = None,
        username: str | None = None,
        roles: Sequence[str] = DEFAULT_ROLES,
    ) -> UserRecord:
        context = [email, email.split("@", 1)[0], username or ""]
        problem = find_password_problem(password, context=context)
        if problem:
            raise ValidationFailedError({"password": problem})
        return self.store.create_user(
            email=email,
            username=username,
            name=name,
            password_hash=self.hasher.hash_password(password),
            roles=roles,
            now=self.clock.now(),
        )

    def login(self, login: str, password: str, client: ClientInfo) -> IssuedTokens:
        """Same error, same work, whether the user is unknown, disabled or the password wrong."""
        login = login.strip()
        self.throttle.begin_attempt(login, client.ip)
        generation = self.cache.users.generation
        user = self.store.find_user_by_login(login)
        if user is None or user.password_hash is None:
            self.hasher.verify_dummy(password)
            self.throttle.record_failure(login, client.ip)
            raise InvalidCredentialsError()
        check = self.hasher.verify_password(password, user.password_hash)
        if not check.ok or not user.is_active:
            self.throttle.record_failure(login, client.ip)
            raise InvalidCredentialsError()
        self.throttle.record_success(login, client.ip)
        new_hash = self.hasher.hash_password(password) if check.needs_rehash else None
        return self._open_session(user, client, generation=generation, password_hash=new_hash)

    def _open_session(
        self,
        user: UserRecord,
        client: ClientInfo,
        *,
        generation: int,
        password_hash: str | None = None,
    ) -> IssuedTokens:
        now = self.clock.now()
        refresh_token, refresh_hash = new_refresh_token()
        session = self.store.create_session(
            user_id=user.id,
            refresh_token_hash=refresh_hash,
            expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
            user_agent=client.user_agent,
            ip=client.ip,
            now=now,
            password_hash=password_hash,
        )
        user = replace(user, last_login_at=now, password_hash=password_hash or user.password_hash)
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
        """Rotate a refresh token; replaying a rotated one revokes its whole session."""
        now = self.clock.now()
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
        user = self._load_user(outcome.session.user_id)
        if user is None or not user.is_active:
            raise TokenRevokedError()
        return self._issue(user, outcome.session, new_token)

    # The hot path ----------------------------------------------------------------------------

    def authenticate(
        self, token: str, transport: Literal["bearer", "cookie"], *, ip: str | None = None
    ) -> Principal:
        """Check an access token or API token. In steady state: dict lookups, no database."""
        self.feed.ensure_started()
        if transport == "bearer" and looks_like_api_token(token):
            return self.authenticate_api_token(token, ip=ip)
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
        user = self.cache.users.get(claims.subject) or self._load_user(claims.subject)
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
            self.cache.revoked_sessions[sid] = self.clock.timestamp() + self._remember_seconds
            raise TokenRevokedError()
        self.cache.live_sessions.put(sid, user_id)

    def _load_user(self, user_id: str) -> UserRecord | None:
        generation = self.cache.users.generation
        user = self.store.get_user(user_id)
        if user is not None:
            self.cache.users.put_if_current(user.id, user, generation=generation)
        return user

    def start(self) -> None:
        """Start following revocations (background threads); again after a fork."""
        self.feed.ensure_started()

    def require_roles(self, principal: Principal, roles: Sequence[str]) -> None:
        """Every role in ``roles`` is held by the caller now (not when the token was issued)."""
        missing = [role for role in roles if role not in principal.roles]
        if missing:
            raise InsufficientRoleError(f"This action requires the role(s): {', '.join(missing)}.")

    # Own account -----------------------------------------------------------------------------

    def _session_id(self, principal: Principal) -> str:
        if principal.session_id is None:
            raise SessionRequiredError()
        return principal.session_id

    def _require_admin(self, actor: Principal) -> None:
        self._require_session(actor)
        self.require_roles(actor, [ADMIN_ROLE])

    def logout(self, principal: Principal) -> None:
        self.revoke_session(principal, self._session_id(principal))

    def logout_refresh_token(self, refresh_token: str) -> None:
        """Log out a browser whose access token has expired, by its refresh token."""
        session_id = self.store.find_refresh_session(hash_refresh_token(refresh_token))
        if session_id is None:
            return
        if self.store.revoke_session(session_id, user_id=None, now=self.clock.now()):
            self.feed.announce([(RevocationKind.SESSION, session_id)])

    def logout_all(self, principal: Principal) -> None:
        self._session_id(principal)
        revoked = self.store.revoke_user_sessions(principal.user.id, now=self.clock.now())
        self.feed.announce((RevocationKind.SESSION, sid) for sid in revoked)

    def update_profile(
        self, principal: Principal, *, fields: set[str], name: str | None, username: str | None
    ) -> UserRecord:
        self._session_id(principal)
        user = principal.user
        updated = self.store.update_profile(
            user.id,
            name=name if "name" in fields else user.name,
            username=username if "username" in fields else user.username,
            now=self.clock.now(),
        )
        if updated is None:
            raise TokenRevokedError()
        self.feed.announce([(RevocationKind.USER, user.id)])
        return updated

    def change_password(
        self, principal: Principal, current: str, new: str, *, ip: str | None = None
    ) -> None:
        """Throttled like a login: a stolen session must not become a password oracle."""
        session_id = self._session_id(principal)
        user = self.store.get_user(principal.user.id)
        if user is None or user.password_hash is None:
            raise TokenRevokedError()
        attempt = f"user:{user.id}"
        self.throttle.begin_attempt(attempt, ip)
        if not self.hasher.verify_password(current, user.password_hash).ok:
            self.throttle.record_failure(attempt, ip)
            raise ValidationFailedError({"current_password": "The current password is incorrect."})
        self.throttle.record_success(attempt, ip)
        problem = find_password_problem(
            new, context=[user.email, user.email.split("@", 1)[0], user.username or ""]
        )
        if problem:
            raise ValidationFailedError({"new_password": problem})
        revoked = self.store.set_password_hash(
            user.id,
            self.hasher.hash_password(new),
            keep_session_id=session_id,
            now=self.clock.now(),
        )
        self.feed.announce((RevocationKind.SESSION, sid) for sid in revoked)

    def list_sessions(self, principal: Principal) -> list[tuple[SessionRecord, bool]]:
        current = self._session_id(principal)
        sessions = self.store.list_sessions(principal.user.id, now=self.clock.now())
        return [(s, s.id == current) for s in sessions]

    def revoke_session(self, principal: Principal, session_id: str) -> None:
        self._session_id(principal)
        found = self.store.revoke_session(
            session_id, user_id=principal.user.id, now=self.clock.now()
        )
        if not found:
            raise NotFoundError("No such session.")
        self.feed.announce([(RevocationKind.SESSION, session_id)])

    # Administration --------------------------------------------------------------------------

    def list_users(
        self, actor: Principal, *, query: str | None, page: int, per_page: int
    ) -> tuple[list[UserRecord], int]:
        self._require_admin(actor)
        return self.store.list_users(query=query, offset=(page - 1) * per_page, limit=per_page)

    def get_user(self, actor: Principal, user_id: str) -> UserRecord:
        self._require_admin(actor)
        user = self.store.get_user(user_id)
        if user is None:
            raise NotFoundError("No such user.")
        return user

    def update_user_access(
        self,
        actor: Principal,
        user_id: str,
        *,
        roles: Sequence[str] | None,
        status: UserStatus | None,
    ) -> UserRecord:
        """Set roles/status; takes effect on the user's very next request, in every process."""
        self._require_admin(actor)
        removes_own_admin = roles is not None and ADMIN_ROLE not in roles
        if user_id == actor.user.id and (removes_own_admin or status is UserStatus.DISABLED):
            raise ForbiddenError(
                "You cannot disable yourself or remove your own admin role; ask another admin."
            )
        return self.set_user_access(user_id, roles=roles, status=status)

    def set_user_access(
        self, user_id: str, *, roles: Sequence[str] | None, status: UserStatus | None
    ) -> UserRecord:
        """Operator-level change (CLI, admin API after its checks), announced to every process."""
        result = self.store.update_access(user_id, roles=roles, status=status, now=self.clock.now())
        if result is None:
            raise NotFoundError("No such user.")
        updated, revoked = result
        self.feed.announce(revoked)
        return updated

    def delete_user(self, actor: Principal, user_id: str) -> None:
        self._require_admin(actor)
        if user_id == actor.user.id:
            raise ForbiddenError("You cannot delete your own account here; ask another admin.")
        if self.store.sole_owned_tenants(user_id):
            raise ConflictError(
                "This user is the only owner of a shared tenant; make someone else owner first."
            )
        user = self.store.get_user(user_id)
        revoked = self.store.delete_user(user_id, now=self.clock.now())
        if revoked is None:
            raise NotFoundError("No such user.")
        self.feed.announce(revoked)
        self.remove_avatar_file(user.avatar_url if user else None)

    # Operations ------------------------------------------------------------------------------

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every worker publishes a key the moment ``keys rotate`` wrote it (one ``stat``), not
        only the worker that happened to sign with it first."""
        self.keys.refresh_if_changed()
        return self.keys.ring.jwks()

    def is_healthy(self) -> bool:
        return self.store.ping()

    def close(self) -> None:
        self.feed.stop()
        self.throttle.close()
        self.store.dispose()
