"""Redis hung (SIGSTOP) or killed under a running service: no request waits for it.

Each test starts its own ``redis-server`` on a free port and hangs, resumes, kills or restarts
only that one. With Redis hung, redis-py's defaults made a login wait 15 s (three throttle
commands of 5 s each) and a logout 5 s (the revocation published inside the request).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from authgate.backends.auth_cache import AuthCache
from authgate.backends.login_throttle import LoginThrottle
from authgate.backends.revocation_feed import REDIS_CHANNEL, RevocationFeed
from authgate.bootstrap import build_service
from authgate.core.clocks import SystemClock
from authgate.errors import RateLimitedError, TokenRevokedError
from authgate.service import AuthService
from authgate.store.records import RevocationKind
from tests.helpers import PASSWORD, bearer, free_port, make_app, make_settings, register

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

# Far below the 5 s of redis-py's default timeout, generous for a loaded CI machine.
BOUND_SECONDS = 2.0


class RedisServer:
    """A private redis-server: started, hung, resumed, killed and restarted by the test alone."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.02)
            finally:
                client.close()

    def client(self) -> redis.Redis[bytes]:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def hang(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL ends a stopped process too
            self.process.wait(timeout=10)

    def subscribers(self) -> int:
        client = self.client()
        try:
            return int(dict(client.pubsub_numsub(REDIS_CHANNEL))[REDIS_CHANNEL.encode()])
        finally:
            client.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Wait for a background thread (a socket timeout, a resubscription) to get somewhere."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def throttle_keys(server: RedisServer) -> list[bytes]:
    client = server.client()
    try:
        return list(client.scan_iter(match="*authgate-login*"))
    finally:
        client.close()


def login(client: FlaskClient, password: str = PASSWORD) -> Any:
    return client.post("/api/auth/login", json={"login": "ada@example.com", "password": password})


@pytest.fixture
def two_services(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[AuthService]]:
    """Two server processes' services: one database, one Redis, each its own feed and cache."""
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'authgate.db'}",
        redis_url=redis_server.url,
        login_rate_limit_per_account="3 per minute",
    )
    services = [build_service(settings), build_service(settings)]
    try:
        for service in services:
            service.start()
        yield services
    finally:
        for service in services:
            service.close()


def login_logout_and_health_check(client: FlaskClient, other: AuthService) -> None:
    """Each answers within the bound; the other process learns of the logout (Redis cannot tell
    it: from the revocation log)."""
    response, login_seconds = timed(lambda: login(client))
    assert response.status_code == 200
    token = response.json["access_token"]
    sid = other.authenticate(token, "bearer").session_id  # the other process knows the session
    revoked = threading.Event()
    other.feed.on_apply.append(lambda _kind, subject: revoked.set() if subject == sid else None)
    response, logout_seconds = timed(lambda: client.post("/api/auth/logout", headers=bearer(token)))
    assert response.status_code == 204
    health, health_seconds = timed(lambda: client.get("/healthz"))
    assert health.status_code == 200
    assert max(login_seconds, logout_seconds, health_seconds) < BOUND_SECONDS
    assert revoked.wait(timeout=5)
    with pytest.raises(TokenRevokedError):
        other.authenticate(token, "bearer")


def test_a_hung_redis_delays_no_login_logout_or_health_check(
    two_services: list[AuthService], redis_server: RedisServer
) -> None:
    one, other = two_services
    client = make_app(one).test_client()
    register(client)
    assert login(client, "wrong password!").status_code == 401
    assert throttle_keys(redis_server)  # the throttle counts in Redis
    assert login(client).status_code == 200  # and gives the name+address its budget back

    redis_server.hang()
    for _ in range(3):
        login_logout_and_health_check(client, other)
    assert one.throttle.counting_in_memory
    # Failed logins are still counted, in this process's memory.
    codes = [login(client, "wrong password!").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_a_killed_redis_delays_no_login_logout_or_health_check(
    two_services: list[AuthService], redis_server: RedisServer
) -> None:
    one, other = two_services
    client = make_app(one).test_client()
    register(client)
    assert login(client).status_code == 200

    redis_server.kill()
    for _ in range(3):
        login_logout_and_health_check(client, other)
    assert one.throttle.counting_in_memory
    codes = [login(client, "wrong password!").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_the_throttle_counts_in_redis_again_once_it_answers(redis_server: RedisServer) -> None:
    """Hung: one call pays the short timeout, the next ones go straight to memory. Resumed: after
    the retry delay the counters land in Redis again."""
    clock = FakeMonotonic()
    throttle = LoginThrottle(
        per_account="3 per minute",
        per_ip="100 per minute",
        storage_uri=redis_server.url,
        monotonic=clock,
    )
    try:
        throttle.record_failure("ada", "10.0.0.1")
        assert throttle_keys(redis_server) and not throttle.counting_in_memory

        redis_server.hang()
        _, first = timed(lambda: throttle.begin_attempt("ada", "10.0.0.2"))
        _, then = timed(lambda: [throttle.begin_attempt("ada", "10.0.0.2") for _ in range(2)])
        assert first < BOUND_SECONDS and then < 0.2  # no timeout (0.25 s) paid again
        assert throttle.counting_in_memory
        with pytest.raises(RateLimitedError):  # three attempts from 10.0.0.2, all in memory
            throttle.begin_attempt("ada", "10.0.0.2")

        redis_server.resume()
        throttle.begin_attempt("bob", "10.0.0.3")  # within the retry delay: memory
        assert not any(b"bob" in key for key in throttle_keys(redis_server))
        clock.now += 5.0
        throttle.begin_attempt("bob", "10.0.0.3")
        assert not throttle.counting_in_memory
        assert any(b"bob" in key for key in throttle_keys(redis_server))
    finally:
        throttle.close()


def _feed(service: AuthService, url: str, clock: FakeMonotonic) -> RevocationFeed:
    """A second process's feed that learns only through Redis (its poll never comes round)."""
    return RevocationFeed(
        service.store,
        AuthCache(),
        SystemClock(),
        poll_interval_seconds=3600,
        remember_seconds=60,
        redis_url=url,
        monotonic=clock,
    )


@pytest.fixture
def feeds(
    tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[RevocationFeed, RevocationFeed, FakeMonotonic]]:
    service = build_service(make_settings(tmp_path, f"sqlite:///{tmp_path / 'authgate.db'}"))
    clock = FakeMonotonic()
    sender, receiver = (
        _feed(service, redis_server.url, clock),
        _feed(service, redis_server.url, clock),
    )
    try:
        receiver.ensure_started()
        assert wait_for(lambda: redis_server.subscribers() == 1)
        yield sender, receiver, clock
    finally:
        sender.stop()
        receiver.stop()
        service.close()


class Inbox:
    def __init__(self, feed: RevocationFeed) -> None:
        self.subjects: list[str] = []
        self.arrived = threading.Condition()
        feed.on_apply.append(self._add)

    def _add(self, _kind: RevocationKind, subject: str) -> None:
        with self.arrived:
            self.subjects.append(subject)
            self.arrived.notify_all()

    def wait_for(self, subject: str, seconds: float = 5.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: subject in self.subjects, timeout=seconds)


def test_publishing_never_waits_for_a_hung_redis_and_resumes_after_it(
    feeds: tuple[RevocationFeed, RevocationFeed, FakeMonotonic], redis_server: RedisServer
) -> None:
    sender, receiver, clock = feeds
    inbox = Inbox(receiver)
    sender.announce([(RevocationKind.SESSION, "before")])
    assert inbox.wait_for("before")

    redis_server.hang()
    _, seconds = timed(lambda: sender.announce([(RevocationKind.SESSION, "while-hung")]))
    assert seconds < 0.2  # the publish (0.5 s timeout) waits on the sender thread, not here
    assert sender._cache.revoked_sessions.get("while-hung")  # applied locally at once
    assert wait_for(lambda: sender._publish_paused_until is not None)  # it timed out there

    redis_server.resume()
    clock.now += 5.0
    sender.announce([(RevocationKind.SESSION, "after")])
    assert inbox.wait_for("after")  # the subscription survived the hang


def test_the_subscriber_comes_back_with_a_restarted_redis(
    feeds: tuple[RevocationFeed, RevocationFeed, FakeMonotonic], redis_server: RedisServer
) -> None:
    sender, receiver, clock = feeds
    inbox = Inbox(receiver)
    redis_server.kill()
    sender.announce([(RevocationKind.SESSION, "while-down")])
    assert wait_for(lambda: sender._publish_paused_until is not None)

    redis_server.start()  # the same port
    assert wait_for(lambda: redis_server.subscribers() == 1)
    clock.now += 5.0
    sender.announce([(RevocationKind.SESSION, "after")])
    assert inbox.wait_for("after")
