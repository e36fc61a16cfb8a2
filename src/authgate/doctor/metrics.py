"""``AUTHGATE_METRICS``: who may read ``/metrics`` (group ``metrics``; docs/operations.md)."""

from __future__ import annotations

from authgate.config import METRICS_TOKEN_MIN_DISTINCT, METRICS_TOKEN_MIN_LENGTH, Settings
from authgate.doctor.findings import Finding, error_finding, ok_finding, warning_finding

__all__ = ["check_metrics"]

_STRONGER_SETTING = (
    "AUTHGATE_METRICS=$(openssl rand -hex 32), or loopback for a scraper on this host."
)


def check_metrics(settings: Settings) -> list[Finding]:
    mode = settings.metrics_mode
    if mode == "off":
        return [ok_finding("metrics.off", "Metrics are off: GET /metrics answers 404.")]
    if mode == "loopback":
        return [
            ok_finding(
                "metrics.loopback",
                "GET /metrics answers a scraper on this host talking to authgate directly "
                "(127.0.0.1 or ::1, no X-Forwarded-For); everyone else gets 403.",
            )
        ]
    token = settings.metrics_token or b""
    findings: list[Finding] = []
    if len(token) < METRICS_TOKEN_MIN_LENGTH or len(set(token)) < METRICS_TOKEN_MIN_DISTINCT:
        level = error_finding if settings.is_production else warning_finding
        findings.append(
            level(
                "metrics.weak_token",
                f"AUTHGATE_METRICS is a token of {len(token)} characters: anyone who guesses it "
                "reads the metrics"
                + (" (production refuses to start)." if settings.is_production else "."),
                _STRONGER_SETTING,
            )
        )
    if not settings.public_url.startswith("https://"):
        findings.append(
            warning_finding(
                "metrics.token_over_http",
                "The metrics token is sent to a plain-http public URL: it crosses the network "
                "in clear text.",
                "Serve authgate over https, or scrape from this host with "
                "AUTHGATE_METRICS=loopback.",
            )
        )
    if not findings:
        findings.append(
            ok_finding("metrics.token", "GET /metrics requires the bearer token (constant time).")
        )
    return findings
