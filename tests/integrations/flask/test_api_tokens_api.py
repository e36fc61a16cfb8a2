"""``/api/tokens`` and API-token authentication: format, scopes, resources, tenants, revocation,
no privilege escalation, and the no-SQL hot path. Over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from authgate.core.api_tokens import generate_api_token, hash_api_token_secret
from authgate.service import AuthService
from tests.helpers import (
    APP_SCOPES,
    PASSWORD,
    StepClock,
    add_member,
    bearer,
    count_sql,
    create_tenant,
    create_token,
    error_code,
    login,
    make_admin,
    make_settings,
    make_tenant_app,
    register,
    signed_in,
)

# Settings that register APP_SCOPES, and make_tenant_app (tests/conftest.py).
pytestmark = pytest.mark.tenant_app

TOKEN_RE = re.compile(r"^ag_([0-9A-Za-z]{16})_[0-9A-Za-z]{43}[0-9A-Za-z]{6}$")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ALL_SCOPES = ["read", "write", "tenants:read", "tenants:write", *APP_SCOPES]
DAY = 86400


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def personal_tenant_id(client: FlaskClient, session: str) -> str:
    tenants = client.get("/api/tenants", headers=bearer(session)).json["tenants"]
    (personal,) = [t["id"] for t in tenants if t["personal"]]
    return personal  # type: ignore[no-any-return]


def tampered(token: str, index: int) -> str:
    """``token`` with the base62 character at ``index`` replaced by another base62 one."""
    char = token[index]
    other = BASE62[(BASE62.index(char) + 1) % len(BASE62)]
    return token[:index] + other + token[index + 1 :]


def admin_session(client: FlaskClient, service: AuthService) -> tuple[dict[str, Any], str]:
    user = register(client, "root@example.com")
    make_admin(service, user["id"])
    return user, login(client, "root@example.com")


def assert_denied(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.json
    assert error_code(response) == code


# Creating and listing -------------------------------------------------------------------------


def test_create_returns_the_secret_once_with_its_description(
    client: FlaskClient, service: AuthService
) -> None:
    ada, session = signed_in(client, "ada@example.com")
    response = client.post(
        "/api/tokens",
        json={"name": "  laptop script ", "scopes": ["read", "chat:write"]},
        headers=bearer(session),
    )
    assert response.status_code == 201, response.json
    body = response.json
    token = body["token"]
    assert len(token) == 69
    match = TOKEN_RE.fullmatch(token)
    assert match is not None, token
    assert body["id"] == match.group(1)
    assert body["prefix"] == f"ag_{body['id']}"
    assert token.startswith(body["prefix"] + "_")
    assert body["name"] == "laptop script"
    assert body["tenant_id"] == personal_tenant_id(client, session)  # the default tenant
    assert body["scopes"] == ["read", "chat:write"]
    assert body["resource"] is None
    assert body["last_used_at"] is None and body["last_used_ip"] is None
    created = parse_time(body["created_at"])
    expires = parse_time(body["expires_at"])
    assert expires - created == timedelta(days=90)
    assert abs((created - service.clock.now()).total_seconds()) < 60
    # Stored as a hash: the plaintext secret is nowhere in the record.
    record = service.store.get_api_token(body["id"])
    assert record is not None and record.user_id == ada["id"]
    secret = token[len(body["prefix"]) + 1 : -6]
    assert record.secret_hash == hash_api_token_secret(secret)
    assert secret not in repr(record) and token not in repr(record)


def test_each_token_is_different(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    first = create_token(client, session)
    second = create_token(client, session)
    assert first["token"] != second["token"] and first["id"] != second["id"]


def test_list_never_includes_the_secret(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    created = create_token(client, session, name="ci", scopes=["read", "write"], resource="x:1")
    response = client.get("/api/tokens", headers=bearer(session))
    assert response.status_code == 200
    (listed,) = response.json["tokens"]
    assert "token" not in listed
    assert created["token"] not in response.get_data(as_text=True)
    assert set(listed) == {
        "id",
        "name",
        "prefix",
        "tenant_id",
        "scopes",
        "resource",
        "created_at",
        "expires_at",
        "last_used_at",
        "last_used_ip",
    }
    assert listed == {k: v for k, v in created.items() if k != "token"}


def test_list_shows_only_the_callers_tokens_newest_first(
    client: FlaskClient, clock: StepClock
) -> None:
    _, ada = signed_in(client, "ada@example.com")
    _, bob = signed_in(client, "bob@example.com")
    old = create_token(client, ada, name="old")
    clock.advance(5)
    new = create_token(client, ada, name="new")
    create_token(client, bob, name="bob's")
    ids = [t["id"] for t in client.get("/api/tokens", headers=bearer(ada)).json["tokens"]]
    assert ids == [new["id"], old["id"]]
    names = [t["name"] for t in client.get("/api/tokens", headers=bearer(bob)).json["tokens"]]
    assert names == ["bob's"]


def test_create_for_a_team_tenant_with_resource_and_expiry(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    tenant = create_tenant(client, session)
    body = create_token(
        client,
        session,
        tenant_id=tenant["id"],
        scopes=["chat:write", "chat:write", "read"],
        resource="dialog:42",
        expires_in_days=365,
    )
    assert body["tenant_id"] == tenant["id"]
    assert body["scopes"] == ["chat:write", "read"]  # deduplicated, order kept
    assert body["resource"] == "dialog:42"
    assert parse_time(body["expires_at"]) - parse_time(body["created_at"]) == timedelta(days=365)


def test_create_for_a_tenant_the_user_is_not_in_is_404(client: FlaskClient) -> None:
    _, ada = signed_in(client, "ada@example.com")
    _, bob = signed_in(client, "bob@example.com")
    tenant = create_tenant(client, ada)
    for tenant_id in (tenant["id"], personal_tenant_id(client, ada), "nope"):
        response = client.post(
            "/api/tokens",
            json={"name": "x", "scopes": ["read"], "tenant_id": tenant_id},
            headers=bearer(bob),
        )
        assert_denied(response, 404, "not_found")
    assert client.get("/api/tokens", headers=bearer(bob)).json["tokens"] == []


def test_unknown_scope_is_422(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    response = client.post(
        "/api/tokens", json={"name": "x", "scopes": ["read", "admin"]}, headers=bearer(session)
    )
    assert_denied(response, 422, "validation_failed")
    assert "admin" in response.json["error"]["details"]["fields"]["scopes"]
    assert client.get("/api/tokens", headers=bearer(session)).json["tokens"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": ["read"], "expires_in_days": 366}, "expires_in_days"),
        ({"name": "x", "scopes": ["read"], "expires_in_days": 0}, "expires_in_days"),
        ({"name": "x", "scopes": ["read"], "expires_in_days": -1}, "expires_in_days"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x"}, "scopes"),
        ({"name": "", "scopes": ["read"]}, "name"),
        ({"scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": ["read"], "resource": ""}, "resource"),
        ({"name": "x", "scopes": ["read"], "secret": "mine"}, "secret"),
    ],
)
def test_invalid_create_bodies_are_422(
    client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    _, session = signed_in(client, "ada@example.com")
    response = client.post("/api/tokens", json=body, headers=bearer(session))
    assert_denied(response, 422, "validation_failed")
    assert field in response.json["error"]["details"]["fields"]


def test_token_endpoints_need_authentication(client: FlaskClient) -> None:
    assert client.get("/api/tokens").status_code == 401
    assert client.post("/api/tokens", json={"name": "x", "scopes": ["read"]}).status_code == 401
    assert client.delete("/api/tokens/abc").status_code == 401


# Authenticating with a token ------------------------------------------------------------------


def test_token_authenticates_as_its_user(client: FlaskClient) -> None:
    ada, session = signed_in(client, "ada@example.com")
    token = create_token(client, session, scopes=["chat:write"])["token"]
    me = client.get("/api/auth/me", headers=bearer(token))
    assert me.status_code == 200, me.json
    assert me.json["user"]["id"] == ada["id"]
    chat = client.post("/api/chat", headers=bearer(token))
    assert chat.status_code == 200, chat.json
    assert chat.json["user"] == "ada@example.com"
    assert chat.json["token_id"] == token[3:19]
    # A plain login_required view is fine too.
    assert client.get("/api/notes", headers=bearer(token)).status_code == 200


def test_token_tenant_is_current_tenant_without_a_tenant_in_the_url(
    client: FlaskClient,
) -> None:
    _, session = signed_in(client, "ada@example.com")
    _, bob = signed_in(client, "bob@example.com")
    tenant = create_tenant(client, bob)
    add_member(client, bob, tenant["id"], "ada@example.com", "viewer")
    personal = create_token(client, session)
    team = create_token(client, session, tenant_id=tenant["id"])
    mine = client.get("/api/my-tenant", headers=bearer(personal["token"]))
    assert mine.json == {"tenant_id": personal["tenant_id"], "role": "owner"}
    shared = client.get("/api/my-tenant", headers=bearer(team["token"]))
    assert shared.json == {"tenant_id": tenant["id"], "role": "viewer"}


def test_session_logins_carry_every_scope(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    assert client.post("/api/chat", headers=bearer(session)).status_code == 200


def test_missing_scope_is_403_insufficient_scope(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    token = create_token(client, session, scopes=["read", "chat:read"])["token"]
    response = client.post("/api/chat", headers=bearer(token))
    assert_denied(response, 403, "insufficient_scope")
    assert "chat:write" in response.json["error"]["message"]


def test_tampered_checksum_is_401_without_sql(client: FlaskClient, service: AuthService) -> None:
    _, session = signed_in(client, "ada@example.com")
    token = create_token(client, session)["token"]
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    # A changed checksum, a changed secret, a changed id: the checksum catches each, offline.
    bad_tokens = [tampered(token, -1), tampered(token, 30), tampered(token, 5), token[:-1]]
    with count_sql(service) as statements:
        for bad in bad_tokens:
            response = client.get("/api/auth/me", headers=bearer(bad))
            assert_denied(response, 401, "invalid_token")
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert statements == []


def test_valid_looking_unknown_token_is_401(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    create_token(client, session)
    never_stored, _ = generate_api_token()
    response = client.get("/api/auth/me", headers=bearer(never_stored))
    assert_denied(response, 401, "invalid_token")


def test_known_id_with_a_wrong_secret_is_401(client: FlaskClient) -> None:
    """A forged token reusing a real (public) id with another secret and a valid checksum."""
    import zlib

    from authgate.core.api_tokens import _encode_base62

    _, session = signed_in(client, "ada@example.com")
    real = create_token(client, session)
    assert client.get("/api/auth/me", headers=bearer(real["token"])).status_code == 200
    _, other = generate_api_token()
    body = f"{real['prefix']}_{other.secret}"
    forged = body + _encode_base62(zlib.crc32(body.encode()), 6)
    response = client.get("/api/auth/me", headers=bearer(forged))
    assert_denied(response, 401, "invalid_token")


def test_revoked_token_fails_on_the_very_next_request(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    created = create_token(client, session)
    token = created["token"]
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200  # now cached
    response = client.delete(f"/api/tokens/{created['id']}", headers=bearer(session))
    assert response.status_code == 204
    denied = client.get("/api/auth/me", headers=bearer(token))
    assert_denied(denied, 401, "token_revoked")
    assert client.get("/api/tokens", headers=bearer(session)).json["tokens"] == []
    again = client.delete(f"/api/tokens/{created['id']}", headers=bearer(session))
    assert_denied(again, 404, "not_found")


def test_cannot_revoke_another_users_token(client: FlaskClient) -> None:
    _, ada = signed_in(client, "ada@example.com")
    _, bob = signed_in(client, "bob@example.com")
    created = create_token(client, ada)
    response = client.delete(f"/api/tokens/{created['id']}", headers=bearer(bob))
    assert_denied(response, 404, "not_found")
    assert client.get("/api/auth/me", headers=bearer(created["token"])).status_code == 200


def test_expired_token_is_401_token_expired(
    client: FlaskClient, service: AuthService, clock: StepClock
) -> None:
    _, session = signed_in(client, "ada@example.com")
    token = create_token(client, session)["token"]
    short = create_token(client, session, expires_in_days=1)["token"]
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    assert client.get("/api/auth/me", headers=bearer(short)).status_code == 200
    clock.advance(DAY + 1)
    assert_denied(client.get("/api/auth/me", headers=bearer(short)), 401, "token_expired")
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    clock.advance(89 * DAY)
    response = client.get("/api/auth/me", headers=bearer(token))
    assert_denied(response, 401, "token_expired")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_default_expiry_is_configurable(tmp_path: Path, database_url: str) -> None:
    from authgate.bootstrap import build_service

    settings = make_settings(
        tmp_path,
        database_url,
        api_token_scopes=APP_SCOPES,
        api_token_default_ttl_days=7,
        api_token_max_ttl_days=30,
    )
    service = build_service(settings)
    try:
        client = make_tenant_app(service).test_client()
        _, session = signed_in(client, "ada@example.com")
        body = create_token(client, session)
        assert parse_time(body["expires_at"]) - parse_time(body["created_at"]) == timedelta(days=7)
        too_long = client.post(
            "/api/tokens",
            json={"name": "x", "scopes": ["read"], "expires_in_days": 31},
            headers=bearer(session),
        )
        assert_denied(too_long, 422, "validation_failed")
    finally:
        service.close()


# Resources and tenants ----------------------------------------------------------------------


def test_resource_bound_token_works_only_on_its_resource(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    bound = create_token(client, session, resource="dialog:42", scopes=ALL_SCOPES)["token"]
    ok = client.get("/dialogs/42", headers=bearer(bound))
    assert ok.status_code == 200, ok.json
    assert ok.json == {"dialog": "42", "user": "ada@example.com"}
    assert_denied(client.get("/dialogs/43", headers=bearer(bound)), 403, "forbidden")
    assert_denied(client.get("/dialogs/4", headers=bearer(bound)), 403, "forbidden")
    # Views that declare no resource refuse a resource-bound token.
    assert_denied(client.get("/api/auth/me", headers=bearer(bound)), 403, "forbidden")
    assert_denied(client.get("/api/notes", headers=bearer(bound)), 403, "forbidden")
    assert_denied(client.post("/api/chat", headers=bearer(bound)), 403, "forbidden")


def test_unbound_token_and_sessions_reach_any_resource(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    unbound = create_token(client, session)["token"]
    for credential in (unbound, session):
        assert client.get("/dialogs/42", headers=bearer(credential)).status_code == 200
        assert client.get("/dialogs/43", headers=bearer(credential)).status_code == 200


def test_token_for_another_tenant_is_403(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    team_a = create_tenant(client, session, "A")
    team_b = create_tenant(client, session, "B")
    token = create_token(client, session, tenant_id=team_a["id"], scopes=ALL_SCOPES)["token"]
    ok = client.get(f"/api/t/{team_a['id']}/things", headers=bearer(token))
    assert ok.status_code == 200, ok.json
    assert ok.json == {"tenant_id": team_a["id"], "role": "owner"}
    # Ada owns B too, but this token belongs to A.
    for path in (f"/api/t/{team_b['id']}/things", f"/api/t/{team_b['id']}/docs"):
        assert_denied(client.get(path, headers=bearer(token)), 403, "forbidden")
    assert client.get(f"/api/t/{team_b['id']}/things", headers=bearer(session)).status_code == 200


def test_tenant_roles_apply_to_tokens(client: FlaskClient) -> None:
    _, owner = signed_in(client, "owner@example.com")
    member_user, member = signed_in(client, "member@example.com")
    tenant = create_tenant(client, owner)
    add_member(client, owner, tenant["id"], "member@example.com", "member")
    member_token = create_token(client, member, tenant_id=tenant["id"], scopes=ALL_SCOPES)
    assert member_token["tenant_id"] == tenant["id"]
    response = client.get(f"/api/t/{tenant['id']}/things", headers=bearer(member_token["token"]))
    assert_denied(response, 403, "insufficient_role")
    docs = client.get(f"/api/t/{tenant['id']}/docs", headers=bearer(member_token["token"]))
    assert docs.json == {"tenant_id": tenant["id"], "role": "member"}
    # A promotion applies to the token at once.
    promote = client.patch(
        f"/api/tenants/{tenant['id']}/members/{member_user['id']}",
        json={"role": "admin"},
        headers=bearer(owner),
    )
    assert promote.status_code == 200
    response = client.get(f"/api/t/{tenant['id']}/things", headers=bearer(member_token["token"]))
    assert response.status_code == 200
    assert response.json["role"] == "admin"


# No privilege escalation ----------------------------------------------------------------------


def test_a_token_cannot_reach_session_only_endpoints(
    client: FlaskClient, service: AuthService
) -> None:
    _, session = admin_session(client, service)
    token_body = create_token(client, session, scopes=ALL_SCOPES)
    token = bearer(token_body["token"])
    victim, _ = signed_in(client, "victim@example.com")
    attempts = {
        "create token": client.post(
            "/api/tokens", json={"name": "x", "scopes": ["read"]}, headers=token
        ),
        "list tokens": client.get("/api/tokens", headers=token),
        "revoke token": client.delete(f"/api/tokens/{token_body['id']}", headers=token),
        "revoke unknown": client.delete("/api/tokens/x", headers=token),
        "password": client.post(
            "/api/auth/password",
            json={"current_password": PASSWORD, "new_password": "a brand new passphrase 42"},
            headers=token,
        ),
        "profile": client.patch("/api/auth/me", json={"name": "Mallory"}, headers=token),
        "sessions": client.get("/api/auth/sessions", headers=token),
        "logout all": client.post("/api/auth/logout-all", headers=token),
        "create tenant": client.post("/api/tenants", json={"name": "T"}, headers=token),
        "list users": client.get("/api/users", headers=token),
        "get user": client.get(f"/api/users/{victim['id']}", headers=token),
        "disable user": client.patch(
            f"/api/users/{victim['id']}", json={"status": "disabled"}, headers=token
        ),
        "delete user": client.delete(f"/api/users/{victim['id']}", headers=token),
        "user tokens": client.get(f"/api/users/{victim['id']}/tokens", headers=token),
    }
    for what, response in attempts.items():
        assert response.status_code == 403, (what, response.json)
        assert error_code(response) == "session_required", what
    # Nothing happened.
    assert client.get("/api/auth/me", headers=token).status_code == 200
    listed = client.get("/api/tokens", headers=bearer(session)).json["tokens"]
    assert [t["id"] for t in listed] == [token_body["id"]]
    assert client.get(f"/api/users/{victim['id']}", headers=bearer(session)).json["user"][
        "status"
    ] == ("active")
    assert login_works(client, "root@example.com")


def login_works(client: FlaskClient, email: str) -> bool:
    response = client.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    return response.status_code == 200


def test_a_token_never_carries_the_admin_role(client: FlaskClient, service: AuthService) -> None:
    _, session = admin_session(client, service)
    token = create_token(client, session, scopes=ALL_SCOPES)["token"]
    assert client.delete("/api/notes/1", headers=bearer(session)).status_code == 204
    assert_denied(client.delete("/api/notes/1", headers=bearer(token)), 403, "insufficient_role")


def test_token_with_tenants_read_lists_only_its_tenant(client: FlaskClient) -> None:
    ada, session = signed_in(client, "ada@example.com")
    team = create_tenant(client, session, "Team")
    create_tenant(client, session, "Other")
    token = create_token(client, session, tenant_id=team["id"], scopes=["tenants:read"])["token"]
    response = client.get("/api/tenants", headers=bearer(token))
    assert response.status_code == 200, response.json
    assert [t["id"] for t in response.json["tenants"]] == [team["id"]]
    got = client.get(f"/api/tenants/{team['id']}", headers=bearer(token))
    assert got.status_code == 200 and got.json["tenant"]["role"] == "owner"
    members = client.get(f"/api/tenants/{team['id']}/members", headers=bearer(token))
    assert members.status_code == 200
    assert [m["user_id"] for m in members.json["members"]] == [ada["id"]]
    # Its scope does not stretch to writing.
    renamed = client.patch(f"/api/tenants/{team['id']}", json={"name": "X"}, headers=bearer(token))
    assert_denied(renamed, 403, "insufficient_scope")
    # Ada's personal tenant is out of this token's reach.
    personal = personal_tenant_id(client, session)
    for path in (f"/api/tenants/{personal}", f"/api/tenants/{personal}/members"):
        assert_denied(client.get(path, headers=bearer(token)), 403, "forbidden")


def test_token_without_tenants_read_cannot_see_tenants(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    body = create_token(client, session, scopes=["read", "write", "chat:write"])
    token = bearer(body["token"])
    tenant_id = body["tenant_id"]
    for path in ("/api/tenants", f"/api/tenants/{tenant_id}", f"/api/tenants/{tenant_id}/members"):
        assert_denied(client.get(path, headers=token), 403, "insufficient_scope")


# Revocation cascades --------------------------------------------------------------------------


def test_removing_the_member_revokes_their_token_for_that_tenant(client: FlaskClient) -> None:
    _, owner = signed_in(client, "owner@example.com")
    bob, bob_session = signed_in(client, "bob@example.com")
    tenant = create_tenant(client, owner)
    add_member(client, owner, tenant["id"], "bob@example.com", "admin")
    team_token = create_token(client, bob_session, tenant_id=tenant["id"])["token"]
    personal_token = create_token(client, bob_session)["token"]
    for token in (team_token, personal_token):
        assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200  # cached
    removed = client.delete(
        f"/api/tenants/{tenant['id']}/members/{bob['id']}", headers=bearer(owner)
    )
    assert removed.status_code == 204
    assert_denied(client.get("/api/auth/me", headers=bearer(team_token)), 401, "token_revoked")
    # His token for his own tenant, and his session, are untouched.
    assert client.get("/api/auth/me", headers=bearer(personal_token)).status_code == 200
    assert client.get("/api/auth/me", headers=bearer(bob_session)).status_code == 200
    # Being added back does not resurrect the old token.
    add_member(client, owner, tenant["id"], "bob@example.com", "admin")
    assert client.get("/api/auth/me", headers=bearer(team_token)).status_code == 401


def test_leaving_the_tenant_revokes_the_token(client: FlaskClient) -> None:
    _, owner = signed_in(client, "owner@example.com")
    bob, bob_session = signed_in(client, "bob@example.com")
    tenant = create_tenant(client, owner)
    add_member(client, owner, tenant["id"], "bob@example.com", "member")
    token = create_token(client, bob_session, tenant_id=tenant["id"])["token"]
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    left = client.delete(
        f"/api/tenants/{tenant['id']}/members/{bob['id']}", headers=bearer(bob_session)
    )
    assert left.status_code == 204
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401


def test_membership_removed_behind_the_services_back_fails_once_learned(
    client: FlaskClient, service: AuthService
) -> None:
    """Another process removed the member (store + log, no announce here): the poll applies it."""
    _, owner = signed_in(client, "owner@example.com")
    bob, bob_session = signed_in(client, "bob@example.com")
    tenant = create_tenant(client, owner)
    add_member(client, owner, tenant["id"], "bob@example.com", "member")
    token = create_token(client, bob_session, tenant_id=tenant["id"])["token"]
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    service.store.remove_member(tenant["id"], bob["id"], now=service.clock.now())
    service.feed.poll_once()
    assert_denied(client.get("/api/auth/me", headers=bearer(token)), 401, "token_revoked")


def test_disabling_the_user_revokes_their_tokens(client: FlaskClient, service: AuthService) -> None:
    _, admin = admin_session(client, service)
    bob, bob_session = signed_in(client, "bob@example.com")
    token = create_token(client, bob_session, scopes=["chat:write"])["token"]
    assert client.post("/api/chat", headers=bearer(token)).status_code == 200
    disabled = client.patch(
        f"/api/users/{bob['id']}", json={"status": "disabled"}, headers=bearer(admin)
    )
    assert disabled.status_code == 200
    assert_denied(client.post("/api/chat", headers=bearer(token)), 401, "token_revoked")
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401


def test_deleting_the_tenant_revokes_its_tokens(client: FlaskClient) -> None:
    _, owner = signed_in(client, "owner@example.com")
    _, bob_session = signed_in(client, "bob@example.com")
    tenant = create_tenant(client, owner)
    add_member(client, owner, tenant["id"], "bob@example.com", "member")
    owner_token = create_token(client, owner, tenant_id=tenant["id"])["token"]
    bob_token = create_token(client, bob_session, tenant_id=tenant["id"])["token"]
    bob_personal = create_token(client, bob_session)["token"]
    for token in (owner_token, bob_token, bob_personal):
        assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    assert client.delete(f"/api/tenants/{tenant['id']}", headers=bearer(owner)).status_code == 204
    for token in (owner_token, bob_token):
        response = client.get("/api/auth/me", headers=bearer(token))
        assert response.status_code == 401, response.json
        assert error_code(response) in ("invalid_token", "token_revoked")
    assert client.get("/api/auth/me", headers=bearer(bob_personal)).status_code == 200
    assert [
        t["tenant_id"] for t in client.get("/api/tokens", headers=bearer(owner)).json["tokens"]
    ] == []


def test_deleting_the_user_revokes_their_tokens(client: FlaskClient, service: AuthService) -> None:
    _, admin = admin_session(client, service)
    bob, bob_session = signed_in(client, "bob@example.com")
    token = create_token(client, bob_session)["token"]
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    assert client.delete(f"/api/users/{bob['id']}", headers=bearer(admin)).status_code == 204
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401


# Administration -------------------------------------------------------------------------------


def test_admin_lists_and_revokes_a_users_tokens(client: FlaskClient, service: AuthService) -> None:
    root, admin = admin_session(client, service)
    bob, bob_session = signed_in(client, "bob@example.com")
    first = create_token(client, bob_session, name="first")
    second = create_token(client, bob_session, name="second")
    listed = client.get(f"/api/users/{bob['id']}/tokens", headers=bearer(admin))
    assert listed.status_code == 200
    assert sorted(t["id"] for t in listed.json["tokens"]) == sorted([first["id"], second["id"]])
    assert all("token" not in t for t in listed.json["tokens"])
    assert first["token"] not in listed.get_data(as_text=True)
    assert client.get("/api/auth/me", headers=bearer(first["token"])).status_code == 200
    revoked = client.delete(f"/api/users/{bob['id']}/tokens/{first['id']}", headers=bearer(admin))
    assert revoked.status_code == 204
    assert_denied(client.get("/api/auth/me", headers=bearer(first["token"])), 401, "token_revoked")
    assert client.get("/api/auth/me", headers=bearer(second["token"])).status_code == 200
    after = client.get(f"/api/users/{bob['id']}/tokens", headers=bearer(admin)).json["tokens"]
    assert [t["id"] for t in after] == [second["id"]]
    # The token id must belong to that user.
    wrong_user = client.delete(
        f"/api/users/{root['id']}/tokens/{second['id']}", headers=bearer(admin)
    )
    assert_denied(wrong_user, 404, "not_found")
    assert client.get("/api/auth/me", headers=bearer(second["token"])).status_code == 200


def test_non_admins_cannot_use_the_admin_token_endpoints(client: FlaskClient) -> None:
    ada, ada_session = signed_in(client, "ada@example.com")
    _, bob_session = signed_in(client, "bob@example.com")
    created = create_token(client, ada_session)
    for session in (bob_session, ada_session):  # not even for their own account
        listed = client.get(f"/api/users/{ada['id']}/tokens", headers=bearer(session))
        assert_denied(listed, 403, "insufficient_role")
        revoked = client.delete(
            f"/api/users/{ada['id']}/tokens/{created['id']}", headers=bearer(session)
        )
        assert_denied(revoked, 403, "insufficient_role")
    assert client.get("/api/auth/me", headers=bearer(created["token"])).status_code == 200


# The hot path ---------------------------------------------------------------------------------


def test_api_token_requests_run_no_sql_in_steady_state(
    client: FlaskClient, service: AuthService
) -> None:
    _, session = signed_in(client, "ada@example.com")
    tenant = create_tenant(client, session)
    token = create_token(client, session, tenant_id=tenant["id"], scopes=["chat:write"])["token"]
    assert client.post("/api/chat", headers=bearer(token)).status_code == 200  # warm-up
    with count_sql(service) as statements:
        for _ in range(20):
            assert client.post("/api/chat", headers=bearer(token)).status_code == 200
            assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
            things = client.get(f"/api/t/{tenant['id']}/things", headers=bearer(token))
            assert things.status_code == 200
    assert statements == []


def test_last_use_is_recorded_in_batches(client: FlaskClient, service: AuthService) -> None:
    _, session = signed_in(client, "ada@example.com")
    created = create_token(client, session)
    with count_sql(service) as statements:
        response = client.get(
            "/api/auth/me",
            headers=bearer(created["token"]),
            environ_base={"REMOTE_ADDR": "203.0.113.7"},
        )
        assert response.status_code == 200
    writes = [s for s in statements if not s.lstrip().upper().startswith("SELECT")]
    assert writes == []  # no write on the request path
    (before,) = client.get("/api/tokens", headers=bearer(session)).json["tokens"]
    assert before["last_used_at"] is None and before["last_used_ip"] is None
    service.feed.flush_last_seen()
    (after,) = client.get("/api/tokens", headers=bearer(session)).json["tokens"]
    assert after["last_used_ip"] == "203.0.113.7"
    used = parse_time(after["last_used_at"])
    assert abs((used - service.clock.now()).total_seconds()) < 60
    assert used >= parse_time(created["created_at"]) - timedelta(seconds=1)


def test_tokens_stay_revoked_when_a_disabled_user_is_enabled_again(
    client: FlaskClient, service: AuthService
) -> None:
    """Disabling revokes, like it revokes sessions: re-enabling must not revive leaked tokens."""
    _, admin = admin_session(client, service)
    bob, bob_session = signed_in(client, "bob@example.com")
    token = create_token(client, bob_session)["token"]
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    for status in ("disabled", "active"):
        response = client.patch(
            f"/api/users/{bob['id']}", json={"status": status}, headers=bearer(admin)
        )
        assert response.status_code == 200
    assert client.get("/api/auth/me", headers=bearer(bob_session)).status_code == 401  # sessions
    assert_denied(client.get("/api/auth/me", headers=bearer(token)), 401, "token_revoked")
