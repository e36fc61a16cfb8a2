"""Service-level tenancy and API-token decisions: ``issue_api_token``, ``authorize`` edge cases,
revocation reaching another process, and deleting a user who alone owns a shared tenant."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from authgate.config import Settings
from authgate.core.api_tokens import hash_api_token_secret, parse_api_token
from authgate.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InsufficientRoleError,
    InsufficientScopeError,
    InvalidTokenError,
    NotFoundError,
    SessionRequiredError,
    TokenExpiredError,
    TokenRevokedError,
    ValidationFailedError,
)
from authgate.integrations.flask.extension import build_service
from authgate.service import AuthService, ClientInfo, Principal
from authgate.store.records import TenantRole, UserRecord, UserStatus
from authgate.tenancy import BUILTIN_SCOPES, TenantAccess
from tests.conftest import (
    APP_SCOPES,
    PASSWORD,
    StepClock,
    bearer,
    login,
    make_admin,
    make_settings,
    register,
)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_token_scopes=APP_SCOPES)


def new_user(service: AuthService, email: str) -> UserRecord:
    return service.register(email=email, password=PASSWORD)


def session_of(service: AuthService, user: UserRecord) -> Principal:
    issued = service.login(user.email, PASSWORD, ClientInfo())
    return service.authenticate(issued.access_token, "bearer")


def token_of(service: AuthService, plaintext: str) -> Principal:
    return service.authenticate(plaintext, "bearer")


def personal_id(service: AuthService, user: UserRecord) -> str:
    tenant_id = service.store.personal_tenant_id(user.id)
    assert tenant_id is not None
    return tenant_id


# issue_api_token ------------------------------------------------------------------------------


def test_issue_api_token_returns_the_plaintext_and_stores_only_a_hash(
    service: AuthService,
) -> None:
    ada = new_user(service, "ada@example.com")
    plaintext, record = service.issue_api_token(
        ada, name="cli", scopes=["read", "chat:write", "read"]
    )
    parts = parse_api_token(plaintext)
    assert record.id == parts.token_id
    assert record.user_id == ada.id
    assert record.tenant_id == personal_id(service, ada)
    assert record.scopes == ("read", "chat:write")
    assert record.resource is None
    assert record.expires_at - record.created_at == timedelta(days=90)
    stored = service.store.get_api_token(record.id)
    assert stored is not None
    assert stored.secret_hash == hash_api_token_secret(parts.secret)
    assert stored.secret_hash != parts.secret
    assert stored.scopes == record.scopes
    assert token_of(service, plaintext).api_token == stored


def test_issue_api_token_for_a_team_tenant_with_a_resource(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    team = service.create_tenant(session_of(service, ada), "Team")
    _, record = service.issue_api_token(
        ada, name="bot", scopes=["write"], tenant_id=team.id, resource="dialog:7"
    )
    assert (record.tenant_id, record.resource) == (team.id, "dialog:7")


def test_issue_api_token_refuses_a_tenant_the_user_is_not_in(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    bob = new_user(service, "bob@example.com")
    for tenant_id in (personal_id(service, bob), "no-such-tenant"):
        with pytest.raises(NotFoundError):
            service.issue_api_token(ada, name="x", scopes=["read"], tenant_id=tenant_id)
    assert service.store.list_api_tokens(ada.id) == []


def test_issue_api_token_refuses_unknown_scopes(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    with pytest.raises(ValidationFailedError) as info:
        service.issue_api_token(ada, name="x", scopes=["read", "admin", "chat:delete"])
    assert "admin" in info.value.fields["scopes"]
    assert "chat:delete" in info.value.fields["scopes"]
    assert service.store.list_api_tokens(ada.id) == []


def test_known_scopes_are_the_builtin_ones_and_the_apps(service: AuthService) -> None:
    assert service.api_token_scopes == (*BUILTIN_SCOPES, *APP_SCOPES)
    assert {"read", "write", "tenants:read", "tenants:write"} <= set(service.api_token_scopes)


@pytest.mark.parametrize("days", [1, 365])
def test_issue_api_token_accepts_1_to_the_maximum_days(service: AuthService, days: int) -> None:
    ada = new_user(service, "ada@example.com")
    _, record = service.issue_api_token(ada, name="x", scopes=["read"], expires_in_days=days)
    assert record.expires_at - record.created_at == timedelta(days=days)


@pytest.mark.parametrize("days", [0, -1, 366])
def test_issue_api_token_refuses_an_expiry_out_of_range(service: AuthService, days: int) -> None:
    """0 is out of range too: it must not silently mean "the default"."""
    ada = new_user(service, "ada@example.com")
    with pytest.raises(ValidationFailedError) as info:
        service.issue_api_token(ada, name="x", scopes=["read"], expires_in_days=days)
    assert "expires_in_days" in info.value.fields
    assert service.store.list_api_tokens(ada.id) == []


def test_only_a_session_creates_lists_or_revokes_tokens(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    plaintext, record = service.issue_api_token(ada, name="x", scopes=list(BUILTIN_SCOPES))
    via_token = token_of(service, plaintext)
    with pytest.raises(SessionRequiredError):
        service.create_api_token(via_token, name="y", scopes=["read"])
    with pytest.raises(SessionRequiredError):
        service.list_api_tokens(via_token)
    with pytest.raises(SessionRequiredError):
        service.revoke_api_token(via_token, record.id)
    with pytest.raises(SessionRequiredError):
        service.create_tenant(via_token, "T")
    assert [t.id for t in service.list_api_tokens(session_of(service, ada))] == [record.id]


# authorize: login sessions ---------------------------------------------------------------------


def test_a_session_passes_scopes_and_resources_without_a_tenant(service: AuthService) -> None:
    ada = session_of(service, new_user(service, "ada@example.com"))
    assert service.authorize(ada, scopes=["chat:write", "anything"], resource="dialog:1") is None


def test_a_session_with_a_tenant_gets_its_role(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    ada = session_of(service, user)
    team = service.create_tenant(ada, "Team")
    access = service.authorize(ada, tenant_id=team.id, tenant_roles=["owner"])
    assert access == TenantAccess(team.id, TenantRole.OWNER)
    personal = service.authorize(ada, tenant_id=personal_id(service, user))
    assert personal == TenantAccess(personal_id(service, user), TenantRole.OWNER)


def test_a_session_needs_a_tenant_for_tenant_roles(service: AuthService) -> None:
    ada = session_of(service, new_user(service, "ada@example.com"))
    with pytest.raises(NotFoundError):
        service.authorize(ada, tenant_roles=["owner"])


def test_a_session_outside_the_tenant_gets_not_found(service: AuthService) -> None:
    ada = session_of(service, new_user(service, "ada@example.com"))
    bob = session_of(service, new_user(service, "bob@example.com"))
    team = service.create_tenant(ada, "Team")
    for tenant_id in (team.id, "no-such-tenant"):
        with pytest.raises(NotFoundError):
            service.authorize(bob, tenant_id=tenant_id)
        with pytest.raises(NotFoundError):
            service.authorize(bob, tenant_id=tenant_id, tenant_roles=["viewer"])


def test_a_session_with_the_wrong_tenant_role_is_refused(service: AuthService) -> None:
    owner = session_of(service, new_user(service, "owner@example.com"))
    viewer_user = new_user(service, "viewer@example.com")
    team = service.create_tenant(owner, "Team")
    service.add_member(owner, team.id, email=viewer_user.email, role=TenantRole.VIEWER)
    viewer = session_of(service, viewer_user)
    with pytest.raises(InsufficientRoleError):
        service.authorize(viewer, tenant_id=team.id, tenant_roles=["admin", "owner"])
    assert service.authorize(viewer, tenant_id=team.id) == TenantAccess(team.id, TenantRole.VIEWER)


def test_sessions_only_lets_a_session_through(service: AuthService) -> None:
    ada = session_of(service, new_user(service, "ada@example.com"))
    assert service.authorize(ada, sessions_only=True) is None


# authorize: API tokens -------------------------------------------------------------------------


def test_a_token_is_refused_where_only_a_session_may_act_even_with_every_scope(
    service: AuthService,
) -> None:
    ada = new_user(service, "ada@example.com")
    plaintext, _ = service.issue_api_token(ada, name="x", scopes=list(service.api_token_scopes))
    with pytest.raises(SessionRequiredError):
        service.authorize(token_of(service, plaintext), sessions_only=True)
    # session_required wins over a missing scope: the answer does not depend on the scopes.
    narrow, _ = service.issue_api_token(ada, name="y", scopes=["read"])
    with pytest.raises(SessionRequiredError):
        service.authorize(token_of(service, narrow), scopes=["write"], sessions_only=True)


def test_a_token_needs_every_declared_scope(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    plaintext, record = service.issue_api_token(ada, name="x", scopes=["read", "chat:read"])
    principal = token_of(service, plaintext)
    access = service.authorize(principal, scopes=["read", "chat:read"])
    assert access == TenantAccess(record.tenant_id, TenantRole.OWNER)
    with pytest.raises(InsufficientScopeError) as info:
        service.authorize(principal, scopes=["read", "write", "chat:write"])
    assert "write" in info.value.message and "chat:write" in info.value.message
    assert "chat:read" not in info.value.message


def test_a_resource_bound_token_matches_only_its_resource(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    bound, _ = service.issue_api_token(ada, name="x", scopes=["read"], resource="dialog:42")
    unbound, _ = service.issue_api_token(ada, name="y", scopes=["read"])
    principal = token_of(service, bound)
    assert service.authorize(principal, resource="dialog:42") is not None
    for other in ("dialog:43", "dialog:4", "dialog:420", "Dialog:42", None):
        with pytest.raises(ForbiddenError):
            service.authorize(principal, resource=other)
    assert service.authorize(token_of(service, unbound), resource="dialog:43") is not None


def test_a_token_is_confined_to_its_tenant(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    ada = session_of(service, user)
    team_a = service.create_tenant(ada, "A")
    team_b = service.create_tenant(ada, "B")
    plaintext, _ = service.issue_api_token(user, name="x", scopes=["read"], tenant_id=team_a.id)
    principal = token_of(service, plaintext)
    assert service.authorize(principal) == TenantAccess(team_a.id, TenantRole.OWNER)
    assert service.authorize(principal, tenant_id=team_a.id, tenant_roles=["owner"]) is not None
    for tenant_id in (team_b.id, personal_id(service, user), "no-such-tenant"):
        with pytest.raises(ForbiddenError):
            service.authorize(principal, tenant_id=tenant_id)


def test_a_token_checks_the_tenant_role_in_its_own_tenant(service: AuthService) -> None:
    owner = session_of(service, new_user(service, "owner@example.com"))
    member = new_user(service, "member@example.com")
    team = service.create_tenant(owner, "Team")
    service.add_member(owner, team.id, email=member.email, role=TenantRole.MEMBER)
    plaintext, _ = service.issue_api_token(member, name="x", scopes=["read"], tenant_id=team.id)
    principal = token_of(service, plaintext)
    with pytest.raises(InsufficientRoleError):
        service.authorize(principal, tenant_roles=["admin", "owner"])
    access = service.authorize(principal, tenant_roles=["member"])
    assert access == TenantAccess(team.id, TenantRole.MEMBER)


def test_a_token_never_has_the_admin_role(service: AuthService) -> None:
    user = new_user(service, "root@example.com")
    make_admin(service, user.id)
    session = session_of(service, user)
    service.authorize(session, roles=["admin"])
    plaintext, _ = service.issue_api_token(user, name="x", scopes=list(service.api_token_scopes))
    principal = token_of(service, plaintext)
    assert "admin" not in principal.roles and "user" in principal.roles
    with pytest.raises(InsufficientRoleError):
        service.authorize(principal, roles=["admin"])
    with pytest.raises(SessionRequiredError):
        service.list_user_api_tokens(principal, user.id)


def test_a_token_whose_owner_left_the_tenant_is_revoked(service: AuthService) -> None:
    owner = session_of(service, new_user(service, "owner@example.com"))
    bob = new_user(service, "bob@example.com")
    team = service.create_tenant(owner, "Team")
    service.add_member(owner, team.id, email=bob.email, role=TenantRole.ADMIN)
    plaintext, _ = service.issue_api_token(bob, name="x", scopes=["read"], tenant_id=team.id)
    principal = token_of(service, plaintext)  # authenticated before the removal
    service.remove_member(owner, team.id, bob.id)
    with pytest.raises(TokenRevokedError):
        service.authorize(principal)
    with pytest.raises(TokenRevokedError):
        token_of(service, plaintext)


def test_list_tenants_with_a_token_needs_tenants_read(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    team = service.create_tenant(session_of(service, user), "Team")
    without, _ = service.issue_api_token(user, name="x", scopes=["read"], tenant_id=team.id)
    with pytest.raises(InsufficientScopeError):
        service.list_tenants(token_of(service, without))
    with_scope, _ = service.issue_api_token(
        user, name="y", scopes=["tenants:read"], tenant_id=team.id
    )
    listed = service.list_tenants(token_of(service, with_scope))
    assert [(t.id, role) for t, role in listed] == [(team.id, TenantRole.OWNER)]


# authenticate_api_token ------------------------------------------------------------------------


def test_authenticate_api_token_errors(service: AuthService, clock: StepClock) -> None:
    ada = new_user(service, "ada@example.com")
    plaintext, record = service.issue_api_token(ada, name="x", scopes=["read"], expires_in_days=1)
    assert token_of(service, plaintext).user.id == ada.id
    with pytest.raises(InvalidTokenError):
        token_of(service, plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B"))
    clock.advance(86400 + 1)
    with pytest.raises(TokenExpiredError):
        token_of(service, plaintext)
    service.revoke_api_token(session_of(service, ada), record.id)
    with pytest.raises(TokenRevokedError):
        token_of(service, plaintext)


# Revocation reaches another process ------------------------------------------------------------


@pytest.fixture
def other_process(settings: Settings, clock: StepClock) -> Iterator[AuthService]:
    """A second service on the same database: what another worker process would be."""
    other = build_service(settings, clock=clock)
    yield other
    other.close()


def _team_token(service: AuthService) -> tuple[Principal, UserRecord, str, str]:
    owner = session_of(service, new_user(service, "owner@example.com"))
    bob = new_user(service, "bob@example.com")
    team = service.create_tenant(owner, "Team")
    service.add_member(owner, team.id, email=bob.email, role=TenantRole.MEMBER)
    plaintext, _ = service.issue_api_token(bob, name="x", scopes=["read"], tenant_id=team.id)
    return owner, bob, team.id, plaintext


@pytest.mark.parametrize("change", ["remove member", "delete tenant", "disable user", "revoke"])
def test_a_revocation_reaches_another_process_that_cached_the_token(
    service: AuthService, other_process: AuthService, change: str
) -> None:
    owner, bob, tenant_id, plaintext = _team_token(service)
    assert token_of(other_process, plaintext).user.id == bob.id  # cached there now
    if change == "remove member":
        service.remove_member(owner, tenant_id, bob.id)
    elif change == "delete tenant":
        service.delete_tenant(owner, tenant_id)
    elif change == "disable user":
        service.set_user_access(bob.id, roles=None, status=UserStatus.DISABLED)
    else:
        service.revoke_api_token(session_of(service, bob), parse_api_token(plaintext).token_id)
    other_process.feed.poll_once()
    with pytest.raises((TokenRevokedError, InvalidTokenError)):
        token_of(other_process, plaintext)


def test_a_role_change_reaches_another_process(
    service: AuthService, other_process: AuthService
) -> None:
    owner, bob, tenant_id, plaintext = _team_token(service)
    principal = token_of(other_process, plaintext)
    with pytest.raises(InsufficientRoleError):
        other_process.authorize(principal, tenant_roles=["admin"])
    service.set_member_role(owner, tenant_id, bob.id, TenantRole.ADMIN)
    other_process.feed.poll_once()
    access = other_process.authorize(token_of(other_process, plaintext), tenant_roles=["admin"])
    assert access == TenantAccess(tenant_id, TenantRole.ADMIN)


# Tenants invariants ----------------------------------------------------------------------------


def test_a_tenant_always_keeps_an_owner(service: AuthService) -> None:
    user = new_user(service, "owner@example.com")
    owner = session_of(service, user)
    team = service.create_tenant(owner, "Team")
    with pytest.raises(ConflictError):
        service.set_member_role(owner, team.id, user.id, TenantRole.ADMIN)
    with pytest.raises(ConflictError):
        service.remove_member(owner, team.id, user.id)
    members = service.list_members(owner, team.id)
    assert [(m.user_id, m.role) for m in members] == [(user.id, TenantRole.OWNER)]


def test_errors_are_auth_errors_with_stable_codes() -> None:
    codes = {
        SessionRequiredError: ("session_required", 403),
        InsufficientScopeError: ("insufficient_scope", 403),
        InsufficientRoleError: ("insufficient_role", 403),
        ForbiddenError: ("forbidden", 403),
        ConflictError: ("conflict", 409),
        TokenRevokedError: ("token_revoked", 401),
        TokenExpiredError: ("token_expired", 401),
        InvalidTokenError: ("invalid_token", 401),
    }
    for error, (code, status) in codes.items():
        assert issubclass(error, AuthError)
        assert (error.code, error.status) == (code, status)


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
