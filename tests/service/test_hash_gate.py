"""A login flood past the hash gate's queue: 503 ``server_busy`` with ``Retry-After``, and
nothing charged or written for a refused login (no session, no attempt of the throttle, no
audit event), so a user refused while the server was busy is not locked out afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from authgate.bootstrap import build_service
from authgate.core.audit import AuditQuery
from authgate.core.passwords import HashGate
from authgate.errors import InvalidCredentialsError, ServerBusyError
from authgate.service import AuthService, ClientInfo
from tests.helpers import PASSWORD, error_code, make_app, make_settings, register


@pytest.fixture
def busy_service(tmp_path: Path, database_url: str) -> Iterator[AuthService]:
    """One hash at a time, one place in the queue but no wait (so a refusal comes from the turn
    a login reserves before its throttle counts, not from the look before its query), and a
    per-account budget of 2 failed logins."""
    settings = make_settings(
        tmp_path,
        database_url,
        password_hash_concurrency=1,
        password_hash_queue=1,
        password_hash_max_wait_seconds=0,
        login_rate_limit_per_account="2 per 5 minutes",
    )
    service = build_service(settings)
    yield service
    service.close()


def _gate(service: AuthService) -> HashGate:
    gate = service.sessions.hasher.gate
    assert gate is not None
    return gate


def _login_events(service: AuthService) -> list[str]:
    events = service.store.list_audit_events(AuditQuery(limit=1000))
    return [e.type for e in events if e.type.startswith("login.")]


def test_past_the_queue_a_login_answers_503_json_with_retry_after(
    busy_service: AuthService,
) -> None:
    client: FlaskClient = make_app(busy_service).test_client()
    user = register(client)
    sessions_before = busy_service.store.list_sessions(user["id"], now=busy_service.clock.now())
    events_before = _login_events(busy_service)
    body = {"login": "ada@example.com", "password": PASSWORD}
    with _gate(busy_service).admit():  # a hash is running; nobody may wait
        answers = [client.post("/api/auth/login", json=body) for _ in range(5)]
    for answer in answers:
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "1"  # the max wait, at least 1 s
        assert answer.json == {
            "error": {
                "code": "server_busy",
                "message": "The server is busy checking passwords; try again in a moment.",
                "details": {"retry_after": 1},
            }
        }
        assert "Set-Cookie" not in answer.headers
    now = busy_service.clock.now()
    assert busy_service.store.list_sessions(user["id"], now=now) == sessions_before
    assert _login_events(busy_service) == events_before
    # Five refusals against a budget of two failures: none was counted, the login goes through.
    assert client.post("/api/auth/login", json=body).status_code == 200


def test_a_refused_login_spends_no_attempt_of_the_throttle_unknown_users_included(
    busy_service: AuthService,
) -> None:
    client = ClientInfo(ip="192.0.2.7")
    with _gate(busy_service).admit():
        for _ in range(5):
            with pytest.raises(ServerBusyError):
                busy_service.sessions.login("nobody@example.com", "whatever-123", client)
    # The dummy hash of an unknown user waits at the same gate; once free, the budget is whole.
    for _ in range(2):
        with pytest.raises(InvalidCredentialsError):
            busy_service.sessions.login("nobody@example.com", "whatever-123", client)


def test_every_password_check_of_the_service_waits_at_the_gate(busy_service: AuthService) -> None:
    """Registration hashes too: refused while the gate is full, nothing created."""
    client: FlaskClient = make_app(busy_service).test_client()
    with _gate(busy_service).admit():
        answer = client.post(
            "/api/auth/register", json={"email": "bob@example.com", "password": PASSWORD}
        )
    assert answer.status_code == 503
    assert error_code(answer) == "server_busy"
    assert busy_service.store.find_user_by_login("bob@example.com") is None
