"""Fixtures that build up: database → settings → service → app → client.

Every test that uses ``service``/``app``/``client`` runs on SQLite and on PostgreSQL
(``AUTHGATE_TEST_DATABASE_URL``, default the local server). A missing PostgreSQL fails loudly.
The helpers these fixtures use, and the tests too, are in ``tests/helpers.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from authgate.bootstrap import build_service
from authgate.config import Settings
from authgate.service import AuthService
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import upgrade_database
from authgate.store.sqlalchemy.models import Base
from authgate.store.sqlalchemy.stores import SqlAlchemyStore
from tests.helpers import (
    APP_SCOPES,
    StepClock,
    make_app,
    make_settings,
    make_tenant_app,
    pg_base_url,
)
from tests.mail_server import MailServer, Mode
from tests.s3_server import S3Server


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "app_scopes: the settings fixture also registers APP_SCOPES (api_token_scopes)",
    )
    config.addinivalue_line(
        "markers",
        "tenant_app: the app fixture is make_tenant_app(service), its settings register APP_SCOPES",
    )


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


@pytest.fixture
def store(database_url: str) -> Iterator[SqlAlchemyStore]:
    """The store alone on the migrated test database (no service): for tests of its methods."""
    engine = create_database_engine(database_url)
    upgrade_database(engine)
    store = SqlAlchemyStore(engine)
    yield store
    store.dispose()


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    """``make_settings``; with ``APP_SCOPES`` registered for a test marked ``app_scopes`` or
    ``tenant_app`` (``pytestmark = pytest.mark.app_scopes`` in its module)."""
    if request.node.get_closest_marker("app_scopes") or request.node.get_closest_marker(
        "tenant_app"
    ):
        return make_settings(tmp_path, database_url, api_token_scopes=APP_SCOPES)
    return make_settings(tmp_path, database_url)


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def service(settings: Settings, clock: StepClock) -> Iterator[AuthService]:
    svc = build_service(settings, clock=clock)
    yield svc
    svc.close()


@pytest.fixture
def app(request: pytest.FixtureRequest, service: AuthService) -> Flask:
    """``make_app``; ``make_tenant_app`` for a test marked ``tenant_app``."""
    if request.node.get_closest_marker("tenant_app"):
        return make_tenant_app(service)
    return make_app(service)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[MailServer]:
    """A real SMTP server process, plain, no AUTH (``tests/mail_server.py``); its settings:
    ``mail_server.settings()``, what arrived: ``mail_server.wait_for(n)``."""
    with MailServer(tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def start_mail_server(tmp_path: Path) -> Iterator[Callable[..., MailServer]]:
    """``start_mail_server(mode="starttls", auth=("user", "password"))``: SMTP server
    processes of any mode, all stopped at the end of the test."""
    servers: list[MailServer] = []

    def start(mode: Mode = "plain", auth: tuple[str, str] | None = None) -> MailServer:
        server = MailServer(tmp_path / f"smtp{len(servers)}", mode=mode, auth=auth)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-wire-compatible server process (moto, ``tests/s3_server.py``) on a free
    127.0.0.1 port, for the whole session; each test takes its own ``s3_server.new_bucket()``."""
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()
