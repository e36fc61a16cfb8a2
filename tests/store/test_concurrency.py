"""The store under concurrent writers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from authgate.errors import AuthError, UserExistsError
from authgate.service import AuthService


def test_concurrent_registration_of_one_email_creates_exactly_one_user(
    service: AuthService,
) -> None:
    def attempt(i: int) -> str:
        try:
            service.store.create_user(
                email="same@example.com" if i % 2 else "SAME@example.com",
                username=None,
                name=f"n{i}",
                password_hash="x",
                roles=["user"],
                now=service.clock.now(),
            )
        except UserExistsError:
            return "exists"
        return "created"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(32)))
    assert outcomes.count("created") == 1
    assert outcomes.count("exists") == 31
    assert service.store.count_users() == 1


def test_concurrent_refresh_with_one_token_rotates_once(service: AuthService) -> None:
    from authgate.service import ClientInfo

    service.register(email="r@example.com", password="correct horse battery staple")
    issued = service.login("r@example.com", "correct horse battery staple", ClientInfo())

    def attempt(_: int) -> str:
        try:
            service.refresh(issued.refresh_token)
        except AuthError as e:
            return type(e).__name__
        return "rotated"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("rotated") == 1
    assert set(outcomes) - {"rotated"} <= {"TokenRevokedError", "InvalidTokenError"}


def test_two_owners_demoting_each_other_at_once_leave_one_owner(service: AuthService) -> None:
    """Both read "two owners" and would each leave none: one must win, the other get 409 (on
    SQLite too, where row locks do not exist: a write transaction starts with the write lock)."""
    from authgate.errors import ConflictError
    from authgate.store.records import TenantRole

    store, now = service.store, service.clock.now()
    outcomes: list[str] = []
    for round_ in range(10):
        users = [
            store.create_user(
                email=f"owner{round_}-{i}@example.com",
                username=None,
                name=None,
                password_hash="x",
                roles=["user"],
                now=now,
            )
            for i in range(2)
        ]
        tenant = store.create_tenant(name=f"t{round_}", owner_id=users[0].id, now=now)
        store.add_member(tenant.id, users[1].id, TenantRole.OWNER, now=now)

        def demote(user_id: str, tenant_id: str = tenant.id) -> str:
            try:
                store.set_member_role(tenant_id, user_id, TenantRole.MEMBER, now=now)
            except ConflictError:
                return "refused"
            return "demoted"

        with ThreadPoolExecutor(max_workers=2) as pool:
            pair = list(pool.map(demote, [u.id for u in users]))
        assert sorted(pair) == ["demoted", "refused"], pair
        owners = [m for m in store.list_members(tenant.id) if m.role is TenantRole.OWNER]
        assert len(owners) == 1
        outcomes += pair
    assert outcomes.count("demoted") == 10
