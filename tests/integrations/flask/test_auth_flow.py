"""Register, log in, see yourself, refresh, log out: HTTP flows through the Flask test client."""

from __future__ import annotations

from flask.testing import FlaskClient

from authgate.service import AuthService
from tests.helpers import BROWSER, PASSWORD, StepClock, bearer, login, register


def test_register_returns_the_user_without_secrets(client: FlaskClient) -> None:
    user = register(client, "Ada@Example.com", name="Ada", username="ada")
    assert user["email"] == "Ada@example.com"  # the domain part is normalised
    assert user["roles"] == ["user"]
    assert user["status"] == "active"
    assert user["email_verified"] is False
    assert user["created_at"].endswith("Z")
    assert user["last_login_at"] is None
    assert set(user) == {
        "id",
        "email",
        "username",
        "name",
        "roles",
        "status",
        "email_verified",
        "created_at",
        "last_login_at",
        "avatar_url",
    }


def test_duplicate_email_or_username_is_409_case_insensitively(client: FlaskClient) -> None:
    register(client, "ada@example.com", username="ada")
    for body in (
        {"email": "ADA@example.com", "password": PASSWORD},
        {"email": "other@example.com", "password": PASSWORD, "username": "ADA"},
    ):
        response = client.post("/api/auth/register", json=body, headers=BROWSER)
        assert response.status_code == 409
        assert response.json["error"]["code"] == "user_exists"


def test_invalid_fields_are_422_with_per_field_messages(client: FlaskClient) -> None:
    response = client.post(
        "/api/auth/register",
        json={"email": "not-an-email", "password": "password", "username": "a b"},
        headers=BROWSER,
    )
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "validation_failed"
    assert set(error["details"]["fields"]) == {"email", "username"}


def test_common_and_short_passwords_are_refused_with_a_message(client: FlaskClient) -> None:
    for password, words in (("password1", "too common"), ("short", "at least 8")):
        response = client.post(
            "/api/auth/register",
            json={"email": "x@example.com", "password": password},
            headers=BROWSER,
        )
        assert response.status_code == 422
        assert words in response.json["error"]["details"]["fields"]["password"]


def test_login_by_email_or_username_and_me_by_bearer(client: FlaskClient) -> None:
    register(client, username="ada")
    for name in ("ada@example.com", "ADA"):
        token = login(client, name)
        response = client.get("/api/auth/me", headers=bearer(token))
        assert response.status_code == 200
        assert response.json["user"]["email"] == "ada@example.com"
        assert response.json["user"]["last_login_at"] is not None


def test_login_response_shape_and_cookies(client: FlaskClient) -> None:
    register(client)
    response = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}, headers=BROWSER
    )
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert "refresh_token" not in body  # a browser keeps it only in an HttpOnly cookie
    cookies = response.headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith("authgate_session="))
    refresh = next(c for c in cookies if c.startswith("authgate_refresh="))
    for cookie in (session, refresh):
        assert "HttpOnly" in cookie
        assert "Secure" in cookie
        assert "SameSite=Lax" in cookie
    assert "Path=/;" in session + ";"
    assert "Path=/api/auth" in refresh


def test_wrong_password_unknown_user_and_disabled_user_look_the_same(
    client: FlaskClient, service: AuthService
) -> None:
    from authgate.store.records import UserStatus

    user = register(client)
    register(client, "off@example.com")
    off = service.store.find_user_by_login("off@example.com")
    assert off is not None
    service.store.update_access(off.id, status=UserStatus.DISABLED, now=service.clock.now())
    bodies = []
    for login_name, password in (
        ("ada@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("off@example.com", PASSWORD),
    ):
        response = client.post("/api/auth/login", json={"login": login_name, "password": password})
        assert response.status_code == 401
        bodies.append(response.json)
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["error"]["code"] == "invalid_credentials"
    assert user["id"]


def test_cookie_session_works_for_a_browser(client: FlaskClient) -> None:
    register(client)
    client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}, headers=BROWSER
    )
    response = client.get("/api/notes", headers={"Origin": "http://localhost:4100"})
    assert response.status_code == 200
    assert response.json == {"owner": "ada@example.com"}


def test_no_credential_is_401_with_www_authenticate(client: FlaskClient) -> None:
    response = client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "authentication_required"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_garbage_bearer_is_401_invalid_token(client: FlaskClient) -> None:
    for header in ("Bearer nope", "Bearer " + "a.b.c", "Basic abc", "Bearer"):
        response = client.get("/api/auth/me", headers={"Authorization": header})
        assert response.status_code == 401
        assert response.json["error"]["code"] == "invalid_token"


def test_refresh_rotates_and_reuse_revokes_the_session(
    client: FlaskClient, clock: StepClock
) -> None:
    register(client)
    first = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    ).json
    second = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    new = second.json
    assert new["refresh_token"] != first["refresh_token"]
    assert client.get("/api/auth/me", headers=bearer(new["access_token"])).status_code == 200

    clock.advance(11)  # past the reuse grace window (AUTHGATE_REFRESH_REUSE_GRACE_SECONDS, 10)
    replay = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json["error"]["code"] == "token_revoked"
    for token in (first["access_token"], new["access_token"]):
        response = client.get("/api/auth/me", headers=bearer(token))
        assert response.status_code == 401
        assert response.json["error"]["code"] == "token_revoked"
    again = client.post("/api/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert again.status_code == 401


def test_a_refresh_retried_within_the_grace_window_keeps_the_session(
    client: FlaskClient,
) -> None:
    """The answer of a refresh was lost: the client presents the spent token again at once. It
    is rotated again; the lost successor is dead (presenting it is a reuse)."""
    register(client)
    first = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    ).json
    lost = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}).json
    retried = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert retried.status_code == 200, retried.json
    assert (
        client.get("/api/auth/me", headers=bearer(retried.json["access_token"])).status_code == 200
    )
    killed = client.post("/api/auth/refresh", json={"refresh_token": lost["refresh_token"]})
    assert killed.status_code == 401
    assert killed.json["error"]["code"] == "token_revoked"
    response = client.get("/api/auth/me", headers=bearer(retried.json["access_token"]))
    assert response.status_code == 401


def test_refresh_by_cookie_needs_csrf_headers(client: FlaskClient) -> None:
    register(client)
    client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}, headers=BROWSER
    )
    refused = client.post("/api/auth/refresh")
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "csrf_failed"
    response = client.post("/api/auth/refresh", headers=BROWSER)
    assert response.status_code == 200
    assert any(c.startswith("authgate_session=") for c in response.headers.getlist("Set-Cookie"))
    assert "refresh_token" not in response.json


def test_unknown_refresh_token_is_401(client: FlaskClient) -> None:
    response = client.post("/api/auth/refresh", json={"refresh_token": "agr_nope"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_token"


def test_logout_revokes_and_clears_cookies_with_the_same_attributes(client: FlaskClient) -> None:
    register(client)
    login_response = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}, headers=BROWSER
    )
    token = login_response.json["access_token"]
    response = client.post("/api/auth/logout", headers=BROWSER)
    assert response.status_code == 204
    cleared = response.headers.getlist("Set-Cookie")
    assert len(cleared) == 2
    for cookie in cleared:
        assert "Max-Age=0" in cookie
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert any("Path=/api/auth" in c for c in cleared)
    revoked = client.get("/api/auth/me", headers=bearer(token))
    assert revoked.status_code == 401
    assert revoked.json["error"]["code"] == "token_revoked"


def test_logout_all_revokes_every_session(client: FlaskClient) -> None:
    register(client)
    tokens = [login(client) for _ in range(3)]
    assert client.post("/api/auth/logout-all", headers=bearer(tokens[0])).status_code == 204
    for token in tokens:
        assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401


def test_patch_me_updates_name_and_username_only(client: FlaskClient) -> None:
    register(client, username="ada")
    register(client, "bob@example.com", username="bob")
    token = login(client)
    response = client.patch("/api/auth/me", json={"name": "Ada L."}, headers=bearer(token))
    assert response.status_code == 200
    assert response.json["user"]["name"] == "Ada L."
    assert response.json["user"]["username"] == "ada"
    taken = client.patch("/api/auth/me", json={"username": "BOB"}, headers=bearer(token))
    assert taken.status_code == 409
    forbidden = client.patch("/api/auth/me", json={"roles": ["admin"]}, headers=bearer(token))
    assert forbidden.status_code == 422
    me = client.get("/api/auth/me", headers=bearer(token)).json["user"]
    assert me["roles"] == ["user"] and me["name"] == "Ada L."


def test_patch_me_null_clears_and_a_left_out_field_is_unchanged(client: FlaskClient) -> None:
    register(client, name="Ada", username="ada")
    token = login(client)

    cleared = client.patch("/api/auth/me", json={"name": None}, headers=bearer(token))

    assert cleared.status_code == 200
    assert (cleared.json["user"]["name"], cleared.json["user"]["username"]) == (None, "ada")
    cleared = client.patch("/api/auth/me", json={"username": None}, headers=bearer(token))
    assert cleared.json["user"]["username"] is None


def test_password_change_keeps_this_session_and_revokes_the_others(client: FlaskClient) -> None:
    register(client)
    current, other = login(client), login(client)
    wrong = client.post(
        "/api/auth/password",
        json={"current_password": "not it at all", "new_password": "another good passphrase"},
        headers=bearer(current),
    )
    assert wrong.status_code == 422
    response = client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "another good passphrase"},
        headers=bearer(current),
    )
    assert response.status_code == 204
    assert client.get("/api/auth/me", headers=bearer(current)).status_code == 200
    assert client.get("/api/auth/me", headers=bearer(other)).status_code == 401
    assert login(client, password="another good passphrase")
    old = client.post("/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD})
    assert old.status_code == 401


def test_sessions_list_marks_current_and_revoke_one(client: FlaskClient) -> None:
    register(client)
    current = login(client)
    other = login(client)
    response = client.get(
        "/api/auth/sessions", headers={**bearer(current), "User-Agent": "pytest-agent"}
    )
    sessions = response.json["sessions"]
    assert len(sessions) == 2
    assert sum(s["current"] for s in sessions) == 1
    assert {"id", "created_at", "last_seen_at", "user_agent", "ip", "current"} <= set(sessions[0])
    other_id = next(s["id"] for s in sessions if not s["current"])
    assert (
        client.delete(f"/api/auth/sessions/{other_id}", headers=bearer(current)).status_code == 204
    )
    assert client.get("/api/auth/me", headers=bearer(other)).status_code == 401
    missing = client.delete(f"/api/auth/sessions/{other_id}", headers=bearer(current))
    assert missing.status_code == 404


def test_cannot_revoke_someone_elses_session(client: FlaskClient) -> None:
    register(client)
    register(client, "bob@example.com")
    ada = login(client)
    bob = login(client, "bob@example.com")
    bob_session = client.get("/api/auth/sessions", headers=bearer(bob)).json["sessions"][0]["id"]
    response = client.delete(f"/api/auth/sessions/{bob_session}", headers=bearer(ada))
    assert response.status_code == 404
    assert client.get("/api/auth/me", headers=bearer(bob)).status_code == 200


def test_logout_after_the_access_token_expired_ends_the_session_by_refresh_cookie(
    client: FlaskClient, service: AuthService
) -> None:
    register(client)
    client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}, headers=BROWSER
    )
    service.clock.advance(service.settings.access_token_ttl_seconds + 5)  # type: ignore[attr-defined]
    refused = client.post("/api/auth/logout")
    assert refused.status_code == 403  # the fallback to the refresh cookie is CSRF-checked too
    response = client.post("/api/auth/logout", headers=BROWSER)
    assert response.status_code == 204
    assert len(response.headers.getlist("Set-Cookie")) == 2
    assert client.post("/api/auth/refresh", headers=BROWSER).status_code == 401


def test_script_logout_by_refresh_token_in_the_body(client: FlaskClient) -> None:
    register(client)
    body = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    ).json
    client.post("/api/auth/logout-all", headers=bearer(body["access_token"]))
    response = client.post(
        "/api/auth/logout",
        json={"refresh_token": body["refresh_token"]},
        headers=bearer(body["access_token"]),
    )
    assert response.status_code == 204
    assert client.post("/api/auth/logout").status_code == 401  # nothing to log out


def test_profile_change_reaches_other_processes_through_the_log(
    client: FlaskClient, service: AuthService
) -> None:
    register(client)
    token = login(client)
    assert client.get("/api/auth/me", headers=bearer(token)).json["user"]["name"] is None
    user = service.store.find_user_by_login("ada@example.com")
    assert user is not None
    service.store.update_profile(user.id, name="Renamed", username=None, now=service.clock.now())
    service.feed.poll_once()
    assert client.get("/api/auth/me", headers=bearer(token)).json["user"]["name"] == "Renamed"
