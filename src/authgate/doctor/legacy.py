"""The dual run of the previous app's sessions (group ``legacy``, ``AUTHGATE_LEGACY_JWT_*``):
its secret readable and private, its algorithms, its cut-off, and the users column its tokens
are matched on. Nothing is said when the dual run is off."""

from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from authgate.config import Settings
from authgate.doctor.clock import utc_now
from authgate.doctor.database import _sqlite_file_missing, _with_connect_timeout
from authgate.doctor.findings import (
    Finding,
    error_finding,
    first_line_of_error,
    ok_finding,
    warning_finding,
)
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.models import UserRow

__all__ = ["check_legacy"]

# A dual run is a cutover: one longer than this is probably a cut-off typed wrong.
_LONG_DUAL_RUN_DAYS = 366
_IMPORT_FIELD = {"email": "email", "username": "username", "legacy_id": "legacy_id"}


def check_legacy(settings: Settings, *, now: Callable[[], datetime] = utc_now) -> list[Finding]:
    if not settings.legacy_jwt_enabled:
        return []
    findings = _secret_findings(settings)
    findings.append(_algorithms_finding(settings))
    cutoff = _cutoff_finding(settings, now())
    findings.append(cutoff)
    if cutoff.check != "legacy.cutoff_passed":  # after it, no token is matched to anyone
        findings += _mapping_findings(settings)
    return findings


def _secret_findings(settings: Settings) -> list[Finding]:
    path = settings.legacy_jwt_secret_file
    if path is None:
        return [
            ok_finding(
                "legacy.secret",
                "The previous app's secret comes from AUTHGATE_LEGACY_JWT_SECRET.",
                "A file (AUTHGATE_LEGACY_JWT_SECRET_FILE, mode 600) keeps it out of the "
                "environment of every process.",
            )
        ]
    try:
        secret = path.read_bytes().rstrip(b"\r\n")
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as e:
        return [
            error_finding(
                "legacy.secret_unreadable",
                f"AUTHGATE_LEGACY_JWT_SECRET_FILE {path} cannot be read "
                f"({e.strerror or type(e).__name__}): no legacy session can be exchanged, and "
                "the server refuses to start.",
                f"Make {path} readable by the user authgate runs as (chmod 600, owned by it).",
            )
        ]
    findings: list[Finding] = []
    if not secret:
        findings.append(
            error_finding(
                "legacy.secret_empty",
                f"AUTHGATE_LEGACY_JWT_SECRET_FILE {path} is empty.",
                "Put the previous app's signing secret (its SECRET_KEY) in the file.",
            )
        )
    if mode & 0o077:
        findings.append(
            warning_finding(
                "legacy.secret_file_permissions",
                f"{path} holds the previous app's signing secret and is open to other users "
                f"(mode {mode:o}): anyone who reads it can sign a legacy token for any user.",
                f"chmod 600 {path}",
            )
        )
    if not findings:
        findings.append(ok_finding("legacy.secret", f"The secret file {path} is readable."))
    return findings


def _algorithms_finding(settings: Settings) -> Finding:
    algorithms = settings.legacy_jwt_algorithms
    listed = ", ".join(algorithms)
    if len(algorithms) > 1:
        return warning_finding(
            "legacy.algorithms",
            f"Legacy tokens are accepted signed with any of {listed}: an app signs with one.",
            "Keep only the algorithm the previous app signed with "
            "(AUTHGATE_LEGACY_JWT_ALGORITHMS, HS256 for PyJWT's default).",
        )
    return ok_finding("legacy.algorithms", f"Legacy tokens must be signed with {listed}.")


def _cutoff_finding(settings: Settings, now: datetime) -> Finding:
    cutoff = settings.legacy_jwt_cutoff
    if cutoff is None:  # the settings refuse a secret without a cut-off; kept for safety
        return error_finding(
            "legacy.cutoff_missing",
            "The dual run has no cut-off date.",
            "Set AUTHGATE_LEGACY_JWT_CUTOFF, e.g. 2027-03-01T00:00:00Z.",
        )
    day = cutoff.date().isoformat()
    if now >= cutoff:
        return warning_finding(
            "legacy.cutoff_passed",
            f"The dual run ended on {day}: every session token of the previous app is refused "
            "now (legacy_session_ended), so the legacy settings do nothing.",
            "Remove the AUTHGATE_LEGACY_JWT_* settings (and the previous app's secret file): "
            "its users log in with their password.",
        )
    days = (cutoff - now).days
    if days > _LONG_DUAL_RUN_DAYS:
        return warning_finding(
            "legacy.cutoff_far",
            f"The dual run lasts until {day}, {days} days from now: the previous app's tokens "
            "(and whoever holds its secret) open sessions here until then.",
            "A cutover needs weeks, not years: set AUTHGATE_LEGACY_JWT_CUTOFF sooner.",
        )
    return ok_finding(
        "legacy.cutoff", f"Legacy sessions are exchanged until {day} ({days} days from now)."
    )


def _mapping_findings(settings: Settings) -> list[Finding]:
    column_name = settings.legacy_jwt_user_column
    column = getattr(UserRow, column_name)
    claim = settings.legacy_jwt_claim
    try:
        url = make_url(settings.resolved_database_url)
    except ArgumentError:
        return []  # the database check reports it
    if url.get_backend_name() == "sqlite" and _sqlite_file_missing(url):
        return []  # not created by the doctor; the database check says so
    try:
        engine = create_database_engine(
            _with_connect_timeout(url).render_as_string(hide_password=False)
        )
        try:
            with engine.connect() as conn:
                mapped = conn.execute(
                    select(func.count()).select_from(UserRow).where(column.is_not(None))
                ).scalar_one()
        finally:
            engine.dispose()
    except SQLAlchemyError as e:
        return [
            error_finding(
                "legacy.column_missing",
                f"The users' {column_name} column, which legacy tokens' {claim!r} claim is matched "
                f"on, cannot be read ({first_line_of_error(e)}).",
                "Run `authgate db upgrade` (and see the database findings).",
            )
        ]
    if not mapped:
        return [
            warning_finding(
                "legacy.no_mapped_users",
                f"No user has a {column_name}: legacy tokens' {claim!r} claim matches nobody, so "
                "every exchange is refused.",
                f"Import the users with their {_IMPORT_FIELD[column_name]} "
                f"(`authgate users import ... --map {_IMPORT_FIELD[column_name]}=COLUMN`), or set "
                "AUTHGATE_LEGACY_JWT_USER_COLUMN to the column the claim holds.",
            )
        ]
    return [
        ok_finding(
            "legacy.user_column",
            f"Legacy tokens' {claim!r} claim is matched on the users' {column_name} "
            f"({mapped} users have one).",
        )
    ]
