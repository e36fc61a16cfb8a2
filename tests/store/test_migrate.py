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
