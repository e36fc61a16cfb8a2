"""Login throttling with the ``limits`` library: failed attempts are counted, successes are free.

Two budgets: failures for one login name from one IP address (guessing one account), and failures
from one IP address across all names (spraying). The counters live in Redis when
``AUTHGATE_REDIS_URL`` is set (shared by every process), otherwise in each process's memory.
While Redis does not answer, each process counts in its own memory instead: logins keep working
and stay throttled. A Redis that hangs delays a login by at most ``REDIS_TIMEOUT_SECONDS``, and only
one every ``REDIS_RETRY_SECONDS``: after a failure the throttle counts in memory that long before it
asks Redis again.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import limits
from limits.storage import MemoryStorage, RedisStorage, StorageTypes
from limits.strategies import SlidingWindowCounterRateLimiter

from authgate.errors import RateLimitedError

if TYPE_CHECKING:
    import redis

_NAMESPACE = "authgate-login"
_MEMORY = "memory://"
_SWEEP_INTERVAL_SECONDS = 5.0
# Redis answers a throttle command in well under a millisecond; one that takes longer than this
# is down or hung (redis-py's default would wait 5 s, per command, three commands per login).
REDIS_TIMEOUT_SECONDS = 0.25
# After Redis failed, count in memory this long before trying it again: a hung Redis costs one
# request the timeout every few seconds, not every request.
REDIS_RETRY_SECONDS = 5.0

log = logging.getLogger("authgate.throttling")


class LoginThrottle:
    def __init__(
        self,
        *,
        per_account: str,
        per_ip: str,
        storage_uri: str = "memory://",
        redis_retry_seconds: float = REDIS_RETRY_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._per_account = limits.parse(per_account)
        self._per_ip = limits.parse(per_ip)
        self._limiter = SlidingWindowCounterRateLimiter(_storage(storage_uri))
        self._shared = not isinstance(self._limiter.storage, MemoryCounters)
        # What a failing Redis raises (redis-py is loaded only with Redis configured).
        self._storage_errors = _redis_errors() if self._shared else ()
        # Where attempts are counted while Redis fails; without Redis, always.
        self._fallback = (
            SlidingWindowCounterRateLimiter(MemoryCounters()) if self._shared else self._limiter
        )
        self._retry_seconds = redis_retry_seconds
        self._monotonic = monotonic
        self._redis_down_until: float | None = None  # monotonic; None while Redis answers

    def close(self) -> None:
        """Stop the in-process counters' sweeper threads; close the Redis connections."""
        for limiter in (self._limiter, self._fallback):
            if isinstance(limiter.storage, MemoryCounters):
                limiter.storage.close()
            elif isinstance(limiter.storage, RedisStorage):
                limiter.storage.storage.connection_pool.disconnect()

    @property
    def counting_in_memory(self) -> bool:
        """True while Redis is configured but skipped after a failure (memory counts instead)."""
        return self._shared and self._redis_down_until is not None

    def _call(self, method: str, item: limits.RateLimitItem, ids: list[str]) -> Any:
        down_until = self._redis_down_until
        if self._shared and (down_until is None or self._monotonic() >= down_until):
            try:
                result = getattr(self._limiter, method)(item, *ids)
            except self._storage_errors as e:  # refused, reset, timed out (hung), …
                self._redis_failed(e)
            else:
                if down_until is not None:
                    self._redis_down_until = None
                    log.warning("login throttle storage answers again; counting in Redis")
                return result
        return getattr(self._fallback, method)(item, *ids)

    def _redis_failed(self, error: redis.RedisError) -> None:
        first = self._redis_down_until is None
        self._redis_down_until = self._monotonic() + self._retry_seconds
        (log.warning if first else log.debug)(
            "login throttle storage unavailable (%s); counting in this process's memory, "
            "trying Redis again in %g s",
            type(error).__name__,
            self._retry_seconds,
        )

    def _budgets(self, login: str, ip: str | None) -> list[tuple[limits.RateLimitItem, list[str]]]:
        where = ip or "unknown"
        return [
            (self._per_account, [_NAMESPACE, "account", login.casefold(), where]),
            (self._per_ip, [_NAMESPACE, "ip", where]),
        ]

    def begin_attempt(self, login: str, ip: str | None) -> None:
        """Before checking a password: spend one attempt of the name+address budget (an atomic
        hit, so parallel guesses cannot all pass a check first) and check the address budget.
        Raise ``RateLimitedError`` (with ``retry_after``) when either is used up."""
        (account, account_ids), (address, address_ids) = self._budgets(login, ip)
        if not self._call("test", address, address_ids):
            self._refuse(address, address_ids)
        if not self._call("hit", account, account_ids):
            self._refuse(account, account_ids)

    def _refuse(self, item: limits.RateLimitItem, ids: list[str]) -> None:
        reset = self._call("get_window_stats", item, ids).reset_time
        raise RateLimitedError(
            "Too many failed attempts; try again later.",
            retry_after=max(1, math.ceil(reset - time.time())),
        )

    def spend_request(
        self, purpose: str, name: str, ip: str | None, *, per_name: str, per_ip: str
    ) -> None:
        """Count one request that costs something whatever its outcome (a mail sent, or not
        sent to an unknown address: the same count either way) against ``name`` (an address,
        from anywhere) and against the client's address; ``RateLimitedError`` (with
        ``retry_after``) when either budget is used up."""
        where = ip or "unknown"
        budgets = (
            (_parsed(per_ip), [_NAMESPACE, purpose, "ip", where]),
            (_parsed(per_name), [_NAMESPACE, purpose, "name", name.casefold()]),
        )
        for item, ids in budgets:
            if not self._call("hit", item, ids):
                self._refuse(item, ids)

    def record_failure(self, login: str, ip: str | None) -> None:
        """A wrong password also counts against the address's budget."""
        address, address_ids = self._budgets(login, ip)[1]
        self._call("hit", address, address_ids)

    def record_success(self, login: str, ip: str | None) -> None:
        """A correct password gives that name+address its whole budget back."""
        account, account_ids = self._budgets(login, ip)[0]
        self._call("clear", account, account_ids)


@functools.lru_cache(maxsize=32)
def _parsed(rate: str) -> limits.RateLimitItem:
    return limits.parse(rate)


def _redis_errors() -> tuple[type[redis.RedisError], ...]:
    import redis

    return (redis.RedisError,)


def _storage(uri: str) -> StorageTypes:
    if uri == _MEMORY:
        return MemoryCounters()
    import redis  # here, not at the top: a process without Redis never loads redis-py
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # Short timeouts, and no retry but one of a connection found broken (Redis restarted): a
    # timed-out command is not repeated, the fallback answers instead. ``socket_timeout`` and
    # ``socket_connect_timeout`` in the URL's query win over these.
    pool = redis.ConnectionPool.from_url(
        uri.replace("redis+unix://", "unix://", 1),
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    )
    return RedisStorage(uri, connection_pool=pool)


class MemoryCounters(MemoryStorage):
    """limits' in-process storage, its expired counters swept by one long-lived thread.

    ``MemoryStorage`` sweeps with a 10 ms ``threading.Timer`` that an increment starts again once
    the last one has fired: with increments further apart than 10 ms (logins are: the hash alone
    takes longer) that is a new thread for every login, 0.15 ms of it, 0.3 ms right after a hash.
    The sweep only gives memory back; a counter past its expiry already reads as zero (``get``).
    """

    def __init__(self, sweep_interval: float = _SWEEP_INTERVAL_SECONDS) -> None:
        super().__init__()
        self.timer.cancel()  # the one ``MemoryStorage.__init__`` started
        self.timer = _Sweeper(self, sweep_interval)  # type: ignore[assignment]  # see _Sweeper

    def sweep(self) -> None:
        """Drop every counter past its expiry."""
        now = time.time()
        for key, expiry in list(self.expirations.items()):
            if expiry <= now:
                self.get(key)  # drops it (the way a read of it would)

    def close(self) -> None:
        self.timer.cancel()


class _Sweeper:
    """Stands in for ``MemoryStorage.timer``, which the storage asks ``is_alive()`` before it
    starts a new one: always alive, it runs ``sweep`` every ``interval`` seconds on one daemon
    thread, started at the first increment (and again in a forked child, which has no threads).
    The thread holds the storage weakly and ends with it, or at ``cancel``."""

    def __init__(self, storage: MemoryCounters, interval: float) -> None:
        self._storage = weakref.ref(storage)
        self._interval = interval
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def is_alive(self) -> bool:
        if not self._running() and not self._stopped.is_set():
            with self._lock:
                if not self._running():
                    self.thread = threading.Thread(
                        target=self._run, name="authgate-throttle-sweep", daemon=True
                    )
                    self.thread.start()
        return True

    def cancel(self) -> None:
        self._stopped.set()

    def _running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            storage = self._storage()
            if storage is None:
                return
            storage.sweep()
            del storage  # no strong reference while waiting
