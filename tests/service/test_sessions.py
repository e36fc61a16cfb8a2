"""Logging in: stored password hashes of every kind verify and are upgraded, and every failed
login costs the same hashing work."""

from __future__ import annotations

import bcrypt
from werkzeug.security import generate_password_hash

from authgate.service import AuthService, ClientInfo
from tests.helpers import PASSWORD


def _import_user(service: AuthService, password_hash: str) -> str:
    user = service.store.create_user(
        email="old@example.com",
        username=None,
        name=None,
        password_hash=password_hash,
        roles=["user"],
        now=service.clock.now(),
    )
    return user.id


def test_werkzeug_hash_verifies_and_is_upgraded_to_argon2id(service: AuthService) -> None:
    user_id = _import_user(service, generate_password_hash(PASSWORD, method="pbkdf2:sha256"))
    service.sessions.login("old@example.com", PASSWORD, ClientInfo())
    stored = service.store.get_user(user_id)
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    service.sessions.login("old@example.com", PASSWORD, ClientInfo())


def test_bcrypt_hash_verifies_and_is_upgraded(service: AuthService) -> None:
    user_id = _import_user(service, bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode())
    service.sessions.login("old@example.com", PASSWORD, ClientInfo())
    stored = service.store.get_user(user_id)
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$")


def test_argon2_parameter_change_rehashes_at_login(service: AuthService) -> None:
    from authgate.core.passwords import PasswordHasher

    weaker = PasswordHasher(time_cost=2)
    user_id = _import_user(service, weaker.hash_password(PASSWORD))
    service.sessions.hasher = PasswordHasher(time_cost=3)
    service.sessions.login("old@example.com", PASSWORD, ClientInfo())
    stored = service.store.get_user(user_id)
    assert stored is not None and stored.password_hash is not None
    assert ",t=3," in stored.password_hash


class CountingHasher:
    """Wraps the real hasher and records which verification ran."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> object:
        attr = getattr(self.inner, name)
        if name.startswith("verify"):

            def record(*args: object, **kwargs: object) -> object:
                self.calls.append(name)
                return attr(*args, **kwargs)

            return record
        return attr


def test_every_failed_login_costs_one_argon2_verification(service: AuthService) -> None:
    """Unknown, disabled and wrong-password logins all do the same hashing work."""
    from authgate.errors import InvalidCredentialsError
    from authgate.store.records import UserStatus

    service.accounts.register(email="on@example.com", password=PASSWORD)
    off = service.accounts.register(email="off@example.com", password=PASSWORD)
    service.store.update_access(off.id, status=UserStatus.DISABLED, now=service.clock.now())
    spy = CountingHasher(service.sessions.hasher)
    service.sessions.hasher = spy  # type: ignore[assignment]
    for login, password in (
        ("nobody@example.com", PASSWORD),
        ("on@example.com", "a wrong password"),
        ("off@example.com", PASSWORD),
    ):
        spy.calls.clear()
        try:
            service.sessions.login(login, password, ClientInfo())
        except InvalidCredentialsError:
            pass
        else:
            raise AssertionError(f"{login} logged in")
        assert len(spy.calls) == 1, (login, spy.calls)


def test_a_login_and_a_refresh_cost_as_many_statements_as_before_their_checks(
    service: AuthService,
) -> None:
    """The login's check that its user may still log in rides on the UPDATE that records the
    login (returning the user); the refresh reads its user inside the rotation's transaction,
    instead of after it. On PostgreSQL each is one statement (``session_statements``; their
    round trips: ``tests/store/test_round_trips.py``)."""
    from tests.helpers import count_sql

    service.accounts.register(email="ada@example.com", password=PASSWORD)
    with count_sql(service) as login_statements:
        issued = service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    kinds = [s.split()[0].upper() for s in login_statements]
    # The second SELECT asks, in one statement, whether the user has a second factor.
    if service.settings.resolved_database_url.startswith("postgresql"):
        assert kinds == ["SELECT", "SELECT", "WITH"], login_statements
    else:
        assert kinds[:5] == ["SELECT", "SELECT", "UPDATE", "INSERT", "INSERT"], login_statements
    with count_sql(service) as refresh_statements:
        service.sessions.refresh(issued.refresh_token)
    expected = 1 if service.settings.resolved_database_url.startswith("postgresql") else 5
    assert len(refresh_statements) == expected, refresh_statements
