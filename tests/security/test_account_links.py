"""Attacks on the mailed-link flows: telling known addresses from unknown ones ("forgot password"
answers and timing), and reusing, guessing or outliving a link's token."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from authgate.bootstrap import build_service
from authgate.core.account_tokens import hash_account_token
from authgate.service import AuthService
from tests.helpers import (
    BROWSER,
    PASSWORD,
    StepClock,
    error_code,
    mailed_token,
    make_app,
    make_settings,
    queued_mails,
    register,
)

NEW_PASSWORD = "a brand new passphrase"
ROUNDS = 40


@pytest.fixture
def roomy_service(tmp_path: Path, database_url: str) -> Iterator[AuthService]:
    """Throttles wide enough for a few dozen requests from one address."""
    settings = make_settings(
        tmp_path,
        database_url,
        mail_rate_limit_per_address="1000 per minute",
        mail_rate_limit_per_ip="1000 per minute",
    )
    service = build_service(settings, clock=StepClock())
    yield service
    service.close()


def _timed_forgot(client: FlaskClient, service: AuthService, email: str) -> float:
    started = time.perf_counter()
    response = client.post("/api/auth/password/forgot", json={"email": email}, headers=BROWSER)
    elapsed = time.perf_counter() - started
    assert response.status_code == 202
    service.tasks.wait_idle()  # the background work of one request does not slow the next
    return elapsed


def test_forgot_password_takes_as_long_for_known_and_unknown_addresses(
    roomy_service: AuthService,
) -> None:
    """The answer leaves before the lookup: interleaved requests for a known and an unknown
    address take the same time, within a generous bound (the medians differ by less than a
    millisecond or a quarter, whichever is larger; a lookup, a token and a mail written on the
    request would cost several milliseconds)."""
    service = roomy_service
    client = make_app(service).test_client()
    register(client, "ada@example.com")
    for email in ("ada@example.com", "eve@example.com"):  # warm both paths
        _timed_forgot(client, service, email)
    known, unknown = [], []
    for _ in range(ROUNDS):
        known.append(_timed_forgot(client, service, "ada@example.com"))
        unknown.append(_timed_forgot(client, service, "eve@example.com"))
    known_median, unknown_median = statistics.median(known), statistics.median(unknown)
    bound = max(0.001, 0.25 * min(known_median, unknown_median))
    assert abs(known_median - unknown_median) < bound, (known_median, unknown_median)
    assert len(queued_mails(service, "password_reset")) == ROUNDS + 1


def test_forgot_password_answers_the_same_bytes_for_every_address(
    client: FlaskClient, service: AuthService
) -> None:
    register(client, "ada@example.com")
    answers = {
        email: client.post("/api/auth/password/forgot", json={"email": email}, headers=BROWSER)
        for email in ("ada@example.com", "ADA@example.com", "eve@example.com")
    }
    shapes = {
        (r.status_code, r.get_data(), r.headers.get("Content-Type")) for r in answers.values()
    }
    assert len(shapes) == 1


def test_a_disabled_account_gets_no_reset_link(client: FlaskClient, service: AuthService) -> None:
    from authgate.store.records import UserStatus

    user = register(client, "ada@example.com")
    service.accounts.set_user_access(user["id"], roles=None, status=UserStatus.DISABLED)
    client.post("/api/auth/password/forgot", json={"email": "ada@example.com"})
    assert queued_mails(service, "password_reset") == []


def test_tokens_are_stored_only_as_their_hash(client: FlaskClient, service: AuthService) -> None:
    from sqlalchemy import text

    register(client, "ada@example.com")
    token = mailed_token(service, "verify_email", "ada@example.com")
    with service.store.engine.connect() as conn:  # type: ignore[attr-defined]
        stored = conn.execute(text("SELECT token_hash FROM authgate_account_tokens")).scalars()
        hashes = list(stored)
    assert hashes == [hash_account_token(token)]
    assert token not in hashes and len(token) >= 40


def test_a_reset_token_is_not_a_verification_token(
    client: FlaskClient, service: AuthService
) -> None:
    register(client, "ada@example.com")
    client.post("/api/auth/password/forgot", json={"email": "ada@example.com"})
    reset = mailed_token(service, "password_reset", "ada@example.com")
    for path in ("/api/auth/email/verify", "/api/auth/email/change/confirm"):
        response = client.post(path, json={"token": reset})
        assert error_code(response) == "invalid_or_expired_token"
    accept_as_reset = client.post("/api/invitations/preview", json={"token": reset})
    assert error_code(accept_as_reset) == "invalid_or_expired_token"


def test_concurrent_resets_with_one_token_change_the_password_once(
    client: FlaskClient, service: AuthService
) -> None:
    register(client, "ada@example.com")
    client.post("/api/auth/password/forgot", json={"email": "ada@example.com"})
    token = mailed_token(service, "password_reset", "ada@example.com")
    passwords = [f"{NEW_PASSWORD} {i}" for i in range(6)]

    def attempt(password: str) -> int:
        return client.post(
            "/api/auth/password/reset", json={"token": token, "password": password}
        ).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(attempt, passwords))
    assert sorted(statuses) == [204] + [400] * 5
    winner = passwords[statuses.index(204)]
    logins = [
        client.post("/api/auth/login", json={"login": "ada@example.com", "password": p}).status_code
        for p in [*passwords, PASSWORD]
    ]
    assert logins.count(200) == 1 and logins[passwords.index(winner)] == 200


def test_a_forged_host_header_does_not_move_the_links(
    client: FlaskClient, service: AuthService
) -> None:
    """Links come from configuration: a request to a forged Host cannot make authgate mail a
    link to the attacker's site (the token would land there)."""
    register(client, "ada@example.com")
    client.post(
        "/api/auth/password/forgot",
        json={"email": "ada@example.com"},
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )
    (mail,) = queued_mails(service, "password_reset")
    assert "evil.example" not in mail["text"] + mail["html"]
    assert "http://localhost:8086/reset-password#token=" in mail["text"]


def test_no_live_link_stays_in_the_outbox_once_its_mail_is_sent(
    client: FlaskClient, service: AuthService
) -> None:
    """Tokens are kept hashed at rest: the outbox row of a sent mail keeps no body (the link)."""
    from sqlalchemy import select

    from authgate.store.sqlalchemy.models import OutboxMailRow

    register(client, "ada@example.com")
    client.post("/api/auth/password/forgot", json={"email": "ada@example.com"})
    service.tasks.wait_idle()
    deadline = time.monotonic() + 10
    while service.store.count_pending_mails():  # the sender (development: .eml files) runs
        assert time.monotonic() < deadline, "the mails were not sent"
        time.sleep(0.05)
    token = mailed_token(service, "password_reset", "ada@example.com")  # from the .eml file

    with service.store.engine.connect() as conn:
        rows = conn.execute(select(OutboxMailRow)).all()
    assert sorted(r.kind for r in rows) == ["password_reset", "verify_email"]
    for row in rows:
        assert row.sent_at is not None and row.recipient == "ada@example.com" and row.subject
        assert (row.body_text, row.body_html) == ("", "")
    assert all(token not in str(tuple(row)) for row in rows)
