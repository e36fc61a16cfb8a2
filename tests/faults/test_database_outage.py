"""A real PostgreSQL outage: the server of a private cluster stopped, then started again.

While it is down, what needs the database answers 503 with ``Retry-After`` at once; once it is
back, nothing of the outage remains: no login attempt was counted, no refresh token spent, no
session lost."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from authgate.bootstrap import build_service
from authgate.integrations.flask.errors import RETRY_AFTER_SECONDS
from authgate.service import AuthService
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import upgrade_database
from tests.faults.postgres import PrivatePostgres
from tests.helpers import (
    PASSWORD,
    bearer,
    mailed_token,
    make_app,
    make_settings,
    queued_mails,
    register,
)

OUTAGE_LOGINS = 12  # more than the budget of 10 failures per account and address


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        engine = create_database_engine(server.url)
        upgrade_database(engine)
        engine.dispose()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def services(tmp_path: Path, postgres: PrivatePostgres) -> Iterator[list[AuthService]]:
    """Two server processes' services on one database and one key directory."""
    settings = make_settings(tmp_path, postgres.url)
    built = [build_service(settings) for _ in range(2)]
    yield built
    for service in built:
        service.close()


def _assert_outage(response: Any) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.json["error"]["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)


def _timed(call: Any) -> tuple[Any, float]:
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


def test_an_outage_answers_503_and_leaves_no_trace_after_recovery(
    postgres: PrivatePostgres, services: list[AuthService]
) -> None:
    this, other = (make_app(s).test_client() for s in services)
    register(this)
    credentials = {"login": "ada@example.com", "password": PASSWORD}
    first = this.post("/api/auth/login", json=credentials).json
    second = this.post("/api/auth/login", json=credentials).json
    assert this.get("/api/auth/me", headers=bearer(first["access_token"])).status_code == 200

    postgres.stop()

    slowest = 0.0
    for _ in range(OUTAGE_LOGINS):
        response, took = _timed(lambda: this.post("/api/auth/login", json=credentials))
        _assert_outage(response)
        slowest = max(slowest, took)
    response, took = _timed(
        lambda: this.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]})
    )
    _assert_outage(response)
    slowest = max(slowest, took)
    # A token this process has not seen must be checked against the database...
    response, took = _timed(
        lambda: other.get("/api/auth/me", headers=bearer(first["access_token"]))
    )
    _assert_outage(response)
    slowest = max(slowest, took)
    # ...one it has checked already needs none.
    assert this.get("/api/auth/me", headers=bearer(first["access_token"])).status_code == 200
    response, took = _timed(lambda: this.get("/healthz"))
    _assert_outage(response)
    slowest = max(slowest, took)
    assert slowest < 2.0, f"an answer during the outage took {slowest:.2f} s"

    postgres.start()

    assert this.get("/healthz").status_code == 200
    # No attempt of the outage was counted: the budget is whole.
    assert this.post("/api/auth/login", json=credentials).status_code == 200
    # The refresh token the outage refused is still the current one: no replay, no logout.
    refreshed = this.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.json
    assert other.get("/api/auth/me", headers=bearer(first["access_token"])).status_code == 200
    assert (
        other.get("/api/auth/me", headers=bearer(refreshed.json["access_token"])).status_code == 200
    )
    sessions = other.get("/api/auth/sessions", headers=bearer(first["access_token"])).json
    assert len(sessions["sessions"]) == 3  # the two from before and the one after the outage


def test_wrong_passwords_after_an_outage_are_still_throttled(
    postgres: PrivatePostgres, services: list[AuthService]
) -> None:
    client: FlaskClient = make_app(services[0]).test_client()
    register(client)
    postgres.stop()
    wrong = {"login": "ada@example.com", "password": "a wrong password"}
    for _ in range(OUTAGE_LOGINS):
        _assert_outage(client.post("/api/auth/login", json=wrong))
    postgres.start()
    codes = [client.post("/api/auth/login", json=wrong).status_code for _ in range(11)]
    assert codes == [401] * 10 + [429]


def _forgot(client: FlaskClient, email: str) -> None:
    response = client.post("/api/auth/password/forgot", json={"email": email})
    assert response.status_code == 202, response.json


def test_forgot_password_while_the_database_is_down_is_tried_again_then_given_up_in_one_line(
    postgres: PrivatePostgres, services: list[AuthService], caplog: pytest.LogCaptureFixture
) -> None:
    service = services[0]
    service.recovery.retry_delays_seconds = (0.2, 0.4)
    client = make_app(service).test_client()
    register(client)
    postgres.stop()

    with caplog.at_level(logging.INFO):
        _forgot(client, "ada@example.com")
        assert service.tasks.wait_idle(timeout=10)

    lines = [r for r in caplog.records if r.name in ("authgate.recovery", "authgate.tasks")]
    assert [(r.levelno, r.exc_info) for r in lines] == [
        (logging.INFO, None),
        (logging.INFO, None),
        (logging.WARNING, None),
    ], [r.getMessage() for r in lines]
    given_up = lines[-1].getMessage()
    digest = hashlib.sha256(b"ada@example.com").hexdigest()[:10]
    assert given_up.startswith(f"forgot password for an address at example.com (sha256 {digest})")
    assert "after 3 attempts; no reset link was mailed" in given_up
    assert not any("ada@" in r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "\n" not in given_up
    postgres.start()
    assert queued_mails(service, "password_reset") == []


def test_forgot_password_during_a_short_outage_mails_the_link_once_the_database_is_back(
    postgres: PrivatePostgres, services: list[AuthService], caplog: pytest.LogCaptureFixture
) -> None:
    service = services[0]
    service.recovery.retry_delays_seconds = (0.2, 8.0)
    client = make_app(service).test_client()
    register(client)
    postgres.stop()

    with caplog.at_level(logging.INFO, logger="authgate.recovery"):
        _forgot(client, "ada@example.com")
        deadline = time.monotonic() + 5
        while not caplog.records or "attempt 2 of 3" not in caplog.records[-1].getMessage():
            assert time.monotonic() < deadline, "the second attempt did not fail"
            time.sleep(0.05)
        postgres.start()  # during the wait before the third attempt
        assert service.tasks.wait_idle(timeout=15)

    assert "handled at attempt 3" in caplog.records[-1].getMessage()
    assert mailed_token(service, "password_reset", "ada@example.com")


@pytest.mark.parametrize("closed_by", ["a restart", "pg_terminate_backend"])
def test_pooled_connections_the_server_closed_cost_no_request_and_no_ping(
    postgres: PrivatePostgres, closed_by: str
) -> None:
    """The pool sends no ping on checkout (a round trip each: tests/store/test_round_trips.py):
    it sees, without one, that the server has closed a pooled connection, and connects anew. No
    request fails for it — not even the first after a restart that no request saw (nor a
    poller, whose failure would renew the pool: a store alone here)."""
    from sqlalchemy import text

    from authgate.store.sqlalchemy.stores import SqlAlchemyStore

    store = SqlAlchemyStore(create_database_engine(postgres.url))
    try:
        held = [store.engine.connect() for _ in range(3)]  # three connections in the pool
        for conn in held:
            conn.execute(text("SELECT 1"))
            conn.close()
        if closed_by == "a restart":
            postgres.stop()
            postgres.start()
        else:
            admin = create_database_engine(postgres.url)
            with admin.connect() as conn:
                conn.execute(
                    text(
                        # With a timeout it returns once the backend has gone (its
                        # goodbye and the socket's close already sent), not on signalling.
                        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                        "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
                    )
                )
            admin.dispose()
        for _ in range(3):  # each pooled connection is met once
            assert store.ping()
            assert store.find_user_by_login("nobody@example.com") is None
        assert store.latest_revocation_id() == 0
    finally:
        store.dispose()
