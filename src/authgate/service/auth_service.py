"""``AuthService``: every authentication and authorization decision, framework-free.

Adapters (Flask, CLI) parse input and render output; they ask the service and never decide. The
service is a small facade over its parts, each owning one kind of decision; it is handed its
store and backends (``authgate.bootstrap.build_service``) and builds none of them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from authgate.core.api_tokens import looks_like_api_token, looks_like_legacy_api_token
from authgate.core.roles import known_roles
from authgate.service.accounts import Accounts
from authgate.service.api_tokens import ApiTokens
from authgate.service.audit import Audit
from authgate.service.authorization import Authorization
from authgate.service.avatars import Avatars
from authgate.service.cached_reads import CachedReads
from authgate.service.email_addresses import EmailAddresses
from authgate.service.invitations import Invitations
from authgate.service.legacy_sessions import LegacySessions
from authgate.service.mailed_links import MailedLinks
from authgate.service.oauth_logins import OAuthLogins
from authgate.service.passkeys import Passkeys
from authgate.service.principals import Principal
from authgate.service.recovery import Recovery
from authgate.service.second_factors import SecondFactors
from authgate.service.sessions import Sessions
from authgate.service.tenants import Tenants
from authgate.service.user_imports import UserImports

if TYPE_CHECKING:
    from authgate.backends.auth_cache import AuthCache
    from authgate.backends.avatar_storage import AvatarImages
    from authgate.backends.background_tasks import BackgroundTasks
    from authgate.backends.login_throttle import LoginThrottle
    from authgate.backends.mail_composer import MailComposer
    from authgate.backends.mail_sender import OutboxSender
    from authgate.backends.oauth_providers import ProviderClient
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.core.passwords import PasswordHasher
    from authgate.core.secret_boxes import SecretBox
    from authgate.service.keys import SigningKeys
    from authgate.store.protocols import Store


class AuthService:
    """The parts: ``sessions`` (login, refresh, logout), ``accounts`` (registration, profile,
    password, user administration), ``email_addresses`` (verification, email change),
    ``recovery`` (forgot and reset password), ``authorization``, ``api_tokens``, ``tenants``,
    ``invitations``, ``oauth_logins``, ``avatars``, ``user_imports`` (moving in from another app)
    and ``legacy_sessions`` (its sessions' dual run); ``keys`` signs. ``authenticate`` is the
    hot path."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock,
        keys: SigningKeys,
        hasher: PasswordHasher,
        throttle: LoginThrottle,
        cache: AuthCache,
        feed: RevocationFeed,
        oauth_clients: dict[str, ProviderClient],
        avatar_images: AvatarImages,
        mail: MailComposer,
        mail_sender: OutboxSender,
        tasks: BackgroundTasks,
        secret_box: SecretBox,
    ):
        self.settings = settings
        self._legacy_api_tokens = settings.legacy_api_tokens
        self._started_in: int | None = None  # the process whose background threads run
        self.store = store
        self.clock = clock
        self.keys = keys
        self.throttle = throttle
        self.cache = cache
        self.feed = feed
        # Mails are composed here and queued in the outbox with what they announce (one
        # transaction); ``mail_sender.notify()`` after the commit sends them at once.
        self.mail = mail
        self.mail_sender = mail_sender
        self.tasks = tasks
        reads = CachedReads(store, cache)
        self.authorization = Authorization(
            reads, clock=clock, reauth_seconds=settings.reauth_seconds
        )
        # The audit trail: each part builds the events of its changes here and hands them to
        # the store method that makes the change (one transaction).
        self.audit = Audit(settings, store, clock=clock, authorization=self.authorization)
        # Events past their retention go a few batches at a time, with the other pruning.
        feed.housekeeping.append(self.audit.purge_some)
        # Database keys: learn rotations from the feed, announce ours, rotate on schedule.
        keys.follow(feed)
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
            audit=self.audit,
        )
        self.avatars = Avatars(
            settings,
            store,
            clock=clock,
            feed=feed,
            images=avatar_images,
            authorization=self.authorization,
            audit=self.audit,
        )
        links = MailedLinks(
            settings, store, clock=clock, mail=mail, mail_sender=mail_sender, audit=self.audit
        )
        self.email_addresses = EmailAddresses(
            settings,
            store,
            clock=clock,
            hasher=hasher,
            throttle=throttle,
            feed=feed,
            authorization=self.authorization,
            links=links,
            audit=self.audit,
        )
        self.recovery = Recovery(
            settings,
            store,
            clock=clock,
            hasher=hasher,
            throttle=throttle,
            feed=feed,
            tasks=tasks,
            links=links,
            audit=self.audit,
        )
        self.accounts = Accounts(
            store,
            clock=clock,
            hasher=hasher,
            throttle=throttle,
            feed=feed,
            authorization=self.authorization,
            avatars=self.avatars,
            email_addresses=self.email_addresses,
            audit=self.audit,
            known_roles=known_roles(settings.roles),
        )
        self.api_tokens = ApiTokens(
            settings,
            store,
            clock=clock,
            cache=cache,
            feed=feed,
            reads=reads,
            authorization=self.authorization,
            audit=self.audit,
        )
        self.tenants = Tenants(
            store, clock=clock, feed=feed, authorization=self.authorization, audit=self.audit
        )
        self.user_imports = UserImports(
            settings, store, clock=clock, feed=feed, api_tokens=self.api_tokens, audit=self.audit
        )
        self.legacy_sessions = LegacySessions(
            settings, store, clock=clock, cache=cache, sessions=self.sessions, audit=self.audit
        )
        self.invitations = Invitations(
            store,
            clock=clock,
            feed=feed,
            authorization=self.authorization,
            links=links,
            settings=settings,
            throttle=throttle,
            audit=self.audit,
        )
        self.oauth_logins = OAuthLogins(
            settings,
            store,
            clock=clock,
            cache=cache,
            clients=oauth_clients,
            sessions=self.sessions,
            authorization=self.authorization,
            audit=self.audit,
        )
        # Second factors: asked by every password login (``Sessions.gate``).
        self.second_factors = SecondFactors(
            settings,
            store,
            clock=clock,
            hasher=hasher,
            throttle=throttle,
            feed=feed,
            box=secret_box,
            sessions=self.sessions,
            authorization=self.authorization,
            links=links,
        )
        self.sessions.gate = self.second_factors
        self.recovery.second_factor = self.second_factors
        feed.housekeeping.append(self.second_factors.prune)  # expired mfa tokens
        self.passkeys = Passkeys(
            settings,
            store,
            clock=clock,
            throttle=throttle,
            sessions=self.sessions,
            authorization=self.authorization,
            second_factors=self.second_factors,
        )

    def authenticate(
        self, token: str, transport: Literal["bearer", "cookie"], *, ip: str | None = None
    ) -> Principal:
        """Who presents ``token``: an access token (bearer or cookie) or an API token (bearer).
        In steady state: dict lookups, no database."""
        if self._started_in != os.getpid():  # the first request here, or in a forked worker
            self._start_here()
        if transport == "bearer":
            if looks_like_api_token(token):
                return self.api_tokens.authenticate_api_token(token, ip=ip)
            if self._legacy_api_tokens and looks_like_legacy_api_token(token):  # never a JWT
                return self.api_tokens.authenticate_legacy_api_token(token, ip=ip)
        return self.sessions.authenticate_access_token(token, transport)

    def start(self) -> None:
        """Start following revocations and sending mail (background threads); again after a
        fork."""
        self.feed.ensure_started()
        self.mail_sender.start()

    def _start_here(self) -> None:
        """This process's revocation threads and, if mail was started, its sender thread."""
        self.feed.ensure_started()
        self.mail_sender.ensure_started()
        self._started_in = os.getpid()

    def is_healthy(self) -> bool:
        return self.store.ping()

    def close(self) -> None:
        self.tasks.close()  # before the sender stops: a reset link queued last is still sent
        self.mail_sender.stop()
        self.feed.stop()
        self.throttle.close()
        self.store.dispose()
