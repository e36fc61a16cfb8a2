"""Run Alembic migrations programmatically (``authgate db upgrade`` and the embedded default)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from authgate.store.sqlalchemy.engines import writer_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "authgate_alembic_version"


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    config = _alembic_config()
    # A writer's transaction: on SQLite a second migrator (`authgate db upgrade` beside a server
    # starting on the same file) waits for the first, then finds the schema current.
    with writer_engine(engine).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
