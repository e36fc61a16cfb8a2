"""Production refusals no other check covers, and the public URL (groups ``production`` and
``public_url``)."""

from __future__ import annotations

from authgate.config import Settings
from authgate.core.origins import parse_origin
from authgate.doctor.findings import Finding, error_finding, ok_finding

__all__ = ["check_production_refusals", "check_public_url"]

# production_problems() entries that a dedicated check below reports (with its own fix).
_COVERED_PRODUCTION_PROBLEMS = (
    "AUTHGATE_PUBLIC_URL is ",
    "AUTHGATE_DATABASE_URL is not set",
    "AUTHGATE_KEYS_DIR is not set",
    "AUTHGATE_KEY_ENCRYPTION_KEY is not set",  # secrets.key_encryption_key_not_set
    "OAuth provider ",
    "Origin ",
    "AUTHGATE_SMTP_URL is plain",  # mail.plain_smtp
    "AUTHGATE_LINK_BASE_URL is ",  # mail.link_base_url_http
    "AUTHGATE_METRICS is a weak token",  # metrics.weak_token
    "AUTHGATE_S3_ENDPOINT_URL is plain",  # avatars.plain_http
)


def check_production_refusals(settings: Settings) -> list[Finding]:
    """Production refusals that no dedicated check covers (the server refuses to start)."""
    if not settings.is_production:
        return []
    return [
        error_finding(
            "production.refused", problem, "Production refuses to start until this is fixed."
        )
        for problem in settings.production_problems()
        if not problem.startswith(_COVERED_PRODUCTION_PROBLEMS)
    ]


def check_public_url(settings: Settings) -> list[Finding]:
    own = parse_origin(settings.public_url)
    if own.scheme == "https":
        return [ok_finding("public_url.https", f"The public URL {settings.public_url} is https.")]
    if settings.is_production:
        return [
            error_finding(
                "public_url.http_in_production",
                f"AUTHGATE_PUBLIC_URL is {settings.public_url}: production must be served over "
                "https (the server refuses to start; its Secure cookies and OAuth redirect URIs "
                "need it).",
                f"Terminate TLS in front of authgate (e.g. nginx with a certbot certificate) and "
                f"set AUTHGATE_PUBLIC_URL=https://{own.host}.",
            )
        ]
    return [
        ok_finding(
            "public_url.http",
            f"The public URL {settings.public_url} is plain http: fine for development only.",
        )
    ]
