"""A login opens its session only if the user may still log in: active, and none of its "revoke
all sessions" committed since the login read it (the session epoch), on SQLite and PostgreSQL —
also while the two transactions overlap."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from authgate.service import AuthService
from authgate.store.records import SessionRecord, UserRecord, UserStatus
from authgate.store.sqlalchemy.stores import SqlAlchemyStore


def _user(service: AuthService, email: str = "ada@example.com") -> UserRecord:
    return service.store.create_user(
        email=email, username=None, name=None, password_hash="h1", roles=["user"], now=_now(service)
    )


def _now(service: AuthService) -> Any:
    return service.clock.now()


def _open(
    service: AuthService, user: UserRecord, *, epoch: int | None, token: str = "t" * 64
) -> tuple[SessionRecord, UserRecord] | None:
    now = _now(service)
    return service.store.create_session(
        user_id=user.id,
        session_epoch=epoch,
        refresh_token_hash=token,
        expires_at=now + timedelta(days=1),
        user_agent=None,
        ip=None,
        now=now,
    )


def _live(service: AuthService, user: UserRecord) -> list[str]:
    return [s.id for s in service.store.list_sessions(user.id, now=_now(service))]


REVOKE_ALL: dict[str, Callable[[AuthService, UserRecord], object]] = {
    "password change": lambda s, u: s.store.set_password_hash(
        u.id, "h2", keep_session_id=None, now=_now(s)
    ),
    "disable": lambda s, u: s.store.update_access(u.id, status=UserStatus.DISABLED, now=_now(s)),
    "logout everywhere": lambda s, u: s.store.revoke_user_sessions(u.id, now=_now(s)),
}


@pytest.mark.parametrize("cause", REVOKE_ALL)
def test_a_login_that_read_the_user_before_a_revocation_of_all_its_sessions_is_refused(
    service: AuthService, cause: str
) -> None:
    user = _user(service)
    REVOKE_ALL[cause](service, user)
    assert _open(service, user, epoch=user.session_epoch) is None
    assert _live(service, user) == []
    stored = service.store.get_user(user.id)
    assert stored is not None and stored.last_login_at is None  # nothing was written
    assert stored.session_epoch == user.session_epoch + 1


def test_a_login_with_the_current_epoch_opens_its_session_and_returns_the_stored_user(
    service: AuthService,
) -> None:
    user = _user(service)
    service.store.set_password_hash(user.id, "h2", keep_session_id=None, now=_now(service))
    service.store.update_access(user.id, roles=["user", "admin"], now=_now(service))
    current = service.store.get_user(user.id)
    assert current is not None
    opened = _open(service, current, epoch=current.session_epoch)
    assert opened is not None
    session, stored = opened
    assert _live(service, user) == [session.id]
    assert stored.roles == ("user", "admin")  # read by the login's own statement
    assert stored.last_login_at == session.created_at
    assert stored.password_hash == "h2"


def test_a_role_change_does_not_move_the_epoch(service: AuthService) -> None:
    user = _user(service)
    service.store.update_access(user.id, roles=["user", "admin"], now=_now(service))
    opened = _open(service, user, epoch=user.session_epoch)
    assert opened is not None and opened[1].roles == ("user", "admin")


def test_disabling_returns_the_user_with_its_new_epoch(service: AuthService) -> None:
    user = _user(service)
    result = service.store.update_access(user.id, status=UserStatus.DISABLED, now=_now(service))
    assert result is not None
    assert result[0].session_epoch == user.session_epoch + 1


def test_without_an_epoch_only_an_active_user_gets_a_session(service: AuthService) -> None:
    """A provider login (no password of ours): a password change does not concern it, a disable
    or a deletion does."""
    user = _user(service)
    service.store.set_password_hash(user.id, "h2", keep_session_id=None, now=_now(service))
    assert _open(service, user, epoch=None, token="a" * 64) is not None
    service.store.update_access(user.id, status=UserStatus.DISABLED, now=_now(service))
    assert _open(service, user, epoch=None, token="b" * 64) is None
    service.store.update_access(user.id, status=UserStatus.ACTIVE, now=_now(service))
    service.store.delete_user(user.id, now=_now(service))
    assert _open(service, user, epoch=None, token="c" * 64) is None


def test_a_rehash_at_login_keeps_the_epoch(service: AuthService) -> None:
    user = _user(service)
    now = _now(service)
    opened = service.store.create_session(
        user_id=user.id,
        session_epoch=user.session_epoch,
        refresh_token_hash="r" * 64,
        expires_at=now + timedelta(days=1),
        user_agent=None,
        ip=None,
        now=now,
        password_hash="h1-rehashed",
    )
    assert opened is not None and opened[1].password_hash == "h1-rehashed"
    assert _open(service, user, epoch=user.session_epoch) is not None  # a second login


# The two transactions overlapping ----------------------------------------------------------------


def _pause_after(
    store: SqlAlchemyStore, thread_name: str, matches: Callable[[str], bool]
) -> tuple[threading.Event, threading.Event, Callable[[], None]]:
    """Hold the thread ``thread_name`` (its transaction open) right after its first statement
    that ``matches``, until ``release`` is set or 1.5 s passed: meanwhile the other transaction
    runs into its lock (a PostgreSQL row lock, SQLite's write lock) and can only wait."""
    paused, release = threading.Event(), threading.Event()

    def hold(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        mine = threading.current_thread().name == thread_name
        if mine and matches(statement) and not paused.is_set():
            paused.set()
            release.wait(timeout=1.5)

    event.listen(store.engine, "after_cursor_execute", hold)
    return paused, release, lambda: event.remove(store.engine, "after_cursor_execute", hold)


_HOLD_LOCK = 4217  # the advisory lock a session's insert waits for (``_pause_inside...``)


def _pause_inside_session_insert(
    store: SqlAlchemyStore,
) -> tuple[threading.Event, threading.Event, Callable[[], None]]:
    """PostgreSQL: hold every insert of a session, inside its statement (a trigger waits for an
    advisory lock that a connection of the test holds), until ``release`` is set or 1.5 s
    passed; ``paused`` is set once an insert waits."""
    paused, release = threading.Event(), threading.Event()
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION authgate_test_hold() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN PERFORM pg_advisory_xact_lock({_HOLD_LOCK}); RETURN NEW; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER authgate_test_hold BEFORE INSERT ON authgate_sessions "
                "FOR EACH ROW EXECUTE FUNCTION authgate_test_hold()"
            )
        )
    holder = store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    holder.execute(text(f"SELECT pg_advisory_lock({_HOLD_LOCK})"))

    def hold() -> None:
        waiting = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND objid = :lock"
        )
        with store.engine.connect() as watcher:
            for _ in range(500):
                if watcher.execute(waiting, {"lock": _HOLD_LOCK}).scalar_one():
                    paused.set()
                    break
                watcher.rollback()
                time.sleep(0.01)
        release.wait(timeout=1.5)
        holder.execute(text(f"SELECT pg_advisory_unlock({_HOLD_LOCK})"))

    watch = threading.Thread(target=hold, name="hold")
    watch.start()

    def stop() -> None:
        release.set()
        watch.join(timeout=10)
        holder.close()
        with store.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER authgate_test_hold ON authgate_sessions"))
            conn.execute(text("DROP FUNCTION authgate_test_hold()"))

    return paused, release, stop


def _run(name: str, work: Callable[[], object], results: dict[str, object]) -> threading.Thread:
    def target() -> None:
        results[name] = work()

    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread


@pytest.mark.parametrize("cause", REVOKE_ALL)
def test_a_login_waits_for_a_revocation_in_progress_and_is_refused(
    service: AuthService, cause: str
) -> None:
    """The revocation has read or updated the user (and holds its lock) but not committed when
    the login records itself: the login waits, then finds the epoch moved on."""
    store = service.store
    assert isinstance(store, SqlAlchemyStore)
    user = _user(service)
    paused, release, stop = _pause_after(store, "revoke", lambda sql: "authgate_users" in sql)
    results: dict[str, object] = {}
    try:
        revoke = _run("revoke", lambda: REVOKE_ALL[cause](service, user), results)
        assert paused.wait(timeout=10)
        login = _run("login", lambda: _open(service, user, epoch=user.session_epoch), results)
        login.join(timeout=0.5)  # it waits for the revocation's lock
        release.set()
        revoke.join(timeout=40)
        login.join(timeout=40)
    finally:
        release.set()
        stop()
    assert "login" in results and results["login"] is None
    assert _live(service, user) == []


@pytest.mark.parametrize("cause", REVOKE_ALL)
def test_a_revocation_waits_for_a_login_in_progress_and_revokes_its_session(
    service: AuthService, cause: str
) -> None:
    """The login has recorded itself on the user's row (its lock held) but not committed its
    session when the revocation starts: the revocation waits, then sees that session too."""
    store = service.store
    assert isinstance(store, SqlAlchemyStore)
    user = _user(service)
    if store.engine.dialect.name == "postgresql":
        # The login is one statement there: it is held inside it, between its UPDATE of the
        # user and its INSERT of the session.
        paused, release, stop = _pause_inside_session_insert(store)
    else:
        paused, release, stop = _pause_after(
            store,
            "login",
            lambda sql: sql.lstrip().upper().startswith("INSERT INTO AUTHGATE_SESSIONS"),
        )
    results: dict[str, object] = {}
    try:
        login = _run("login", lambda: _open(service, user, epoch=user.session_epoch), results)
        assert paused.wait(timeout=10)
        revoke = _run("revoke", lambda: REVOKE_ALL[cause](service, user), results)
        revoke.join(timeout=0.5)  # it waits for the login's lock
        release.set()
        login.join(timeout=40)
        revoke.join(timeout=40)
    finally:
        release.set()
        stop()
    assert isinstance(results["login"], tuple)  # the login went first: it got its session...
    assert "revoke" in results
    assert _live(service, user) == []  # ...which the revocation saw and revoked
