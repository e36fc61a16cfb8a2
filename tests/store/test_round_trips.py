"""PostgreSQL round trips of a login, a refresh, a logout and an API token's first request,
counted on the wire by a proxy (``tests/counting_proxy.py``): every statement, ``BEGIN``,
``COMMIT``, ``ROLLBACK`` and pool ping the app sends is there, whatever the code above the
driver does. A database 1 ms away costs 2 ms per round trip (``benchmarks/round_trips.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from authgate.bootstrap import build_service
from authgate.service import AuthService, ClientInfo
from tests.counting_proxy import CountingProxy
from tests.helpers import PASSWORD, make_settings, pg_base_url

BUDGET = 4  # round trips of a login, of a refresh (issue 17)


@pytest.fixture
def proxy() -> Iterator[CountingProxy]:
    parsed = make_url(pg_base_url())
    with CountingProxy((parsed.host or "127.0.0.1", parsed.port or 5432)) as counting:
        yield counting


@pytest.fixture
def service(tmp_path: Path, pg_schema_url: str, proxy: CountingProxy) -> Iterator[AuthService]:
    built = build_service(make_settings(tmp_path, proxy.url(pg_schema_url)))
    yield built
    built.close()


def test_a_login_a_refresh_and_a_logout_take_at_most_four_round_trips(
    service: AuthService, proxy: CountingProxy
) -> None:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    service.accounts.register(email=email, password=PASSWORD)
    client = ClientInfo(ip="203.0.113.9", user_agent="round trips")
    # Once first: the pool's connections are opened (their startup is not the login's).
    warm = service.sessions.login(email, PASSWORD, client)
    service.sessions.refresh(warm.refresh_token)

    with proxy.counting() as login:
        issued = service.sessions.login(email, PASSWORD, client)
    with proxy.counting() as refresh:
        refreshed = service.sessions.refresh(issued.refresh_token)
    principal = service.sessions.authenticate_access_token(refreshed.access_token, "bearer")
    with proxy.counting() as logout:
        service.sessions.logout(principal)

    assert login.round_trips <= BUDGET, login
    assert refresh.round_trips <= BUDGET, refresh
    assert logout.round_trips <= BUDGET, logout
    # The counts are real: each did reach the database.
    assert min(login.statements, refresh.statements, logout.statements) >= 1


def test_an_api_token_first_request_takes_one_round_trip(
    service: AuthService, proxy: CountingProxy
) -> None:
    """The token, its user and the user's membership of the token's tenant: one statement,
    without BEGIN or ROLLBACK; nothing more once remembered."""
    user = service.accounts.register(
        email=f"{uuid.uuid4().hex[:12]}@example.com", password=PASSWORD
    )
    plaintext, _ = service.api_tokens.issue_api_token(user, name="ci", scopes=["read"])
    service.authenticate(plaintext, "bearer")  # the pool's connection is opened
    service.cache.clear()  # as in a process that has never seen the token

    with proxy.counting() as first:
        principal = service.authenticate(plaintext, "bearer")
        service.authorization.authorize(principal)  # its membership, as a view checks it
    with proxy.counting() as again:
        service.authorization.authorize(service.authenticate(plaintext, "bearer"))

    assert (first.round_trips, first.statements) == (1, 1), first
    assert (again.round_trips, again.statements) == (0, 0), again
    assert principal.user.id == user.id


def test_the_proxy_counts_begin_commit_and_each_statement(
    service: AuthService, proxy: CountingProxy
) -> None:
    """A transaction of two statements: BEGIN, two statements, COMMIT, each waiting for its
    answer."""
    from sqlalchemy import text

    engine = service.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.commit()
    with proxy.counting() as counted, engine.begin() as conn:
        conn.execute(text("SELECT 1"))
        conn.execute(text("SELECT 2"))
    assert (counted.round_trips, counted.statements) == (4, 4)
