"""This host's clock against the database's (group ``clock``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from authgate.doctor.findings import Finding, error_finding, ok_finding, warning_finding

__all__ = [
    "CLOCK_ERROR_SECONDS",
    "CLOCK_WARNING_SECONDS",
    "check_clock_skew",
    "check_database_clock",
    "utc_now",
]

CLOCK_WARNING_SECONDS = 5.0
CLOCK_ERROR_SECONDS = 60.0
_FIX_NTP = (
    "Keep both clocks synchronised with NTP (e.g. `timedatectl set-ntp true`, or chrony) on "
    "this host and on the database host."
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_database_clock(engine: Engine, *, now: Callable[[], datetime]) -> list[Finding]:
    if engine.dialect.name == "sqlite":
        return [
            ok_finding("clock.same_host", "SQLite runs inside authgate: it uses this host's clock.")
        ]
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        before = now()
        database_now = connection.execute(text("SELECT clock_timestamp()")).scalar_one()
        after = now()
    return [check_clock_skew(before + (after - before) / 2, database_now)]


def check_clock_skew(host_now: datetime, database_now: datetime) -> Finding:
    """This host's clock against the database's: warn beyond a few seconds, error beyond 60 s."""
    if database_now.tzinfo is None:
        database_now = database_now.replace(tzinfo=UTC)
    skew = (database_now - host_now).total_seconds()
    where = "ahead of" if skew > 0 else "behind"
    message = f"The database clock is {abs(skew):.1f} s {where} this host's"
    if abs(skew) > CLOCK_ERROR_SECONDS:
        return error_finding(
            "clock.skew",
            message + ": tokens carry iat/exp and sessions expire by time, so servers on hosts "
            "whose clocks disagree this much reject each other's fresh tokens or keep expired "
            "ones.",
            _FIX_NTP,
        )
    if abs(skew) > CLOCK_WARNING_SECONDS:
        return warning_finding(
            "clock.skew", message + ": beyond a minute, tokens start to fail.", _FIX_NTP
        )
    return ok_finding("clock.skew", message + ".")
