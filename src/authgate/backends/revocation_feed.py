"""How a process learns, at once, that something its ``AuthCache`` remembers is no longer true.

``RevocationFeed`` keeps every process's cache honest: the process that makes a
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
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import redis

from authgate.backends.auth_cache import AuthCache
from authgate.core.clocks import Clock
from authgate.errors import StoreUnavailableError
from authgate.store.protocols import Store
from authgate.store.records import RevocationKind

log = logging.getLogger("authgate.revocations")

REDIS_CHANNEL = "authgate:revocations"
_REPLAY_WINDOW = (
    256  # ids below the cursor re-read each poll: commit order may differ from id order
)


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
        self.remember_seconds = remember_seconds
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
        self._cache.apply(kind, subject, forget_at=self._clock.timestamp() + self.remember_seconds)
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
        except StoreUnavailableError:
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
                        older_than=self._clock.now() - timedelta(seconds=self.remember_seconds * 4)
                    )
                    self._store.prune_sessions(
                        now=self._clock.now(), grace=timedelta(seconds=self.remember_seconds)
                    )
            except StoreUnavailableError:
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
