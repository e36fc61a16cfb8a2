"""How a process learns that something its ``AuthCache`` remembers is no longer true.

``RevocationFeed`` keeps every process's cache honest: the process that makes a
change applies it to its own cache synchronously; other processes learn it from Redis pub/sub (when
``AUTHGATE_REDIS_URL`` is set, typically within milliseconds) and from polling the revocation log in
the database (always, every ``revocation_poll_interval_seconds``), which also covers a missed
pub/sub message.

Redis is never waited for on a request: the publish is handed to a background sender, and a Redis
that hangs or is gone only delays other processes until their next poll.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from authgate.backends.auth_cache import AuthCache
from authgate.core.clocks import Clock
from authgate.errors import StoreUnavailableError
from authgate.store.protocols import Store
from authgate.store.records import RevocationKind, parse_revocation_entry, revocation_entry

if TYPE_CHECKING:
    import redis

log = logging.getLogger("authgate.revocations")

REDIS_CHANNEL = "authgate:revocations"
_REPLAY_WINDOW = (
    256  # ids below the cursor re-read each poll: commit order may differ from id order
)
# A publish or a (re)subscription that takes longer than this: Redis is down or hung.
REDIS_TIMEOUT_SECONDS = 0.5
# After a failed publish, drop messages (the poll delivers them) this long before trying again.
REDIS_RETRY_SECONDS = 5.0
_OUTBOX_SIZE = 1024  # messages waiting for the sender; the oldest go first (the poll has them)
_RESUBSCRIBE_DELAY_SECONDS = 1.0
_SENDER_DRAIN_SECONDS = 2.0  # how long ``stop`` lets the sender publish what is still queued


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
        redis_retry_seconds: float = REDIS_RETRY_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._store = store
        self._cache = cache
        self._clock = clock
        self._poll_interval = poll_interval_seconds
        self.remember_seconds = remember_seconds
        self._touch_interval = touch_interval_seconds
        # More pruning of the same kind, run with it (the audit trail's retention).
        self.housekeeping: list[Callable[[], object]] = []
        # Connects lazily. Short timeouts, and no retry but one of a connection found broken
        # (Redis restarted); ``socket_timeout`` / ``socket_connect_timeout`` in the URL win.
        self._redis = _connect(redis_url) if redis_url else None
        # What a failing Redis raises (redis-py is loaded only with Redis configured).
        self._redis_errors = _redis_errors() if redis_url else ()
        self._redis_retry_seconds = redis_retry_seconds
        self._monotonic = monotonic
        # The publishing thread of this process (started by the first announce, again after a
        # fork), its queue, and until when it drops messages after a failure.
        self._outbox: deque[str] = deque(maxlen=_OUTBOX_SIZE)
        self._outbox_ready = threading.Event()
        self._sender_stop = threading.Event()
        self._sender: threading.Thread | None = None
        self._sender_pid: int | None = None
        self._publish_paused_until: float | None = None
        self._subscription_failing = False  # logged once per outage
        self._cursor = 0
        self._applied: deque[int] = deque(maxlen=4 * _REPLAY_WINDOW)
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.on_apply: list[Callable[[RevocationKind, str], None]] = []
        # Told of each change this process announces (the metrics count revocations here).
        self.on_announce: list[Callable[[RevocationKind], None]] = []

    # Local changes ---------------------------------------------------------------------------

    def announce(self, changes: Iterable[tuple[RevocationKind, str]]) -> None:
        """Apply changes committed by this process now, and tell the other processes (the
        publish happens on a background thread: a request never waits for Redis)."""
        changes = list(changes)
        for kind, subject in changes:
            self._apply(kind, subject)
            for callback in self.on_announce:
                callback(kind)
        if self._redis is not None and changes:
            self._publish_later(json.dumps([revocation_entry(k, s) for k, s in changes]))

    def announce_keys_changed(self, kid: str) -> None:
        """This process added the signing key ``kid`` to the database (and logged it there):
        tell the other processes now, through Redis (the poll of the log tells them without)."""
        self._apply(RevocationKind.SIGNING_KEYS, kid)
        if self._redis is not None:
            self._publish_later(json.dumps([revocation_entry(RevocationKind.SIGNING_KEYS, kid)]))

    def _publish_later(self, message: str) -> None:
        self._ensure_sender()
        self._outbox.append(message)  # a full outbox drops its oldest message
        self._outbox_ready.set()

    def _apply(self, kind: RevocationKind, subject: str) -> None:
        self._cache.apply(kind, subject, forget_at=self._clock.timestamp() + self.remember_seconds)
        for callback in self.on_apply:
            callback(kind, subject)

    def ping_redis(self) -> bool | None:
        """Whether Redis answers now (bounded by ``REDIS_TIMEOUT_SECONDS``); None without Redis.
        For readiness checks, never for a request's own work."""
        if self._redis is None:
            return None
        try:
            return bool(self._redis.ping())
        except self._redis_errors as e:
            log.warning("Redis does not answer a ping: %s", e)
            return False

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

    def _ensure_sender(self) -> None:
        """Start this process's publishing thread (again after a fork, or after ``stop``)."""
        pid = os.getpid()
        if self._sender_pid == pid:
            return
        with self._lock:
            if self._sender_pid == pid:
                return
            # New queue and events: after a fork, the parent's are the parent's to send.
            self._outbox = deque(maxlen=_OUTBOX_SIZE)
            self._outbox_ready = threading.Event()
            self._sender_stop = threading.Event()
            self._sender = threading.Thread(
                target=self._send_loop,
                args=(self._outbox, self._outbox_ready, self._sender_stop),
                name="authgate-revocation-publish",
                daemon=True,
            )
            self._sender.start()
            self._sender_pid = pid

    def _stop_sender(self) -> None:
        """Let the sender publish what is queued (bounded), then end it."""
        sender, self._sender, self._sender_pid = self._sender, None, None
        self._sender_stop.set()
        self._outbox_ready.set()
        if sender is not None and sender is not threading.current_thread():
            sender.join(timeout=_SENDER_DRAIN_SECONDS)

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
        self._stop_sender()
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
            # Marked once applied: an event whose follower failed (the keys could not be
            # re-read, the database being down) is applied again at the next poll.
            self._apply(event.kind, event.subject)
            self._applied.append(event.id)
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
        failing = False  # the store is down: said once, not at every poll
        while not self._stop.wait(self._poll_interval):
            try:
                self.poll_once()
                if failing:
                    failing = False
                    log.warning("revocation poll works again")
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
                    self._housekeeping()
            except StoreUnavailableError as e:
                if not failing:
                    failing = True
                    log.warning(
                        "revocation poll failed (%s); retrying every %g s",
                        type(e.__cause__ or e).__name__,
                        self._poll_interval,
                    )
                log.debug("revocation poll failed", exc_info=True)
            except Exception:  # the follower must outlive any bug: a dead one stops revocation
                log.exception("revocation poll crashed; continuing")

    def _housekeeping(self) -> None:
        """Each task on its own: one that fails (a scheduled rotation refused) does not skip
        the others (deleting retired keys). A store outage ends the round (the poll says so)."""
        for work in self.housekeeping:
            try:
                work()
            except StoreUnavailableError:
                raise
            except Exception:
                log.exception("housekeeping task %s failed; continuing", work)

    def _send_loop(
        self, outbox: deque[str], ready: threading.Event, stopped: threading.Event
    ) -> None:
        while True:
            ready.wait()
            ready.clear()
            while outbox:
                try:
                    self._publish(outbox.popleft(), outbox)
                except Exception:  # the sender must outlive any bug, as the followers do
                    log.exception("revocation publisher crashed; continuing")
            if stopped.is_set():
                return

    def _publish(self, message: str, outbox: deque[str]) -> None:
        assert self._redis is not None
        paused_until = self._publish_paused_until
        if paused_until is not None and self._monotonic() < paused_until:
            return  # Redis failed moments ago: the other processes poll this from the log
        try:
            self._redis.publish(REDIS_CHANNEL, message)
        except self._redis_errors as e:  # refused, reset, timed out (hung), …
            outbox.clear()  # all in the revocation log; sending them late helps nobody
            self._publish_paused_until = self._monotonic() + self._redis_retry_seconds
            (log.warning if paused_until is None else log.debug)(
                "could not publish revocations to Redis (%s); other processes learn them from "
                "the revocation log; trying Redis again in %g s",
                type(e).__name__,
                self._redis_retry_seconds,
            )
            return
        if paused_until is not None:
            self._publish_paused_until = None
            log.warning("publishing revocations to Redis again")

    def _redis_loop(self) -> None:
        assert self._redis is not None
        while not self._stop.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(REDIS_CHANNEL)  # connects (the handshake times out if hung)
                if self._subscription_failing:
                    self._subscription_failing = False
                    log.warning("subscribed to Redis again")
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._apply_message(message.get("data"))
            except self._redis_errors as e:  # refused, reset, timed out (hung), …
                (log.debug if self._subscription_failing else log.warning)(
                    "Redis subscription failed (%s); polling the revocation log meanwhile, "
                    "subscribing again every %g s",
                    type(e).__name__,
                    _RESUBSCRIBE_DELAY_SECONDS,
                )
                self._subscription_failing = True
                self._stop.wait(_RESUBSCRIBE_DELAY_SECONDS)
            except Exception:  # as in _poll_loop: keep following whatever happened
                log.exception("Redis subscriber crashed; reconnecting")
                self._stop.wait(_RESUBSCRIBE_DELAY_SECONDS)
            finally:
                with suppress(*self._redis_errors):
                    pubsub.close()

    def _apply_message(self, data: object) -> None:
        try:
            changes = json.loads(data) if isinstance(data, (bytes, str)) else None
            for kind, subject in changes or ():
                parsed = parse_revocation_entry(str(kind), str(subject))
                if parsed is not None:  # a kind of a newer version: skipped, as in the log
                    self._apply(*parsed)
        except (ValueError, TypeError):
            log.warning("ignored a malformed revocation message")


def _connect(redis_url: str) -> redis.Redis[bytes]:
    """The feed's Redis client. redis-py is imported here: a process without Redis never loads
    it."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        redis_url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    )


def _redis_errors() -> tuple[type[redis.RedisError], ...]:
    import redis

    return (redis.RedisError,)
