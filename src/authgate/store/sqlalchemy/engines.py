"""Engine creation with the per-backend settings authgate relies on."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

# The execution option that makes a transaction a writer's; see ``writer_engine``.
_WRITE_OPTION = "authgate_write"


def writer_engine(engine: Engine) -> Engine:
    """``engine`` for read-modify-write transactions.

    On SQLite such a transaction begins with ``BEGIN IMMEDIATE``: it takes the database's write
    lock before its first read, so what it reads cannot change before it writes (the SQLite
    counterpart of PostgreSQL's row locks, which ``SELECT ... FOR UPDATE`` takes and SQLite
    ignores). Two owners demoting each other at once would otherwise both read "two owners" and
    leave none. Other backends ignore the option.
    """
    return engine.execution_options(**{_WRITE_OPTION: True})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling begins a transaction only before a write statement,
    # so reads before it see no snapshot and take no lock; authgate begins every transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    _use_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch a file to WAL (once: the mode is kept in the file). The switch needs the file to
    itself, and SQLite answers "database is locked" at once, without waiting, to the second of
    two connections switching a fresh file together (two processes starting on it): that one
    tries again until the first has switched it."""
    deadline = time.monotonic() + 30
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_begin(connection: Connection) -> None:
    writes = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def create_database_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys.

    PostgreSQL (psycopg) never prepares statements on the server (``prepare_threshold=None``;
    psycopg's default prepares a statement from its fifth execution on a connection). Behind a
    pooler in transaction mode (PgBouncer, docs/deploy.md#behind-pgbouncer) each transaction may
    run on another server connection, where the prepared statement is unknown, or its name is
    taken by another client's: every query would then fail at random. authgate needs nothing
    else of a server connection: no session ``SET``, advisory lock, ``LISTEN`` or ``WITH HOLD``
    cursor; each transaction stands alone. Its statements are short, so preparing saves
    little (planning a primary-key lookup takes microseconds; the round trips are the same)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_driver_name() == "psycopg":
            connect_args["prepare_threshold"] = None
    return create_engine(
        parsed, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args
    )
