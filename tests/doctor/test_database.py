"""The database and its clock (groups ``database`` and ``clock``)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from authgate.doctor import check_clock_skew, check_database
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import head_revision
from tests.doctor.helpers import (
    NOW,
    dev_settings,
    migrated_sqlite,
    only,
    production_settings,
)
from tests.helpers import free_port, pg_base_url


def test_a_migrated_sqlite_database_is_current(tmp_path: Path) -> None:
    findings = check_database(production_settings(tmp_path, database_url=migrated_sqlite(tmp_path)))

    assert only(findings, "database.current").level == "ok"
    assert only(findings, "clock.same_host").level == "ok"


def test_an_empty_sqlite_database_is_not_migrated(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "authgate.db").close()

    finding = only(check_database(production_settings(tmp_path)), "database.not_migrated")

    # `authgate serve` migrates SQLite itself: a warning, not an error.
    assert finding.level == "warning"
    assert "authgate db upgrade" in finding.fix


def test_a_sqlite_database_behind_head_is_reported(tmp_path: Path) -> None:
    url = migrated_sqlite(tmp_path, "0001")

    finding = only(
        check_database(production_settings(tmp_path, database_url=url)), "database.behind"
    )

    assert finding.level == "warning"
    assert f"revision 0001, behind {head_revision()}" in finding.message


def test_a_database_from_a_newer_authgate_is_an_error(tmp_path: Path) -> None:
    url = migrated_sqlite(tmp_path)
    engine = create_database_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE authgate_alembic_version SET version_num = '9999'"))
    engine.dispose()

    finding = only(
        check_database(production_settings(tmp_path, database_url=url)), "database.unknown_revision"
    )

    assert finding.level == "error"


def test_a_missing_sqlite_file_is_not_created_by_the_doctor(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path / "instance")

    finding = only(check_database(settings), "database.sqlite_missing")

    assert finding.level == "ok"
    assert not (tmp_path / "instance").exists()


def test_no_database_url_is_an_error_in_production(tmp_path: Path) -> None:
    findings = check_database(production_settings(tmp_path, database_url=None))

    assert only(findings, "database.url_not_set").level == "error"


def test_an_unusable_database_url_is_reported(tmp_path: Path) -> None:
    findings = check_database(production_settings(tmp_path, database_url="nosuchdb://host/x"))

    assert only(findings, "database.invalid_url").level == "error"


def test_an_unreachable_postgresql_is_an_error(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://authgate:hunter2@127.0.0.1:{free_port()}/authgate"

    finding = only(
        check_database(production_settings(tmp_path, database_url=url)), "database.unreachable"
    )

    assert finding.level == "error"
    assert "hunter2" not in finding.message
    assert "***" in finding.message


@contextmanager
def empty_pg_schema() -> Iterator[str]:
    schema = f"doctor_{uuid.uuid4().hex[:10]}"
    admin = create_database_engine(pg_base_url())
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in pg_base_url() else "?"
    try:
        yield f"{pg_base_url()}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_an_unmigrated_postgresql_is_an_error(tmp_path: Path) -> None:
    with empty_pg_schema() as url:
        findings = check_database(production_settings(tmp_path, database_url=url))

    finding = only(findings, "database.not_migrated")
    assert finding.level == "error"
    assert "refuses to start" in finding.message


def test_a_migrated_postgresql_is_current_and_its_clock_compared(
    tmp_path: Path, pg_schema_url: str
) -> None:
    def late_host_clock() -> datetime:
        return datetime.now(UTC) - timedelta(seconds=120)

    findings = check_database(
        production_settings(tmp_path, database_url=pg_schema_url), now=late_host_clock
    )

    assert only(findings, "database.current").level == "ok"
    skew = only(findings, "clock.skew")
    assert skew.level == "error"
    assert "ahead of this host's" in skew.message


@pytest.mark.parametrize(
    ("seconds", "level"),
    [(0.4, "ok"), (-3, "ok"), (10, "warning"), (-59, "warning"), (61, "error"), (-3600, "error")],
)
def test_clock_skew_thresholds(seconds: float, level: str) -> None:
    finding = check_clock_skew(NOW, NOW + timedelta(seconds=seconds))

    assert finding.level == level
    assert finding.check == "clock.skew"
    assert ("behind" if seconds < 0 else "ahead of") in finding.message


def test_a_naive_database_time_is_read_as_utc() -> None:
    assert check_clock_skew(NOW, NOW.replace(tzinfo=None) + timedelta(seconds=90)).level == "error"
