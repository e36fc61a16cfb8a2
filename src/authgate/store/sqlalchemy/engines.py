"""Engine creation with the per-backend settings authgate relies on."""

from __future__ import annotations

import sqlite3
import time
import weakref
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

# psycopg's ``pq.ConnStatus.OK``, as a plain value: the store
# does not import psycopg until PostgreSQL is used.
_CONNECTION_OK = 0

# libpq's TCP keepalives for psycopg connections (no ``pool_pre_ping`` round trip, see
# ``_discard_if_closed_by_server``): an idle pooled connection whose flow a NAT or firewall
# forgot is found dead by the kernel after 30 + 3 x 10 s of silence and discarded at checkout,
# rather than failing the next request's statement; ``tcp_user_timeout`` (ms) bounds how long
# sent data may stay unacknowledged (a host gone mid-statement). Unix sockets ignore them.
TCP_KEEPALIVES: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}

# The execution option that makes a transaction a writer's; see ``writer_engine``.
_WRITE_OPTION = "authgate_write"


# SQLite: the engine ``create_database_engine`` returns -> the engine it is an ``OptionEngine`` of
# (the same pool and dialect) that emits no ``BEGIN``; see ``autocommit_engine``.
_SQLITE_ONE_STATEMENT: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def autocommit_engine(engine: Engine) -> Engine:
    """``engine`` for work done in ONE statement (a read, or a PostgreSQL statement whose
    data-modifying ``WITH`` makes all its changes at once): no ``BEGIN`` before it, no
    ``COMMIT``/``ROLLBACK`` after it, each a round trip to the server. A single statement is
    atomic on its own. (psycopg's ``autocommit`` is a flag of the client: switching it costs no
    round trip, and the pool switches it back when the connection returns.)

    SQLite: the driver is always in its autocommit mode (``_sqlite_pragmas``) and authgate
    begins each transaction itself, by a ``begin`` listener on the engine that
    ``create_database_engine`` returns (``_sqlite_begin``). That engine is an ``OptionEngine``
    of one without the listener, over the same pool; this returns the latter, whose statements
    run in SQLite's own implicit transaction (one snapshot of the database for the statement,
    in WAL). It also has no connection event at all: SQLAlchemy dispatches none of them (one
    listener makes every connection dispatch all of them, ~0.2M instructions a read).
    SQLAlchemy's own ``AUTOCOMMIT`` level is not used there: the pool would turn the driver's
    implicit transactions back on (``isolation_level = ""``) when the connection returns."""
    if engine.dialect.name == "sqlite":
        return events_engine(engine)
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def events_engine(engine: Engine) -> Engine:
    """Where to listen for connection events (``before_cursor_execute``, ...) of every
    statement run through ``engine`` and the engines made from it, one-statement reads included:
    on SQLite the engine without the ``BEGIN`` listener (see ``autocommit_engine``: its
    listeners apply to ``engine`` too, not the other way round), elsewhere ``engine``."""
    return _SQLITE_ONE_STATEMENT.get(engine, engine)


def _discard_if_closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """The pool's check of a psycopg connection it hands out, without a round trip (a
    ``pool_pre_ping`` costs one on every checkout): an idle connection receives nothing, so one
    with something to read was closed by the server (restarted, or the connection terminated by
    an administrator, ``idle_session_timeout``, PgBouncer restarting), which sends an error
    and closes its end. ``DisconnectionError`` makes the pool connect anew in its place.

    A connection lost without a word (the host gone, the network cut) fails its next
    statement instead: SQLAlchemy then invalidates the whole pool and the store answers
    ``StoreUnavailableError`` (503 with ``Retry-After``), as it does while the server is down."""
    pgconn = dbapi_connection.pgconn
    try:
        # Reads what has arrived, never blocking. Twice: a server closing the connection sends
        # an error first, and the first read may take that alone; the second meets the end.
        pgconn.consume_input()
        pgconn.consume_input()
    except Exception as error:  # psycopg.OperationalError: the server closed the connection
        raise DisconnectionError("the server closed the connection") from error
    if pgconn.status != _CONNECTION_OK or dbapi_connection.broken:
        raise DisconnectionError("the connection is broken")


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
        one_statement = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": 30}
        )
        event.listen(one_statement, "connect", _sqlite_pragmas)  # the pool's event
        transactions = one_statement.execution_options()  # the same pool, its own listeners
        event.listen(transactions, "begin", _sqlite_begin)
        _SQLITE_ONE_STATEMENT[transactions] = one_statement
        return transactions
    connect_args: dict[str, Any] = {}
    psycopg = False
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        psycopg = parsed.get_driver_name() == "psycopg"
        if psycopg:
            connect_args["prepare_threshold"] = None
            # What the URL sets (``?keepalives_idle=60``) wins.
            connect_args.update({k: v for k, v in TCP_KEEPALIVES.items() if k not in parsed.query})
    engine = create_engine(
        parsed,
        pool_pre_ping=not psycopg,  # another driver: the usual ping, a round trip per checkout
        pool_size=5,
        max_overflow=10,
        connect_args=connect_args,
    )
    if psycopg:
        event.listen(engine, "checkout", _discard_if_closed_by_server)
    return engine
