"""Strict CORS from one exact allowlist, and CSRF for cookie-authenticated writes."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.helpers import BROWSER, FRONTEND, PASSWORD, bearer, login, register

LOOKALIKES = [
    "https://evil.test",
    "null",
    "http://localhost:4100.evil.test",
    "http://evillocalhost:4100",
    "https://localhost:4100",
    "http://localhost:41000",
]


def _preflight(client: FlaskClient, origin: str):  # type: ignore[no-untyped-def]
    return client.options(
        "/api/auth/login",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-requested-with",
        },
    )


def test_preflight_from_an_allowed_origin(client: FlaskClient) -> None:
    response = _preflight(client, FRONTEND)
    assert response.status_code == 200
    assert response.headers.getlist("Access-Control-Allow-Origin") == [FRONTEND]
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers["Vary"]
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"content-type", "x-requested-with"} <= allowed
    methods = response.headers["Access-Control-Allow-Methods"]
    for method in ("GET", "POST", "PATCH", "DELETE"):
        assert method in methods


def test_preflight_allows_all_documented_headers(client: FlaskClient) -> None:
    response = client.options(
        "/api/auth/me",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": (
                "authorization, content-type, x-requested-with, x-origin"
            ),
        },
    )
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert allowed == {"authorization", "content-type", "x-requested-with", "x-origin"}


@pytest.mark.parametrize("origin", LOOKALIKES)
def test_other_origins_get_no_cors_headers(client: FlaskClient, origin: str) -> None:
    for response in (
        _preflight(client, origin),
        client.get("/healthz", headers={"Origin": origin}),
    ):
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Credentials" not in response.headers


def test_simple_request_from_allowed_origin_gets_exactly_one_allow_origin(
    client: FlaskClient,
) -> None:
    response = client.get("/healthz", headers={"Origin": FRONTEND})
    assert response.headers.getlist("Access-Control-Allow-Origin") == [FRONTEND]
    assert "Origin" in response.headers["Vary"]


def _browser_login(client: FlaskClient) -> None:
    register(client)
    response = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}, headers=BROWSER
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Requested-With": "fetch"},
        {"Origin": "https://evil.test", "X-Requested-With": "fetch"},
        {"Origin": "null", "X-Requested-With": "fetch"},
        {"Origin": FRONTEND},
        {"Referer": "https://evil.test/page", "X-Requested-With": "fetch"},
    ],
)
def test_cookie_write_without_origin_and_header_is_csrf_failed(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    _browser_login(client)
    response = client.post("/api/auth/logout-all", headers=headers)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "csrf_failed"
    assert client.get("/api/auth/me").status_code == 200  # still logged in


@pytest.mark.parametrize(
    "headers",
    [
        BROWSER,
        {"Origin": "http://localhost:8086", "X-Origin": "client"},
        {"Referer": "http://localhost:4100/app/page", "X-Requested-With": "x"},
    ],
)
def test_cookie_write_from_allowed_or_own_origin_passes(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    _browser_login(client)
    assert client.patch("/api/auth/me", json={"name": "A"}, headers=headers).status_code == 200


def test_bearer_writes_are_exempt_from_csrf(client: FlaskClient) -> None:
    register(client)
    token = login(client)
    response = client.patch("/api/auth/me", json={"name": "A"}, headers=bearer(token))
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/api/auth/login", "/api/auth/register"])
def test_login_csrf_refuses_foreign_browser_origins(client: FlaskClient, path: str) -> None:
    register(client)
    body = {"login": "ada@example.com", "password": PASSWORD}
    if path.endswith("register"):
        body = {"email": "new@example.com", "password": PASSWORD}
    for headers in (
        {"Origin": "https://evil.test", "X-Requested-With": "x"},
        {"Origin": FRONTEND},
        {"Referer": "https://evil.test/", "X-Requested-With": "x"},
    ):
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 403
        assert response.json["error"]["code"] == "csrf_failed"
        assert not response.headers.getlist("Set-Cookie")
