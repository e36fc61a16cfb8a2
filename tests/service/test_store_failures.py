"""A store that fails (a database outage) costs the client nothing it would have to pay for
later: no attempt of the login throttle, no refresh token, no session."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from authgate.errors import (
    InvalidCredentialsError,
    RateLimitedError,
    StoreUnavailableError,
    ValidationFailedError,
)
from authgate.service import AuthService, ClientInfo
from authgate.store.sqlalchemy.engines import events_engine
from tests.helpers import PASSWORD, session_of

ATTEMPTS = 15  # more than the default budget of 10 failures per account and address
NEW_PASSWORD = "another good passphrase"


def _failing(*args: object, **kwargs: object) -> object:
    raise StoreUnavailableError()


@contextmanager
def failing_statement(service: AuthService, fragment: str) -> Iterator[list[str]]:
    """The database fails this thread's next statement containing ``fragment`` (once), as a
    connection lost in the middle of a transaction would; the statements failed are listed."""
    failed: list[str] = []
    me = threading.get_ident()

    def fail(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if threading.get_ident() == me and fragment in statement and not failed:
            failed.append(statement)
            raise OperationalError(statement, params, ConnectionError("connection lost"))

    engine = events_engine(service.store.engine)  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", fail)
    try:
        yield failed
    finally:
        event.remove(engine, "before_cursor_execute", fail)


@contextmanager
def _failing_new_refresh_tokens(service: AuthService) -> Iterator[list[str]]:
    """PostgreSQL fails, inside the statement, each insert of a refresh token (a trigger)."""
    engine = service.store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION authgate_test_fail() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'failing as asked'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER authgate_test_fail BEFORE INSERT ON authgate_refresh_tokens "
                "FOR EACH ROW EXECUTE FUNCTION authgate_test_fail()"
            )
        )
    try:
        yield ["the statement that inserts the new refresh token"]
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER authgate_test_fail ON authgate_refresh_tokens"))
            conn.execute(text("DROP FUNCTION authgate_test_fail()"))


@pytest.mark.parametrize("password", [PASSWORD, "a wrong password"])
def test_logins_failing_to_find_the_user_spend_no_attempt(
    service: AuthService, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    service.accounts.register(email="ada@example.com", password=PASSWORD)
    with monkeypatch.context() as patch:
        patch.setattr(service.store, "find_user_by_login", _failing)
        for _ in range(ATTEMPTS):
            with pytest.raises(StoreUnavailableError):
                service.sessions.login("ada@example.com", password, ClientInfo(ip="192.0.2.1"))
    service.sessions.login("ada@example.com", PASSWORD, ClientInfo(ip="192.0.2.1"))


def test_logins_failing_to_open_the_session_spend_no_attempt(
    service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.accounts.register(email="ada@example.com", password=PASSWORD)
    with monkeypatch.context() as patch:
        patch.setattr(service.store, "create_session", _failing)
        for _ in range(ATTEMPTS):
            with pytest.raises(StoreUnavailableError):
                service.sessions.login("ada@example.com", PASSWORD, ClientInfo(ip="192.0.2.1"))
    service.sessions.login("ada@example.com", PASSWORD, ClientInfo(ip="192.0.2.1"))


def test_wrong_passwords_are_still_counted(service: AuthService) -> None:
    service.accounts.register(email="ada@example.com", password=PASSWORD)
    for _ in range(10):
        with pytest.raises(InvalidCredentialsError):
            service.sessions.login("ada@example.com", "a wrong password", ClientInfo())
    with pytest.raises(RateLimitedError):
        service.sessions.login("ada@example.com", PASSWORD, ClientInfo())


@pytest.mark.parametrize("method", ["get_user", "set_password_hash"])
def test_password_changes_failing_on_the_store_spend_no_attempt(
    service: AuthService, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    user = service.accounts.register(email="ada@example.com", password=PASSWORD)
    principal = session_of(service, user)
    with monkeypatch.context() as patch:
        patch.setattr(service.store, method, _failing)
        for _ in range(ATTEMPTS):
            with pytest.raises(StoreUnavailableError):
                service.accounts.change_password(principal, PASSWORD, NEW_PASSWORD, ip="192.0.2.1")
    with pytest.raises(ValidationFailedError):  # counted, and not refused as throttled
        service.accounts.change_password(principal, "a wrong password", NEW_PASSWORD)
    service.accounts.change_password(principal, PASSWORD, NEW_PASSWORD, ip="192.0.2.1")


def test_a_store_failure_during_a_refresh_leaves_the_refresh_token_current(
    service: AuthService,
) -> None:
    """The database fails after the token was consumed, as the rotation reads the user: nothing
    was committed, so the client's retry with the same token is no replay. (On PostgreSQL the
    rotation is one statement: the server fails it after it spent the token, as it writes the
    new one.)"""
    user = service.accounts.register(email="ada@example.com", password=PASSWORD)
    issued = service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    if service.settings.resolved_database_url.startswith("postgresql"):
        failure = _failing_new_refresh_tokens(service)
    else:
        failure = failing_statement(service, "FROM authgate_users")
    with failure as failed, pytest.raises(StoreUnavailableError):
        service.sessions.refresh(issued.refresh_token)
    assert failed, "the refresh read no user"
    retried = service.sessions.refresh(issued.refresh_token)
    assert retried.session.id == issued.session.id
    assert service.authenticate(retried.access_token, "bearer").user.id == user.id
    live = service.store.list_sessions(user.id, now=service.clock.now())
    assert [s.id for s in live] == [issued.session.id]
