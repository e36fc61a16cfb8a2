"""Every check, grouped: the settings, then (with a URL) the running deployment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from authgate.doctor.avatars import check_avatars
from authgate.doctor.clock import utc_now
from authgate.doctor.cookies import check_cookies
from authgate.doctor.database import check_database
from authgate.doctor.deployment import check_deployment
from authgate.doctor.findings import Finding, run_guarded, sort_findings
from authgate.doctor.keys import check_key_encryption_key, check_keys
from authgate.doctor.legacy import check_legacy
from authgate.doctor.mail import check_mail
from authgate.doctor.metrics import check_metrics
from authgate.doctor.oauth import check_oauth
from authgate.doctor.origins import check_origins
from authgate.doctor.passkeys import check_passkeys
from authgate.doctor.probes import DEFAULT_TIMEOUT_SECONDS
from authgate.doctor.production import check_production_refusals, check_public_url
from authgate.doctor.redis_checks import check_redis
from authgate.doctor.settings import load_doctor_settings

__all__ = ["run_doctor"]


def run_doctor(
    environ: Mapping[str, str] | None = None,
    *,
    production: bool = False,
    url: str | None = None,
    ca_file: Path | None = None,
    now: Callable[[], datetime] = utc_now,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    http_url: str | None = None,
) -> list[Finding]:
    """Every check, grouped: the settings, then (with ``url``) the running deployment."""
    settings, findings = load_doctor_settings(environ, production=production)
    if settings is not None:
        checks: list[tuple[str, Callable[[], list[Finding]]]] = [
            ("production", lambda: check_production_refusals(settings)),
            ("public_url", lambda: check_public_url(settings)),
            ("secrets", lambda: check_keys(settings)),
            ("secrets", lambda: check_key_encryption_key(settings)),
            ("origins", lambda: check_origins(settings)),
            ("origins", lambda: check_passkeys(settings)),
            ("cookies", lambda: check_cookies(settings)),
            ("oauth", lambda: check_oauth(settings)),
            ("database", lambda: check_database(settings, now=now)),
            ("redis", lambda: check_redis(settings)),
            ("mail", lambda: check_mail(settings)),
            ("avatars", lambda: check_avatars(settings)),
            ("metrics", lambda: check_metrics(settings)),
            ("legacy", lambda: check_legacy(settings, now=now)),
        ]
        for group, check in checks:
            findings += run_guarded(group, check)
    if url:
        findings += run_guarded(
            "url",
            lambda: check_deployment(
                url, settings, ca_file=ca_file, now=now, timeout=timeout, http_url=http_url
            ),
        )
    return sort_findings(findings)
