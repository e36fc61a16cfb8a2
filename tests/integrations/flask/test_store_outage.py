"""A database outage is a 503 with ``Retry-After`` and one log line, not a 500 "bug"."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from authgate.errors import StoreUnavailableError
from authgate.integrations.flask.errors import RETRY_AFTER_SECONDS
from authgate.service import AuthService
from tests.helpers import PASSWORD, bearer, login, register


def _store_failure() -> StoreUnavailableError:
    try:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("secret server detail"))
    except OperationalError as e:
        failure = StoreUnavailableError()
        failure.__cause__ = e
        return failure


def _fail(*args: object, **kwargs: object) -> object:
    raise _store_failure()


def _assert_outage(response: Any) -> None:
    assert response.status_code == 503
    assert response.json["error"]["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert "secret server detail" not in response.get_data(as_text=True)


def test_a_store_failure_is_a_503_with_retry_after_and_one_warning(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/api/needs-the-database")
    def needs_the_database() -> None:
        raise _store_failure()

    with caplog.at_level(logging.DEBUG, logger="authgate"):
        response = client.get("/api/needs-the-database", headers={"X-Request-ID": "req-db-1"})
    _assert_outage(response)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "req-db-1" in message and "OperationalError" in message
    assert warnings[0].exc_info is None  # no traceback at warning level...
    assert any(r.levelno == logging.DEBUG and r.exc_info for r in caplog.records)  # ...at debug


def test_a_store_failure_on_an_html_page_is_a_503_page_with_retry_after(
    app: Flask, client: FlaskClient
) -> None:
    @app.get("/dashboard")
    def dashboard() -> None:
        raise _store_failure()

    response = client.get("/dashboard", headers={"Accept": "text/html"})
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)


@pytest.mark.parametrize("method", ["find_user_by_login", "create_session"])
def test_login_during_an_outage_is_503(
    client: FlaskClient, service: AuthService, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    register(client)
    monkeypatch.setattr(service.store, method, _fail)
    response = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    )
    _assert_outage(response)


def test_refresh_and_an_uncached_token_during_an_outage_are_503(
    client: FlaskClient, service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(client)
    body = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    ).json
    service.cache.clear()
    for method in ("rotate_refresh_token", "get_session_with_user", "get_session", "get_user"):
        monkeypatch.setattr(service.store, method, _fail)
    _assert_outage(client.post("/api/auth/refresh", json={"refresh_token": body["refresh_token"]}))
    _assert_outage(client.get("/api/auth/me", headers=bearer(body["access_token"])))


def test_healthz_is_503_with_retry_after_when_the_database_does_not_answer(
    client: FlaskClient, service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.store, "ping", lambda: False)
    _assert_outage(client.get("/healthz"))


def test_a_cached_session_keeps_working_during_an_outage(
    client: FlaskClient, service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The steady state needs no database: only what must read it answers 503."""
    register(client)
    token = login(client)
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    for method in ("get_session_with_user", "get_session", "get_user", "find_user_by_login"):
        monkeypatch.setattr(service.store, method, _fail)
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
