"""Login throttling with the ``limits`` library: failed attempts are counted, successes are free.

Two budgets: failures for one login name from one IP address (guessing one account), and failures
from one IP address across all names (spraying). The counters live in Redis when
``AUTHGATE_REDIS_URL`` is set (shared by every process), otherwise in each process's memory.
"""

from __future__ import annotations

import math
import time

import limits
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from authgate.errors import RateLimitedError

_NAMESPACE = "authgate-login"


class LoginThrottle:
    def __init__(self, *, per_account: str, per_ip: str, storage_uri: str = "memory://"):
        self._per_account = limits.parse(per_account)
        self._per_ip = limits.parse(per_ip)
        self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(storage_uri))

    def _budgets(self, login: str, ip: str | None) -> list[tuple[limits.RateLimitItem, list[str]]]:
        where = ip or "unknown"
        return [
            (self._per_account, [_NAMESPACE, "account", login.casefold(), where]),
            (self._per_ip, [_NAMESPACE, "ip", where]),
        ]

    def check(self, login: str, ip: str | None) -> None:
        """Raise ``RateLimitedError`` (with ``retry_after``) when a budget is used up."""
        for item, ids in self._budgets(login, ip):
            if not self._limiter.test(item, *ids):
                reset = self._limiter.get_window_stats(item, *ids).reset_time
                raise RateLimitedError(
                    "Too many failed login attempts; try again later.",
                    retry_after=max(1, math.ceil(reset - time.time())),
                )

    def record_failure(self, login: str, ip: str | None) -> None:
        for item, ids in self._budgets(login, ip):
            self._limiter.hit(item, *ids)

    def record_success(self, login: str, ip: str | None) -> None:
        """A correct password clears that account's failures from this address."""
        item, ids = self._budgets(login, ip)[0]
        self._limiter.clear(item, *ids)
