"""Service-level ``authorize`` edge cases, for login sessions and for API tokens."""

from __future__ import annotations

import pytest

from authgate.errors import (
    ForbiddenError,
    InsufficientRoleError,
    InsufficientScopeError,
    NotFoundError,
    SessionRequiredError,
    TokenRevokedError,
)
from authgate.service import AuthService, TenantAccess
from authgate.store.records import TenantRole
from tests.helpers import make_admin, new_user, personal_id, session_of, token_of

pytestmark = pytest.mark.app_scopes


# authorize: login sessions ---------------------------------------------------------------------


def test_a_session_passes_scopes_and_resources_without_a_tenant(service: AuthService) -> None:
    ada = session_of(service, new_user(service, "ada@example.com"))
    assert (
        service.authorization.authorize(ada, scopes=["chat:write", "anything"], resource="dialog:1")
        is None
    )


def test_a_session_with_a_tenant_gets_its_role(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    ada = session_of(service, user)
    team = service.tenants.create_tenant(ada, "Team")
    access = service.authorization.authorize(ada, tenant_id=team.id, tenant_roles=["owner"])
    assert access == TenantAccess(team.id, TenantRole.OWNER)
    personal = service.authorization.authorize(ada, tenant_id=personal_id(service, user))
    assert personal == TenantAccess(personal_id(service, user), TenantRole.OWNER)


def test_a_session_needs_a_tenant_for_tenant_roles(service: AuthService) -> None:
    ada = session_of(service, new_user(service, "ada@example.com"))
    with pytest.raises(NotFoundError):
        service.authorization.authorize(ada, tenant_roles=["owner"])


def test_a_session_outside_the_tenant_gets_not_found(service: AuthService) -> None:
    ada = session_of(service, new_user(service, "ada@example.com"))
    bob = session_of(service, new_user(service, "bob@example.com"))
    team = service.tenants.create_tenant(ada, "Team")
    for tenant_id in (team.id, "no-such-tenant"):
        with pytest.raises(NotFoundError):
            service.authorization.authorize(bob, tenant_id=tenant_id)
        with pytest.raises(NotFoundError):
            service.authorization.authorize(bob, tenant_id=tenant_id, tenant_roles=["viewer"])


def test_a_session_with_the_wrong_tenant_role_is_refused(service: AuthService) -> None:
    owner = session_of(service, new_user(service, "owner@example.com"))
    viewer_user = new_user(service, "viewer@example.com")
    team = service.tenants.create_tenant(owner, "Team")
    service.tenants.add_member(owner, team.id, email=viewer_user.email, role=TenantRole.VIEWER)
    viewer = session_of(service, viewer_user)
    with pytest.raises(InsufficientRoleError):
        service.authorization.authorize(viewer, tenant_id=team.id, tenant_roles=["admin", "owner"])
    assert service.authorization.authorize(viewer, tenant_id=team.id) == TenantAccess(
        team.id, TenantRole.VIEWER
    )


def test_sessions_only_lets_a_session_through(service: AuthService) -> None:
    ada = session_of(service, new_user(service, "ada@example.com"))
    assert service.authorization.authorize(ada, sessions_only=True) is None


# authorize: API tokens -------------------------------------------------------------------------


def test_a_token_is_refused_where_only_a_session_may_act_even_with_every_scope(
    service: AuthService,
) -> None:
    ada = new_user(service, "ada@example.com")
    plaintext, _ = service.api_tokens.issue_api_token(
        ada, name="x", scopes=list(service.api_tokens.scopes)
    )
    with pytest.raises(SessionRequiredError):
        service.authorization.authorize(token_of(service, plaintext), sessions_only=True)
    # session_required wins over a missing scope: the answer does not depend on the scopes.
    narrow, _ = service.api_tokens.issue_api_token(ada, name="y", scopes=["read"])
    with pytest.raises(SessionRequiredError):
        service.authorization.authorize(
            token_of(service, narrow), scopes=["write"], sessions_only=True
        )


def test_a_token_needs_every_declared_scope(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    plaintext, record = service.api_tokens.issue_api_token(
        ada, name="x", scopes=["read", "chat:read"]
    )
    principal = token_of(service, plaintext)
    access = service.authorization.authorize(principal, scopes=["read", "chat:read"])
    assert access == TenantAccess(record.tenant_id, TenantRole.OWNER)
    with pytest.raises(InsufficientScopeError) as info:
        service.authorization.authorize(principal, scopes=["read", "write", "chat:write"])
    assert "write" in info.value.message and "chat:write" in info.value.message
    assert "chat:read" not in info.value.message


def test_a_resource_bound_token_matches_only_its_resource(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    bound, _ = service.api_tokens.issue_api_token(
        ada, name="x", scopes=["read"], resource="dialog:42"
    )
    unbound, _ = service.api_tokens.issue_api_token(ada, name="y", scopes=["read"])
    principal = token_of(service, bound)
    assert service.authorization.authorize(principal, resource="dialog:42") is not None
    for other in ("dialog:43", "dialog:4", "dialog:420", "Dialog:42", None):
        with pytest.raises(ForbiddenError):
            service.authorization.authorize(principal, resource=other)
    assert (
        service.authorization.authorize(token_of(service, unbound), resource="dialog:43")
        is not None
    )


def test_a_token_is_confined_to_its_tenant(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    ada = session_of(service, user)
    team_a = service.tenants.create_tenant(ada, "A")
    team_b = service.tenants.create_tenant(ada, "B")
    plaintext, _ = service.api_tokens.issue_api_token(
        user, name="x", scopes=["read"], tenant_id=team_a.id
    )
    principal = token_of(service, plaintext)
    assert service.authorization.authorize(principal) == TenantAccess(team_a.id, TenantRole.OWNER)
    assert (
        service.authorization.authorize(principal, tenant_id=team_a.id, tenant_roles=["owner"])
        is not None
    )
    for tenant_id in (team_b.id, personal_id(service, user), "no-such-tenant"):
        with pytest.raises(ForbiddenError):
            service.authorization.authorize(principal, tenant_id=tenant_id)


def test_a_token_checks_the_tenant_role_in_its_own_tenant(service: AuthService) -> None:
    owner = session_of(service, new_user(service, "owner@example.com"))
    member = new_user(service, "member@example.com")
    team = service.tenants.create_tenant(owner, "Team")
    service.tenants.add_member(owner, team.id, email=member.email, role=TenantRole.MEMBER)
    plaintext, _ = service.api_tokens.issue_api_token(
        member, name="x", scopes=["read"], tenant_id=team.id
    )
    principal = token_of(service, plaintext)
    with pytest.raises(InsufficientRoleError):
        service.authorization.authorize(principal, tenant_roles=["admin", "owner"])
    access = service.authorization.authorize(principal, tenant_roles=["member"])
    assert access == TenantAccess(team.id, TenantRole.MEMBER)


def test_a_token_never_has_the_admin_role(service: AuthService) -> None:
    user = new_user(service, "root@example.com")
    make_admin(service, user.id)
    session = session_of(service, user)
    service.authorization.authorize(session, roles=["admin"])
    plaintext, _ = service.api_tokens.issue_api_token(
        user, name="x", scopes=list(service.api_tokens.scopes)
    )
    principal = token_of(service, plaintext)
    assert "admin" not in principal.roles and "user" in principal.roles
    with pytest.raises(InsufficientRoleError):
        service.authorization.authorize(principal, roles=["admin"])
    with pytest.raises(SessionRequiredError):
        service.api_tokens.list_user_api_tokens(principal, user.id)


def test_a_token_whose_owner_left_the_tenant_is_revoked(service: AuthService) -> None:
    owner = session_of(service, new_user(service, "owner@example.com"))
    bob = new_user(service, "bob@example.com")
    team = service.tenants.create_tenant(owner, "Team")
    service.tenants.add_member(owner, team.id, email=bob.email, role=TenantRole.ADMIN)
    plaintext, _ = service.api_tokens.issue_api_token(
        bob, name="x", scopes=["read"], tenant_id=team.id
    )
    principal = token_of(service, plaintext)  # authenticated before the removal
    service.tenants.remove_member(owner, team.id, bob.id)
    with pytest.raises(TokenRevokedError):
        service.authorization.authorize(principal)
    with pytest.raises(TokenRevokedError):
        token_of(service, plaintext)


def test_list_tenants_with_a_token_needs_tenants_read(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    team = service.tenants.create_tenant(session_of(service, user), "Team")
    without, _ = service.api_tokens.issue_api_token(
        user, name="x", scopes=["read"], tenant_id=team.id
    )
    with pytest.raises(InsufficientScopeError):
        service.tenants.list_tenants(token_of(service, without))
    with_scope, _ = service.api_tokens.issue_api_token(
        user, name="y", scopes=["tenants:read"], tenant_id=team.id
    )
    listed = service.tenants.list_tenants(token_of(service, with_scope))
    assert [(t.id, role) for t, role in listed] == [(team.id, TenantRole.OWNER)]
