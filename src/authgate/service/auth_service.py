"""``AuthService``: every authentication and authorization decision, framework-free.

Adapters (Flask, CLI) parse input and render output; they ask the service and never decide. The
service is a small facade over its parts, each owning one kind of decision; it is handed its
store and backends (``authgate.bootstrap.build_service``) and builds none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from authgate.core.api_tokens import looks_like_api_token
from authgate.service.accounts import Accounts
from authgate.service.api_tokens import ApiTokens
from authgate.service.authorization import Authorization
from authgate.service.avatars import Avatars
from authgate.service.cached_reads import CachedReads
from authgate.service.oauth_logins import OAuthLogins
from authgate.service.principals import Principal
from authgate.service.sessions import Sessions
from authgate.service.tenants import Tenants

if TYPE_CHECKING:
    from authgate.backends.auth_cache import AuthCache
    from authgate.backends.avatar_files import AvatarFiles
    from authgate.backends.login_throttle import LoginThrottle
    from authgate.backends.oauth_providers import ProviderClient
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.core.passwords import PasswordHasher
    from authgate.service.keys import KeySource
    from authgate.store.protocols import Store


class AuthService:
    """The parts: ``sessions`` (login, refresh, logout), ``accounts`` (registration, profile,
    password, user administration), ``authorization``, ``api_tokens``, ``tenants``,
    ``oauth_logins`` and ``avatars``; ``keys`` signs. ``authenticate`` is the hot path."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock,
        keys: KeySource,
        hasher: PasswordHasher,
        throttle: LoginThrottle,
        cache: AuthCache,
        feed: RevocationFeed,
        oauth_clients: dict[str, ProviderClient],
        avatar_files: AvatarFiles,
    ):
        self.settings = settings
        self.store = store
        self.clock = clock
        self.keys = keys
        self.throttle = throttle
        self.cache = cache
        self.feed = feed
        reads = CachedReads(store, cache)
        self.authorization = Authorization(reads)
        self.sessions = Sessions(
            settings,
            store,
            clock=clock,
            keys=keys,
            hasher=hasher,
            throttle=throttle,
            cache=cache,
            feed=feed,
            reads=reads,
            authorization=self.authorization,
        )
        self.avatars = Avatars(
            settings,
            store,
            clock=clock,
            feed=feed,
            files=avatar_files,
            authorization=self.authorization,
        )
        self.accounts = Accounts(
            store,
            clock=clock,
            hasher=hasher,
            throttle=throttle,
            feed=feed,
            authorization=self.authorization,
            avatars=self.avatars,
        )
        self.api_tokens = ApiTokens(
            settings,
            store,
            clock=clock,
            cache=cache,
            feed=feed,
            reads=reads,
            authorization=self.authorization,
        )
        self.tenants = Tenants(store, clock=clock, feed=feed, authorization=self.authorization)
        self.oauth_logins = OAuthLogins(
            settings,
            store,
            clock=clock,
            cache=cache,
            clients=oauth_clients,
            sessions=self.sessions,
            authorization=self.authorization,
        )

    def authenticate(
        self, token: str, transport: Literal["bearer", "cookie"], *, ip: str | None = None
    ) -> Principal:
        """Who presents ``token``: an access token (bearer or cookie) or an API token (bearer).
        In steady state: dict lookups, no database."""
        self.feed.ensure_started()
        if transport == "bearer" and looks_like_api_token(token):
            return self.api_tokens.authenticate_api_token(token, ip=ip)
        return self.sessions.authenticate_access_token(token, transport)

    def start(self) -> None:
        """Start following revocations (background threads); again after a fork."""
        self.feed.ensure_started()

    def is_healthy(self) -> bool:
        return self.store.ping()

    def close(self) -> None:
        self.feed.stop()
        self.throttle.close()
        self.store.dispose()
