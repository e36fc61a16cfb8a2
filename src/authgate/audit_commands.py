"""``authgate audit``: follow the audit trail (``tail``), export it (``export``), purge it.

Both read the database the server writes; ``export`` streams in pages of ids (bounded memory,
whatever the size of the trail) and ``tail`` polls for ids past the last it printed.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from authgate.core.audit import AuditEvent, json_line

if TYPE_CHECKING:
    from authgate.service import AuthService

__all__ = ["audit"]

_EXPORT_PAGE = 1000
_TYPE = click.STRING


def _when(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time (a date alone is its midnight); UTC when it names no zone."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # In UTC here: a time with no UTC equivalent (year 9999 at -14:00) is refused as such.
        return (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time (e.g. 2026-12-01 or 2026-12-01T08:00:00Z).",
            param_hint=option,
        ) from None


def _text_line(event: AuditEvent) -> str:
    actor = event.actor_type if event.actor_id is None else f"user:{event.actor_id}"
    details = " ".join(f"{k}={v}" for k, v in sorted(event.details.items()))
    fields = [
        event.time.isoformat(timespec="seconds").replace("+00:00", "Z"),
        event.type,
        event.outcome,
        f"actor={actor}",
        f"user={event.user_id or '-'}",
        f"ip={event.ip or '-'}",
        details,
    ]
    return "\t".join(field for field in fields if field)


def _service() -> AuthService:
    from authgate.bootstrap import build_service
    from authgate.config import load_settings
    from authgate.core.audit import CLI

    service = build_service(load_settings())
    service.audit.context = lambda: CLI
    return service


@click.group()
def audit() -> None:
    """The audit trail: who did what, when, from where."""


@audit.command("tail")
@click.option("--type", "type_", metavar="TYPE", help="Only events of this type (login.failed).")
@click.option("--user", "user_id", metavar="USER_ID", help="Only events about this user id.")
@click.option(
    "-n",
    "--lines",
    default=10,
    show_default=True,
    type=click.IntRange(0, 10000),
    help="Show this many recent events first.",
)
@click.option(
    "--follow/--no-follow",
    default=True,
    show_default=True,
    help="Keep printing new events as they are recorded (like tail -f); Ctrl-C stops.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True
)
@click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.05, 60),
    help="Seconds between two looks for new events.",
)
def audit_tail(
    type_: str | None, user_id: str | None, lines: int, follow: bool, fmt: str, interval: float
) -> None:
    """Print the latest events, then follow new ones."""
    render = json_line if fmt == "jsonl" else _text_line
    service = _service()
    try:
        follower = service.audit.follow(type=type_, user_id=user_id)
        recent = service.audit.newest(lines, type=type_, user_id=user_id)
        follower.skip(recent)
        for event in recent:
            click.echo(render(event))
        sys.stdout.flush()
        while follow:
            time.sleep(interval)
            for event in follower.poll():
                click.echo(render(event))
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        service.close()


@audit.command("export")
@click.option("--since", required=True, metavar="TIME", help="From this time (ISO 8601, UTC).")
@click.option("--until", metavar="TIME", help="Up to (not including) this time.")
@click.option("--type", "type_", metavar="TYPE", help="Only events of this type.")
@click.option("--user", "user_id", metavar="USER_ID", help="Only events about this user id.")
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.File("w"), default="-", help="File [default: stdout].")
def audit_export(
    since: str,
    until: str | None,
    type_: str | None,
    user_id: str | None,
    fmt: str,
    output: TextIO,
) -> None:
    """Write the events of a time range, oldest first, one JSON object per line."""
    start, end = _when(since, "--since"), _when(until, "--until")
    service = _service()
    count = 0
    try:
        after = 0
        while True:
            page = service.audit.read_after(
                after, type=type_, user_id=user_id, since=start, until=end, limit=_EXPORT_PAGE
            )
            for event in page:
                output.write(json_line(event) + "\n")
            count += len(page)
            if len(page) < _EXPORT_PAGE:
                break
            assert page[-1].id is not None
            after = page[-1].id
    finally:
        service.close()
    output.flush()
    click.echo(f"Exported {count} event(s).", err=True)


@audit.command("purge")
def audit_purge() -> None:
    """Delete the events older than AUTHGATE_AUDIT_RETENTION_DAYS now (the server does this by
    itself, in small batches, every few minutes)."""
    service = _service()
    try:
        days = service.settings.audit_retention_days
        removed = service.audit.purge()
    finally:
        service.close()
    if days <= 0:
        click.echo("AUTHGATE_AUDIT_RETENTION_DAYS is 0: events are kept for ever.", err=True)
    else:
        click.echo(f"Deleted {removed} event(s) older than {days} days.", err=True)


def record_key_rotation(kid: str) -> str | None:
    """Record ``key.rotated`` in the configured database, if it is there and current (a key
    directory may be prepared before any database exists: then nothing is recorded, and no
    database file is created). Why nothing was recorded, or None when it was."""
    from sqlalchemy.engine import make_url

    from authgate.config import load_settings
    from authgate.core.audit import CLI, KEY_ROTATED, new_event
    from authgate.errors import AuthError, ConfigError, StoreUnavailableError
    from authgate.store.sqlalchemy.engines import create_database_engine
    from authgate.store.sqlalchemy.migrate import is_up_to_date
    from authgate.store.sqlalchemy.stores import SqlAlchemyStore

    try:
        settings = load_settings()
        url = make_url(settings.resolved_database_url)
        if url.get_backend_name() == "sqlite" and (
            not url.database or not Path(url.database).exists()
        ):
            return "no database yet"
        engine = create_database_engine(settings.resolved_database_url)
    except (ConfigError, AuthError, ValueError) as e:
        return str(e) or type(e).__name__
    try:
        if not is_up_to_date(engine):
            return "the database schema is not current"
        store = SqlAlchemyStore(engine)
        store.record_audit(
            new_event(KEY_ROTATED, time=datetime.now(UTC), context=CLI, details={"kid": kid})
        )
    except (StoreUnavailableError, OSError) as e:
        return f"the database is unavailable ({type(e.__cause__ or e).__name__})"
    except Exception as e:  # an unreachable database raises the driver's own errors here
        return f"the database is unavailable ({type(e).__name__})"
    finally:
        engine.dispose()
    return None
