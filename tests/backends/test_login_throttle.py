"""Failed logins are throttled per account+address and per address; successes are free."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from authgate.backends.login_throttle import LoginThrottle
from authgate.bootstrap import build_service
from authgate.errors import InvalidCredentialsError, RateLimitedError
from authgate.service import ClientInfo
from tests.helpers import PASSWORD, make_settings, register


def test_throttle_counts_failures_only() -> None:
    throttle = LoginThrottle(per_account="3 per minute", per_ip="100 per minute")
    for _ in range(10):
        throttle.begin_attempt("ada", "10.0.0.1")
        throttle.record_success("ada", "10.0.0.1")
    for _ in range(3):
        throttle.begin_attempt("ada", "10.0.0.1")
        throttle.record_failure("ada", "10.0.0.1")
    with pytest.raises(RateLimitedError) as info:
        throttle.begin_attempt("ADA", "10.0.0.1")
    assert 1 <= info.value.retry_after <= 60
    throttle.begin_attempt("ada", "10.0.0.2")  # another address is not locked out
    throttle.begin_attempt("bob", "10.0.0.1")


def test_parallel_attempts_cannot_all_pass_before_any_failure_is_counted() -> None:
    """The budget is spent before the password is checked, so 40 concurrent guesses against a
    budget of 10 get at most 10 password checks."""
    from concurrent.futures import ThreadPoolExecutor

    throttle = LoginThrottle(per_account="10 per minute", per_ip="1000 per minute")

    def attempt(_: int) -> bool:
        try:
            throttle.begin_attempt("victim", "10.0.0.7")
        except RateLimitedError:
            return False
        return True  # the password would be checked now (and fail later)

    with ThreadPoolExecutor(max_workers=20) as pool:
        allowed = sum(pool.map(attempt, range(40)))
    assert allowed == 10


def test_per_address_budget_covers_password_spraying() -> None:
    throttle = LoginThrottle(per_account="100 per minute", per_ip="5 per minute")
    for i in range(5):
        throttle.record_failure(f"user{i}", "10.0.0.9")
    with pytest.raises(RateLimitedError):
        throttle.begin_attempt("someone-new", "10.0.0.9")


def test_http_login_answers_429_with_retry_after(tmp_path: Path, database_url: str) -> None:
    from tests.helpers import make_app

    settings = make_settings(tmp_path, database_url, login_rate_limit_per_account="3 per minute")
    service = build_service(settings)
    try:
        client: FlaskClient = make_app(service).test_client()
        register(client)
        body = {"login": "ada@example.com", "password": "wrong password!"}
        codes = [client.post("/api/auth/login", json=body).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        right = client.post(
            "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
        )
        assert right.status_code == 429
        assert right.json["error"]["code"] == "rate_limited"
        assert int(right.headers["Retry-After"]) >= 1
    finally:
        service.close()


def test_service_throttles_before_checking_the_password(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, login_rate_limit_per_account="2 per minute")
    service = build_service(settings)
    try:
        client = ClientInfo(ip="192.0.2.1")
        for _ in range(2):
            with pytest.raises(InvalidCredentialsError):
                service.sessions.login("nobody@example.com", "whatever", client)
        with pytest.raises(RateLimitedError):
            service.sessions.login("nobody@example.com", "whatever", client)
    finally:
        service.close()


def test_an_unreachable_redis_falls_back_to_memory_counting() -> None:
    from tests.helpers import free_port

    throttle = LoginThrottle(
        per_account="2 per minute",
        per_ip="100 per minute",
        storage_uri=f"redis://127.0.0.1:{free_port()}/0",
    )
    for _ in range(2):
        throttle.begin_attempt("ada", "10.0.0.1")
        throttle.record_failure("ada", "10.0.0.1")
    with pytest.raises(RateLimitedError):
        throttle.begin_attempt("ada", "10.0.0.1")


def test_redis_counters_are_shared_between_processes() -> None:
    import uuid

    name = f"shared-{uuid.uuid4().hex}"
    one = LoginThrottle(
        per_account="2 per minute", per_ip="100 per minute", storage_uri="redis://127.0.0.1:6379/0"
    )
    other = LoginThrottle(
        per_account="2 per minute", per_ip="100 per minute", storage_uri="redis://127.0.0.1:6379/0"
    )
    one.begin_attempt(name, "10.0.0.1")
    other.begin_attempt(name, "10.0.0.1")
    with pytest.raises(RateLimitedError):
        one.begin_attempt(name, "10.0.0.1")
    one.record_success(name, "10.0.0.1")
    other.begin_attempt(name, "10.0.0.1")


def test_logins_far_apart_start_no_thread_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """limits' memory storage starts a 10 ms timer thread at an increment once the last one has
    fired, i.e. at every login (a hash takes longer): a thread start per login. The in-process
    counters start one sweeper, once."""
    import threading
    import time

    started: list[str] = []
    real_start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        real_start(thread)

    throttle = LoginThrottle(per_account="10 per minute", per_ip="100 per minute")
    monkeypatch.setattr(threading.Thread, "start", counting_start)
    try:
        for _ in range(4):
            throttle.begin_attempt("ada", "10.0.0.1")
            throttle.record_success("ada", "10.0.0.1")
            time.sleep(0.03)
    finally:
        throttle.close()
    assert started == ["authgate-throttle-sweep"]


def test_expired_counters_are_swept_and_live_ones_kept() -> None:
    import time

    from authgate.backends.login_throttle import MemoryCounters

    storage = MemoryCounters(sweep_interval=0.01)
    try:
        storage.incr("old", expiry=60)
        storage.incr("live", expiry=60)
        storage.expirations["old"] = time.time() - 1  # as if its minute had passed
        deadline = time.monotonic() + 5
        while "old" in storage.storage and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "old" not in storage.storage and "old" not in storage.expirations
        assert storage.storage["live"] == 1 and "live" in storage.expirations
    finally:
        storage.close()


def test_closing_the_throttle_stops_its_sweeper() -> None:
    throttle = LoginThrottle(per_account="10 per minute", per_ip="100 per minute")
    throttle.begin_attempt("ada", "10.0.0.1")
    sweeper = throttle._limiter.storage.timer
    assert sweeper.thread is not None and sweeper.thread.is_alive()
    throttle.close()
    sweeper.thread.join(timeout=5)
    assert not sweeper.thread.is_alive()


class _HungServer:
    """A TCP server that accepts connections and never answers: a hung Redis, as a client sees
    it. Counts the connections, i.e. the attempts of a client that reconnects after a timeout."""

    def __init__(self) -> None:
        import socket
        import threading

        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self._listener.close()
        for conn in self.held:
            conn.close()


def test_a_hung_redis_costs_one_short_timeout_then_memory_until_the_retry_delay() -> None:
    """redis-py's default waits 5 s per command: three commands per login. The throttle waits
    at most 0.25 s, once, and asks Redis again only after the retry delay."""
    import time

    server = _HungServer()
    now = [1000.0]
    throttle = LoginThrottle(
        per_account="3 per minute",
        per_ip="100 per minute",
        storage_uri=f"redis://127.0.0.1:{server.port}/0",
        monotonic=lambda: now[0],
    )
    try:
        started = time.monotonic()
        throttle.begin_attempt("ada", "10.0.0.1")
        assert time.monotonic() - started < 2.0
        assert throttle.counting_in_memory and len(server.held) == 1
        for _ in range(2):
            throttle.record_failure("ada", "10.0.0.1")
            throttle.begin_attempt("ada", "10.0.0.1")
        assert len(server.held) == 1  # not asked again within the retry delay
        with pytest.raises(RateLimitedError):  # counted in memory meanwhile
            throttle.begin_attempt("ada", "10.0.0.1")
        now[0] += 5.0
        throttle.begin_attempt("bob", "10.0.0.1")
        assert len(server.held) == 2  # asked again, once
    finally:
        throttle.close()
        server.close()
