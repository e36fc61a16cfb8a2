"""The deployment always keeps an active admin: no admin can disable, delete or demote the last
one (themselves included), and two admins demoting each other at once leave one."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event

from authgate.errors import LastAdminError, UnknownRoleError
from authgate.service import AuthService
from authgate.store.records import UserRecord, UserStatus
from tests.helpers import make_admin, new_user, session_of


def _admin(service: AuthService, email: str) -> UserRecord:
    user = new_user(service, email)
    make_admin(service, user.id)
    return user


def _active_admins(service: AuthService) -> list[str]:
    users, _ = service.store.list_users(query=None, offset=0, limit=100)
    return [u.email for u in users if "admin" in u.roles and u.status is UserStatus.ACTIVE]


@pytest.mark.parametrize(
    "change",
    [{"roles": ["user"]}, {"status": UserStatus.DISABLED}, {"roles": [], "status": None}],
    ids=["demote", "disable", "no-roles"],
)
def test_the_last_admin_cannot_demote_or_disable_themselves(
    service: AuthService, change: dict[str, Any]
) -> None:
    root = _admin(service, "root@example.com")
    actor = session_of(service, root)
    new_user(service, "plain@example.com")
    arguments = {"roles": None, "status": None, **change}

    with pytest.raises(LastAdminError) as refused:
        service.accounts.update_user_access(actor, root.id, **arguments)

    assert refused.value.status == 409 and refused.value.code == "last_admin"
    assert _active_admins(service) == ["root@example.com"]
    assert service.accounts.get_user(actor, root.id).roles == ("user", "admin")


def test_the_last_admin_cannot_delete_themselves(service: AuthService) -> None:
    root = _admin(service, "root@example.com")
    actor = session_of(service, root)
    with pytest.raises(LastAdminError):
        service.accounts.delete_user(actor, root.id)
    assert service.store.get_user(root.id) is not None


def test_an_admin_may_step_down_while_another_admin_remains(service: AuthService) -> None:
    root, other = _admin(service, "root@example.com"), _admin(service, "other@example.com")
    actor = session_of(service, root)

    service.accounts.update_user_access(actor, root.id, roles=["user"], status=None)

    assert _active_admins(service) == ["other@example.com"]
    # ... and then the one left is the last: the former admin cannot touch it any more, and it
    # cannot leave either.
    last = session_of(service, other)
    with pytest.raises(LastAdminError):
        service.accounts.update_user_access(last, other.id, roles=None, status=UserStatus.DISABLED)


def test_a_disabled_admin_does_not_count_as_the_one_that_remains(service: AuthService) -> None:
    root, dormant = _admin(service, "root@example.com"), _admin(service, "dormant@example.com")
    actor = session_of(service, root)
    service.accounts.update_user_access(actor, dormant.id, roles=None, status=UserStatus.DISABLED)

    with pytest.raises(LastAdminError):
        service.accounts.update_user_access(actor, root.id, roles=["user"], status=None)
    # Changing someone who is no admin is never refused, whatever the count.
    plain = new_user(service, "plain@example.com")
    service.accounts.update_user_access(actor, plain.id, roles=None, status=UserStatus.DISABLED)


def test_unknown_roles_are_refused_and_held_ones_may_stay(service: AuthService) -> None:
    root = _admin(service, "root@example.com")
    actor = session_of(service, root)
    user = new_user(service, "ada@example.com")
    service.store.update_access(user.id, roles=["user", "legacy"], now=service.clock.now())

    with pytest.raises(UnknownRoleError) as refused:
        service.accounts.update_user_access(actor, user.id, roles=["user", "editor"], status=None)
    assert refused.value.status == 400 and refused.value.code == "unknown_role"
    assert "editor" in refused.value.message
    # A role the user holds from before (imported, or set on the command line) may stay.
    kept = service.accounts.update_user_access(actor, user.id, roles=["legacy"], status=None)
    assert kept.roles == ("legacy",)
    assert service.accounts.list_known_roles(actor) == ("user", "admin")


def test_two_admins_demoting_each_other_at_once_leave_one_admin(service: AuthService) -> None:
    """A demotes B while B demotes A; each alone is allowed. A pauses right after its check
    (inside its transaction) and B runs meanwhile: on PostgreSQL B waits for the rows A locked,
    on SQLite for A's write lock, so A's pause times out, A commits, and B — re-reading — sees
    that A's target is no longer an admin and is refused."""
    a_user, b_user = _admin(service, "a@example.com"), _admin(service, "b@example.com")
    a_actor, b_actor = session_of(service, a_user), session_of(service, b_user)
    a_checked, b_done = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def pause_a(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        checks = " like " in statement.lower() and "roles" in statement.lower()
        if threading.current_thread().name == "a" and checks and not a_checked.is_set():
            a_checked.set()
            b_done.wait(timeout=1.5)

    def demote(name: str, actor: Any, target: str) -> None:
        try:
            service.accounts.update_user_access(actor, target, roles=["user"], status=None)
            outcomes[name] = "demoted"
        except LastAdminError:
            outcomes[name] = "refused"
        finally:
            if name == "b":
                b_done.set()

    engine = service.store.engine  # type: ignore[attr-defined]
    event.listen(engine, "after_cursor_execute", pause_a)
    try:
        a = threading.Thread(target=demote, args=("a", a_actor, b_user.id), name="a")
        a.start()
        assert a_checked.wait(timeout=10)
        b = threading.Thread(target=demote, args=("b", b_actor, a_user.id), name="b")
        b.start()
        a.join(timeout=40)
        b.join(timeout=40)
    finally:
        event.remove(engine, "after_cursor_execute", pause_a)

    assert outcomes == {"a": "demoted", "b": "refused"}
    assert _active_admins(service) == ["a@example.com"]
