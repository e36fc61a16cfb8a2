"""The database: reachable and migrated (group ``database``); its clock is :mod:`.clock`'s."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from authgate.config import Settings
from authgate.doctor.clock import check_database_clock, utc_now
from authgate.doctor.findings import (
    Finding,
    Level,
    error_finding,
    first_line_of_error,
    ok_finding,
    warning_finding,
)
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import MIGRATIONS_DIR, current_revision, head_revision

__all__ = ["DATABASE_CONNECT_TIMEOUT_SECONDS", "check_database"]

DATABASE_CONNECT_TIMEOUT_SECONDS = 5


def check_database(settings: Settings, *, now: Callable[[], datetime] = utc_now) -> list[Finding]:
    """Reachable and migrated; for PostgreSQL also its clock against this host's."""
    if settings.is_production and settings.database_url is None:
        return [
            error_finding(
                "database.url_not_set",
                "AUTHGATE_DATABASE_URL is not set: production needs an explicit database (the "
                "server refuses to start).",
                "Set AUTHGATE_DATABASE_URL=postgresql+psycopg://user@host/dbname and run "
                "`authgate db upgrade`.",
            )
        ]
    try:
        url = make_url(settings.resolved_database_url)
    except ArgumentError:
        return [_invalid_database_url()]
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and _sqlite_file_missing(url):
        return [_sqlite_missing(settings, shown)]
    try:
        engine = create_database_engine(
            _with_connect_timeout(url).render_as_string(hide_password=False)
        )
    except (ArgumentError, NoSuchModuleError):
        return [_invalid_database_url()]
    try:
        return [_migration_finding(engine, shown), *check_database_clock(engine, now=now)]
    except SQLAlchemyError as e:
        return [
            error_finding(
                "database.unreachable",
                f"Could not use the database {shown}: {first_line_of_error(getattr(e, 'orig', e))}",
                "Check that the database server runs and accepts this user from this host "
                "(host, port, password, pg_hba.conf), and that the database exists.",
            )
        ]
    finally:
        engine.dispose()


def _invalid_database_url() -> Finding:
    return error_finding(
        "database.invalid_url",
        "AUTHGATE_DATABASE_URL is not a usable database URL.",
        "Use e.g. postgresql+psycopg://user@host/dbname or sqlite:////path/to/authgate.db.",
    )


def _sqlite_file_missing(url: URL) -> bool:
    database = url.database
    return bool(database) and database != ":memory:" and not Path(str(database)).exists()


def _sqlite_missing(settings: Settings, shown: str) -> Finding:
    message = f"The SQLite database {shown} does not exist yet: `authgate serve` creates and "
    message += "migrates it at its first start."
    if settings.is_production:
        return warning_finding(
            "database.sqlite_missing",
            message,
            "Check the path is the one you meant (and persistent), or run `authgate db upgrade`.",
        )
    return ok_finding("database.sqlite_missing", message)


def _with_connect_timeout(url: URL) -> URL:
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        return url.update_query_dict({"connect_timeout": str(DATABASE_CONNECT_TIMEOUT_SECONDS)})
    return url


def _known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}


def _migration_finding(engine: Engine, shown: str) -> Finding:
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return ok_finding(
            "database.current", f"{shown} is reachable and at the newest schema ({head})."
        )
    sqlite = engine.dialect.name == "sqlite"
    on_start = " (`authgate serve` also migrates SQLite when it starts)" if sqlite else ""
    if current is None:
        message = f"{shown} is reachable but empty: no authgate schema"
        level: Level = "warning" if sqlite else "error"
        return Finding(
            level,
            "database.not_migrated",
            message + ("." if sqlite else "; the server refuses to start."),
            f"Run `authgate db upgrade`{on_start}.",
        )
    if current in _known_revisions():
        return Finding(
            "warning" if sqlite else "error",
            "database.behind",
            f"{shown} is at schema revision {current}, behind {head}"
            + ("." if sqlite else "; the server refuses to start."),
            f"Run `authgate db upgrade`{on_start}.",
        )
    return error_finding(
        "database.unknown_revision",
        f"{shown} is at schema revision {current}, which this authgate does not know (the "
        f"newest it knows is {head}): a newer authgate migrated it.",
        "Run the authgate version that migrated this database (or a newer one).",
    )
