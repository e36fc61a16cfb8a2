"""Service-level API-token decisions: ``issue_api_token``, ``authenticate`` with an API token,
and a revocation or role change reaching another process that cached the token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from authgate.bootstrap import build_service
from authgate.config import Settings
from authgate.core.api_tokens import hash_api_token_secret, parse_api_token
from authgate.errors import (
    InsufficientRoleError,
    InvalidTokenError,
    NotFoundError,
    SessionRequiredError,
    TokenExpiredError,
    TokenRevokedError,
    ValidationFailedError,
)
from authgate.service import AuthService, Principal, TenantAccess
from authgate.service.api_tokens import BUILTIN_SCOPES
from authgate.store.records import TenantRole, UserRecord, UserStatus
from tests.helpers import APP_SCOPES, StepClock, new_user, personal_id, session_of, token_of

pytestmark = pytest.mark.app_scopes


# issue_api_token ------------------------------------------------------------------------------


def test_issue_api_token_returns_the_plaintext_and_stores_only_a_hash(
    service: AuthService,
) -> None:
    ada = new_user(service, "ada@example.com")
    plaintext, record = service.api_tokens.issue_api_token(
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
    team = service.tenants.create_tenant(session_of(service, ada), "Team")
    _, record = service.api_tokens.issue_api_token(
        ada, name="bot", scopes=["write"], tenant_id=team.id, resource="dialog:7"
    )
    assert (record.tenant_id, record.resource) == (team.id, "dialog:7")


def test_issue_api_token_refuses_a_tenant_the_user_is_not_in(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    bob = new_user(service, "bob@example.com")
    for tenant_id in (personal_id(service, bob), "no-such-tenant"):
        with pytest.raises(NotFoundError):
            service.api_tokens.issue_api_token(ada, name="x", scopes=["read"], tenant_id=tenant_id)
    assert service.store.list_api_tokens(ada.id) == []


def test_issue_api_token_refuses_unknown_scopes(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    with pytest.raises(ValidationFailedError) as info:
        service.api_tokens.issue_api_token(ada, name="x", scopes=["read", "admin", "chat:delete"])
    assert "admin" in info.value.fields["scopes"]
    assert "chat:delete" in info.value.fields["scopes"]
    assert service.store.list_api_tokens(ada.id) == []


def test_known_scopes_are_the_builtin_ones_and_the_apps(service: AuthService) -> None:
    assert service.api_tokens.scopes == (*BUILTIN_SCOPES, *APP_SCOPES)
    assert {"read", "write", "tenants:read", "tenants:write"} <= set(service.api_tokens.scopes)


@pytest.mark.parametrize("days", [1, 365])
def test_issue_api_token_accepts_1_to_the_maximum_days(service: AuthService, days: int) -> None:
    ada = new_user(service, "ada@example.com")
    _, record = service.api_tokens.issue_api_token(
        ada, name="x", scopes=["read"], expires_in_days=days
    )
    assert record.expires_at - record.created_at == timedelta(days=days)


@pytest.mark.parametrize("days", [0, -1, 366])
def test_issue_api_token_refuses_an_expiry_out_of_range(service: AuthService, days: int) -> None:
    """0 is out of range too: it must not silently mean "the default"."""
    ada = new_user(service, "ada@example.com")
    with pytest.raises(ValidationFailedError) as info:
        service.api_tokens.issue_api_token(ada, name="x", scopes=["read"], expires_in_days=days)
    assert "expires_in_days" in info.value.fields
    assert service.store.list_api_tokens(ada.id) == []


def test_only_a_session_creates_lists_or_revokes_tokens(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    plaintext, record = service.api_tokens.issue_api_token(
        ada, name="x", scopes=list(BUILTIN_SCOPES)
    )
    via_token = token_of(service, plaintext)
    with pytest.raises(SessionRequiredError):
        service.api_tokens.create_api_token(via_token, name="y", scopes=["read"])
    with pytest.raises(SessionRequiredError):
        service.api_tokens.list_api_tokens(via_token)
    with pytest.raises(SessionRequiredError):
        service.api_tokens.revoke_api_token(via_token, record.id)
    with pytest.raises(SessionRequiredError):
        service.tenants.create_tenant(via_token, "T")
    assert [t.id for t in service.api_tokens.list_api_tokens(session_of(service, ada))] == [
        record.id
    ]


# authenticate_api_token ------------------------------------------------------------------------


def test_authenticate_api_token_errors(service: AuthService, clock: StepClock) -> None:
    ada = new_user(service, "ada@example.com")
    plaintext, record = service.api_tokens.issue_api_token(
        ada, name="x", scopes=["read"], expires_in_days=1
    )
    assert token_of(service, plaintext).user.id == ada.id
    with pytest.raises(InvalidTokenError):
        token_of(service, plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B"))
    clock.advance(86400 + 1)
    with pytest.raises(TokenExpiredError):
        token_of(service, plaintext)
    service.api_tokens.revoke_api_token(session_of(service, ada), record.id)
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
    team = service.tenants.create_tenant(owner, "Team")
    service.tenants.add_member(owner, team.id, email=bob.email, role=TenantRole.MEMBER)
    plaintext, _ = service.api_tokens.issue_api_token(
        bob, name="x", scopes=["read"], tenant_id=team.id
    )
    return owner, bob, team.id, plaintext


@pytest.mark.parametrize("change", ["remove member", "delete tenant", "disable user", "revoke"])
def test_a_revocation_reaches_another_process_that_cached_the_token(
    service: AuthService, other_process: AuthService, change: str
) -> None:
    owner, bob, tenant_id, plaintext = _team_token(service)
    assert token_of(other_process, plaintext).user.id == bob.id  # cached there now
    if change == "remove member":
        service.tenants.remove_member(owner, tenant_id, bob.id)
    elif change == "delete tenant":
        service.tenants.delete_tenant(owner, tenant_id)
    elif change == "disable user":
        service.accounts.set_user_access(bob.id, roles=None, status=UserStatus.DISABLED)
    else:
        service.api_tokens.revoke_api_token(
            session_of(service, bob), parse_api_token(plaintext).token_id
        )
    other_process.feed.poll_once()
    with pytest.raises((TokenRevokedError, InvalidTokenError)):
        token_of(other_process, plaintext)


def test_a_role_change_reaches_another_process(
    service: AuthService, other_process: AuthService
) -> None:
    owner, bob, tenant_id, plaintext = _team_token(service)
    principal = token_of(other_process, plaintext)
    with pytest.raises(InsufficientRoleError):
        other_process.authorization.authorize(principal, tenant_roles=["admin"])
    service.tenants.set_member_role(owner, tenant_id, bob.id, TenantRole.ADMIN)
    other_process.feed.poll_once()
    access = other_process.authorization.authorize(
        token_of(other_process, plaintext), tenant_roles=["admin"]
    )
    assert access == TenantAccess(tenant_id, TenantRole.ADMIN)
