"""``build_service``: the one place that wires authgate together.

It builds the store (migrating the embedded SQLite default), the signing keys, and the backends
the service is handed — the login throttle, the OAuth provider clients, the revocation feed with
the process's cache, the avatar storage, the mail composer and the outbox sender — then the service
itself. The Flask extension, the standalone server and the CLI all start here.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from authgate.backends.auth_cache import AuthCache
from authgate.backends.avatar_storage import AvatarImages, AvatarStorage, DatabaseAvatarStorage
from authgate.backends.background_tasks import BackgroundTasks
from authgate.backends.login_throttle import LoginThrottle
from authgate.backends.mail_composer import MailComposer
from authgate.backends.mail_sender import OutboxSender
from authgate.backends.mail_transport import build_mail_transport
from authgate.backends.revocation_feed import RevocationFeed
from authgate.config import Settings
from authgate.core.audit import AuditEvent, json_line
from authgate.core.clocks import Clock, SystemClock
from authgate.core.passwords import HashGate, Offload, PasswordHasher
from authgate.errors import ConfigError
from authgate.service import AuthService, KeySource
from authgate.service.keys import DatabaseKeySource, load_secret_box
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import is_up_to_date, upgrade_database
from authgate.store.sqlalchemy.stores import SqlAlchemyStore

if TYPE_CHECKING:
    from authgate.backends.oauth_providers import ProviderClient


def build_service(settings: Settings, *, clock: Clock | None = None) -> AuthService:
    """The service with its SQL store and backends; the embedded SQLite default migrates itself."""
    settings.raise_if_unsafe()
    clock = clock or SystemClock()
    engine = create_database_engine(settings.resolved_database_url)
    # Several workers may start at once on a fresh instance: one migrates and generates the
    # development key while the others wait, then find both done.
    with _startup_lock(settings.instance_path):
        if not is_up_to_date(engine):
            if engine.dialect.name != "sqlite":
                engine.dispose()
                raise ConfigError("The database schema is not current: run `authgate db upgrade`.")
            upgrade_database(engine)
        keys: KeySource | DatabaseKeySource | None = (
            KeySource(settings, clock) if settings.signing_keys == "directory" else None
        )
        secret_box = load_secret_box(settings)
    store = SqlAlchemyStore(engine)
    if keys is None:  # AUTHGATE_SIGNING_KEYS=database
        try:
            keys = DatabaseKeySource(settings, store, secret_box, clock)
        except ConfigError:
            engine.dispose()
            raise
    if settings.audit_log:
        store.audit_listener = log_audit_event
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    cache = AuthCache()
    return AuthService(
        settings,
        store,
        clock=clock,
        keys=keys,
        hasher=PasswordHasher(
            time_cost=settings.password_time_cost,
            memory_cost_kib=settings.password_memory_cost_kib,
            parallelism=settings.password_parallelism,
            offload=gevent_offload(
                settings.password_hash_concurrency, niceness=settings.password_hash_niceness
            ),
            gate=HashGate(
                concurrency=settings.password_hash_concurrency,
                queue=settings.password_hash_queue,
                max_wait_seconds=settings.password_hash_max_wait_seconds,
            ),
            prehash_salt=settings.read_legacy_password_hmac_salt(),
        ),
        throttle=LoginThrottle(
            per_account=settings.login_rate_limit_per_account,
            per_ip=settings.login_rate_limit_per_ip,
            storage_uri=redis_url or "memory://",
        ),
        cache=cache,
        feed=RevocationFeed(
            store,
            cache,
            clock,
            poll_interval_seconds=settings.revocation_poll_interval_seconds,
            # A revoked session's access tokens all expire within one TTL: remember it that long.
            remember_seconds=float(settings.access_token_ttl_seconds + 60),
            redis_url=redis_url,
        ),
        oauth_clients=_provider_clients(settings, clock),
        avatar_images=AvatarImages(build_avatar_storage(settings, store), clock),
        mail=build_mail_composer(settings, clock, check=True),
        mail_sender=OutboxSender(store, build_mail_transport(settings), clock),
        tasks=BackgroundTasks(),
        secret_box=secret_box,
    )


def build_avatar_storage(settings: Settings, store: SqlAlchemyStore) -> AvatarStorage:
    """The database's table, or an S3-compatible bucket (boto3 is loaded only then)."""
    if settings.avatar_storage == "s3":
        from authgate.backends.avatar_s3 import S3AvatarStorage

        return S3AvatarStorage.from_settings(settings)
    return DatabaseAvatarStorage(store)


_audit_log = logging.getLogger("authgate.audit")


def log_audit_event(event: AuditEvent) -> None:
    """``AUTHGATE_AUDIT_LOG``: each committed event as one JSON line (for a SIEM)."""
    _audit_log.info("%s", json_line(event))


def _provider_clients(settings: Settings, clock: Clock) -> dict[str, ProviderClient]:
    """The OAuth providers' clients; requests and Authlib are loaded only when one is configured."""
    if not settings.oauth_providers:
        return {}
    from authgate.backends.oauth_providers import build_provider_clients

    return build_provider_clients(
        settings.oauth_providers, clock, timeout_seconds=settings.oauth_http_timeout_seconds
    )


def build_mail_composer(settings: Settings, clock: Clock, *, check: bool = False) -> MailComposer:
    """The templates of the package, overridden by those in ``<instance>/mail_templates/``;
    with ``check``, overrides that do not render are refused now (``ConfigError``)."""
    overrides = settings.instance_path / "mail_templates"
    composer = MailComposer(
        app_name=settings.app_name,
        app_url=settings.link_base_url,
        clock=clock,
        override_dir=overrides,
    )
    if check and overrides.is_dir():
        composer.check_templates()
    return composer


T = TypeVar("T")


def gevent_offload(threads: int, *, niceness: int = 0) -> Offload | None:
    """Under gevent's monkey-patching (the workers of ``authgate serve --production``): run
    password hashes on ``threads`` native threads of the worker's own (as many as the hashes
    its ``HashGate`` lets run at once). argon2 releases the GIL, so the worker's other
    connections go on during a hash, instead of all waiting ~20-40 ms on the loop; logins
    waiting for their turn wait at the gate, which does not block the loop either.

    ``niceness`` (``AUTHGATE_PASSWORD_HASH_NICENESS``) lowers the hash threads' CPU priority:
    under a login flood the CPUs go first to the requests that are not hashing
    (benchmarks/login_flood.py)."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return None
    from gevent.threadpool import ThreadPool

    pool = ThreadPool(threads)

    def offload(work: Callable[[], T]) -> T:
        return cast(T, pool.apply(_run_lowered, (work, niceness)))

    return offload


def _run_lowered(work: Callable[[], T], niceness: int) -> T:
    """``work`` on a hash thread, its priority lowered first: on Linux a nice value belongs to
    a thread, and ``setpriority(PRIO_PROCESS, 0, …)`` sets the calling thread's (elsewhere, or
    when refused, it stays as it is)."""
    if niceness:
        with suppress(OSError):
            lowered = os.getpriority(os.PRIO_PROCESS, os.getpid()) + niceness
            if os.getpriority(os.PRIO_PROCESS, 0) < lowered:
                os.setpriority(os.PRIO_PROCESS, 0, lowered)
    return work()


@contextmanager
def _startup_lock(instance_path: Path) -> Iterator[None]:
    instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (instance_path / ".authgate-startup.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def database_keys(settings: Settings) -> Iterator[DatabaseKeySource]:
    """The database's signing keys for a command (``authgate keys rotate``, ``import-dir``,
    ``list`` with ``AUTHGATE_SIGNING_KEYS=database``): without the rest of the service, so that
    the first key can be made; what it adds is announced to the running instances (the
    revocation log, and Redis when configured)."""
    clock = SystemClock()
    engine = create_database_engine(settings.resolved_database_url)
    try:
        if not is_up_to_date(engine):
            raise ConfigError("The database schema is not current: run `authgate db upgrade`.")
        store = SqlAlchemyStore(engine)
        keys = DatabaseKeySource(settings, store, load_secret_box(settings), clock, load=False)
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        feed = RevocationFeed(
            store,
            AuthCache(),
            clock,
            poll_interval_seconds=settings.revocation_poll_interval_seconds,
            remember_seconds=float(settings.access_token_ttl_seconds + 60),
            redis_url=redis_url,
        )
        keys.on_change = feed.announce_keys_changed
        try:
            yield keys
        finally:
            feed.stop()  # publishes what is queued first (bounded)
    finally:
        engine.dispose()
