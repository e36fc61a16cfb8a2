"""Script flow over real sockets: tokens in the body, bearer header, refresh-token rotation."""

from __future__ import annotations

import base64
import json
import time

from tests.e2e.helpers import (
    NO_REDIS_BOUND_SECONDS,
    Server,
    error_code,
    login_script,
    register,
    time_until_status,
    unique_email,
)
from tests.helpers import bearer


def jwt_header(token: str) -> dict[str, object]:
    segment = token.split(".")[0]
    header: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return header


def test_script_login_returns_tokens_and_bearer_works(server: Server) -> None:
    email = unique_email("script")
    user = register(server, email)

    body = login_script(server, email)

    assert body["user"]["id"] == user["id"]
    assert body["expires_in"] == 900
    assert body["refresh_token"] != body["access_token"]
    kid = jwt_header(body["access_token"])["kid"]
    jwks = server.get("/.well-known/jwks.json").json()
    assert kid in {key["kid"] for key in jwks["keys"]}

    me = server.get("/api/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["user"]["id"] == user["id"]

    missing = server.get("/api/auth/me")
    assert missing.status_code == 401
    assert error_code(missing) == "authentication_required"
    forged = server.get("/api/auth/me", headers=bearer(body["access_token"][:-4] + "AAAA"))
    assert forged.status_code == 401
    assert error_code(forged) == "invalid_token"

    wrong = server.post("/api/auth/login", json={"login": email, "password": "not the password"})
    assert wrong.status_code == 401
    assert error_code(wrong) == "invalid_credentials"
    assert "Set-Cookie" not in wrong.headers


def test_bearer_writes_need_no_csrf_header(server: Server) -> None:
    email = unique_email("script")
    register(server, email)
    token = login_script(server, email)["access_token"]

    response = server.request("PATCH", "/api/auth/me", json={"name": "Ada"}, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["user"]["name"] == "Ada"


def test_refresh_rotates_and_reuse_revokes_the_session(server: Server) -> None:
    email = unique_email("script")
    register(server, email)
    first = login_script(server, email)

    response = server.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] and second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert server.get("/api/auth/me", headers=bearer(second["access_token"])).status_code == 200
    # The client goes on with its successor (until then, the rotated-out token presented again
    # would be a lost answer retried: the reuse grace window, docs/sessions.md).
    response = server.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert response.status_code == 200, response.text
    second = response.json()

    # The rotated-out refresh token is presented again: someone copied it.
    reuse = server.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    returned = time.perf_counter()
    assert reuse.status_code == 401, reuse.text
    assert error_code(reuse) == "token_revoked"

    # The whole session is revoked: the newest access token dies (on every worker)...
    elapsed = time_until_status(
        lambda: server.get("/api/auth/me", headers=bearer(second["access_token"])),
        since=returned,
        bound=NO_REDIS_BOUND_SECONDS,
    )
    assert elapsed < NO_REDIS_BOUND_SECONDS
    me = server.get("/api/auth/me", headers=bearer(second["access_token"]))
    assert error_code(me) == "token_revoked"
    # ...and so does the newest refresh token.
    again = server.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert again.status_code == 401, again.text

    # A fresh login still works.
    third = login_script(server, email)
    assert server.get("/api/auth/me", headers=bearer(third["access_token"])).status_code == 200


def test_unknown_refresh_token_is_invalid(server: Server) -> None:
    response = server.post("/api/auth/refresh", json={"refresh_token": "not-a-real-token"})
    assert response.status_code == 401, response.text
    assert error_code(response) == "invalid_token"
