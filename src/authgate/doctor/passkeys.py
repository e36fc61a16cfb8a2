"""Passkeys: the RP ID and the allowed origins that cannot use it (group ``origins``).

With ``AUTHGATE_WEBAUTHN_RP_ID`` set, such an origin stops the server at startup; with the
default RP ID (the public URL's host) it is only left without passkeys — said here."""

from __future__ import annotations

from authgate.config import Settings
from authgate.doctor.findings import Finding, ok_finding, warning_finding

__all__ = ["check_passkeys"]


def check_passkeys(settings: Settings) -> list[Finding]:
    origins = settings.webauthn
    if origins.rp_id is None:
        return [
            warning_finding(
                "passkeys.unavailable",
                f"Passkeys are off: the public URL {settings.public_url} is an IP address, "
                "which browsers refuse as a WebAuthn RP ID.",
                "Serve authgate under a host name (AUTHGATE_PUBLIC_URL), or set "
                "AUTHGATE_WEBAUTHN_RP_ID to a name the public URL's host is under.",
            )
        ]
    findings = [
        warning_finding(
            "passkeys.origin_left_out",
            f"The allowed origin {origin} cannot use passkeys of RP ID {origins.rp_id}: {reason}.",
            "Set AUTHGATE_WEBAUTHN_RP_ID to a domain both the public URL and this origin are "
            "under (docs/passkeys.md), or leave that frontend without passkeys.",
        )
        for origin, reason in origins.left_out
    ]
    if findings:
        return findings
    related = f"; related origins: {', '.join(origins.related)}" if origins.related else ""
    return [
        ok_finding(
            "passkeys.rp_id",
            f"Passkeys: RP ID {origins.rp_id}, usable from {', '.join(origins.expected)}{related}.",
        )
    ]
