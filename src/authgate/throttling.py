"""Login throttling with the ``limits`` library: failed attempts are counted, successes are free.

Two budgets: failures for one login name from one IP address (guessing one account), and failures
from one IP address across all names (spraying). The counters live in Redis when
``AUTHGATE_REDIS_URL`` is set (shared by every process), otherwise in each process's memory.
While Redis does not answer, each process counts in its own memory instead: logins keep working
and stay throttled.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import limits
import redis
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from authgate.errors import RateLimitedError

_NAMESPACE = "authgate-login"

log = logging.getLogger("authgate.throttling")


class LoginThrottle:
    def __init__(self, *, per_account: str, per_ip: str, storage_uri: str = "memory://"):
        self._per_account = limits.parse(per_account)
        self._per_ip = limits.parse(per_ip)
        self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(storage_uri))
        self._fallback = SlidingWindowCounterRateLimiter(storage_from_string("memory://"))

    def _call(self, method: str, item: limits.RateLimitItem, ids: list[str]) -> Any:
        try:
            return getattr(self._limiter, method)(item, *ids)
        except redis.RedisError:
            log.warning("login throttle storage unavailable; counting in this process's memory")
            return getattr(self._fallback, method)(item, *ids)

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

    def record_failure(self, login: str, ip: str | None) -> None:
        """A wrong password also counts against the address's budget."""
        address, address_ids = self._budgets(login, ip)[1]
        self._call("hit", address, address_ids)

    def record_success(self, login: str, ip: str | None) -> None:
        """A correct password gives that name+address its whole budget back."""
        account, account_ids = self._budgets(login, ip)[0]
        self._call("clear", account, account_ids)
