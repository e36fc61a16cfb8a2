"""A worker checks at boot whether the schema is current without loading Alembic: the answer
must be Alembic's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine

from authgate.store.sqlalchemy.migrate import (
    current_revision,
    head_revision,
    is_up_to_date,
    newest_revision,
    stored_revision,
    upgrade_database,
)


def test_newest_revision_is_alembics_head() -> None:
    assert newest_revision() == head_revision()
    assert newest_revision() is not None


def test_stored_revision_is_alembics_current_revision(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert stored_revision(engine) == current_revision(engine)
    finally:
        engine.dispose()


def test_is_up_to_date_follows_the_migrations(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert stored_revision(engine) is None
        assert not is_up_to_date(engine)

        upgrade_database(engine, "0001")
        assert stored_revision(engine) == current_revision(engine) == "0001"
        assert not is_up_to_date(engine)

        upgrade_database(engine)
        assert stored_revision(engine) == current_revision(engine) == head_revision()
        assert is_up_to_date(engine)
    finally:
        engine.dispose()


def test_checking_the_schema_loads_no_alembic(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from sqlalchemy import create_engine\n"
        "from authgate.store.sqlalchemy.migrate import is_up_to_date\n"
        f"is_up_to_date(create_engine('sqlite:///{tmp_path}/a.db'))\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_revocation_ids_never_come_back_after_pruning_emptied_the_log(tmp_path: Path) -> None:
    """The pollers' cursor: a database migrated before 0012, with revocations in its log, keeps
    them, and once pruning has emptied the log a new revocation still gets a higher id."""
    from datetime import UTC, datetime, timedelta

    from authgate.store.records import RevocationKind
    from authgate.store.sqlalchemy.stores import SqlAlchemyStore

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade_database(engine, "0011")
        now = datetime.now(UTC)
        store = SqlAlchemyStore(engine)
        with store._transaction() as db:
            store._log(db, RevocationKind.SESSION, ["s1", "s2", "s3"], now)
        upgrade_database(engine)
        events = store.read_revocations(0)
        assert [(e.id, e.subject) for e in events] == [(1, "s1"), (2, "s2"), (3, "s3")]
        assert store.prune_revocations(older_than=now + timedelta(seconds=1)) == 3
        with store._transaction() as db:
            store._log(db, RevocationKind.SESSION, ["s4"], now)
        [fresh] = store.read_revocations(0)
        assert fresh.subject == "s4" and fresh.id == 4  # not 1: a poller at 3 still reads it
    finally:
        engine.dispose()
