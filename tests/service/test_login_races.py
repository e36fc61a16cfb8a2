"""A login racing a "revoke all sessions" (password change, disable, logout everywhere): once
the revocation has committed, no session of the user opened with what it revoked stays alive.

The interleaving is injected: the hasher runs the other request right after the login's
password check, between the login's read of the user and its session."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from authgate.core.passwords import PasswordHasher
from authgate.errors import AccountDisabledError, InvalidCredentialsError, RateLimitedError
from authgate.service import AuthService, ClientInfo, Principal
from authgate.store.records import UserRecord, UserStatus
from tests.helpers import PASSWORD, session_of

NEW_PASSWORD = "another good passphrase"


class InterleavingHasher:
    """The real hasher; right after its next password check it runs ``between`` (once)."""

    def __init__(self, inner: PasswordHasher, between: Callable[[], object]) -> None:
        self.inner = inner
        self.between: Callable[[], object] | None = between

    def verify_password(self, password: str, hashed: str) -> object:
        check = self.inner.verify_password(password, hashed)
        between, self.between = self.between, None
        if between is not None:
            between()
        return check

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _interleave(service: AuthService, between: Callable[[], object]) -> None:
    service.sessions.hasher = InterleavingHasher(service.sessions.hasher, between)  # type: ignore[assignment]


def _live_sessions(service: AuthService, user: UserRecord) -> list[str]:
    return [s.id for s in service.store.list_sessions(user.id, now=service.clock.now())]


def _setup(service: AuthService) -> tuple[UserRecord, Principal]:
    user = service.accounts.register(email="ada@example.com", password=PASSWORD)
    return user, session_of(service, user)


REVOKE_ALL: dict[str, Callable[[AuthService, UserRecord, Principal], object]] = {
    "password change": lambda s, u, p: s.accounts.change_password(p, PASSWORD, NEW_PASSWORD),
    "disable": lambda s, u, p: s.accounts.set_user_access(
        u.id, roles=None, status=UserStatus.DISABLED
    ),
    "logout everywhere": lambda s, u, p: s.sessions.logout_all(p),
}


@pytest.mark.parametrize("cause", REVOKE_ALL)
def test_a_login_past_its_password_check_when_all_sessions_are_revoked_is_refused(
    service: AuthService, cause: str
) -> None:
    user, principal = _setup(service)
    _interleave(service, lambda: REVOKE_ALL[cause](service, user, principal))
    with pytest.raises(InvalidCredentialsError):
        service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    kept = [principal.session_id] if cause == "password change" else []
    assert _live_sessions(service, user) == kept


def test_the_new_password_logs_in_after_a_refused_race(service: AuthService) -> None:
    user, principal = _setup(service)
    _interleave(service, lambda: REVOKE_ALL["password change"](service, user, principal))
    with pytest.raises(InvalidCredentialsError):
        service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    issued = service.sessions.login("ada@example.com", NEW_PASSWORD, ClientInfo())
    assert service.authenticate(issued.access_token, "bearer").user.id == user.id


def test_a_role_change_meanwhile_lets_the_login_in_with_the_new_roles(
    service: AuthService,
) -> None:
    """Not a revocation: the login goes on, and its token carries the roles as they are now
    (read by the statement that records the login)."""
    user, _ = _setup(service)
    _interleave(
        service,
        lambda: service.accounts.set_user_access(user.id, roles=["user", "admin"], status=None),
    )
    issued = service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    assert issued.user.roles == ("user", "admin")
    principal = service.authenticate(issued.access_token, "bearer")
    assert principal.claims is not None and principal.claims.roles == ("user", "admin")


def test_a_concurrent_login_that_rehashes_the_password_refuses_nobody(
    service: AuthService,
) -> None:
    """A rehash changes the stored hash but not the password: both logins get their session."""
    weaker = PasswordHasher(time_cost=2)
    user = service.store.create_user(
        email="ada@example.com",
        username=None,
        name=None,
        password_hash=weaker.hash_password(PASSWORD),
        roles=["user"],
        now=service.clock.now(),
    )
    inner: list[object] = []
    service.sessions.hasher = InterleavingHasher(
        PasswordHasher(time_cost=3),
        lambda: inner.append(service.sessions.login("ada@example.com", PASSWORD, ClientInfo())),
    )  # type: ignore[assignment]
    outer = service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    assert len(inner) == 1
    assert len(_live_sessions(service, user)) == 2
    assert outer.user.password_hash is not None and ",t=3," in outer.user.password_hash


def test_a_provider_login_of_a_user_disabled_meanwhile_is_refused(service: AuthService) -> None:
    """``open_session`` (provider logins, the handoff) with a user read before the disable."""
    user, _ = _setup(service)
    service.accounts.set_user_access(user.id, roles=None, status=UserStatus.DISABLED)
    with pytest.raises(AccountDisabledError):
        service.sessions.open_session(user, ClientInfo(), generation=0)
    assert _live_sessions(service, user) == []


def test_a_provider_login_is_not_concerned_by_a_password_change_meanwhile(
    service: AuthService,
) -> None:
    user, principal = _setup(service)
    service.accounts.change_password(principal, PASSWORD, NEW_PASSWORD)
    issued = service.sessions.open_session(user, ClientInfo(), generation=0)
    assert service.authenticate(issued.access_token, "bearer").user.id == user.id


def test_threads_logging_in_with_the_old_password_during_a_change_keep_no_session(
    service: AuthService,
) -> None:
    """The issue's reproduction: six threads log in with the old password, again and again,
    while the password changes. Afterwards only the session that changed it is alive."""
    user, principal = _setup(service)
    changed = threading.Event()
    start = threading.Barrier(7)

    def keep_logging_in(_: int) -> list[str]:
        outcomes: list[str] = []
        start.wait()
        while True:
            done = changed.is_set()
            try:
                service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
                outcomes.append("ok")
            except (InvalidCredentialsError, RateLimitedError) as e:
                outcomes.append(type(e).__name__)
            if done:
                return outcomes

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(keep_logging_in, i) for i in range(6)]
        start.wait()
        service.accounts.change_password(principal, PASSWORD, NEW_PASSWORD)
        changed.set()
        outcomes = [f.result(timeout=60) for f in futures]
    assert all(o[-1] != "ok" for o in outcomes)  # every login after the change is refused
    assert _live_sessions(service, user) == [principal.session_id]
