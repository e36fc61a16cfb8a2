"""API tokens end to end: real gunicorn servers, real sockets, scripts sending ``Bearer ag_...``.

Each deployment is two servers (A and B, one worker each, like
``test_revocation_two_processes``) on one database, on SQLite and PostgreSQL, with and without
Redis. Single-server cases talk to A; the cross-process cases warm a token on B, change something
through A, and measure how long B keeps accepting the token: under 100 ms with Redis pub/sub,
under 1 s (the 0.25 s poll) without.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from authgate.bootstrap import build_service
from authgate.core.api_tokens import generate_api_token
from tests.e2e.helpers import (
    DEPLOYMENT_IDS,
    DEPLOYMENTS,
    NO_REDIS_BOUND_SECONDS,
    REDIS_BOUND_SECONDS,
    Server,
    ServerGroup,
    authgate_settings,
    error_code,
    login_script,
    redis_url_for,
    register,
    server_group,
    time_until_status,
    unique_email,
    warm_up,
)
from tests.helpers import bearer

TOKEN_PATTERN = re.compile(r"ag_(?P<id>[0-9A-Za-z]{16})_(?P<secret>[0-9A-Za-z]{43})[0-9A-Za-z]{6}")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass
class Deployment:
    group: ServerGroup
    a: Server
    b: Server
    redis_url: str | None
    bound: float
    _admin_token: str | None = None

    @property
    def mode(self) -> str:
        return f"{self.group.database.kind}-{'redis' if self.redis_url else 'poll'}"

    def admin_token(self) -> str:
        """A login session of an admin, made on first use. The role is granted by the operator
        path (what ``authgate users set-roles`` calls), in this process: the command line would
        cost seconds of interpreter start-up per deployment."""
        if self._admin_token is None:
            email = unique_email("admin")
            user = register(self.a, email)
            service = build_service(authgate_settings(self.a.env))
            try:
                service.accounts.set_user_access(user["id"], roles=["user", "admin"], status=None)
            finally:
                service.close()
            body = login_script(self.a, email)
            assert body["user"]["roles"] == ["user", "admin"]
            self._admin_token = body["access_token"]
        return self._admin_token


@pytest.fixture(
    scope="module",
    params=DEPLOYMENTS,
    ids=DEPLOYMENT_IDS,
)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    kind, with_redis = request.param
    redis_url = redis_url_for(with_redis)
    with server_group(kind, tmp_path_factory) as group:
        a, b = group.start(count=2, workers=1, redis_url=redis_url)
        yield Deployment(
            group, a, b, redis_url, REDIS_BOUND_SECONDS if with_redis else NO_REDIS_BOUND_SECONDS
        )


# Helpers ---------------------------------------------------------------------------------------


@dataclass
class Account:
    user: dict[str, Any]
    email: str
    access_token: str  # a login session's bearer access token


def new_account(server: Server, label: str) -> Account:
    email = unique_email(label)
    user = register(server, email)
    return Account(user, email, login_script(server, email)["access_token"])


def me(server: Server, token: str) -> requests.Response:
    return server.get("/api/auth/me", headers=bearer(token))


def delete(server: Server, path: str, token: str) -> requests.Response:
    return server.request("DELETE", path, headers=bearer(token))


def create_token(server: Server, session_token: str, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "script")
    body.setdefault("scopes", ["read"])
    response = server.post("/api/tokens", json=body, headers=bearer(session_token))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert TOKEN_PATTERN.fullmatch(created["token"]), created["token"]
    return created


def personal_tenant_id(server: Server, session_token: str) -> str:
    response = server.get("/api/tenants", headers=bearer(session_token))
    assert response.status_code == 200, response.text
    personal = [t for t in response.json()["tenants"] if t["personal"]]
    assert len(personal) == 1, response.json()
    tenant_id: str = personal[0]["id"]
    return tenant_id


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None
    return parsed


def with_checksum(body: str) -> str:
    """``ag_<id>_<secret>`` plus its CRC32 in 6 base62 digits (the documented format)."""
    number = zlib.crc32(body.encode())
    digits = ""
    while number:
        number, remainder = divmod(number, 62)
        digits = BASE62[remainder] + digits
    return body + digits.rjust(6, "0")


def other_char(char: str) -> str:
    return "A" if char != "A" else "B"


def assert_within(elapsed: float, deployment: Deployment, what: str) -> None:
    print(f"[{deployment.mode}] {what}: B refused after {elapsed * 1000:.1f} ms")
    assert elapsed < deployment.bound, (
        f"{what}: server B still accepted the API token {elapsed * 1000:.0f} ms after the change "
        f"returned on A (bound {deployment.bound * 1000:.0f} ms, {deployment.mode})"
    )


# A script with an API token --------------------------------------------------------------------


def test_script_creates_and_uses_an_api_token(deployment: Deployment) -> None:
    a, b = deployment.a, deployment.b
    owner = new_account(a, "script")
    before = datetime.now(UTC)

    created = create_token(a, owner.access_token, name="my script", scopes=["read"])

    match = TOKEN_PATTERN.fullmatch(created["token"])
    assert match is not None
    assert set(created) == {
        "token",
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
    assert created["id"] == match["id"]
    assert created["prefix"] == f"ag_{created['id']}"
    assert created["name"] == "my script"
    assert created["scopes"] == ["read"]
    assert created["resource"] is None
    assert created["tenant_id"] == personal_tenant_id(a, owner.access_token)
    created_at = parse_time(created["created_at"])
    assert before - timedelta(seconds=5) <= created_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert parse_time(created["expires_at"]) - created_at == timedelta(days=90)
    assert created["last_used_at"] is None

    weekly = create_token(
        a, owner.access_token, scopes=["read", "write", "read"], expires_in_days=7
    )
    assert weekly["scopes"] == ["read", "write"]
    assert parse_time(weekly["expires_at"]) - parse_time(weekly["created_at"]) == timedelta(days=7)
    invalid = {
        "unknown scope": {"name": "x", "scopes": ["read", "launch:missiles"]},
        "no scope": {"name": "x", "scopes": []},
        "too long": {"name": "x", "scopes": ["read"], "expires_in_days": 366},
    }
    for what, body in invalid.items():
        response = a.post("/api/tokens", json=body, headers=bearer(owner.access_token))
        assert response.status_code == 422, (what, response.text)
        assert response.json()["error"]["code"] == "validation_failed", what

    # The script: no cookies, no Origin, only the header; on either server of the deployment.
    for server in (a, b):
        response = me(server, created["token"])
        assert response.status_code == 200, response.text
        assert response.json()["user"]["id"] == owner.user["id"]
        assert response.json()["user"]["email"] == owner.email

    # The list never shows the secret, only the prefix.
    listing = a.get("/api/tokens", headers=bearer(owner.access_token))
    assert listing.status_code == 200, listing.text
    assert match["secret"] not in listing.text
    listed = {t["id"]: t for t in listing.json()["tokens"]}
    assert set(listed) == {created["id"], weekly["id"]}
    assert all("token" not in t for t in listed.values())
    keys = ("id", "prefix", "name", "tenant_id", "scopes", "resource", "expires_at")
    assert {k: listed[created["id"]][k] for k in keys} == {k: created[k] for k in keys}


def test_last_used_at_is_reported_in_batches(deployment: Deployment) -> None:
    a = deployment.a
    owner = new_account(a, "lastused")
    created = create_token(a, owner.access_token)
    for _ in range(3):
        assert me(a, created["token"]).status_code == 200

    listing = a.get("/api/tokens", headers=bearer(owner.access_token))
    assert listing.status_code == 200, listing.text
    (listed,) = listing.json()["tokens"]
    # Flushed at most once a minute: null until then, then an ISO time (not waited for here).
    assert "last_used_at" in listed and "last_used_ip" in listed
    if listed["last_used_at"] is not None:
        assert parse_time(listed["last_used_at"]) >= parse_time(created["created_at"])
        assert listed["last_used_ip"] == "127.0.0.1"
    else:
        assert listed["last_used_ip"] is None


# Negative cases over the wire --------------------------------------------------------------------


def test_tampered_or_truncated_tokens_are_invalid(deployment: Deployment) -> None:
    a = deployment.a
    owner = new_account(a, "tamper")
    token = create_token(a, owner.access_token)["token"]
    match = TOKEN_PATTERN.fullmatch(token)
    assert match is not None
    secret_at = match.start("secret")

    tampered = {
        "checksum": token[:-1] + other_char(token[-1]),
        "secret, old checksum": token[:secret_at]
        + other_char(token[secret_at])
        + token[secret_at + 1 :],
        "truncated": token[:-1],
        "extended": token + "0",
        # The right id and a well-formed checksum, but not the secret: found, then refused.
        "wrong secret": with_checksum(f"ag_{match['id']}_{'0' * 43}"),
    }
    assert tampered["secret, old checksum"] != token
    for what, value in tampered.items():
        response = me(a, value)
        assert response.status_code == 401, (what, response.text)
        assert error_code(response) == "invalid_token", what
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"], what
    assert me(a, token).status_code == 200  # the real one still works


def test_valid_looking_unknown_token_is_invalid(deployment: Deployment) -> None:
    unknown, _ = generate_api_token()
    assert with_checksum(unknown[:-6]) == unknown  # our reading of the format is right
    for server in (deployment.a, deployment.b):
        response = me(server, unknown)
        assert response.status_code == 401, response.text
        assert error_code(response) == "invalid_token"


def test_api_token_cannot_manage_tokens_or_the_account(deployment: Deployment) -> None:
    a = deployment.a
    owner = new_account(a, "escalate")
    created = create_token(a, owner.access_token, scopes=["read", "write", "tenants:write"])
    token = created["token"]

    refused = {
        "create token": a.post(
            "/api/tokens", json={"name": "child", "scopes": ["read"]}, headers=bearer(token)
        ),
        "list tokens": a.get("/api/tokens", headers=bearer(token)),
        "revoke token": delete(a, f"/api/tokens/{created['id']}", token),
        "change password": a.post(
            "/api/auth/password",
            json={"current_password": "x" * 12, "new_password": "y" * 16},
            headers=bearer(token),
        ),
        "change profile": a.patch("/api/auth/me", json={"name": "Mallory"}, headers=bearer(token)),
        "create tenant": a.post("/api/tenants", json={"name": "Side"}, headers=bearer(token)),
        "list sessions": a.get("/api/auth/sessions", headers=bearer(token)),
        "log out": a.post("/api/auth/logout", headers=bearer(token)),
        "log out everywhere": a.post("/api/auth/logout-all", headers=bearer(token)),
    }
    for what, response in refused.items():
        assert response.status_code == 403, (what, response.text)
        assert error_code(response) == "session_required", what

    # Nothing happened: the token is still there and works, and it made no other token.
    listing = a.get("/api/tokens", headers=bearer(owner.access_token))
    assert [t["id"] for t in listing.json()["tokens"]] == [created["id"]]
    assert me(a, token).status_code == 200


def test_scope_and_tenant_of_a_token_are_enforced(deployment: Deployment) -> None:
    a = deployment.a
    owner = new_account(a, "scoped")
    team = a.post("/api/tenants", json={"name": "Team"}, headers=bearer(owner.access_token))
    assert team.status_code == 201, team.text
    team_id = team.json()["tenant"]["id"]
    personal_id = personal_tenant_id(a, owner.access_token)

    read_only = create_token(a, owner.access_token, scopes=["read"])["token"]
    response = a.get(f"/api/tenants/{personal_id}", headers=bearer(read_only))
    assert response.status_code == 403, response.text
    assert error_code(response) == "insufficient_scope"

    tenants_reader = create_token(a, owner.access_token, scopes=["tenants:read"])["token"]
    response = a.get(f"/api/tenants/{personal_id}", headers=bearer(tenants_reader))
    assert response.status_code == 200, response.text
    # The owner may see the team tenant, but this token belongs to the personal one.
    response = a.get(f"/api/tenants/{team_id}", headers=bearer(tenants_reader))
    assert response.status_code == 403, response.text
    assert error_code(response) == "forbidden"
    listed = a.get("/api/tenants", headers=bearer(tenants_reader)).json()["tenants"]
    assert [t["id"] for t in listed] == [personal_id]

    # A token for a tenant one is not a member of cannot be made.
    stranger = new_account(a, "outsider")
    response = a.post(
        "/api/tokens",
        json={"name": "x", "scopes": ["read"], "tenant_id": team_id},
        headers=bearer(stranger.access_token),
    )
    assert response.status_code == 404, response.text
    assert error_code(response) == "not_found"

    bound = create_token(a, owner.access_token, scopes=["read"], resource="dialog:42")["token"]
    response = me(a, bound)  # /api/auth/me declares no resource
    assert response.status_code == 403, response.text
    assert error_code(response) == "forbidden"


def test_revoked_token_is_refused_on_the_next_request(deployment: Deployment) -> None:
    a = deployment.a
    owner = new_account(a, "revoked")
    created = create_token(a, owner.access_token)
    kept = create_token(a, owner.access_token, name="kept")
    warm_up(lambda: me(a, created["token"]))

    response = delete(a, f"/api/tokens/{created['id']}", owner.access_token)
    assert response.status_code == 204, response.text

    response = me(a, created["token"])
    assert response.status_code == 401, response.text
    assert error_code(response) == "token_revoked"
    assert me(a, kept["token"]).status_code == 200  # only that token
    listing = a.get("/api/tokens", headers=bearer(owner.access_token))
    assert [t["id"] for t in listing.json()["tokens"]] == [kept["id"]]
    again = delete(a, f"/api/tokens/{created['id']}", owner.access_token)
    assert again.status_code == 404, again.text

    # Another user cannot revoke (or learn about) someone else's token.
    stranger = new_account(a, "stranger")
    response = delete(a, f"/api/tokens/{kept['id']}", stranger.access_token)
    assert response.status_code == 404, response.text
    assert me(a, kept["token"]).status_code == 200


# Across processes --------------------------------------------------------------------------------


def test_revocation_reaches_the_other_process(deployment: Deployment) -> None:
    a, b = deployment.a, deployment.b
    owner = new_account(a, "xrevoke")
    created = create_token(a, owner.access_token)
    kept = create_token(a, owner.access_token, name="kept")
    warm_up(lambda: me(b, created["token"]))
    warm_up(lambda: me(b, kept["token"]))

    response = delete(a, f"/api/tokens/{created['id']}", owner.access_token)
    returned = time.perf_counter()
    assert response.status_code == 204, response.text

    elapsed = time_until_status(
        lambda: me(b, created["token"]), since=returned, bound=deployment.bound
    )
    assert_within(elapsed, deployment, "API token revoked")
    assert error_code(me(b, created["token"])) == "token_revoked"
    assert me(b, kept["token"]).status_code == 200


def test_member_removed_mid_use(deployment: Deployment) -> None:
    a, b = deployment.a, deployment.b
    owner = new_account(a, "owner")
    member = new_account(a, "member")
    team = a.post("/api/tenants", json={"name": "Team"}, headers=bearer(owner.access_token))
    assert team.status_code == 201, team.text
    team_id = team.json()["tenant"]["id"]
    added = a.post(
        f"/api/tenants/{team_id}/members",
        json={"email": member.email, "role": "member"},
        headers=bearer(owner.access_token),
    )
    assert added.status_code == 201, added.text
    assert added.json()["member"]["user_id"] == member.user["id"]

    team_token = create_token(a, member.access_token, tenant_id=team_id, scopes=["read"])
    assert team_token["tenant_id"] == team_id
    own_token = create_token(a, member.access_token, name="personal")  # their personal tenant
    warm_up(lambda: me(b, team_token["token"]))
    warm_up(lambda: me(b, own_token["token"]))

    response = delete(a, f"/api/tenants/{team_id}/members/{member.user['id']}", owner.access_token)
    returned = time.perf_counter()
    assert response.status_code == 204, response.text

    elapsed = time_until_status(
        lambda: me(b, team_token["token"]), since=returned, bound=deployment.bound
    )
    assert_within(elapsed, deployment, "member removed")
    assert error_code(me(b, team_token["token"])) == "token_revoked"
    assert me(a, team_token["token"]).status_code == 401
    # Only the tokens for that tenant: the personal one and the login session keep working.
    assert me(b, own_token["token"]).status_code == 200
    assert me(b, member.access_token).status_code == 200
    listing = a.get("/api/tokens", headers=bearer(member.access_token))
    assert [t["id"] for t in listing.json()["tokens"]] == [own_token["id"]]


def test_tenant_deleted_mid_use(deployment: Deployment) -> None:
    a, b = deployment.a, deployment.b
    owner = new_account(a, "deleter")
    team = a.post("/api/tenants", json={"name": "Doomed"}, headers=bearer(owner.access_token))
    assert team.status_code == 201, team.text
    team_id = team.json()["tenant"]["id"]
    token = create_token(a, owner.access_token, tenant_id=team_id)["token"]
    warm_up(lambda: me(b, token))

    response = delete(a, f"/api/tenants/{team_id}", owner.access_token)
    returned = time.perf_counter()
    assert response.status_code == 204, response.text

    elapsed = time_until_status(lambda: me(b, token), since=returned, bound=deployment.bound)
    assert_within(elapsed, deployment, "tenant deleted")
    assert error_code(me(b, token)) in ("token_revoked", "invalid_token")


# Administration ----------------------------------------------------------------------------------


def test_admin_api_token_cannot_reach_admin_endpoints(deployment: Deployment) -> None:
    a = deployment.a
    admin = deployment.admin_token()
    admin_api_token = create_token(a, admin, scopes=["read", "write", "tenants:write"])["token"]
    user = new_account(a, "managed")
    created = create_token(a, user.access_token)

    refused = {
        "list users": a.get("/api/users", headers=bearer(admin_api_token)),
        "list a user's tokens": a.get(
            f"/api/users/{user.user['id']}/tokens", headers=bearer(admin_api_token)
        ),
        "revoke a user's token": delete(
            a, f"/api/users/{user.user['id']}/tokens/{created['id']}", admin_api_token
        ),
        "disable a user": a.patch(
            f"/api/users/{user.user['id']}",
            json={"status": "disabled"},
            headers=bearer(admin_api_token),
        ),
    }
    for what, response in refused.items():
        assert response.status_code == 403, (what, response.text)
        assert error_code(response) == "session_required", what
    assert me(a, created["token"]).status_code == 200

    # A plain user's session is no admin either.
    response = a.get(f"/api/users/{user.user['id']}/tokens", headers=bearer(user.access_token))
    assert response.status_code == 403, response.text
    assert error_code(response) == "insufficient_role"


def test_admin_revokes_a_users_token_across_processes(deployment: Deployment) -> None:
    a, b = deployment.a, deployment.b
    admin = deployment.admin_token()
    user = new_account(a, "adminrevoke")
    created = create_token(a, user.access_token)
    kept = create_token(a, user.access_token, name="kept")
    warm_up(lambda: me(b, created["token"]))

    listing = a.get(f"/api/users/{user.user['id']}/tokens", headers=bearer(admin))
    assert listing.status_code == 200, listing.text
    assert {t["id"] for t in listing.json()["tokens"]} == {created["id"], kept["id"]}
    assert created["token"] not in listing.text and kept["token"] not in listing.text

    response = delete(a, f"/api/users/{user.user['id']}/tokens/{created['id']}", admin)
    returned = time.perf_counter()
    assert response.status_code == 204, response.text

    elapsed = time_until_status(
        lambda: me(b, created["token"]), since=returned, bound=deployment.bound
    )
    assert_within(elapsed, deployment, "token revoked by an admin")
    assert error_code(me(b, created["token"])) == "token_revoked"
    assert me(b, kept["token"]).status_code == 200


def test_disabled_user_tokens_fail_across_processes(deployment: Deployment) -> None:
    a, b = deployment.a, deployment.b
    admin = deployment.admin_token()
    user = new_account(a, "disabled")
    token = create_token(a, user.access_token)["token"]
    warm_up(lambda: me(b, token))

    response = a.patch(
        f"/api/users/{user.user['id']}", json={"status": "disabled"}, headers=bearer(admin)
    )
    returned = time.perf_counter()
    assert response.status_code == 200, response.text

    elapsed = time_until_status(lambda: me(b, token), since=returned, bound=deployment.bound)
    assert_within(elapsed, deployment, "user disabled")
    assert error_code(me(b, token)) == "token_revoked"
    assert me(a, token).status_code == 401
