"""The store under concurrent writers, and in a forked child."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import event

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


def test_concurrent_refresh_with_one_token_rotates_once(tmp_path: Path, database_url: str) -> None:
    """Without the reuse grace window: one rotation, the others are reuses."""
    from authgate.bootstrap import build_service
    from authgate.service import ClientInfo
    from tests.helpers import make_settings

    service = build_service(make_settings(tmp_path, database_url, refresh_reuse_grace_seconds=0))
    try:
        service.accounts.register(email="r@example.com", password="correct horse battery staple")
        issued = service.sessions.login(
            "r@example.com", "correct horse battery staple", ClientInfo()
        )

        def attempt(_: int) -> str:
            try:
                service.sessions.refresh(issued.refresh_token)
            except AuthError as e:
                return type(e).__name__
            return "rotated"

        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(attempt, range(8)))
    finally:
        service.close()
    assert outcomes.count("rotated") == 1
    assert set(outcomes) - {"rotated"} <= {"TokenRevokedError", "InvalidTokenError"}


def test_two_owners_demoting_each_other_at_once_leave_one_owner(service: AuthService) -> None:
    """Each of a tenant's two owners demotes themself at once, and each alone would be allowed.
    A pauses right after counting the owners; B runs meanwhile. Exactly one may succeed: on
    PostgreSQL B waits for A's row lock, on SQLite for A's write lock (a write transaction
    takes it before its first read), so A's pause times out and A goes on first."""
    from authgate.errors import ConflictError
    from authgate.store.records import TenantRole

    store, now = service.store, service.clock.now()
    users = [
        store.create_user(
            email=f"owner{i}@example.com",
            username=None,
            name=None,
            password_hash="x",
            roles=["user"],
            now=now,
        )
        for i in range(2)
    ]
    tenant = store.create_tenant(name="team", owner_id=users[0].id, now=now)
    store.add_member(tenant.id, users[1].id, TenantRole.OWNER, now=now)

    a_counted, b_done = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def pause_a(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        counts = "count(" in statement.lower() and "authgate_memberships" in statement
        if threading.current_thread().name == "demote-a" and counts and not a_counted.is_set():
            a_counted.set()
            b_done.wait(timeout=1.5)

    def demote(name: str, user_id: str) -> None:
        try:
            store.set_member_role(tenant.id, user_id, TenantRole.MEMBER, now=now)
            outcomes[name] = "demoted"
        except ConflictError:
            outcomes[name] = "refused"
        finally:
            if name == "b":
                b_done.set()

    engine = store.engine  # type: ignore[attr-defined]
    event.listen(engine, "after_cursor_execute", pause_a)
    try:
        a = threading.Thread(target=demote, args=("a", users[0].id), name="demote-a")
        a.start()
        assert a_counted.wait(timeout=10)
        b = threading.Thread(target=demote, args=("b", users[1].id), name="demote-b")
        b.start()
        a.join(timeout=40)
        b.join(timeout=40)
    finally:
        event.remove(engine, "after_cursor_execute", pause_a)

    assert outcomes == {"a": "demoted", "b": "refused"}
    owners = [m for m in store.list_members(tenant.id) if m.role is TenantRole.OWNER]
    assert [m.user_id for m in owners] == [users[1].id]


def test_two_migrations_of_one_fresh_sqlite_file_at_once_both_succeed(tmp_path: Path) -> None:
    """`authgate db upgrade` beside a server starting on the same file: the second waits for the
    first's transaction, then finds the schema current (instead of failing half-way)."""
    from authgate.store.sqlalchemy.engines import create_database_engine
    from authgate.store.sqlalchemy.migrate import is_up_to_date, upgrade_database

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    engines = [create_database_engine(url) for _ in range(2)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def migrate(engine: Any) -> None:
        start.wait()
        try:
            upgrade_database(engine)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=migrate, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        assert all(is_up_to_date(engine) for engine in engines)
    finally:
        for engine in engines:
            engine.dispose()


def test_a_forked_child_does_not_reuse_the_parents_connections(service: AuthService) -> None:
    import os

    assert service.store.ping()
    pid = os.fork()
    if pid == 0:  # the child: a fresh pool, and the database still answers
        ok = service.store.engine.pool.checkedin() == 0 and service.store.ping()  # type: ignore[attr-defined]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert service.store.ping()
