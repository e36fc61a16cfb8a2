"""Browser flow over real sockets: hardened cookies, CSRF on cookie-authenticated writes, logout."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.helpers import (
    NO_REDIS_BOUND_SECONDS,
    Server,
    SetCookie,
    error_code,
    register,
    set_cookies,
    time_until_status,
    unique_email,
)
from tests.helpers import BROWSER, FRONTEND, PASSWORD

SESSION_COOKIE = "authgate_session"
REFRESH_COOKIE = "authgate_refresh"
COOKIE_PATHS = {SESSION_COOKIE: "/", REFRESH_COOKIE: "/api/auth"}


def cookie_header(*cookies: SetCookie) -> dict[str, str]:
    """What a browser would send: ``requests`` will not send Secure cookies over http."""
    return {"Cookie": "; ".join(f"{c.name}={c.value}" for c in cookies)}


def browser_login(server: Server, email: str) -> tuple[dict[str, Any], dict[str, SetCookie]]:
    response = server.post(
        "/api/auth/login", json={"login": email, "password": PASSWORD}, headers=BROWSER
    )
    assert response.status_code == 200, response.text
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    return response.json(), set_cookies(response)


def assert_hardened(cookie: SetCookie) -> None:
    attributes = cookie.attributes
    assert "httponly" in attributes, cookie
    assert "secure" in attributes, cookie
    assert attributes.get("samesite") == "Lax", cookie
    assert attributes.get("path") == COOKIE_PATHS[cookie.name], cookie
    assert "domain" not in attributes, cookie  # host-only


def test_browser_login_sets_hardened_cookies(server: Server) -> None:
    email = unique_email("cookie")
    register(server, email)

    body, cookies = browser_login(server, email)

    assert set(cookies) == {SESSION_COOKIE, REFRESH_COOKIE}
    for cookie in cookies.values():
        assert_hardened(cookie)
        assert cookie.value
        assert int(cookie.attributes["max-age"]) > 0
    assert "refresh_token" not in body  # a browser keeps it only in the HttpOnly cookie
    assert body["user"]["email"] == email
    assert cookies[SESSION_COOKIE].value == body["access_token"]


def test_cookie_session_me_csrf_and_logout(server: Server) -> None:
    email = unique_email("cookie")
    register(server, email)
    _, cookies = browser_login(server, email)
    session = cookies[SESSION_COOKIE]

    me = server.get("/api/auth/me", headers=cookie_header(session))
    assert me.status_code == 200, me.text
    assert me.json()["user"]["email"] == email

    # A cookie-authenticated write without Origin (a cross-site form, a script riding the cookie)
    refused = server.post("/api/auth/logout", headers=cookie_header(session))
    assert refused.status_code == 403, refused.text
    assert error_code(refused) == "csrf_failed"
    assert "Set-Cookie" not in refused.headers

    # ...with the right Origin but no custom header, or a custom header from another origin
    for headers in (
        {"Origin": FRONTEND},
        {"Origin": "https://evil.test", "X-Requested-With": "fetch"},
        {"Origin": "null", "X-Requested-With": "fetch"},
        {"Referer": "https://evil.test/page", "X-Requested-With": "fetch"},
    ):
        refused = server.post("/api/auth/logout", headers={**cookie_header(session), **headers})
        assert refused.status_code == 403, (headers, refused.text)
        assert error_code(refused) == "csrf_failed"

    # None of the refused attempts logged the user out.
    assert server.get("/api/auth/me", headers=cookie_header(session)).status_code == 200

    response = server.post("/api/auth/logout", headers={**cookie_header(session), **BROWSER})
    returned = time.perf_counter()
    assert response.status_code == 204, response.text
    assert response.content == b""
    cleared = set_cookies(response)
    assert set(cleared) == {SESSION_COOKIE, REFRESH_COOKIE}
    for cookie in cleared.values():
        assert_hardened(cookie)
        assert cookie.attributes.get("max-age") == "0", cookie
        assert cookie.value in ("", '""'), cookie

    # The server has two worker processes and no Redis: the worker that did not handle the
    # logout learns it from the database within the poll interval.
    elapsed = time_until_status(
        lambda: server.get("/api/auth/me", headers=cookie_header(session)),
        since=returned,
        bound=NO_REDIS_BOUND_SECONDS,
    )
    assert elapsed < NO_REDIS_BOUND_SECONDS
    after = server.get("/api/auth/me", headers=cookie_header(session))
    assert after.status_code == 401, after.text
    assert error_code(after) == "token_revoked"
    assert after.headers["WWW-Authenticate"] == 'Bearer realm="authgate", error="invalid_token"'


def test_cookie_refresh_needs_csrf_and_rotates(server: Server) -> None:
    email = unique_email("cookie")
    register(server, email)
    _, cookies = browser_login(server, email)
    old_refresh = cookies[REFRESH_COOKIE]

    refused = server.post("/api/auth/refresh", headers=cookie_header(old_refresh))
    assert refused.status_code == 403, refused.text
    assert error_code(refused) == "csrf_failed"

    response = server.post("/api/auth/refresh", headers={**cookie_header(old_refresh), **BROWSER})
    assert response.status_code == 200, response.text
    assert "refresh_token" not in response.json()
    rotated = set_cookies(response)
    assert set(rotated) == {SESSION_COOKIE, REFRESH_COOKIE}
    for cookie in rotated.values():
        assert_hardened(cookie)
    assert rotated[REFRESH_COOKIE].value != old_refresh.value
    new_session = rotated[SESSION_COOKIE]
    assert server.get("/api/auth/me", headers=cookie_header(new_session)).status_code == 200
    # The browser refreshes again with the new cookie (until then, the old one presented again
    # would be a lost answer retried: the reuse grace window, docs/sessions.md).
    response = server.post(
        "/api/auth/refresh", headers={**cookie_header(rotated[REFRESH_COOKIE]), **BROWSER}
    )
    assert response.status_code == 200, response.text
    new_session = set_cookies(response)[SESSION_COOKIE]

    # Replaying the rotated refresh cookie revokes the whole session.
    replay = server.post("/api/auth/refresh", headers={**cookie_header(old_refresh), **BROWSER})
    returned = time.perf_counter()
    assert replay.status_code == 401, replay.text
    assert error_code(replay) == "token_revoked"
    elapsed = time_until_status(
        lambda: server.get("/api/auth/me", headers=cookie_header(new_session)),
        since=returned,
        bound=NO_REDIS_BOUND_SECONDS,
    )
    assert elapsed < NO_REDIS_BOUND_SECONDS


def test_login_from_a_foreign_origin_is_refused(server: Server) -> None:
    email = unique_email("cookie")
    register(server, email)
    for origin in ("https://evil.test", "http://localhost:4100.evil.test", "null"):
        response = server.post(
            "/api/auth/login",
            json={"login": email, "password": PASSWORD},
            headers={"Origin": origin, "X-Requested-With": "fetch"},
        )
        assert response.status_code == 403, (origin, response.text)
        assert error_code(response) == "csrf_failed"
        assert "Set-Cookie" not in response.headers
        assert "Access-Control-Allow-Origin" not in response.headers
