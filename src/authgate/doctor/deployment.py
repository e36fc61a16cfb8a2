"""``authgate doctor --url``: the running deployment as a browser meets it (group ``url``).

Its certificate (:mod:`.tls`), the plain-http redirect (:mod:`.redirects`), HSTS (:mod:`.hsts`) and
CORS preflights for each allowed origin (:mod:`.preflights`), and what the server itself sees
through the proxy (:mod:`.server_reports`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import requests

from authgate.config import Settings
from authgate.core.origins import Origin, is_local_host, origin_of_url
from authgate.doctor.clock import utc_now
from authgate.doctor.findings import Finding, error_finding, ok_finding, warning_finding
from authgate.doctor.hsts import check_hsts
from authgate.doctor.preflights import check_lookalikes, check_preflight
from authgate.doctor.probes import (
    DEFAULT_TIMEOUT_SECONDS,
    effective_port,
    parse_probe_url,
    probe_session,
    request_error_cause,
)
from authgate.doctor.redirects import check_http_redirect, default_http_url
from authgate.doctor.server_reports import check_public_url_probed, check_server_report
from authgate.doctor.tls import check_tls_certificate

__all__ = ["check_deployment"]


def check_deployment(
    url: str,
    settings: Settings | None,
    *,
    ca_file: Path | None = None,
    now: Callable[[], datetime] = utc_now,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    http_url: str | None = None,
) -> list[Finding]:
    """Probe the deployment at ``url``: TLS, redirect, HSTS, and CORS for each allowed origin.

    The redirect is probed at ``http_url``, by default port 80 of ``url``'s host."""
    base = parse_probe_url(url)
    if isinstance(base, Finding):
        return [base]
    if http_url is not None and not _is_http_url(http_url):
        return [
            error_finding(
                "url.invalid",
                f"--http-url {http_url!r} is not an absolute http:// URL.",
                "Give the plain-http address that should redirect, e.g. "
                "--http-url http://auth.example.com:8080/.",
            )
        ]
    findings: list[Finding] = []
    if base.scheme == "https":
        tls = check_tls_certificate(
            base.host, effective_port(base), ca_file=ca_file, now=now(), timeout=timeout
        )
        findings += tls
        if any(f.level == "error" for f in tls):
            return findings  # a browser gets no further either
    else:
        findings.append(_plain_http_finding(base, settings))
    with probe_session(ca_file) as session:
        findings += _probe_http(session, base, settings, timeout, http_url)
    return findings


def _is_http_url(url: str) -> bool:
    origin = origin_of_url(url)
    return origin is not None and origin.scheme == "http"


def _probe_http(
    session: requests.Session,
    base: Origin,
    settings: Settings | None,
    timeout: float,
    http_url: str | None,
) -> list[Finding]:
    base_url = base.serialize()
    try:
        health = session.get(base_url + "/healthz", timeout=timeout, allow_redirects=False)
    except requests.RequestException as e:
        return [
            error_finding(
                "url.unreachable",
                f"{base_url} does not answer ({request_error_cause(e)}).",
                "Check the address, that the server runs and that the firewall lets you in.",
            )
        ]
    findings = [_health_finding(base_url, health.status_code)]
    if base.scheme == "https":
        findings.append(check_hsts(health.headers.get("Strict-Transport-Security")))
        findings.append(
            check_http_redirect(
                session,
                http_url or default_http_url(base),
                base,
                timeout=timeout,
                named=http_url is not None,
            )
        )
    public_url_probed = True
    if settings is not None:
        probed = check_public_url_probed(base, settings)
        public_url_probed = probed.level == "ok"
        findings.append(probed)
    findings += check_server_report(
        session, base_url, settings, timeout=timeout, public_url_probed=public_url_probed
    )
    if settings is not None:
        for origin in settings.allowlist:
            findings.append(check_preflight(session, base_url, str(origin), timeout=timeout))
            findings += check_lookalikes(
                session, base_url, origin, settings.allowlist, timeout=timeout
            )
    return findings


def _health_finding(base_url: str, status: int) -> Finding:
    if status == 200:
        return ok_finding("url.reachable", f"{base_url}/healthz answers 200.")
    if status == 503:
        return error_finding(
            "url.reachable",
            f"{base_url}/healthz answers 503: the server runs but cannot use its database.",
            "Run `authgate doctor` on the server host to check the database.",
        )
    return warning_finding(
        "url.reachable",
        f"{base_url}/healthz answers {status}: this may not be authgate, or the proxy does not "
        "forward every path to it.",
        "Forward the whole site (or at least /api/, /healthz and /.well-known/) to authgate.",
    )


def _plain_http_finding(base: Origin, settings: Settings | None) -> Finding:
    if settings is not None and settings.is_production:
        return error_finding(
            "url.tls.not_https",
            f"{base} is plain http: production must be served over https.",
            "Probe the https:// address, or put TLS in front of authgate.",
        )
    if is_local_host(base.host):
        return ok_finding(
            "url.tls.plain_http_local",
            f"{base} is plain http on this machine: fine for development (TLS, redirect and "
            "HSTS are checked for https:// URLs).",
        )
    return warning_finding(
        "url.tls.not_https",
        f"{base} is plain http on a host other than localhost: browsers drop its Secure cookies "
        "and passwords travel unencrypted.",
        "Serve it over https (nginx + certbot) and probe the https:// address.",
    )
