"""Where imported users come from: a JSON Lines or CSV file, or a table of any database
SQLAlchemy can reach. Each source streams :class:`~authgate.core.user_imports.SourceRow` values
one at a time (a database through a server-side cursor), so an import of millions of rows holds
one batch in memory, and knows its total when counting is cheap (for a progress ETA)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from authgate.core.user_imports import SourceRow
from authgate.errors import ConfigError

__all__ = ["DatabaseSource", "FileSource", "detect_file_format"]

FileFormat = Literal["jsonl", "csv"]

_FORMATS_BY_SUFFIX: dict[str, FileFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
}
_STREAM_ROWS = 1000
_MYSQL_WRITE_TIMEOUT = 3600  # seconds


def detect_file_format(path: Path) -> FileFormat:
    """The format named by the file's extension; ``ConfigError`` when it names none."""
    found = _FORMATS_BY_SUFFIX.get(path.suffix.lower())
    if found is None:
        raise ConfigError(
            f"Cannot tell the format of {path.name} from its extension: use .jsonl or .csv, "
            "or say --format jsonl|csv."
        )
    return found


@dataclass(frozen=True)
class FileSource:
    """A JSON Lines file (one JSON object a line; blank lines ignored) or a CSV file with a
    header row (empty cells are "not given"). ``where`` is the line number."""

    path: Path
    format: FileFormat

    def count(self) -> int:
        """The number of rows (one quick pass over the file)."""
        with self.path.open("rb") as handle:
            if self.format == "jsonl":
                return sum(1 for line in handle if line.strip())
            return max(0, sum(1 for _line in handle) - 1)  # a newline inside a cell counts too

    def __iter__(self) -> Iterator[SourceRow]:
        return self._json_lines() if self.format == "jsonl" else self._csv()

    def _json_lines(self) -> Iterator[SourceRow]:
        with self.path.open(encoding="utf-8", errors="surrogateescape") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"line {number}"
                try:
                    fields = json.loads(line)
                except ValueError:
                    yield SourceRow(where, None, "not valid JSON")
                    continue
                if not isinstance(fields, dict):
                    yield SourceRow(where, None, "not a JSON object")
                    continue
                yield SourceRow(where, fields)

    def _csv(self) -> Iterator[SourceRow]:
        with self.path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None:  # reads the header row; an empty file has none
                return
            line = reader.line_num + 1
            for record in reader:
                where = f"line {line}"
                line = reader.line_num + 1
                if None in record:
                    yield SourceRow(where, None, "more cells than the header has columns")
                    continue
                yield SourceRow(where, {k: (v if v != "" else None) for k, v in record.items()})


@dataclass(frozen=True)
class DatabaseSource:
    """A table (``schema.table`` or ``table``) of any database SQLAlchemy has a driver for
    (SQLite, PostgreSQL with psycopg, MySQL/MariaDB with PyMySQL: ``mysql+pymysql://``).
    The table is reflected and read with a server-side cursor (psycopg's named cursor, PyMySQL's
    unbuffered ``SSCursor``), ``_STREAM_ROWS`` rows at a time; ``where`` is the row's number in
    that reading, with its primary key when it has one — but never the value of a ``secret``
    column (RAGFlow's ``api_token`` table has the token itself in its primary key)."""

    url: str
    table: str
    secret: frozenset[str] = frozenset()

    def _reflect(self, connection: Connection) -> Table:
        schema, _, name = self.table.rpartition(".")
        try:
            return Table(name, MetaData(), autoload_with=connection, schema=schema or None)
        except NoSuchTableError:
            raise ConfigError(f"There is no table {self.table!r} in the source database.") from None

    def _engine(self) -> Engine:
        try:
            return create_engine(make_url(self.url))
        except (SQLAlchemyError, ImportError, ValueError) as e:
            raise ConfigError(
                f"Cannot use the source database URL ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else 'no detail'})."
            ) from None

    def columns(self) -> list[str]:
        engine = self._engine()
        try:
            with engine.connect() as conn:
                return [column.name for column in self._reflect(conn).columns]
        finally:
            engine.dispose()

    def count(self) -> int:
        engine = self._engine()
        try:
            with engine.connect() as conn:
                table = self._reflect(conn)
                return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        finally:
            engine.dispose()

    def __iter__(self) -> Iterator[SourceRow]:
        engine = self._engine()
        try:
            with engine.connect() as conn:
                table = self._reflect(conn)
                if conn.dialect.name in ("mysql", "mariadb"):
                    # An unbuffered read keeps the server writing to the socket as the import
                    # takes rows; a server gives up on a client that reads nothing for
                    # net_write_timeout (60 s by default), e.g. while a slow batch is written.
                    conn.exec_driver_sql(f"SET SESSION net_write_timeout = {_MYSQL_WRITE_TIMEOUT}")
                keys = [column.name for column in table.primary_key.columns]
                statement = select(table)
                if keys:
                    statement = statement.order_by(*table.primary_key.columns)
                result = conn.execution_options(
                    stream_results=True, yield_per=_STREAM_ROWS
                ).execute(statement)
                for number, row in enumerate(result, start=1):
                    fields = dict(row._mapping)
                    key = ", ".join(
                        f"{k}=<hidden>" if k in self.secret else f"{k}={fields[k]!r}" for k in keys
                    )
                    yield SourceRow(f"row {number} ({key})" if key else f"row {number}", fields)
        finally:
            engine.dispose()
