"""authgate behind PgBouncer in transaction pooling mode (Debian's ``pgbouncer``, started by the
test in front of the shared PostgreSQL): migrations, registration, logins, refreshes, logouts,
API tokens and the revocation feed through it, and logins from many threads at once.

Under transaction pooling each transaction may run on another server connection: a statement
psycopg prepared on one (its default, from a statement's fifth execution on a connection) is
unknown on the next, so authgate's engines never prepare (``engines.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from authgate.bootstrap import build_service
from authgate.cli import main
from authgate.errors import InvalidTokenError, TokenRevokedError
from authgate.service import AuthService, ClientInfo
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.models import Base
from tests.helpers import (
    PASSWORD,
    PUBLIC_URL,
    bearer,
    clear_authgate_environment,
    create_token,
    login,
    make_app,
    make_settings,
    pg_base_url,
    register,
)
from tests.pgbouncer_server import PgBouncer


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    """PgBouncer (pool_mode = transaction, 4 server connections) in front of a private schema
    of the test database."""
    schema = f"authgate_pgb_{uuid.uuid4().hex[:10]}"
    admin = create_database_engine(pg_base_url())
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        try:
            server = PgBouncer(schema=schema)
        except RuntimeError as e:  # not installed: fail, never skip
            pytest.fail(str(e))
        with server:
            yield server
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def migrated(bouncer: PgBouncer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``authgate db upgrade`` through PgBouncer."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        clear_authgate_environment(monkeypatch)
        env = {
            "AUTHGATE_INSTANCE_PATH": str(tmp_path_factory.mktemp("pgb")),
            "AUTHGATE_DATABASE_URL": bouncer.url,
            "AUTHGATE_PUBLIC_URL": PUBLIC_URL,
        }
        result = CliRunner().invoke(main, ["db", "upgrade"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, (result.output, bouncer.log())
    return bouncer.url


@pytest.fixture
def services(migrated: str, tmp_path: Path) -> Iterator[tuple[AuthService, AuthService]]:
    """Two instances of authgate (two processes' worth) on the same database, through it."""
    engine = create_database_engine(migrated)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    # These tests are of PgBouncer, not of the password-hash gate: room for all their logins
    # at once (the default queue of 8 would refuse some as busy).
    gate = {"password_hash_concurrency": 2, "password_hash_queue": 64}
    first = build_service(make_settings(tmp_path, migrated, **gate))
    second = build_service(make_settings(tmp_path, migrated, **gate))
    yield first, second
    first.close()
    second.close()


def test_the_whole_session_lifecycle_through_pgbouncer(
    services: tuple[AuthService, AuthService],
) -> None:
    service, other = services
    client = make_app(service).test_client()
    other_client = make_app(other).test_client()
    register(client, "ada@example.com")
    for n in range(16):  # the same statements again and again, from both instances in turn
        either = client if n % 2 else other_client
        token = login(either, "ada@example.com")
        assert either.get("/api/auth/me", headers=bearer(token)).status_code == 200
    issued = client.post("/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD})
    refresh = issued.json["refresh_token"]
    for _ in range(8):
        rotated = client.post("/api/auth/refresh", json={"refresh_token": refresh})
        assert rotated.status_code == 200, rotated.json
        refresh = rotated.json["refresh_token"]
    access = rotated.json["access_token"]
    api_tokens = [create_token(client, access, name=f"script {n}")["token"] for n in range(6)]
    for plaintext in api_tokens:
        assert other_client.get("/api/auth/me", headers=bearer(plaintext)).status_code == 200
    # A logout reaches the other instance through the revocation feed (polling the database).
    assert other_client.get("/api/auth/me", headers=bearer(access)).status_code == 200
    assert client.post("/api/auth/logout", headers=bearer(access)).status_code == 204
    for _ in range(6):
        other.feed.poll_once()
    with pytest.raises((TokenRevokedError, InvalidTokenError)):
        other.authenticate(access, "bearer")


def test_many_logins_at_once_through_pgbouncer(
    services: tuple[AuthService, AuthService],
) -> None:
    """Sixteen threads on two instances, through four server connections: every login and
    refresh succeeds, whichever server connection each transaction lands on."""
    service, other = services
    emails = [f"user{n}@example.com" for n in range(16)]
    for email in emails:
        service.accounts.register(email=email, password=PASSWORD)

    def sign_in(n: int) -> int:
        instance = service if n % 2 else other
        email = emails[n % len(emails)]
        done = 0
        for _ in range(4):
            issued = instance.sessions.login(email, PASSWORD, ClientInfo(ip=f"10.0.0.{n}"))
            instance.sessions.refresh(issued.refresh_token)
            done += 1
        return done

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert sum(pool.map(sign_in, range(32))) == 128
