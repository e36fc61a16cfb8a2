"""Fixtures that build up: database → settings → service → app → client.

Every test that uses ``service``/``app``/``client`` runs on SQLite and on PostgreSQL
(``AUTHGATE_TEST_DATABASE_URL``, default the local server). A missing PostgreSQL fails loudly.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, text

from authgate import AuthGate, current_user, token_required
from authgate.config import Settings
from authgate.core.clocks import SystemClock
from authgate.integrations.flask.extension import build_service
from authgate.service import AuthService
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import upgrade_database
from authgate.store.sqlalchemy.models import Base

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FRONTEND = "http://localhost:4100"
PUBLIC_URL = "http://localhost:8086"
PASSWORD = "correct horse battery staple"


def pg_base_url() -> str:
    return os.environ.get("AUTHGATE_TEST_DATABASE_URL", DEFAULT_PG_URL)


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A private, migrated schema in the PostgreSQL test database for this test run."""
    schema = f"authgate_test_{uuid.uuid4().hex[:10]}"
    admin = create_database_engine(pg_base_url())
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in pg_base_url() else "?"
    url = f"{pg_base_url()}{separator}options=-csearch_path%3D{schema}"
    engine = create_database_engine(url)
    upgrade_database(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _truncate(engine: Engine) -> None:
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'authgate.db'}"
        return
    url: str = request.getfixturevalue("pg_schema_url")
    engine = create_database_engine(url)
    _truncate(engine)
    engine.dispose()
    yield url


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "instance_path": tmp_path,
        "database_url": database_url,
        "public_url": PUBLIC_URL,
        "origins": (FRONTEND,),
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


class StepClock(SystemClock):
    """Real time plus an offset that tests can move forward (no sleeping)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return super().now() + timedelta(seconds=self.offset)

    def timestamp(self) -> float:
        return super().timestamp() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def service(settings: Settings, clock: StepClock) -> Iterator[AuthService]:
    svc = build_service(settings, clock=clock)
    yield svc
    svc.close()


def make_app(service: AuthService) -> Flask:
    app = Flask("testapp")
    app.config["TESTING"] = True
    AuthGate(app, service=service)

    @app.get("/api/notes")
    @token_required()
    def notes() -> dict[str, str]:
        return {"owner": current_user.email}

    @app.delete("/api/notes/<note_id>")
    @token_required(roles=["admin"])
    def delete_note(note_id: str) -> tuple[str, int]:
        return "", 204

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    return app


@pytest.fixture
def app(service: AuthService) -> Flask:
    return make_app(service)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


BROWSER = {"Origin": FRONTEND, "X-Requested-With": "fetch"}


def register(
    client: FlaskClient, email: str = "ada@example.com", password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = client.post(
        "/api/auth/register", json={"email": email, "password": password, **extra}, headers=BROWSER
    )
    assert response.status_code == 201, response.json
    return response.json["user"]  # type: ignore[index,no-any-return]


def login(client: FlaskClient, login: str = "ada@example.com", password: str = PASSWORD) -> str:
    """Log in as a script (no Origin) and return the access token."""
    response = client.post("/api/auth/login", json={"login": login, "password": password})
    assert response.status_code == 200, response.json
    return response.json["access_token"]  # type: ignore[index,no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_admin(service: AuthService, user_id: str) -> None:
    from authgate.store.records import UserStatus

    service.store.update_access(
        user_id, roles=["user", "admin"], status=UserStatus.ACTIVE, now=service.clock.now()
    )
    service.cache.users.pop(user_id)


def free_port() -> int:
    """A port nothing listens on right now (bound and released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Tenants and API tokens ---------------------------------------------------------------------

APP_SCOPES = ("chat:write", "chat:read")  # registered by the app, beside the built-in ones


def make_tenant_app(service: AuthService) -> Flask:
    """``make_app`` plus views declaring scopes, a resource, and tenant roles.

    Use with settings that register ``APP_SCOPES`` (``make_settings(..., api_token_scopes=...)``).
    """
    from authgate import current_principal, current_tenant

    app = make_app(service)

    @app.post("/api/chat")
    @token_required(scopes=["chat:write"])
    def chat() -> dict[str, Any]:
        token = current_principal.api_token
        return {"user": current_user.email, "token_id": token.id if token else None}

    @app.get("/dialogs/<dialog_id>")
    @token_required(resource=lambda dialog_id: f"dialog:{dialog_id}")
    def dialog(dialog_id: str) -> dict[str, str]:
        return {"dialog": dialog_id, "user": current_user.email}

    @app.get("/api/t/<tenant_id>/things")
    @token_required(tenant_roles=["admin", "owner"])
    def tenant_things(tenant_id: str) -> dict[str, str]:
        return {"tenant_id": current_tenant.tenant_id, "role": current_tenant.role.value}

    @app.get("/api/t/<tenant_id>/docs")
    @token_required(scopes=["read"])
    def tenant_docs(tenant_id: str) -> dict[str, str]:
        return {"tenant_id": current_tenant.tenant_id, "role": current_tenant.role.value}

    @app.get("/api/my-tenant")
    @token_required(tenant_roles=["owner", "admin", "member", "viewer"])
    def my_tenant() -> dict[str, str]:
        """No tenant in the URL: an API token's own tenant is the one in scope."""
        return {"tenant_id": current_tenant.tenant_id, "role": current_tenant.role.value}

    return app


def create_token(client: FlaskClient, session_token: str, **fields: Any) -> dict[str, Any]:
    """POST /api/tokens with a login session; the 201 body (with the one-time ``token``)."""
    body: dict[str, Any] = {"name": "script", "scopes": ["read"], **fields}
    response = client.post("/api/tokens", json=body, headers=bearer(session_token))
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[return-value]


def create_tenant(client: FlaskClient, session_token: str, name: str = "Team") -> dict[str, Any]:
    response = client.post("/api/tenants", json={"name": name}, headers=bearer(session_token))
    assert response.status_code == 201, response.json
    return response.json["tenant"]  # type: ignore[index,no-any-return]


def add_member(
    client: FlaskClient, session_token: str, tenant_id: str, email: str, role: str = "member"
) -> dict[str, Any]:
    response = client.post(
        f"/api/tenants/{tenant_id}/members",
        json={"email": email, "role": role},
        headers=bearer(session_token),
    )
    assert response.status_code == 201, response.json
    return response.json["member"]  # type: ignore[index,no-any-return]


def signed_in(client: FlaskClient, email: str) -> tuple[dict[str, Any], str]:
    """Register ``email`` and log in: ``(user, access token)``."""
    user = register(client, email)
    return user, login(client, email)


@contextmanager
def count_sql(service: AuthService) -> Iterator[list[str]]:
    """SQL statements executed by this thread (the revocation poller runs in another).

    Not the ``BEGIN`` that opens a transaction on SQLite (``store/sqlalchemy/engines.py``):
    PostgreSQL's driver sends its own unseen, and a transaction that runs a query shows it."""
    statements: list[str] = []
    me = threading.get_ident()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == me and not statement.startswith("BEGIN"):
            statements.append(statement)

    engine = service.store.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
