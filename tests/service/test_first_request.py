"""A token's first request in a process (nothing cached: after a deploy, in a new worker) reads
its session and its user in one statement, and still refuses what it refused before: a revoked
session, a disabled user. An API token's reads the token, its user and the user's membership of
the token's tenant in one statement, and refuses a revoked or expired token, a wrong secret, a
disabled user, a user no longer a member."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, update

from authgate.core.api_tokens import generate_api_token, hash_api_token_secret, parse_api_token
from authgate.errors import (
    InsufficientRoleError,
    InvalidTokenError,
    TokenExpiredError,
    TokenRevokedError,
)
from authgate.service import AuthService, ClientInfo, IssuedTokens
from authgate.store.records import RevocationKind, TenantRole, UserStatus, membership_subject
from authgate.store.sqlalchemy.models import ApiTokenRow, MembershipRow, UserRow
from tests.helpers import StepClock, count_sql


def _issued(service: AuthService, email: str = "ada@example.com") -> IssuedTokens:
    user = service.store.create_user(
        email=email,
        username=None,
        name=None,
        password_hash=None,
        roles=["user", "editor"],
        now=service.clock.now(),
    )
    return service.sessions.open_session(
        user, ClientInfo(), generation=service.cache.users.generation
    )


def _count_reads(service: AuthService, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"get_session_with_user": 0, "get_session": 0, "get_user": 0}
    for name in calls:
        method = getattr(service.store, name)

        def counted(*args: Any, _name: str = name, _method: Any = method) -> Any:
            calls[_name] += 1
            return _method(*args)

        monkeypatch.setattr(service.store, name, counted)
    return calls


def test_the_first_request_reads_session_and_user_once_then_nothing(
    service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = _issued(service)
    service.cache.clear()
    reads = _count_reads(service, monkeypatch)

    principal = service.authenticate(issued.access_token, "bearer")
    assert reads == {"get_session_with_user": 1, "get_session": 0, "get_user": 0}
    assert principal.user == issued.user
    assert principal.roles == ("user", "editor")
    assert principal.session_id == issued.session.id

    assert service.authenticate(issued.access_token, "bearer").user == issued.user
    assert reads == {"get_session_with_user": 1, "get_session": 0, "get_user": 0}


def test_the_store_reads_the_session_with_its_user(service: AuthService) -> None:
    issued = _issued(service)

    found = service.store.get_session_with_user(issued.session.id)

    assert found == (service.store.get_session(issued.session.id), issued.user)
    assert service.store.get_session_with_user("no-such-session") is None


def test_a_session_revoked_meanwhile_is_refused_at_the_first_request(
    service: AuthService,
) -> None:
    issued = _issued(service)
    assert service.store.revoke_session(
        issued.session.id, user_id=issued.user.id, now=service.clock.now()
    )
    service.cache.clear()  # as in another process that has not heard of it

    with pytest.raises(TokenRevokedError):
        service.authenticate(issued.access_token, "bearer")


def test_a_disabled_user_is_refused_at_the_first_request(service: AuthService) -> None:
    issued = _issued(service)
    service.store.update_access(issued.user.id, status=UserStatus.DISABLED, now=service.clock.now())
    service.cache.clear()

    with pytest.raises(TokenRevokedError):
        service.authenticate(issued.access_token, "bearer")


# API tokens -------------------------------------------------------------------------------------


def _api_token(service: AuthService, *, expires_in_days: int | None = None) -> tuple[str, str]:
    """A team member's API token for the team (plaintext, tenant id)."""
    issued = _issued(service, "owner@example.com")
    owner = service.authenticate(issued.access_token, "bearer")
    member = service.store.create_user(
        email="bob@example.com",
        username=None,
        name=None,
        password_hash=None,
        roles=["user"],
        now=service.clock.now(),
    )
    team = service.tenants.create_tenant(owner, "Team")
    service.tenants.add_member(owner, team.id, email=member.email, role=TenantRole.ADMIN)
    plaintext, _ = service.api_tokens.issue_api_token(
        member, name="ci", scopes=["read"], tenant_id=team.id, expires_in_days=expires_in_days
    )
    service.cache.clear()  # as in a process that has never seen it
    return plaintext, team.id


def _unannounced(service: AuthService, plaintext: str, tenant_id: str, change: str) -> str:
    """Change what the token's checks read, the token itself left as it is (not revoked, as
    the store's own removal of a member or disabling of a user would): the token's user no
    longer a member of its tenant, or disabled. The user's id."""
    token = service.store.get_api_token(parse_api_token(plaintext).token_id)
    assert token is not None
    with service.store.engine.begin() as conn:  # type: ignore[attr-defined]
        if change == "no longer a member":
            conn.execute(
                delete(MembershipRow).where(
                    MembershipRow.tenant_id == tenant_id, MembershipRow.user_id == token.user_id
                )
            )
        else:
            conn.execute(
                update(UserRow)
                .where(UserRow.id == token.user_id)
                .values(status=UserStatus.DISABLED.value)
            )
    return token.user_id


def test_an_api_token_first_request_is_one_statement_then_none(service: AuthService) -> None:
    plaintext, tenant_id = _api_token(service)

    with count_sql(service) as statements:
        principal = service.authenticate(plaintext, "bearer")
        access = service.authorization.authorize(principal, tenant_roles=["admin"])
    assert len(statements) == 1, statements  # the token, its user, the membership: one SELECT
    assert principal.user.email == "bob@example.com"
    assert principal.api_token is not None and principal.api_token.tenant_id == tenant_id
    assert access is not None and access.role is TenantRole.ADMIN

    with count_sql(service) as statements:
        for _ in range(3):
            service.authorization.authorize(service.authenticate(plaintext, "bearer"))
    assert statements == []


def test_the_store_reads_the_api_token_with_its_user_and_membership(
    service: AuthService,
) -> None:
    plaintext, tenant_id = _api_token(service)
    token_id = parse_api_token(plaintext).token_id
    token = service.store.get_api_token(token_id)
    assert token is not None

    found = service.store.get_api_token_with_owner(token_id)

    assert found == (token, service.store.get_user(token.user_id), TenantRole.ADMIN)
    _unannounced(service, plaintext, tenant_id, "no longer a member")
    assert service.store.get_api_token_with_owner(token_id) == (
        token,
        service.store.get_user(token.user_id),
        None,
    )
    assert service.store.get_api_token_with_owner("no-such-token") is None


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("wrong secret", InvalidTokenError),
        ("unknown token", InvalidTokenError),
        ("revoked", TokenRevokedError),
        ("expired", TokenExpiredError),
        ("user disabled", TokenRevokedError),
        ("no longer a member", TokenRevokedError),
    ],
)
def test_an_api_token_is_refused_at_its_first_request(
    service: AuthService, clock: StepClock, change: str, error: type[Exception]
) -> None:
    plaintext, tenant_id = _api_token(service, expires_in_days=1)
    token = service.store.get_api_token(parse_api_token(plaintext).token_id)
    assert token is not None
    presented = plaintext
    if change == "wrong secret":  # well formed, its checksum right: the hash tells
        with service.store.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.id == token.id)
                .values(secret_hash=hash_api_token_secret("another secret"))
            )
    elif change == "unknown token":
        presented, _ = generate_api_token()
    elif change == "revoked":
        assert service.store.revoke_api_token(token.id, user_id=None, now=clock.now())
    elif change == "expired":
        clock.advance(86400)
    elif change in ("user disabled", "no longer a member"):
        _unannounced(service, plaintext, tenant_id, change)
    service.cache.clear()

    with pytest.raises(error):
        service.authenticate(presented, "bearer")


def test_what_an_api_token_first_request_remembered_is_revoked_by_the_feed(
    service: AuthService,
) -> None:
    """The user and the membership read with the token are remembered under the keys the
    revocation feed clears: a change another process made reaches this one."""
    plaintext, tenant_id = _api_token(service)
    principal = service.authenticate(plaintext, "bearer")
    user_id = principal.user.id
    assert service.authorization.authorize(principal, tenant_roles=["admin"]) is not None
    now = service.clock.now()
    assert service.store.set_member_role(tenant_id, user_id, TenantRole.MEMBER, now=now)
    principal = service.authenticate(plaintext, "bearer")
    assert service.authorization.authorize(principal, tenant_roles=["admin"]) is not None

    assert service.feed.poll_once() >= 1
    principal = service.authenticate(plaintext, "bearer")
    with pytest.raises(InsufficientRoleError):
        service.authorization.authorize(principal, tenant_roles=["admin"])

    _unannounced(service, plaintext, tenant_id, "user disabled")
    assert service.authenticate(plaintext, "bearer").user.is_active  # remembered
    assert service.store.update_access(user_id, roles=["user"], now=now) is not None  # logged
    assert service.feed.poll_once() >= 1
    with pytest.raises(TokenRevokedError):
        service.authenticate(plaintext, "bearer")


@pytest.mark.parametrize(
    "kind", [RevocationKind.API_TOKEN, RevocationKind.USER, RevocationKind.MEMBERSHIP]
)
def test_a_revocation_during_an_api_token_first_read_leaves_nothing_stale_cached(
    service: AuthService, monkeypatch: pytest.MonkeyPatch, kind: RevocationKind
) -> None:
    """The token, its user and its membership are read together; a revocation of any of them
    arriving while the statement runs keeps what it revoked out of the cache (each is put only
    if its cache's generation did not move since before the read)."""
    plaintext, tenant_id = _api_token(service)
    token_id = parse_api_token(plaintext).token_id
    token = service.store.get_api_token(token_id)
    assert token is not None
    membership = membership_subject(tenant_id, token.user_id)
    subject = {
        RevocationKind.API_TOKEN: token_id,
        RevocationKind.USER: token.user_id,
        RevocationKind.MEMBERSHIP: membership,
    }[kind]
    read = service.store.get_api_token_with_owner

    def read_then_revoked(found_id: str) -> Any:
        found = read(found_id)
        service.cache.apply(kind, subject, forget_at=0.0)  # another process's change arrives
        return found

    monkeypatch.setattr(service.store, "get_api_token_with_owner", read_then_revoked)
    service.cache.clear()

    service.api_tokens.reads.api_token(token_id)

    cached = {
        RevocationKind.API_TOKEN: service.cache.api_tokens.get(token_id),
        RevocationKind.USER: service.cache.users.get(token.user_id),
        RevocationKind.MEMBERSHIP: service.cache.memberships.get(membership),
    }
    assert cached.pop(kind) is None  # what was revoked meanwhile is read again next time
    assert all(value is not None for value in cached.values())  # the rest is remembered
