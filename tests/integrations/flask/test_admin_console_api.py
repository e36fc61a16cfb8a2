"""The admin API behind the console: a user's sessions (with readable devices), API tokens,
linked identities, and the roles an admin can give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from authgate.config import Settings
from authgate.service import AuthService
from tests.helpers import bearer, create_token, login, make_admin, make_settings, register

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, roles=("support", "billing"))


def _admin(client: FlaskClient, service: AuthService) -> str:
    admin = register(client, "root@example.com")
    make_admin(service, admin["id"])
    return login(client, "root@example.com")


def _login_on(client: FlaskClient, device: str, email: str = "ada@example.com") -> str:
    response = client.post(
        "/api/auth/login",
        json={"login": email, "password": "correct horse battery staple"},
        headers={"User-Agent": device},
    )
    assert response.status_code == 200, response.json
    return str(response.json["access_token"])


def _sessions(client: FlaskClient, admin: str, user_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/users/{user_id}/sessions", headers=bearer(admin))
    assert response.status_code == 200, response.json
    return list(response.json["sessions"])


# Every new endpoint: admins only, 404 for an unknown user ----------------------------------

ENDPOINTS = [
    ("get", "/api/users/{id}/sessions"),
    ("delete", "/api/users/{id}/sessions"),
    ("delete", "/api/users/{id}/sessions/abc"),
    ("get", "/api/users/{id}/identities"),
    ("delete", "/api/users/{id}/identities/abc"),
    ("get", "/api/users/{id}/tokens"),
    ("get", "/api/users/{id}/mfa"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_user_who_is_no_admin_is_refused_403(client: FlaskClient, method: str, path: str) -> None:
    user = register(client)
    token = login(client)
    response = getattr(client, method)(path.format(id=user["id"]), headers=bearer(token))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "insufficient_role"


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_an_unknown_user_is_404(
    client: FlaskClient, service: AuthService, method: str, path: str
) -> None:
    admin = _admin(client, service)
    response = getattr(client, method)(path.format(id="nosuchuser"), headers=bearer(admin))
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_roles_lists_the_known_roles_to_admins_only(
    client: FlaskClient, service: AuthService
) -> None:
    register(client)
    plain = login(client)
    admin = _admin(client, service)

    assert client.get("/api/roles", headers=bearer(plain)).status_code == 403
    assert client.application.test_client().get("/api/roles").status_code == 401
    response = client.get("/api/roles", headers=bearer(admin))
    assert response.json == {"roles": ["user", "admin", "support", "billing"]}


def test_an_api_token_of_an_admin_is_refused(client: FlaskClient, service: AuthService) -> None:
    admin = _admin(client, service)
    token = create_token(client, admin, name="ci")["token"]
    response = client.get("/api/roles", headers=bearer(token))
    assert response.status_code == 403


# Sessions ----------------------------------------------------------------------------------


def test_an_admin_sees_a_users_sessions_with_their_devices(
    client: FlaskClient, service: AuthService
) -> None:
    user = register(client)
    _login_on(client, CHROME)
    _login_on(client, FIREFOX)
    admin = _admin(client, service)

    sessions = _sessions(client, admin, user["id"])

    assert sorted(s["device"] for s in sessions) == [
        "Chrome 156 on Linux",
        "Firefox 133 on Windows 10",
    ]
    assert {s["user_agent"] for s in sessions} == {CHROME, FIREFOX}  # still there
    assert not any(s["current"] for s in sessions)


def test_the_users_own_sessions_show_the_device_too(client: FlaskClient) -> None:
    register(client)
    token = _login_on(client, CHROME)
    _login_on(client, "curl/8.5.0")
    sessions = client.get("/api/auth/sessions", headers=bearer(token)).json["sessions"]
    assert {(s["device"], s["current"]) for s in sessions} == {
        ("Chrome 156 on Linux", True),
        ("curl 8", False),
    }


def test_revoking_one_session_ends_it_for_its_holder_on_the_next_request(
    client: FlaskClient, service: AuthService
) -> None:
    user = register(client)
    laptop = _login_on(client, CHROME)
    phone = _login_on(client, FIREFOX)
    admin = _admin(client, service)
    laptop_session = next(
        s for s in _sessions(client, admin, user["id"]) if s["device"].startswith("Chrome")
    )

    response = client.delete(
        f"/api/users/{user['id']}/sessions/{laptop_session['id']}", headers=bearer(admin)
    )

    assert response.status_code == 204
    gone = client.get("/api/auth/me", headers=bearer(laptop))
    assert (gone.status_code, gone.json["error"]["code"]) == (401, "token_revoked")
    assert client.get("/api/auth/me", headers=bearer(phone)).status_code == 200
    assert [s["device"] for s in _sessions(client, admin, user["id"])] == [
        "Firefox 133 on Windows 10"
    ]
    again = client.delete(
        f"/api/users/{user['id']}/sessions/{laptop_session['id']}", headers=bearer(admin)
    )
    assert again.status_code == 404


def test_a_session_of_another_user_is_not_found_under_this_user(
    client: FlaskClient, service: AuthService
) -> None:
    user = register(client)
    register(client, "other@example.com")
    other_token = _login_on(client, CHROME, "other@example.com")
    admin = _admin(client, service)
    other = client.get("/api/auth/sessions", headers=bearer(other_token)).json["sessions"][0]

    response = client.delete(
        f"/api/users/{user['id']}/sessions/{other['id']}", headers=bearer(admin)
    )

    assert response.status_code == 404
    assert client.get("/api/auth/me", headers=bearer(other_token)).status_code == 200


def test_revoking_all_sessions_logs_the_user_out_everywhere(
    client: FlaskClient, service: AuthService
) -> None:
    user = register(client)
    tokens = [_login_on(client, CHROME), _login_on(client, FIREFOX)]
    admin = _admin(client, service)

    response = client.delete(f"/api/users/{user['id']}/sessions", headers=bearer(admin))

    assert response.status_code == 204
    for token in tokens:
        assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401
    assert _sessions(client, admin, user["id"]) == []
    assert client.get("/api/auth/me", headers=bearer(admin)).status_code == 200  # not the admin


# API tokens and identities -----------------------------------------------------------------


def test_an_admin_lists_and_revokes_a_users_api_tokens(
    client: FlaskClient, service: AuthService
) -> None:
    user = register(client)
    token = create_token(client, login(client), name="deploys")
    admin = _admin(client, service)

    listed = client.get(f"/api/users/{user['id']}/tokens", headers=bearer(admin)).json["tokens"]
    assert [t["name"] for t in listed] == ["deploys"]
    revoked = client.delete(f"/api/users/{user['id']}/tokens/{token['id']}", headers=bearer(admin))
    assert revoked.status_code == 204
    assert client.get("/api/auth/me", headers=bearer(token["token"])).status_code == 401


def test_an_admin_lists_and_unlinks_a_users_identities(
    client: FlaskClient, service: AuthService
) -> None:
    user = register(client)
    identity = service.store.link_identity(
        user["id"],
        provider="github",
        subject="42",
        email="ada@github.test",
        now=service.clock.now(),
    )
    admin = _admin(client, service)

    listed = client.get(f"/api/users/{user['id']}/identities", headers=bearer(admin)).json
    assert [(i["provider"], i["email"]) for i in listed["identities"]] == [
        ("github", "ada@github.test")
    ]
    path = f"/api/users/{user['id']}/identities/{identity.id}"
    assert client.delete(path, headers=bearer(admin)).status_code == 204
    assert client.get(f"/api/users/{user['id']}/identities", headers=bearer(admin)).json == {
        "identities": []
    }
    assert client.delete(path, headers=bearer(admin)).status_code == 404


def test_the_last_way_to_log_in_is_not_unlinked(client: FlaskClient, service: AuthService) -> None:
    user = service.store.create_user(
        email="sso@example.com",
        username=None,
        name=None,
        password_hash=None,
        roles=["user"],
        now=service.clock.now(),
    )
    identity = service.store.link_identity(
        user.id, provider="github", subject="7", email=None, now=service.clock.now()
    )
    admin = _admin(client, service)
    response = client.delete(
        f"/api/users/{user.id}/identities/{identity.id}", headers=bearer(admin)
    )
    assert (response.status_code, response.json["error"]["code"]) == (409, "last_login_method")


def test_an_admin_sees_which_second_factors_a_user_has(
    client: FlaskClient, service: AuthService
) -> None:
    from tests.integrations.flask.test_mfa_api import enroll

    user = register(client)
    other = register(client, "other@example.com")
    enroll(client, service, login(client))
    admin = _admin(client, service)

    with_totp = client.get(f"/api/users/{user['id']}/mfa", headers=bearer(admin))
    without = client.get(f"/api/users/{other['id']}/mfa", headers=bearer(admin))

    assert with_totp.json == {"methods": ["totp", "recovery_code"]}
    assert without.json == {"methods": []}
