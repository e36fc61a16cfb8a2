"""Service-level tenant decisions: a tenant always keeps an owner, and deleting a user who alone
owns a shared tenant."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from authgate.errors import ConflictError
from authgate.service import AuthService
from authgate.store.records import TenantRole
from tests.helpers import bearer, login, make_admin, new_user, register, session_of

pytestmark = pytest.mark.app_scopes


# Tenants invariants ----------------------------------------------------------------------------


def test_a_tenant_always_keeps_an_owner(service: AuthService) -> None:
    user = new_user(service, "owner@example.com")
    owner = session_of(service, user)
    team = service.tenants.create_tenant(owner, "Team")
    with pytest.raises(ConflictError):
        service.tenants.set_member_role(owner, team.id, user.id, TenantRole.ADMIN)
    with pytest.raises(ConflictError):
        service.tenants.remove_member(owner, team.id, user.id)
    members = service.tenants.list_members(owner, team.id)
    assert [(m.user_id, m.role) for m in members] == [(user.id, TenantRole.OWNER)]


# Deleting a user who owns a shared tenant ------------------------------------------------------


def test_deleting_the_sole_owner_of_a_shared_tenant_is_409(
    client: FlaskClient, service: AuthService
) -> None:
    root = register(client, "root@example.com")
    make_admin(service, root["id"])
    admin = login(client, "root@example.com")
    ada = register(client, "ada@example.com")
    register(client, "bob@example.com")
    ada_session = login(client, "ada@example.com")
    team = client.post("/api/tenants", json={"name": "Team"}, headers=bearer(ada_session))
    team_id = team.json["tenant"]["id"]
    added = client.post(
        f"/api/tenants/{team_id}/members",
        json={"email": "bob@example.com", "role": "admin"},
        headers=bearer(ada_session),
    )
    assert added.status_code == 201

    response = client.delete(f"/api/users/{ada['id']}", headers=bearer(admin))
    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"
    assert client.get(f"/api/users/{ada['id']}", headers=bearer(admin)).status_code == 200
    assert client.get("/api/auth/me", headers=bearer(ada_session)).status_code == 200

    # Once someone else owns it too, the user can go; the tenant stays with its other owner.
    bob_id = added.json["member"]["user_id"]
    promote = client.patch(
        f"/api/tenants/{team_id}/members/{bob_id}",
        json={"role": "owner"},
        headers=bearer(ada_session),
    )
    assert promote.status_code == 200
    assert client.delete(f"/api/users/{ada['id']}", headers=bearer(admin)).status_code == 204
    bob_session = login(client, "bob@example.com")
    members = client.get(f"/api/tenants/{team_id}/members", headers=bearer(bob_session))
    assert [(m["email"], m["role"]) for m in members.json["members"]] == [
        ("bob@example.com", "owner")
    ]


def test_a_user_owning_only_their_personal_tenant_can_be_deleted(
    client: FlaskClient, service: AuthService
) -> None:
    root = register(client, "root@example.com")
    make_admin(service, root["id"])
    admin = login(client, "root@example.com")
    ada = register(client, "ada@example.com")
    personal = service.store.personal_tenant_id(ada["id"])
    assert personal is not None
    assert client.delete(f"/api/users/{ada['id']}", headers=bearer(admin)).status_code == 204
    assert service.store.get_tenant(personal) is None
    assert service.store.personal_tenant_id(ada["id"]) is None
