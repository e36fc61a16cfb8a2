"""``HashGate``: a bounded number of password hashes at once per process, a bounded queue, and
``ServerBusyError`` past it; every ``PasswordHasher`` operation goes through it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from authgate.core.passwords import HashGate, PasswordHasher
from authgate.errors import ServerBusyError
from tests.helpers import PASSWORD


def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait for a state other threads reach (bounded, so a broken gate fails, never hangs)."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never reached: {what}")
        time.sleep(0.005)


def test_at_most_concurrency_hashes_run_at_once_the_rest_wait_their_turn() -> None:
    gate = HashGate(concurrency=2, queue=10, max_wait_seconds=30)
    release = threading.Event()
    inside: list[int] = []
    most = 0
    lock = threading.Lock()

    def hash_something() -> None:
        nonlocal most
        with gate.admit():
            with lock:
                inside.append(1)
                most = max(most, len(inside))
            release.wait(10)
            with lock:
                inside.pop()

    threads = [threading.Thread(target=hash_something) for _ in range(6)]
    for thread in threads:
        thread.start()
    _until(lambda: len(inside) == 2 and gate.waiting == 4, "2 running, 4 waiting")
    assert most == 2
    release.set()
    for thread in threads:
        thread.join(10)
    assert most == 2 and gate.waiting == 0
    with gate.admit(), gate.admit():  # every turn was given back
        pass


def test_past_the_queue_a_hash_is_refused_at_once_with_retry_after() -> None:
    gate = HashGate(concurrency=1, queue=1, max_wait_seconds=30)
    release = threading.Event()
    with gate.admit():
        waiter = threading.Thread(target=lambda: _take_turn(gate, release))
        waiter.start()
        _until(lambda: gate.waiting == 1, "one waiting")
        with pytest.raises(ServerBusyError) as info:
            gate.raise_if_full()
        with pytest.raises(ServerBusyError) as info, gate.admit():
            pass
        assert info.value.status == 503
        assert info.value.code == "server_busy"
        assert info.value.retry_after == 30
    release.set()
    waiter.join(10)
    gate.raise_if_full()  # room again


def _take_turn(
    gate: HashGate, release: threading.Event, taken: threading.Event | None = None
) -> None:
    with gate.admit():
        if taken is not None:
            taken.set()
        release.wait(10)


def test_a_turn_not_given_within_max_wait_is_refused() -> None:
    gate = HashGate(concurrency=1, queue=5, max_wait_seconds=0.01)
    release, taken = threading.Event(), threading.Event()
    holder = threading.Thread(target=lambda: _take_turn(gate, release, taken))
    holder.start()
    try:
        assert taken.wait(10)
        with pytest.raises(ServerBusyError) as info, gate.admit():
            pass
        assert info.value.retry_after == 1
        assert gate.waiting == 0
    finally:
        release.set()
        holder.join(10)


def test_every_hasher_operation_waits_at_the_gate_the_dummy_one_included() -> None:
    gate = HashGate(concurrency=1, queue=0, max_wait_seconds=0)
    hasher = PasswordHasher(gate=gate)
    stored = hasher.hash_password(PASSWORD)
    with gate.admit():  # every turn taken, no queue: each operation is refused
        for operation in (
            lambda: hasher.hash_password(PASSWORD),
            lambda: hasher.verify_password(PASSWORD, stored),
            lambda: hasher.verify_dummy(PASSWORD),
        ):
            with pytest.raises(ServerBusyError):
                operation()
    assert hasher.verify_password(PASSWORD, stored).ok


def test_reserve_holds_one_turn_for_everything_hashed_inside() -> None:
    gate = HashGate(concurrency=1, queue=0, max_wait_seconds=0)
    hasher = PasswordHasher(gate=gate)
    stored = hasher.hash_password(PASSWORD)
    with hasher.reserve():
        # the turn is this caller's: its own hashes run, and nobody else's
        assert hasher.verify_password(PASSWORD, stored).ok
        hasher.verify_dummy(PASSWORD)
        hasher.raise_if_busy()  # not for the holder of the turn
        with pytest.raises(ServerBusyError):
            gate.raise_if_full()  # for anyone else
        refused: list[BaseException] = []
        other = threading.Thread(target=lambda: _record(refused, hasher.verify_dummy, PASSWORD))
        other.start()
        other.join(10)
        assert [type(e) for e in refused] == [ServerBusyError]
    hasher.raise_if_busy()


def _record(out: list[BaseException], call: Callable[[str], object], arg: str) -> None:
    try:
        call(arg)
    except ServerBusyError as e:
        out.append(e)
