"""``/readyz``: whether this process can serve now -- its database, Redis (when configured) and
signing keys -- for a load balancer or a Kubernetes readiness probe (docs/operations.md).

Each check that talks to a server runs on a thread of its own and is waited for at most
``READY_TIMEOUT_SECONDS``, all of them at once: a hung database answers "timeout", it does not
hang the probe. While a check still hangs from an earlier probe, the next probe does not start
another one (it answers "timeout" at once): hung probes do not pile up threads or connections.

The answer names each check's result and nothing else; what went wrong is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from authgate.service import AuthService

log = logging.getLogger("authgate.readiness")

READY_TIMEOUT_SECONDS = 2.0

CheckResult = Literal["ok", "failed", "timeout"]


class _BoundedCheck:
    """One check, run on a thread, at most one at a time."""

    def __init__(self, name: str, probe: Callable[[], bool]) -> None:
        self.name = name
        self._probe = probe
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> Callable[[float], CheckResult]:
        """Start the check; the function returned waits for its result until a deadline
        (``time.monotonic``)."""
        with self._lock:
            running = self._thread
            if running is not None and running.is_alive():
                log.warning("readiness: the previous %s check still has no answer", self.name)
                return lambda _deadline: "timeout"
            outcome: list[CheckResult] = []
            thread = threading.Thread(
                target=self._run, args=(outcome,), name=f"authgate-ready-{self.name}", daemon=True
            )
            self._thread = thread
            thread.start()

        def wait(deadline: float) -> CheckResult:
            thread.join(max(0.0, deadline - time.monotonic()))
            if outcome:
                return outcome[0]
            log.warning("readiness: the %s check had no answer in time", self.name)
            return "timeout"

        return wait

    def _run(self, outcome: list[CheckResult]) -> None:
        try:
            ok = self._probe()
        except Exception:
            log.exception("readiness: the %s check failed", self.name)
            ok = False
        else:
            if not ok:
                log.warning("readiness: the %s check failed", self.name)
        outcome.append("ok" if ok else "failed")


class Readiness:
    """The checks of one app's service."""

    def __init__(self, service: AuthService, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        self._service = service
        self._timeout = timeout
        self._checks = [_BoundedCheck("database", self._database_answers)]
        if service.settings.redis_url is not None:
            self._checks.append(_BoundedCheck("redis", self._redis_answers))

    def _database_answers(self) -> bool:
        return self._service.store.ping()

    def _redis_answers(self) -> bool:
        return bool(self._service.feed.ping_redis())

    def _signing_keys(self) -> CheckResult:
        """Loaded, with an active key to sign with (no I/O but one ``stat``)."""
        keys = self._service.keys
        try:
            keys.refresh_if_changed()
            active = keys.ring.active
        except Exception:
            log.exception("readiness: the signing keys check failed")
            return "failed"
        if active.private_key is None or (self._service.settings.is_production and active.dev):
            log.warning("readiness: the active signing key %s cannot sign here", active.kid)
            return "failed"
        return "ok"

    def check(self) -> tuple[bool, dict[str, CheckResult]]:
        """(ready, each check's result)."""
        deadline = time.monotonic() + self._timeout
        waits = [(check.name, check.start()) for check in self._checks]
        results: dict[str, CheckResult] = {}
        for name, wait in waits:
            results[name] = wait(deadline)
        results["signing_keys"] = self._signing_keys()
        return all(result == "ok" for result in results.values()), results


# ``app.extensions`` key of the app's ``Readiness``.
READINESS_KEY = "authgate.readiness"
