"""Verification, password reset and email change through the JSON API (the mails read from the
outbox table), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from authgate.bootstrap import build_service
from authgate.service import AuthService
from tests.helpers import (
    BROWSER,
    PASSWORD,
    PUBLIC_URL,
    StepClock,
    bearer,
    error_code,
    login,
    mailed_token,
    make_app,
    make_settings,
    queued_mails,
    register,
    signed_in,
)

NEW_PASSWORD = "a brand new passphrase"


# Verification --------------------------------------------------------------------------------


def test_registration_mails_a_verification_link_that_verifies_once(
    client: FlaskClient, service: AuthService
) -> None:
    register(client, "ada@example.com")
    (mail,) = queued_mails(service, "verify_email")
    assert mail["to"] == "ada@example.com"
    assert f"{PUBLIC_URL}/verify-email#token=" in mail["text"]
    token = mailed_token(service, "verify_email", "ada@example.com")

    response = client.post("/api/auth/email/verify", json={"token": token}, headers=BROWSER)
    assert response.status_code == 200, response.json
    assert response.json["user"]["email_verified"] is True

    again = client.post("/api/auth/email/verify", json={"token": token}, headers=BROWSER)
    assert again.status_code == 400 and error_code(again) == "invalid_or_expired_token"


def test_a_verification_link_expires_after_24_hours(
    client: FlaskClient, service: AuthService, clock: StepClock
) -> None:
    register(client, "ada@example.com")
    token = mailed_token(service, "verify_email", "ada@example.com")
    clock.advance(24 * 3600)
    response = client.post("/api/auth/email/verify", json={"token": token})
    assert error_code(response) == "invalid_or_expired_token"


def test_unknown_tokens_are_refused_without_an_error_page(client: FlaskClient) -> None:
    for path in ("/api/auth/email/verify", "/api/auth/email/change/confirm"):
        response = client.post(path, json={"token": "agl_nothing"})
        assert response.status_code == 400 and error_code(response) == "invalid_or_expired_token"
    response = client.post(
        "/api/auth/password/reset", json={"token": "x", "password": NEW_PASSWORD}
    )
    assert error_code(response) == "invalid_or_expired_token"


def test_a_logged_in_user_asks_for_a_new_verification_mail(
    client: FlaskClient, service: AuthService
) -> None:
    _, token = signed_in(client, "ada@example.com")
    response = client.post("/api/auth/email/verify/request", headers=bearer(token))
    assert response.status_code == 202, response.json
    assert len(queued_mails(service, "verify_email")) == 2
    link = mailed_token(service, "verify_email", "ada@example.com")
    client.post("/api/auth/email/verify", json={"token": link})
    response = client.post("/api/auth/email/verify/request", headers=bearer(token))
    assert response.status_code == 409


@pytest.fixture
def strict_service(tmp_path: Path, database_url: str) -> Iterator[AuthService]:
    """A deployment with AUTHGATE_EMAIL_VERIFICATION=required and a tight mail throttle."""
    settings = make_settings(
        tmp_path,
        database_url,
        email_verification="required",
        mail_rate_limit_per_address="3 per minute",
    )
    service = build_service(settings, clock=StepClock())
    yield service
    service.close()


@pytest.fixture
def strict_client(strict_service: AuthService) -> FlaskClient:
    return make_app(strict_service).test_client()


def test_required_verification_refuses_the_login_until_verified(
    strict_client: FlaskClient, strict_service: AuthService
) -> None:
    client, service = strict_client, strict_service
    register(client, "ada@example.com")
    response = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}, headers=BROWSER
    )
    assert response.status_code == 403 and error_code(response) == "email_not_verified"
    assert "Set-Cookie" not in response.headers and "access_token" not in response.json
    wrong = client.post("/api/auth/login", json={"login": "ada@example.com", "password": "nope"})
    assert error_code(wrong) == "invalid_credentials"  # the 403 needs the right password

    resend = {"email": "ada@example.com", "password": PASSWORD}
    answer = client.post("/api/auth/email/verify/resend", json=resend, headers=BROWSER)
    assert answer.status_code == 202
    assert len(queued_mails(service, "verify_email")) == 2
    for body in (
        {"email": "ada@example.com", "password": "wrong password"},
        {"email": "nobody@example.com", "password": PASSWORD},
    ):
        other = client.post("/api/auth/email/verify/resend", json=body, headers=BROWSER)
        assert (other.status_code, other.json) == (202, answer.json)
    assert len(queued_mails(service, "verify_email")) == 2

    token = mailed_token(service, "verify_email", "ada@example.com")
    assert client.post("/api/auth/email/verify", json={"token": token}).status_code == 200
    assert login(client, "ada@example.com")


# Password reset ------------------------------------------------------------------------------


def test_forgot_answers_the_same_for_known_and_unknown_addresses(
    client: FlaskClient, service: AuthService
) -> None:
    register(client, "ada@example.com")
    known = client.post("/api/auth/password/forgot", json={"email": "ada@example.com"})
    unknown = client.post("/api/auth/password/forgot", json={"email": "eve@example.com"})
    assert (known.status_code, known.json) == (unknown.status_code, unknown.json)
    assert known.status_code == 202
    mails = queued_mails(service, "password_reset")
    assert [m["to"] for m in mails] == ["ada@example.com"]
    assert f"{PUBLIC_URL}/reset-password#token=" in mails[0]["text"]


def test_reset_sets_the_password_and_ends_every_session(
    client: FlaskClient, service: AuthService
) -> None:
    register(client, "ada@example.com")
    old_access = login(client, "ada@example.com")
    old_refresh = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    ).json
    client.post("/api/auth/password/forgot", json={"email": "ada@example.com"})
    token = mailed_token(service, "password_reset", "ada@example.com")

    response = client.post(
        "/api/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}, headers=BROWSER
    )
    assert response.status_code == 204, response.json

    assert client.get("/api/auth/me", headers=bearer(old_access)).status_code == 401
    refreshed = client.post(
        "/api/auth/refresh", json={"refresh_token": old_refresh["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert (
        client.get("/api/auth/me", headers=bearer(old_refresh["access_token"])).status_code == 401
    )
    old = client.post("/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD})
    assert old.status_code == 401
    assert login(client, "ada@example.com", NEW_PASSWORD)
    (notice,) = queued_mails(service, "password_changed_notice")
    assert notice["to"] == "ada@example.com"

    again = client.post(
        "/api/auth/password/reset", json={"token": token, "password": PASSWORD + "!"}
    )
    assert error_code(again) == "invalid_or_expired_token"


def test_a_weak_new_password_is_refused_and_the_link_still_works(
    client: FlaskClient, service: AuthService
) -> None:
    register(client, "ada@example.com")
    client.post("/api/auth/password/forgot", json={"email": "ada@example.com"})
    token = mailed_token(service, "password_reset", "ada@example.com")
    weak = client.post("/api/auth/password/reset", json={"token": token, "password": "password1"})
    assert weak.status_code == 422 and "password" in weak.json["error"]["details"]["fields"]
    ok = client.post("/api/auth/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert ok.status_code == 204


def test_a_reset_link_expires_after_30_minutes(
    client: FlaskClient, service: AuthService, clock: StepClock
) -> None:
    register(client, "ada@example.com")
    client.post("/api/auth/password/forgot", json={"email": "ada@example.com"})
    token = mailed_token(service, "password_reset", "ada@example.com")
    clock.advance(30 * 60)
    response = client.post(
        "/api/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
    )
    assert error_code(response) == "invalid_or_expired_token"


def test_a_password_change_kills_a_reset_link_mailed_before(
    client: FlaskClient, service: AuthService
) -> None:
    _, access = signed_in(client, "ada@example.com")
    client.post("/api/auth/password/forgot", json={"email": "ada@example.com"})
    token = mailed_token(service, "password_reset", "ada@example.com")
    changed = client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(access),
    )
    assert changed.status_code == 204
    response = client.post(
        "/api/auth/password/reset", json={"token": token, "password": "yet another passphrase"}
    )
    assert error_code(response) == "invalid_or_expired_token"


def test_forgot_is_throttled_per_address_with_retry_after(strict_client: FlaskClient) -> None:
    for _ in range(3):
        ok = strict_client.post("/api/auth/password/forgot", json={"email": "ada@example.com"})
        assert ok.status_code == 202
    refused = strict_client.post("/api/auth/password/forgot", json={"email": "ADA@example.com"})
    assert refused.status_code == 429 and error_code(refused) == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    other = strict_client.post("/api/auth/password/forgot", json={"email": "bob@example.com"})
    assert other.status_code == 202


# Email change --------------------------------------------------------------------------------


def test_email_change_mails_both_addresses_and_happens_on_confirm(
    client: FlaskClient, service: AuthService
) -> None:
    _, access = signed_in(client, "ada@example.com")
    wrong = client.post(
        "/api/auth/email/change",
        json={"email": "ada@new.example.com", "password": "wrong"},
        headers=bearer(access),
    )
    assert wrong.status_code == 422 and "password" in wrong.json["error"]["details"]["fields"]
    response = client.post(
        "/api/auth/email/change",
        json={"email": "ada@new.example.com", "password": PASSWORD},
        headers=bearer(access),
    )
    assert response.status_code == 202, response.json
    (notice,) = queued_mails(service, "email_change_notice")
    assert notice["to"] == "ada@example.com" and "ada@new.example.com" in notice["text"]
    token = mailed_token(service, "email_change", "ada@new.example.com")
    me = client.get("/api/auth/me", headers=bearer(access)).json["user"]
    assert me["email"] == "ada@example.com"  # not before the link is used

    confirmed = client.post("/api/auth/email/change/confirm", json={"token": token})
    assert confirmed.status_code == 200, confirmed.json
    assert confirmed.json["user"]["email"] == "ada@new.example.com"
    assert confirmed.json["user"]["email_verified"] is True
    assert client.get("/api/auth/me", headers=bearer(access)).json["user"]["email"] == (
        "ada@new.example.com"
    )
    assert login(client, "ada@new.example.com")
    again = client.post("/api/auth/email/change/confirm", json={"token": token})
    assert error_code(again) == "invalid_or_expired_token"


def test_email_changes_to_one_address_are_throttled_per_that_address(
    tmp_path: Path, database_url: str
) -> None:
    """Not only the requester's budget: several accounts (from several clients) must not be
    able to flood one stranger's address with confirmation mails."""
    settings = make_settings(tmp_path, database_url, mail_rate_limit_per_address="2 per minute")
    service = build_service(settings, clock=StepClock())
    try:
        client = make_app(service).test_client()
        answers = []
        for n in range(3):
            _, access = signed_in(client, f"user{n}@example.com")
            answers.append(
                client.post(
                    "/api/auth/email/change",
                    json={"email": "Target@example.com", "password": PASSWORD},
                    headers=bearer(access),
                    environ_base={"REMOTE_ADDR": f"198.51.100.{n}"},
                )
            )
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert error_code(answers[2]) == "rate_limited"
        assert int(answers[2].headers["Retry-After"]) >= 1
        assert len(queued_mails(service, "email_change")) == 2
    finally:
        service.close()


def test_email_change_to_an_address_taken_meanwhile_is_a_conflict(
    client: FlaskClient, service: AuthService
) -> None:
    _, access = signed_in(client, "ada@example.com")
    client.post(
        "/api/auth/email/change",
        json={"email": "bob@example.com", "password": PASSWORD},
        headers=bearer(access),
    )
    token = mailed_token(service, "email_change", "bob@example.com")
    register(client, "bob@example.com")
    response = client.post("/api/auth/email/change/confirm", json={"token": token})
    assert response.status_code == 409 and error_code(response) == "user_exists"
    taken = client.post(
        "/api/auth/email/change",
        json={"email": "bob@example.com", "password": PASSWORD},
        headers=bearer(access),
    )
    assert taken.status_code == 409


def test_an_email_change_kills_the_links_mailed_to_the_old_address(
    client: FlaskClient, service: AuthService
) -> None:
    _, access = signed_in(client, "ada@example.com")
    verify = mailed_token(service, "verify_email", "ada@example.com")
    client.post("/api/auth/password/forgot", json={"email": "ada@example.com"})
    reset = mailed_token(service, "password_reset", "ada@example.com")
    client.post(
        "/api/auth/email/change",
        json={"email": "ada@new.example.com", "password": PASSWORD},
        headers=bearer(access),
    )
    change = mailed_token(service, "email_change", "ada@new.example.com")
    assert client.post("/api/auth/email/change/confirm", json={"token": change}).status_code == 200

    assert error_code(client.post("/api/auth/email/verify", json={"token": verify})) == (
        "invalid_or_expired_token"
    )
    response = client.post(
        "/api/auth/password/reset", json={"token": reset, "password": NEW_PASSWORD}
    )
    assert error_code(response) == "invalid_or_expired_token"


def test_email_change_needs_a_login_session(client: FlaskClient) -> None:
    response = client.post(
        "/api/auth/email/change", json={"email": "x@example.com", "password": PASSWORD}
    )
    assert response.status_code == 401
