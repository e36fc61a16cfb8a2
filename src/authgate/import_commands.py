"""``authgate users import`` and ``authgate tokens import``: bring another app's users and API
tokens across. These commands only parse options and print; the service decides
(``AuthService.user_imports``) and ``backends.import_sources`` reads the source."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import click

from authgate.backends.import_sources import DatabaseSource, FileSource, detect_file_format
from authgate.bootstrap import build_service
from authgate.config import load_settings
from authgate.core.audit import CLI
from authgate.core.user_imports import IMPORT_FIELDS, parse_field_map
from authgate.service import AuthService
from authgate.service.user_imports import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LEGACY_TOKEN_DAYS,
    LEGACY_TOKEN_FIELDS,
    ImportReport,
)

__all__ = ["tokens_import", "users_import"]

_PROGRESS_EVERY_SECONDS = 1.0


class _BadOptions(click.UsageError):
    pass


@contextmanager
def _service() -> Iterator[AuthService]:
    service = build_service(load_settings({}))
    service.audit.context = lambda: CLI  # its user.imported events are the CLI's
    try:
        yield service
    finally:
        service.close()


def _source(
    file: Path | None, file_format: str | None, database_url: str | None, table: str | None
) -> FileSource | DatabaseSource:
    if (file is None) == (database_url is None):
        raise _BadOptions("Give either FILE or --from-database URL (with --table).")
    if database_url is not None:
        if not table:
            raise _BadOptions("--from-database needs --table NAME (or SCHEMA.NAME).")
        return DatabaseSource(database_url, table)
    assert file is not None
    if table:
        raise _BadOptions("--table goes with --from-database.")
    fmt = file_format or detect_file_format(file)
    return FileSource(file, "csv" if fmt == "csv" else "jsonl")


def _field_map(
    spec: str | None, source: FileSource | DatabaseSource, *, fields: tuple[str, ...], required: str
) -> dict[str, str] | None:
    if spec is None:
        return None
    try:
        mapping = parse_field_map(spec, fields=fields, required=required)
    except ValueError as e:
        raise _BadOptions(f"--map: {e}") from None
    if isinstance(source, DatabaseSource):
        columns = set(source.columns())
        missing = sorted(column for column in mapping.values() if column not in columns)
        if missing:
            raise _BadOptions(
                f"--map names column(s) the table {source.table!r} does not have: "
                f"{', '.join(missing)} (it has {', '.join(sorted(columns))})."
            )
    return mapping


class _Progress:
    """Rows done, rows per second and (when the total is known) the time left, on stderr."""

    def __init__(self, total: int | None, noun: str) -> None:
        self.total = total
        self.noun = noun
        self.started = time.monotonic()
        self.shown_at = 0.0
        self.live = sys.stderr.isatty()

    def __call__(self, report: ImportReport, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.shown_at < _PROGRESS_EVERY_SECONDS:
            return
        self.shown_at = now
        elapsed = max(now - self.started, 1e-9)
        rate = report.read / elapsed
        text = f"{report.read:,} {self.noun}"
        if self.total:
            text += f" of {self.total:,} ({100 * report.read / self.total:.0f}%)"
        text += f", {rate:,.0f}/s"
        if self.total and rate > 0 and not final:
            left = max(self.total - report.read, 0) / rate
            text += f", ETA {int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}"
        if final:
            text += f", {elapsed:.1f} s"
        click.echo(
            ("\r" if self.live else "") + text.ljust(72), err=True, nl=not self.live or final
        )


def _refusal_printer() -> Callable[[str, str], None]:
    def refused(where: str, reason: str) -> None:
        click.echo(f"refused {where}: {reason}", err=True)

    return refused


def _summary(report: ImportReport, *, tokens: bool = False) -> str:
    parts = [f"created {report.created}"]
    if not tokens:
        parts.append(f"updated {report.updated}")
    parts += [f"skipped {report.skipped}", f"refused {report.refused}"]
    text = ", ".join(parts)
    return text + (" (dry run: nothing was written)" if report.dry_run else "")


_SOURCE_OPTIONS = [
    click.argument(
        "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
    ),
    click.option(
        "--format",
        "file_format",
        type=click.Choice(["jsonl", "csv"]),
        help="The file's format [default: from its extension: .jsonl/.ndjson/.json or .csv].",
    ),
    click.option(
        "--from-database",
        "database_url",
        metavar="URL",
        help="Read a table of this database instead (any SQLAlchemy URL).",
    ),
    click.option("--table", help="The table to read with --from-database (NAME or SCHEMA.NAME)."),
    click.option(
        "--dry-run", is_flag=True, help="Check every row and report the counts; write nothing."
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(1, 100_000),
        default=DEFAULT_BATCH_SIZE,
        show_default=True,
        help="Rows per transaction.",
    ),
]


def _with_source_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_SOURCE_OPTIONS):
        command = option(command)
    return command


@click.command("import")
@_with_source_options
@click.option(
    "--map",
    "map_spec",
    metavar="FIELD=COLUMN,...",
    help=f"Which source column holds each field ({', '.join(IMPORT_FIELDS)}), e.g. "
    "email=email,password_hash=password,username=uid,roles=role. Without it the source's "
    "columns (keys) carry the field names.",
)
@click.option(
    "--on-conflict",
    type=click.Choice(["skip", "update"]),
    default="skip",
    show_default=True,
    help="What to do with a row whose email is already a user's.",
)
@click.option(
    "--password-prehash",
    type=click.Choice(["flask-security"]),
    help="The hashes come from Flask-Security-Too with its default double hashing (an HMAC "
    "of the password keyed by SECURITY_PASSWORD_SALT): set AUTHGATE_LEGACY_PASSWORD_HMAC_SALT "
    "to that salt for their logins.",
)
def users_import(
    file: Path | None,
    file_format: str | None,
    database_url: str | None,
    table: str | None,
    dry_run: bool,
    batch_size: int,
    map_spec: str | None,
    on_conflict: str,
    password_prehash: str | None,
) -> None:
    """Import users from FILE (JSON Lines or CSV) or from a database table.

    Each row gives an email and optionally username, name, password_hash (as the old app stored
    it: werkzeug, bcrypt, argon2, passlib or Django formats; rehashed to argon2id at the user's
    next login), roles, created_at, email_verified and legacy_id. A row that cannot be imported
    is refused with its line and reason; the others go on. Progress is shown on stderr; the
    counts are printed at the end. Each user gets a personal tenant, as at registration.
    """
    source = _source(file, file_format, database_url, table)
    field_map = _field_map(map_spec, source, fields=IMPORT_FIELDS, required="email")
    progress = _Progress(source.count(), "rows")
    with _service() as service:
        report = service.user_imports.import_users(
            source,
            field_map=field_map,
            on_conflict="update" if on_conflict == "update" else "skip",
            dry_run=dry_run,
            batch_size=batch_size,
            password_prehash="flask-security" if password_prehash else None,
            on_refused=_refusal_printer(),
            on_batch=progress,
        )
    progress(report, final=True)
    click.echo(_summary(report))


@click.command("import")
@_with_source_options
@click.option(
    "--map",
    "map_spec",
    metavar="FIELD=COLUMN,...",
    help=f"Which source column holds each field ({', '.join(LEGACY_TOKEN_FIELDS)}), e.g. "
    "token=token,legacy_user_id=tenant_id for RAGFlow's api_token table.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help="A scope of every imported token (repeatable) [default: read and write].",
)
@click.option(
    "--expires-in-days",
    type=int,
    default=DEFAULT_LEGACY_TOKEN_DAYS,
    show_default=True,
    help="Days until the imported tokens expire: time for their users to make new ones.",
)
def tokens_import(
    file: Path | None,
    file_format: str | None,
    database_url: str | None,
    table: str | None,
    dry_run: bool,
    batch_size: int,
    map_spec: str | None,
    scopes: tuple[str, ...],
    expires_in_days: int,
) -> None:
    """Import another app's API tokens (e.g. RAGFlow's) so that they keep working.

    Each row gives the token and its user: legacy_user_id (the legacy_id given when the users
    were imported) or email. The token becomes an API token of that user's personal tenant,
    stored only as a hash, valid as it is until it expires. Import the users first.
    """
    source = _source(file, file_format, database_url, table)
    field_map = _field_map(map_spec, source, fields=LEGACY_TOKEN_FIELDS, required="token")
    if isinstance(source, DatabaseSource):  # a refused row never shows the token in its key
        source = replace(source, secret=frozenset({(field_map or {}).get("token", "token")}))
    progress = _Progress(source.count(), "tokens")
    with _service() as service:
        report = service.user_imports.import_api_tokens(
            source,
            field_map=field_map,
            scopes=scopes or ("read", "write"),
            expires_in_days=expires_in_days,
            dry_run=dry_run,
            batch_size=batch_size,
            on_refused=_refusal_printer(),
            on_batch=progress,
        )
    progress(report, final=True)
    click.echo(_summary(report, tokens=True))
    if not dry_run and not service.settings.legacy_api_tokens:
        click.echo(
            "Set AUTHGATE_LEGACY_API_TOKENS=true on the servers: imported tokens are accepted "
            "only then (without it, such bearer tokens are refused without a database lookup).",
            err=True,
        )
