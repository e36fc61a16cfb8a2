"""Run Alembic migrations programmatically (``authgate db upgrade`` and the embedded default).

Every worker asks ``is_up_to_date`` as it boots; that question is answered without loading
Alembic (10 MB of a worker's memory), which only a migration or ``authgate db`` needs.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, column, inspect, select, table

from authgate.store.sqlalchemy.engines import writer_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "authgate_alembic_version"


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    config = _alembic_config()
    # A writer's transaction: on SQLite a second migrator (`authgate db upgrade` beside a server
    # starting on the same file) waits for the first, then finds the schema current.
    with writer_engine(engine).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _assigned_names(path: Path) -> dict[str, object]:
    """The constants a migration file assigns at its top level (``revision = "0002"``, ...)."""
    names: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            names[node.target.id] = ast.literal_eval(node.value)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant):
                names[target.id] = node.value.value
    return names


def newest_revision() -> str | None:
    """The head of the migrations (one line of history: the revision no other one follows),
    read from the files as Alembic would, without loading it."""
    revisions: set[str] = set()
    followed: set[object] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        names = _assigned_names(path)
        if isinstance(names.get("revision"), str):
            revisions.add(str(names["revision"]))
            followed.add(names.get("down_revision"))
    heads = revisions - followed
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have several heads: {sorted(heads)}")
    return heads.pop() if heads else None


def stored_revision(engine: Engine) -> str | None:
    """The revision the database was migrated to (Alembic's version table), None before any."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        versions = table(VERSION_TABLE, column("version_num"))
        found = connection.execute(select(versions.c.version_num)).scalars().all()
        return found[0] if found else None


def is_up_to_date(engine: Engine) -> bool:
    return stored_revision(engine) == newest_revision()
