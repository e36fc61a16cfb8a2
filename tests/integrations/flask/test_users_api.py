"""The admin users API, and role/status changes taking effect on the very next request."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from authgate.config import Settings
from authgate.service import AuthService
from tests.helpers import bearer, login, make_admin, make_settings, register


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The deployment knows one role beside "user" and "admin"."""
    return make_settings(tmp_path, database_url, roles=("editor",))


def _admin(client: FlaskClient, service: AuthService) -> str:
    admin = register(client, "root@example.com")
    make_admin(service, admin["id"])
    return login(client, "root@example.com")


def test_non_admin_gets_403_insufficient_role(client: FlaskClient) -> None:
    register(client)
    token = login(client)
    response = client.get("/api/users", headers=bearer(token))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "insufficient_role"
    assert client.delete("/api/notes/1", headers=bearer(token)).status_code == 403


def test_list_is_paginated_and_filtered(client: FlaskClient, service: AuthService) -> None:
    admin = _admin(client, service)
    for i in range(5):
        register(client, f"user{i}@example.com", name=f"Person {i}")
    page = client.get("/api/users?page=2&per_page=2", headers=bearer(admin)).json
    assert page["total"] == 6 and page["page"] == 2 and page["per_page"] == 2
    assert len(page["users"]) == 2
    found = client.get("/api/users?q=person%203", headers=bearer(admin)).json
    assert [u["email"] for u in found["users"]] == ["user3@example.com"]
    like = client.get("/api/users?q=%25", headers=bearer(admin)).json
    assert like["total"] == 0  # LIKE wildcards in q are literal
    too_big = client.get("/api/users?per_page=101", headers=bearer(admin))
    assert too_big.status_code == 422
    assert "per_page" in too_big.json["error"]["details"]["fields"]


def test_get_patch_delete_user(client: FlaskClient, service: AuthService) -> None:
    admin = _admin(client, service)
    user = register(client)
    got = client.get(f"/api/users/{user['id']}", headers=bearer(admin))
    assert got.json["user"]["email"] == "ada@example.com"
    patched = client.patch(
        f"/api/users/{user['id']}", json={"roles": ["user", "editor"]}, headers=bearer(admin)
    )
    assert patched.json["user"]["roles"] == ["user", "editor"]
    bad = client.patch(f"/api/users/{user['id']}", json={"status": "gone"}, headers=bearer(admin))
    assert bad.status_code == 422
    assert client.delete(f"/api/users/{user['id']}", headers=bearer(admin)).status_code == 204
    assert client.get(f"/api/users/{user['id']}", headers=bearer(admin)).status_code == 404
    assert client.delete(f"/api/users/{user['id']}", headers=bearer(admin)).status_code == 404


def test_disabling_takes_effect_on_the_next_request(
    client: FlaskClient, service: AuthService
) -> None:
    admin = _admin(client, service)
    user = register(client)
    token = login(client)
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    response = client.patch(
        f"/api/users/{user['id']}", json={"status": "disabled"}, headers=bearer(admin)
    )
    assert response.json["user"]["status"] == "disabled"
    denied = client.get("/api/auth/me", headers=bearer(token))
    assert denied.status_code == 401
    assert denied.json["error"]["code"] == "token_revoked"
    client.patch(f"/api/users/{user['id']}", json={"status": "active"}, headers=bearer(admin))
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401  # sessions gone
    assert login(client)


def test_removing_a_role_is_403_on_the_next_request(
    client: FlaskClient, service: AuthService
) -> None:
    admin = _admin(client, service)
    other = register(client, "second@example.com")
    make_admin(service, other["id"])
    token = login(client, "second@example.com")
    assert client.delete("/api/notes/1", headers=bearer(token)).status_code == 204
    client.patch(f"/api/users/{other['id']}", json={"roles": ["user"]}, headers=bearer(admin))
    response = client.delete("/api/notes/1", headers=bearer(token))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "insufficient_role"
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200


def test_the_last_admin_cannot_lock_themselves_out(
    client: FlaskClient, service: AuthService
) -> None:
    admin = _admin(client, service)
    me = client.get("/api/auth/me", headers=bearer(admin)).json["user"]
    for body in ({"status": "disabled"}, {"roles": ["user"]}, {"roles": ["editor"]}):
        response = client.patch(f"/api/users/{me['id']}", json=body, headers=bearer(admin))
        assert response.status_code == 409
        assert response.json["error"]["code"] == "last_admin"
        assert "last active administrator" in response.json["error"]["message"]
    deleted = client.delete(f"/api/users/{me['id']}", headers=bearer(admin))
    assert (deleted.status_code, deleted.json["error"]["code"]) == (409, "last_admin")
    assert client.get("/api/users", headers=bearer(admin)).status_code == 200
    assert client.get("/api/auth/me", headers=bearer(admin)).json["user"]["roles"] == [
        "user",
        "admin",
    ]


def test_an_admin_may_step_down_when_another_admin_remains(
    client: FlaskClient, service: AuthService
) -> None:
    admin = _admin(client, service)
    other = register(client, "second@example.com")
    make_admin(service, other["id"])
    me = client.get("/api/auth/me", headers=bearer(admin)).json["user"]

    response = client.patch(
        f"/api/users/{me['id']}", json={"roles": ["user"]}, headers=bearer(admin)
    )

    assert response.status_code == 200 and response.json["user"]["roles"] == ["user"]
    assert client.get("/api/users", headers=bearer(admin)).status_code == 403


def test_unknown_roles_are_a_400_naming_the_known_ones(
    client: FlaskClient, service: AuthService
) -> None:
    admin = _admin(client, service)
    user = register(client)
    response = client.patch(
        f"/api/users/{user['id']}", json={"roles": ["user", "auditor"]}, headers=bearer(admin)
    )
    assert response.status_code == 400
    error = response.json["error"]
    assert error["code"] == "unknown_role"
    assert error["details"] == {
        "unknown_roles": ["auditor"],
        "known_roles": ["user", "admin", "editor"],
    }
    assert "auditor" in error["message"] and "user, admin, editor" in error["message"]
    got = client.get(f"/api/users/{user['id']}", headers=bearer(admin)).json["user"]
    assert got["roles"] == ["user"]


def test_null_roles_or_status_are_422_and_change_nothing(
    client: FlaskClient, service: AuthService
) -> None:
    admin = _admin(client, service)
    user = register(client)
    client.patch(
        f"/api/users/{user['id']}", json={"roles": ["user", "editor"]}, headers=bearer(admin)
    )

    for field in ("roles", "status"):
        response = client.patch(
            f"/api/users/{user['id']}", json={field: None}, headers=bearer(admin)
        )
        assert response.status_code == 422  # was 200, changing nothing
        assert response.json["error"]["code"] == "validation_failed"
        assert response.json["error"]["details"]["fields"] == {
            field: "Cannot be null: leave the field out to keep the current value."
        }
    unchanged = client.get(f"/api/users/{user['id']}", headers=bearer(admin)).json["user"]
    assert (unchanged["roles"], unchanged["status"]) == (["user", "editor"], "active")


def test_a_query_string_with_too_many_parameters_is_400(
    client: FlaskClient, service: AuthService
) -> None:
    admin = _admin(client, service)

    response = client.get(
        "/api/users?" + "&".join(f"p{i}=1" for i in range(300)), headers=bearer(admin)
    )

    assert response.status_code == 400  # was 422 with 300 "Unknown field." entries
    assert response.json["error"]["code"] == "bad_request"
