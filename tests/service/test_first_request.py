"""A token's first request in a process (nothing cached: after a deploy, in a new worker) reads
its session and its user in one statement, and still refuses what it refused before: a revoked
session, a disabled user."""

from __future__ import annotations

from typing import Any

import pytest

from authgate.errors import TokenRevokedError
from authgate.service import AuthService, ClientInfo, IssuedTokens
from authgate.store.records import UserStatus


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
