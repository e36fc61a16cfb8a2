"""``/api/tenants``: personal and team tenants, members and tenant roles, over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.helpers import (
    add_member,
    bearer,
    create_tenant,
    create_token,
    error_code,
    signed_in,
)

# Settings that register APP_SCOPES, and make_tenant_app (tests/conftest.py).
pytestmark = pytest.mark.tenant_app


def personal_tenant(client: FlaskClient, token: str) -> dict[str, Any]:
    tenants = client.get("/api/tenants", headers=bearer(token)).json["tenants"]
    personal = [t for t in tenants if t["personal"]]
    assert len(personal) == 1, tenants
    return personal[0]  # type: ignore[no-any-return]


def team_with_roles(client: FlaskClient) -> tuple[dict[str, Any], dict[str, tuple[Any, str]]]:
    """A team tenant with one user per role: ``(tenant, {role: (user, access token)})``."""
    people = {role: signed_in(client, f"{role}@example.com") for role in ROLES}
    owner_token = people["owner"][1]
    tenant = create_tenant(client, owner_token, "Acme")
    for role in ("admin", "member", "viewer"):
        add_member(client, owner_token, tenant["id"], f"{role}@example.com", role)
    return tenant, people


ROLES = ("owner", "admin", "member", "viewer")


# Listing and creating ------------------------------------------------------------------------


def test_registration_creates_a_personal_tenant_owned_by_the_user(client: FlaskClient) -> None:
    _, token = signed_in(client, "ada@example.com")
    response = client.get("/api/tenants", headers=bearer(token))
    assert response.status_code == 200
    (tenant,) = response.json["tenants"]
    assert tenant["personal"] is True
    assert tenant["role"] == "owner"
    assert set(tenant) == {"id", "name", "personal", "role", "created_at"}
    assert tenant["created_at"].endswith("Z")
    # Its id is stable: the same on every listing.
    assert personal_tenant(client, token)["id"] == tenant["id"]


def test_each_user_has_their_own_personal_tenant(client: FlaskClient) -> None:
    _, ada = signed_in(client, "ada@example.com")
    _, bob = signed_in(client, "bob@example.com")
    assert personal_tenant(client, ada)["id"] != personal_tenant(client, bob)["id"]


def test_create_team_tenant_makes_the_creator_its_owner(client: FlaskClient) -> None:
    ada, token = signed_in(client, "ada@example.com")
    response = client.post("/api/tenants", json={"name": "  Acme  "}, headers=bearer(token))
    assert response.status_code == 201
    tenant = response.json["tenant"]
    assert tenant["name"] == "Acme"
    assert tenant["personal"] is False
    assert tenant["role"] == "owner"

    listed = client.get("/api/tenants", headers=bearer(token)).json["tenants"]
    assert [t["personal"] for t in listed] == [True, False]  # personal first
    assert listed[1] == tenant

    members = client.get(f"/api/tenants/{tenant['id']}/members", headers=bearer(token))
    assert members.status_code == 200
    assert [(m["user_id"], m["email"], m["role"]) for m in members.json["members"]] == [
        (ada["id"], "ada@example.com", "owner")
    ]


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}])
def test_create_tenant_validates_the_name(client: FlaskClient, body: dict[str, str]) -> None:
    _, token = signed_in(client, "ada@example.com")
    response = client.post("/api/tenants", json=body, headers=bearer(token))
    assert response.status_code == 422
    assert error_code(response) == "validation_failed"
    assert "name" in response.json["error"]["details"]["fields"]


def test_tenants_need_authentication(client: FlaskClient) -> None:
    assert client.get("/api/tenants").status_code == 401
    assert client.post("/api/tenants", json={"name": "Acme"}).status_code == 401


def test_a_user_only_lists_the_tenants_they_belong_to(client: FlaskClient) -> None:
    _, ada = signed_in(client, "ada@example.com")
    _, bob = signed_in(client, "bob@example.com")
    create_tenant(client, ada, "Ada's team")
    names = [t["name"] for t in client.get("/api/tenants", headers=bearer(bob)).json["tenants"]]
    assert "Ada's team" not in names
    assert len(names) == 1


# Get, rename, delete ---------------------------------------------------------------------------


def test_every_member_can_get_the_tenant_with_their_role(client: FlaskClient) -> None:
    tenant, people = team_with_roles(client)
    for role, (_, token) in people.items():
        response = client.get(f"/api/tenants/{tenant['id']}", headers=bearer(token))
        assert response.status_code == 200, role
        assert response.json["tenant"]["id"] == tenant["id"]
        assert response.json["tenant"]["role"] == role


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_rename(client: FlaskClient, role: str) -> None:
    tenant, people = team_with_roles(client)
    response = client.patch(
        f"/api/tenants/{tenant['id']}", json={"name": "Hacked"}, headers=bearer(people[role][1])
    )
    assert response.status_code == 403
    assert error_code(response) == "insufficient_role"
    owner = people["owner"][1]
    assert client.get(f"/api/tenants/{tenant['id']}", headers=bearer(owner)).json["tenant"][
        "name"
    ] == ("Acme")


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_admins_and_owners_rename(client: FlaskClient, role: str) -> None:
    tenant, people = team_with_roles(client)
    token = people[role][1]
    response = client.patch(
        f"/api/tenants/{tenant['id']}", json={"name": "Renamed"}, headers=bearer(token)
    )
    assert response.status_code == 200, response.json
    assert response.json["tenant"]["name"] == "Renamed"
    assert response.json["tenant"]["role"] == role
    viewer = people["viewer"][1]
    got = client.get(f"/api/tenants/{tenant['id']}", headers=bearer(viewer))
    assert got.json["tenant"]["name"] == "Renamed"


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_only_an_owner_deletes_a_tenant(client: FlaskClient, role: str) -> None:
    tenant, people = team_with_roles(client)
    response = client.delete(f"/api/tenants/{tenant['id']}", headers=bearer(people[role][1]))
    assert response.status_code == 403
    assert error_code(response) == "insufficient_role"
    owner = people["owner"][1]
    assert client.get(f"/api/tenants/{tenant['id']}", headers=bearer(owner)).status_code == 200


def test_owner_deletes_a_team_tenant(client: FlaskClient) -> None:
    tenant, people = team_with_roles(client)
    owner = people["owner"][1]
    response = client.delete(f"/api/tenants/{tenant['id']}", headers=bearer(owner))
    assert response.status_code == 204
    assert response.data == b""
    for role, (_, token) in people.items():
        got = client.get(f"/api/tenants/{tenant['id']}", headers=bearer(token))
        assert got.status_code == 404, role
        listed = client.get("/api/tenants", headers=bearer(token)).json["tenants"]
        assert tenant["id"] not in [t["id"] for t in listed]
    again = client.delete(f"/api/tenants/{tenant['id']}", headers=bearer(owner))
    assert again.status_code == 404


def test_non_members_get_404_everywhere(client: FlaskClient) -> None:
    tenant, _ = team_with_roles(client)
    _, outsider = signed_in(client, "eve@example.com")
    base = f"/api/tenants/{tenant['id']}"
    attempts = [
        client.get(base, headers=bearer(outsider)),
        client.get(f"{base}/members", headers=bearer(outsider)),
        client.patch(base, json={"name": "Mine"}, headers=bearer(outsider)),
        client.delete(base, headers=bearer(outsider)),
        client.post(
            f"{base}/members",
            json={"email": "eve@example.com", "role": "owner"},
            headers=bearer(outsider),
        ),
    ]
    for response in attempts:
        assert response.status_code == 404, response.json
        assert error_code(response) == "not_found"


def test_an_unknown_tenant_is_404(client: FlaskClient) -> None:
    _, token = signed_in(client, "ada@example.com")
    assert client.get("/api/tenants/nope", headers=bearer(token)).status_code == 404
    assert client.get("/api/tenants/nope/members", headers=bearer(token)).status_code == 404


def test_personal_tenant_cannot_be_deleted(client: FlaskClient) -> None:
    _, token = signed_in(client, "ada@example.com")
    personal = personal_tenant(client, token)
    response = client.delete(f"/api/tenants/{personal['id']}", headers=bearer(token))
    assert response.status_code == 409
    assert error_code(response) == "conflict"
    assert personal_tenant(client, token)["id"] == personal["id"]


def test_personal_tenant_cannot_get_members(client: FlaskClient) -> None:
    _, token = signed_in(client, "ada@example.com")
    signed_in(client, "bob@example.com")
    personal = personal_tenant(client, token)
    response = client.post(
        f"/api/tenants/{personal['id']}/members",
        json={"email": "bob@example.com", "role": "member"},
        headers=bearer(token),
    )
    assert response.status_code == 409
    assert error_code(response) == "conflict"
    members = client.get(f"/api/tenants/{personal['id']}/members", headers=bearer(token))
    assert [m["email"] for m in members.json["members"]] == ["ada@example.com"]


def test_personal_tenant_can_be_renamed_by_its_owner(client: FlaskClient) -> None:
    _, token = signed_in(client, "ada@example.com")
    personal = personal_tenant(client, token)
    response = client.patch(
        f"/api/tenants/{personal['id']}", json={"name": "Ada"}, headers=bearer(token)
    )
    assert response.status_code == 200
    assert response.json["tenant"] == {**personal, "name": "Ada"}


# Members ---------------------------------------------------------------------------------------


def test_add_member_by_email(client: FlaskClient) -> None:
    _, owner = signed_in(client, "owner@example.com")
    bob, bob_token = signed_in(client, "bob@example.com")
    tenant = create_tenant(client, owner)
    response = client.post(
        f"/api/tenants/{tenant['id']}/members",
        json={"email": "BOB@example.com", "role": "admin"},
        headers=bearer(owner),
    )
    assert response.status_code == 201, response.json
    member = response.json["member"]
    assert member["user_id"] == bob["id"]
    assert member["email"] == "bob@example.com"
    assert member["role"] == "admin"
    assert set(member) == {"user_id", "email", "name", "role", "joined_at"}
    # Bob now sees the tenant, with his role, at once.
    listed = client.get("/api/tenants", headers=bearer(bob_token)).json["tenants"]
    assert [(t["id"], t["role"]) for t in listed if not t["personal"]] == [(tenant["id"], "admin")]


def test_add_member_defaults_to_the_member_role(client: FlaskClient) -> None:
    _, owner = signed_in(client, "owner@example.com")
    signed_in(client, "bob@example.com")
    tenant = create_tenant(client, owner)
    response = client.post(
        f"/api/tenants/{tenant['id']}/members",
        json={"email": "bob@example.com"},
        headers=bearer(owner),
    )
    assert response.status_code == 201
    assert response.json["member"]["role"] == "member"


def test_add_member_with_an_unknown_email_is_404(client: FlaskClient) -> None:
    _, owner = signed_in(client, "owner@example.com")
    tenant = create_tenant(client, owner)
    response = client.post(
        f"/api/tenants/{tenant['id']}/members",
        json={"email": "nobody@example.com", "role": "member"},
        headers=bearer(owner),
    )
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_add_member_twice_is_409(client: FlaskClient) -> None:
    _, owner = signed_in(client, "owner@example.com")
    signed_in(client, "bob@example.com")
    tenant = create_tenant(client, owner)
    add_member(client, owner, tenant["id"], "bob@example.com", "viewer")
    response = client.post(
        f"/api/tenants/{tenant['id']}/members",
        json={"email": "bob@example.com", "role": "admin"},
        headers=bearer(owner),
    )
    assert response.status_code == 409
    assert error_code(response) == "conflict"
    members = client.get(f"/api/tenants/{tenant['id']}/members", headers=bearer(owner))
    roles = {m["email"]: m["role"] for m in members.json["members"]}
    assert roles == {"owner@example.com": "owner", "bob@example.com": "viewer"}


def test_add_member_validates_the_body(client: FlaskClient) -> None:
    _, owner = signed_in(client, "owner@example.com")
    tenant = create_tenant(client, owner)
    for body in (
        {"email": "not-an-email", "role": "member"},
        {"email": "bob@example.com", "role": "superuser"},
    ):
        response = client.post(
            f"/api/tenants/{tenant['id']}/members", json=body, headers=bearer(owner)
        )
        assert response.status_code == 422, body


def test_admin_adds_members_but_not_owners(client: FlaskClient) -> None:
    tenant, people = team_with_roles(client)
    admin = people["admin"][1]
    signed_in(client, "new@example.com")
    signed_in(client, "boss@example.com")
    assert add_member(client, admin, tenant["id"], "new@example.com", "admin")["role"] == "admin"
    response = client.post(
        f"/api/tenants/{tenant['id']}/members",
        json={"email": "boss@example.com", "role": "owner"},
        headers=bearer(admin),
    )
    assert response.status_code == 403
    assert error_code(response) == "insufficient_role"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_add_members(client: FlaskClient, role: str) -> None:
    tenant, people = team_with_roles(client)
    signed_in(client, "new@example.com")
    response = client.post(
        f"/api/tenants/{tenant['id']}/members",
        json={"email": "new@example.com", "role": "viewer"},
        headers=bearer(people[role][1]),
    )
    assert response.status_code == 403
    assert error_code(response) == "insufficient_role"


def test_list_members_shows_email_and_role(client: FlaskClient) -> None:
    tenant, people = team_with_roles(client)
    response = client.get(
        f"/api/tenants/{tenant['id']}/members", headers=bearer(people["viewer"][1])
    )
    assert response.status_code == 200
    members = response.json["members"]
    assert sorted((m["email"], m["role"]) for m in members) == sorted(
        (f"{role}@example.com", role) for role in ROLES
    )
    by_email = {m["email"]: m for m in members}
    for role, (user, _) in people.items():
        assert by_email[f"{role}@example.com"]["user_id"] == user["id"]
        assert by_email[f"{role}@example.com"]["joined_at"].endswith("Z")


def test_owner_changes_roles(client: FlaskClient) -> None:
    tenant, people = team_with_roles(client)
    owner = people["owner"][1]
    viewer_id = people["viewer"][0]["id"]
    url = f"/api/tenants/{tenant['id']}/members/{viewer_id}"
    response = client.patch(url, json={"role": "admin"}, headers=bearer(owner))
    assert response.status_code == 200, response.json
    assert response.json["member"]["role"] == "admin"
    assert response.json["member"]["user_id"] == viewer_id
    # The promoted viewer can rename right away (the role change is not cached stale).
    renamed = client.patch(
        f"/api/tenants/{tenant['id']}", json={"name": "X"}, headers=bearer(people["viewer"][1])
    )
    assert renamed.status_code == 200


def test_demoted_admin_loses_rights_on_the_next_request(client: FlaskClient) -> None:
    tenant, people = team_with_roles(client)
    admin = people["admin"][1]
    rename = {"name": "By admin"}
    assert (
        client.patch(f"/api/tenants/{tenant['id']}", json=rename, headers=bearer(admin)).status_code
        == 200
    )
    demote = client.patch(
        f"/api/tenants/{tenant['id']}/members/{people['admin'][0]['id']}",
        json={"role": "viewer"},
        headers=bearer(people["owner"][1]),
    )
    assert demote.status_code == 200
    again = client.patch(f"/api/tenants/{tenant['id']}", json=rename, headers=bearer(admin))
    assert again.status_code == 403
    assert error_code(again) == "insufficient_role"


def test_admin_cannot_change_an_owner_nor_make_one(client: FlaskClient) -> None:
    tenant, people = team_with_roles(client)
    admin = people["admin"][1]
    owner_id = people["owner"][0]["id"]
    member_id = people["member"][0]["id"]
    base = f"/api/tenants/{tenant['id']}/members"
    demote = client.patch(f"{base}/{owner_id}", json={"role": "viewer"}, headers=bearer(admin))
    assert demote.status_code == 403
    assert error_code(demote) == "insufficient_role"
    promote = client.patch(f"{base}/{member_id}", json={"role": "owner"}, headers=bearer(admin))
    assert promote.status_code == 403
    assert error_code(promote) == "insufficient_role"
    # But an admin manages the roles below owner.
    ok = client.patch(f"{base}/{member_id}", json={"role": "viewer"}, headers=bearer(admin))
    assert ok.status_code == 200
    assert ok.json["member"]["role"] == "viewer"
    roles = {
        m["user_id"]: m["role"] for m in client.get(base, headers=bearer(admin)).json["members"]
    }
    assert roles[owner_id] == "owner"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_change_roles(client: FlaskClient, role: str) -> None:
    tenant, people = team_with_roles(client)
    user, token = people[role]
    response = client.patch(
        f"/api/tenants/{tenant['id']}/members/{user['id']}",
        json={"role": "admin"},
        headers=bearer(token),
    )
    assert response.status_code == 403
    assert error_code(response) == "insufficient_role"


def test_the_last_owner_cannot_be_demoted(client: FlaskClient) -> None:
    owner, token = signed_in(client, "owner@example.com")
    tenant = create_tenant(client, token)
    url = f"/api/tenants/{tenant['id']}/members/{owner['id']}"
    response = client.patch(url, json={"role": "admin"}, headers=bearer(token))
    assert response.status_code == 409
    assert error_code(response) == "conflict"
    assert client.get(f"/api/tenants/{tenant['id']}", headers=bearer(token)).json["tenant"][
        "role"
    ] == ("owner")


def test_an_owner_can_step_down_when_another_owner_remains(client: FlaskClient) -> None:
    owner, token = signed_in(client, "owner@example.com")
    signed_in(client, "second@example.com")
    tenant = create_tenant(client, token)
    add_member(client, token, tenant["id"], "second@example.com", "owner")
    url = f"/api/tenants/{tenant['id']}/members/{owner['id']}"
    response = client.patch(url, json={"role": "admin"}, headers=bearer(token))
    assert response.status_code == 200
    assert response.json["member"]["role"] == "admin"


def test_change_role_of_a_non_member_is_404(client: FlaskClient) -> None:
    _, owner = signed_in(client, "owner@example.com")
    stranger, _ = signed_in(client, "stranger@example.com")
    tenant = create_tenant(client, owner)
    response = client.patch(
        f"/api/tenants/{tenant['id']}/members/{stranger['id']}",
        json={"role": "admin"},
        headers=bearer(owner),
    )
    assert response.status_code == 404


@pytest.mark.parametrize("remover", ["owner", "admin"])
def test_owners_and_admins_remove_members(client: FlaskClient, remover: str) -> None:
    tenant, people = team_with_roles(client)
    member, member_token = people["member"]
    response = client.delete(
        f"/api/tenants/{tenant['id']}/members/{member['id']}",
        headers=bearer(people[remover][1]),
    )
    assert response.status_code == 204
    assert client.get(f"/api/tenants/{tenant['id']}", headers=bearer(member_token)).status_code == (
        404
    )
    members = client.get(
        f"/api/tenants/{tenant['id']}/members", headers=bearer(people["owner"][1])
    ).json["members"]
    assert "member@example.com" not in [m["email"] for m in members]
    again = client.delete(
        f"/api/tenants/{tenant['id']}/members/{member['id']}",
        headers=bearer(people[remover][1]),
    )
    assert again.status_code == 404


def test_admin_cannot_remove_an_owner(client: FlaskClient) -> None:
    tenant, people = team_with_roles(client)
    response = client.delete(
        f"/api/tenants/{tenant['id']}/members/{people['owner'][0]['id']}",
        headers=bearer(people["admin"][1]),
    )
    assert response.status_code == 403
    assert error_code(response) == "insufficient_role"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_remove_others(client: FlaskClient, role: str) -> None:
    tenant, people = team_with_roles(client)
    victim = "viewer" if role == "member" else "member"
    response = client.delete(
        f"/api/tenants/{tenant['id']}/members/{people[victim][0]['id']}",
        headers=bearer(people[role][1]),
    )
    assert response.status_code == 403
    assert error_code(response) == "insufficient_role"


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_a_member_can_leave(client: FlaskClient, role: str) -> None:
    tenant, people = team_with_roles(client)
    user, token = people[role]
    response = client.delete(
        f"/api/tenants/{tenant['id']}/members/{user['id']}", headers=bearer(token)
    )
    assert response.status_code == 204
    listed = client.get("/api/tenants", headers=bearer(token)).json["tenants"]
    assert [t["personal"] for t in listed] == [True]
    assert client.get(f"/api/tenants/{tenant['id']}", headers=bearer(token)).status_code == 404


def test_the_last_owner_cannot_leave(client: FlaskClient) -> None:
    tenant, people = team_with_roles(client)
    owner, token = people["owner"]
    response = client.delete(
        f"/api/tenants/{tenant['id']}/members/{owner['id']}", headers=bearer(token)
    )
    assert response.status_code == 409
    assert error_code(response) == "conflict"
    assert client.get(f"/api/tenants/{tenant['id']}", headers=bearer(token)).status_code == 200


def test_an_owner_can_leave_when_another_owner_remains(client: FlaskClient) -> None:
    tenant, people = team_with_roles(client)
    owner, token = people["owner"]
    promote = client.patch(
        f"/api/tenants/{tenant['id']}/members/{people['admin'][0]['id']}",
        json={"role": "owner"},
        headers=bearer(token),
    )
    assert promote.status_code == 200
    response = client.delete(
        f"/api/tenants/{tenant['id']}/members/{owner['id']}", headers=bearer(token)
    )
    assert response.status_code == 204
    assert client.get(f"/api/tenants/{tenant['id']}", headers=bearer(token)).status_code == 404


def test_the_owner_cannot_leave_their_personal_tenant(client: FlaskClient) -> None:
    ada, token = signed_in(client, "ada@example.com")
    personal = personal_tenant(client, token)
    response = client.delete(
        f"/api/tenants/{personal['id']}/members/{ada['id']}", headers=bearer(token)
    )
    assert response.status_code == 409
    assert personal_tenant(client, token)["id"] == personal["id"]


# The tenant in scope of an application view ---------------------------------------------------


def test_tenant_roles_view_checks_the_role_in_the_url_tenant(client: FlaskClient) -> None:
    tenant, people = team_with_roles(client)
    url = f"/api/t/{tenant['id']}/things"
    for role in ("owner", "admin"):
        response = client.get(url, headers=bearer(people[role][1]))
        assert response.status_code == 200, role
        assert response.json == {"tenant_id": tenant["id"], "role": role}
    for role in ("member", "viewer"):
        response = client.get(url, headers=bearer(people[role][1]))
        assert response.status_code == 403, role
        assert error_code(response) == "insufficient_role"
    _, outsider = signed_in(client, "eve@example.com")
    assert client.get(url, headers=bearer(outsider)).status_code == 404


def test_a_session_view_with_a_tenant_argument_sees_current_tenant(client: FlaskClient) -> None:
    tenant, people = team_with_roles(client)
    response = client.get(f"/api/t/{tenant['id']}/docs", headers=bearer(people["viewer"][1]))
    assert response.status_code == 200
    assert response.json == {"tenant_id": tenant["id"], "role": "viewer"}


def test_tenant_roles_view_without_a_tenant_is_404_for_a_session(client: FlaskClient) -> None:
    _, token = signed_in(client, "ada@example.com")
    response = client.get("/api/my-tenant", headers=bearer(token))
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_api_token_manages_its_tenant_only_with_tenants_write(client: FlaskClient) -> None:
    """A token with ``tenants:write`` acts with its user's tenant role, in its tenant only."""
    tenant, people = team_with_roles(client)
    owner = people["owner"][1]
    other = create_tenant(client, owner, "Other")
    writer = create_token(
        client, owner, tenant_id=tenant["id"], scopes=["tenants:read", "tenants:write"]
    )["token"]
    reader = create_token(client, owner, tenant_id=tenant["id"], scopes=["tenants:read"])["token"]
    url = f"/api/tenants/{tenant['id']}"
    denied = client.patch(url, json={"name": "By reader"}, headers=bearer(reader))
    assert denied.status_code == 403
    assert error_code(denied) == "insufficient_scope"
    renamed = client.patch(url, json={"name": "By writer"}, headers=bearer(writer))
    assert renamed.status_code == 200, renamed.json
    elsewhere = client.patch(
        f"/api/tenants/{other['id']}", json={"name": "X"}, headers=bearer(writer)
    )
    assert elsewhere.status_code == 403
    assert error_code(elsewhere) == "forbidden"
