"""What the running server itself sees behind its proxy: ``GET /api/auth/diagnose`` (group
``url.server``), and whether ``--url`` is the public URL at all (group ``url.public_url``).

Behind a proxy the app must see the scheme and host browsers use; when it does not (no or too few
``AUTHGATE_TRUSTED_PROXIES``, a proxy that does not set ``X-Forwarded-*``), its cookies lose
``Secure``, its redirects go to http, and every client seems to come from the proxy.
"""

from __future__ import annotations

import requests

from authgate.config import Settings
from authgate.core.origins import Origin, origin_of_url, parse_origin
from authgate.doctor.findings import Finding, _ok, _warning
from authgate.doctor.probes import DEFAULT_TIMEOUT_SECONDS, _request_error

__all__ = ["check_public_url_probed", "check_server_report"]

DIAGNOSE_PATH = "/api/auth/diagnose"
_FIX_PROXIES = (
    "Set AUTHGATE_TRUSTED_PROXIES to the number of proxies in front of authgate (1 behind one "
    "nginx), and let the proxy set X-Forwarded-For/-Proto/-Host (`authgate nginx` does)."
)


def check_public_url_probed(base: Origin, settings: Settings) -> Finding:
    """``--url`` should be ``AUTHGATE_PUBLIC_URL``: browsers are sent there (cookies, redirects,
    OAuth callbacks), so that is the deployment to check."""
    public = parse_origin(settings.public_url)
    if base == public:
        return _ok("url.public_url.matches", f"--url is AUTHGATE_PUBLIC_URL ({public}).")
    return _warning(
        "url.public_url.differs",
        f"--url {base} is not AUTHGATE_PUBLIC_URL ({public}): this probes another address than "
        "the one browsers are sent to (links, redirects and OAuth callbacks use the public URL).",
        f"Probe --url {public}, or correct AUTHGATE_PUBLIC_URL if the site moved.",
    )


def check_server_report(
    session: requests.Session,
    base_url: str,
    settings: Settings | None,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> list[Finding]:
    """The server's own view of a request sent through ``base_url``: its ``problems``, and the
    scheme, host and public URL it works with."""
    try:
        response = session.get(base_url + DIAGNOSE_PATH, timeout=timeout, allow_redirects=False)
        report = response.json()
        problems = [str(problem) for problem in report["problems"]]
        scheme, host, public_url = str(report["scheme"]), str(report["host"]), report["public_url"]
    except requests.RequestException as e:
        return [_no_report(base_url, _request_error(e))]
    except (ValueError, KeyError, TypeError):
        return [_no_report(base_url, "no diagnose report in the answer")]
    findings = [
        _warning("url.server.problem", f"The server says: {problem}", _FIX_PROXIES)
        for problem in problems
    ]
    public = origin_of_url(str(public_url))
    if settings is not None and public != parse_origin(settings.public_url):
        findings.append(
            _warning(
                "url.server.other_settings",
                f"The server runs with public URL {public_url}, your settings say "
                f"{settings.public_url}: it runs with other settings.",
                "Restart authgate with the current settings (check the environment it really "
                "runs with).",
            )
        )
    elif public is not None and host != _netloc(public):
        findings.append(
            _warning(
                "url.server.wrong_host",
                f"The server sees the host {host!r}, not {_netloc(public)!r} of its public URL: "
                "the proxy does not pass the public host, or the app does not trust it.",
                _FIX_PROXIES,
            )
        )
    if not findings:
        findings.append(
            _ok(
                "url.server.view",
                f"Through {base_url} the server sees {scheme}://{host}, as its public URL says, "
                "and reports no problem.",
            )
        )
    return findings


def _netloc(origin: Origin) -> str:
    return origin.serialize().split("://", 1)[1]


def _no_report(base_url: str, why: str) -> Finding:
    return _warning(
        "url.server.no_report",
        f"{base_url}{DIAGNOSE_PATH} gave no report ({why}): not authgate, or the proxy does not "
        "forward /api/ to it.",
        "Forward the whole site (or at least /api/, /healthz and /.well-known/) to authgate.",
    )
