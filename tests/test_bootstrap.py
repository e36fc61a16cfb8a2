"""``authgate.bootstrap`` beyond what every fixture exercises: how hashes run under gevent."""

from __future__ import annotations

import threading
import time

import gevent
import gevent.monkey
import pytest

from authgate.bootstrap import gevent_offload
from authgate.core.passwords import PasswordHasher
from tests.helpers import PASSWORD


def test_no_offload_without_gevent_patching() -> None:
    assert not gevent.monkey.is_module_patched("threading")
    assert gevent_offload(2) is None


def test_under_gevent_hashes_run_on_native_threads_as_many_at_a_time_as_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gevent worker's loop goes on during a hash, and a flood of logins hashes at most as
    many at once per worker as its threads (the gate's concurrency), not one per connection."""
    monkeypatch.setattr(gevent.monkey, "is_module_patched", lambda name: name == "threading")
    offload = gevent_offload(2)
    assert offload is not None
    running: list[int] = []
    most = 0

    def work() -> int:
        nonlocal most
        running.append(threading.get_ident())
        most = max(most, len(running))
        time.sleep(0.05)  # a native thread: the hub's loop keeps running meanwhile
        running.pop()
        return threading.get_ident()

    try:
        calls = [gevent.spawn(offload, work) for _ in range(5)]
        ticks = 0
        while not all(call.ready() for call in calls):
            gevent.sleep(0.01)  # the loop is free while the hashes run
            ticks += 1
        assert threading.get_ident() not in {call.get() for call in calls}
        assert most == 2
        assert ticks >= 5
        hasher = PasswordHasher(offload=offload)
        assert hasher.verify_password(PASSWORD, hasher.hash_password(PASSWORD)).ok
    finally:
        gevent.get_hub().destroy(destroy_loop=True)
