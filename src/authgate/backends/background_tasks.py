"""Work done after a request has been answered, on one thread per process.

For requests whose answer must not depend on what the work finds: "forgot password" answers
202 at once for every address, and the lookup (and, for a known address, the token and its mail)
happens here, so that no timing tells a known address from an unknown one. The thread starts on
first use, and again in a forked child (which inherits no threads).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable

log = logging.getLogger("authgate.tasks")

_STOP = None


class BackgroundTasks:
    def __init__(self, *, name: str = "authgate-tasks") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pid: int | None = None
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pending = 0

    def submit(self, work: Callable[[], None]) -> None:
        """Run ``work`` soon, after the current request; its failure is logged, never raised."""
        with self._lock:
            if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                if self._pid != os.getpid():  # a forked child: the parent's queue is not ours
                    self._queue = queue.SimpleQueue()
                    self._pending = 0
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name=self._name, daemon=True
                )
                self._thread.start()
            self._pending += 1
            self._queue.put(work)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted work has run (tests, a graceful stop); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Finish the queued work (up to ``timeout``) and stop the thread."""
        with self._lock:
            thread = self._thread if self._pid == os.getpid() else None
            self._thread = None
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout)

    def _run(self, tasks: queue.SimpleQueue[Callable[[], None] | None]) -> None:
        while True:
            work = tasks.get()
            if work is _STOP:
                return
            try:
                work()
            except Exception:  # the thread must outlive any failure (a database outage...)
                log.exception("background task failed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
