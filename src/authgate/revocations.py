"""What a process remembers so that a protected request needs no database query, and how it learns,
at once, that something it remembers is no longer true.

``AuthCache`` holds verified access-token claims, sessions known to be live, users, and sessions
known to be revoked. ``RevocationFeed`` keeps every process's cache honest: the process that makes a
change applies it to its own cache synchronously; other processes learn it from Redis pub/sub (when
``AUTHGATE_REDIS_URL`` is set, typically within milliseconds) and from polling the revocation log in
the database (always, every ``revocation_poll_interval_seconds``), which also covers a missed
pub/sub message.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

import redis
from sqlalchemy.exc import SQLAlchemyError

from authgate.core.clocks import Clock
from authgate.core.tokens import AccessClaims
from authgate.store.protocols import Store
from authgate.store.records import ApiTokenRecord, RevocationKind, TenantRole, UserRecord

log = logging.getLogger("authgate.revocations")

REDIS_CHANNEL = "authgate:revocations"
_REPLAY_WINDOW = (
    256  # ids below the cursor re-read each poll: commit order may differ from id order
)

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A dict with a maximum size that evicts the least recently inserted entry."""

    def __init__(self, max_entries: int):
        self._data: OrderedDict[K, V] = OrderedDict()
        self._max = max_entries

    def get(self, key: K) -> V | None:
        return self._data.get(key)

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        if len(self._data) > self._max:
            with suppress(KeyError):  # emptied by another thread meanwhile
                self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class GuardedCache(BoundedCache[K, V]):
    """A cache filled from the database and emptied by events.

    A value loaded while an event arrived may already be stale: ``put_if_current`` drops it when
    the generation moved since ``generation`` was read before the load.
    """

    def __init__(self, max_entries: int):
        super().__init__(max_entries)
        self.generation = 0

    def invalidate(self, key: K) -> None:
        self.generation += 1
        self.pop(key)

    def put_if_current(self, key: K, value: V, *, generation: int) -> None:
        if self.generation == generation:
            self.put(key, value)


class AuthCache:
    """Per-process memory of what was already checked; every entry can be invalidated."""

    def __init__(self, *, max_entries: int = 50_000):
        # Tokens are the largest entries (~1 KB with their claims): fewer of them.
        self.claims: BoundedCache[str, AccessClaims] = BoundedCache(max(1, max_entries // 5))
        self.live_sessions: BoundedCache[str, str] = BoundedCache(max_entries)  # sid -> user id
        self.users: GuardedCache[str, UserRecord] = GuardedCache(max_entries)
        self.api_tokens: GuardedCache[str, ApiTokenRecord] = GuardedCache(max_entries)
        # Plaintext API tokens whose checksum and secret were verified -> their id. A token's
        # secret never changes; whether it is still valid comes from ``api_tokens``.
        self.verified_api_tokens: BoundedCache[str, str] = BoundedCache(max(1, max_entries // 5))
        self.memberships: GuardedCache[str, TenantRole] = GuardedCache(max_entries)
        self.revoked_sessions: dict[str, float] = {}  # sid -> when to forget (epoch seconds)
        self.last_seen: dict[str, float] = {}  # sid -> epoch seconds
        self.api_token_use: dict[str, tuple[float, str | None]] = {}  # id -> (when, ip)

    def apply(self, kind: RevocationKind, subject: str, *, forget_at: float) -> None:
        if kind is RevocationKind.SESSION:
            self.revoked_sessions[subject] = forget_at
            self.live_sessions.pop(subject)
            self.last_seen.pop(subject, None)
        elif kind is RevocationKind.USER:
            self.users.invalidate(subject)
        elif kind is RevocationKind.API_TOKEN:
            self.api_tokens.invalidate(subject)
            self.api_token_use.pop(subject, None)
        else:
            self.memberships.invalidate(subject)

    def prune(self, now: float) -> None:
        # list() copies under the GIL: request threads may add entries meanwhile.
        expired = [sid for sid, until in list(self.revoked_sessions.items()) if until <= now]
        for sid in expired:
            self.revoked_sessions.pop(sid, None)

    def clear(self) -> None:
        for cache in (
            self.claims,
            self.verified_api_tokens,
            self.live_sessions,
            self.users,
            self.api_tokens,
            self.memberships,
        ):
            cache.clear()
        self.revoked_sessions.clear()
        self.last_seen.clear()
        self.api_token_use.clear()


class RevocationFeed:
    """Propagates revocations between processes and flushes last-seen times in batches."""

    def __init__(
        self,
        store: Store,
        cache: AuthCache,
        clock: Clock,
        *,
        poll_interval_seconds: float,
        remember_seconds: float,
        redis_url: str | None = None,
        touch_interval_seconds: float = 60.0,
    ):
        self._store = store
        self._cache = cache
        self._clock = clock
        self._poll_interval = poll_interval_seconds
        self._remember = remember_seconds
        self._touch_interval = touch_interval_seconds
        # Connects lazily: a process that only announces (the CLI) publishes without threads.
        self._redis: redis.Redis[bytes] | None = (
            redis.Redis.from_url(redis_url, socket_timeout=5) if redis_url else None
        )
        self._cursor = 0
        self._applied: deque[int] = deque(maxlen=4 * _REPLAY_WINDOW)
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.on_apply: list[Callable[[RevocationKind, str], None]] = []

    # Local changes ---------------------------------------------------------------------------

    def announce(self, changes: Iterable[tuple[RevocationKind, str]]) -> None:
        """Apply changes committed by this process now, and tell the other processes."""
        changes = list(changes)
        for kind, subject in changes:
            self._apply(kind, subject)
        if self._redis is not None and changes:
            message = json.dumps([[kind.value, subject] for kind, subject in changes])
            try:
                self._redis.publish(REDIS_CHANNEL, message)
            except redis.RedisError:
                log.warning("could not publish revocations to Redis; other processes will poll")

    def _apply(self, kind: RevocationKind, subject: str) -> None:
        self._cache.apply(kind, subject, forget_at=self._clock.timestamp() + self._remember)
        for callback in self.on_apply:
            callback(kind, subject)

    # Background work -------------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the background threads in this process (again after a fork)."""
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            if self._pid is not None:  # forked: the parent's threads and memory are not ours
                self._cache.clear()
                self._threads = []
            self._stop.clear()
            self._cursor = self._store.latest_revocation_id()
            self._start_thread("authgate-revocation-poll", self._poll_loop)
            if self._pid is None:  # once per process: last-use times survive a clean exit
                atexit.register(self._flush_quietly)
            if self._redis is not None:
                self._start_thread("authgate-revocation-redis", self._redis_loop)
            self._pid = pid

    def _start_thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _flush_quietly(self) -> None:
        try:
            self.flush_last_seen()
        except SQLAlchemyError:
            log.warning("could not record last-use times at exit", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        atexit.unregister(self._flush_quietly)
        if self._pid == os.getpid():
            self._flush_quietly()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        self._pid = None
        if self._redis is not None:
            self._redis.close()

    def poll_once(self) -> int:
        """Read and apply new events from the revocation log; how many were new."""
        events = self._store.read_revocations(max(0, self._cursor - _REPLAY_WINDOW))
        fresh = 0
        for event in events:
            if event.id in self._applied:
                continue
            self._applied.append(event.id)
            self._apply(event.kind, event.subject)
            fresh += 1
            self._cursor = max(self._cursor, event.id)
        return fresh

    def flush_last_seen(self) -> None:
        """Write the last-use times gathered in memory: one batch, off the request path."""
        # Swap in fresh dicts, then copy the old ones under the GIL (list() of items): a request
        # thread that still holds the old dict may write to it while we read.
        sessions, self._cache.last_seen = self._cache.last_seen, {}
        self._store.touch_sessions(
            {sid: datetime.fromtimestamp(seen, UTC) for sid, seen in list(sessions.items())}
        )
        tokens, self._cache.api_token_use = self._cache.api_token_use, {}
        self._store.touch_api_tokens(
            {
                tid: (datetime.fromtimestamp(seen, UTC), ip)
                for tid, (seen, ip) in list(tokens.items())
            }
        )

    def _poll_loop(self) -> None:
        last_touch = self._clock.timestamp()
        while not self._stop.wait(self._poll_interval):
            try:
                self.poll_once()
                now = self._clock.timestamp()
                self._cache.prune(now)
                if now - last_touch >= self._touch_interval:
                    last_touch = now
                    self.flush_last_seen()
                    self._store.prune_revocations(
                        older_than=self._clock.now() - timedelta(seconds=self._remember * 4)
                    )
                    self._store.prune_sessions(
                        now=self._clock.now(), grace=timedelta(seconds=self._remember)
                    )
            except SQLAlchemyError:
                log.warning("revocation poll failed; retrying", exc_info=True)
            except Exception:  # the follower must outlive any bug: a dead one stops revocation
                log.exception("revocation poll crashed; continuing")

    def _redis_loop(self) -> None:
        assert self._redis is not None
        while not self._stop.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(REDIS_CHANNEL)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._apply_message(message.get("data"))
            except redis.RedisError:
                log.warning("Redis subscription lost; reconnecting", exc_info=True)
                self._stop.wait(1.0)
            except Exception:  # as in _poll_loop: keep following whatever happened
                log.exception("Redis subscriber crashed; reconnecting")
                self._stop.wait(1.0)

    def _apply_message(self, data: object) -> None:
        try:
            changes = json.loads(data) if isinstance(data, (bytes, str)) else None
            for kind, subject in changes or ():
                self._apply(RevocationKind(kind), str(subject))
        except (ValueError, TypeError):
            log.warning("ignored a malformed revocation message")
