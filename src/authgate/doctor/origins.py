"""The origin allowlist: entries that are not origins, and origins that do not belong there
(group ``origins``)."""

from __future__ import annotations

from collections.abc import Sequence

from authgate.config import Settings
from authgate.core.origins import parse_origin
from authgate.doctor.findings import Finding, error_finding, ok_finding, warning_finding

__all__ = ["check_origins", "check_raw_origins"]

_REGEX_CHARACTERS = frozenset("^$()[]{}|+?\\")


def _bad_origin_finding(entry: object, reason: str) -> Finding:
    text_ = str(entry)
    if ".*" in text_ or any(ch in _REGEX_CHARACTERS for ch in text_):
        return error_finding(
            "origins.regex",
            f"AUTHGATE_ORIGINS entry {text_!r}: {reason}",
            "Origins are compared exactly, never as patterns (https://.*\\.example\\.com also "
            "matches https://example.com.evil.test). List each frontend as scheme://host[:port], "
            "e.g. AUTHGATE_ORIGINS=https://app.example.com,https://admin.example.com.",
        )
    if "*" in text_:
        return error_finding(
            "origins.wildcard",
            f"AUTHGATE_ORIGINS entry {text_!r}: {reason}",
            "List each frontend exactly, e.g. AUTHGATE_ORIGINS=https://app.example.com,"
            "https://admin.example.com: allowing any origin with credentials would let every "
            "site act as your users.",
        )
    return error_finding(
        "origins.invalid",
        f"AUTHGATE_ORIGINS entry {text_!r}: {reason}",
        "Write it as scheme://host[:port], exactly as the frontend's address bar shows it, "
        "without a path or trailing slash.",
    )


def check_raw_origins(entries: Sequence[object]) -> tuple[list[Finding], list[str]]:
    """Findings for the entries that are not origins, and the entries that are."""
    findings: list[Finding] = []
    good: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            findings.append(_bad_origin_finding(entry, "an origin must be a string"))
            continue
        try:
            parse_origin(entry)
        except ValueError as e:
            findings.append(_bad_origin_finding(entry, str(e)))
        else:
            good.append(entry)
    return findings, good


def check_origins(settings: Settings) -> list[Finding]:
    own = parse_origin(settings.public_url)
    findings: list[Finding] = []
    for origin in settings.allowlist:
        if origin == own:
            findings.append(
                warning_finding(
                    "origins.own_origin",
                    f"AUTHGATE_ORIGINS lists {origin}, the API's own public URL: pages served by "
                    "authgate are always trusted, so this entry does nothing.",
                    "Remove it, and list the origins of your frontends instead (the address bar "
                    "of the page that calls the API).",
                )
            )
        if settings.is_production and origin.scheme == "http":
            findings.append(
                error_finding(
                    "origins.http_in_production",
                    f"Origin {origin} is plain http: production refuses it (the cookies are "
                    "Secure, and the page could be tampered with on the way).",
                    f"Serve that frontend over https and list https://{origin.host}"
                    f"{f':{origin.port}' if origin.port else ''} instead.",
                )
            )
    if findings:
        return findings
    if not settings.origins:
        return [
            ok_finding(
                "origins.none",
                "AUTHGATE_ORIGINS is empty: only pages served from the public URL can call the "
                "API with credentials.",
            )
        ]
    listed = ", ".join(settings.origins)
    return [
        ok_finding("origins.allowlist", f"{len(settings.origins)} allowed origin(s): {listed}.")
    ]
