"""What the running server itself sees behind its proxy: ``GET /api/auth/diagnose`` (group
``url.server``), and whether ``--url`` is the public URL at all (group ``url.public_url``).

Behind a proxy the app must see the scheme and host browsers use; when it does not (no or too few
``AUTHGATE_TRUSTED_PROXIES``, a proxy that does not set ``X-Forwarded-*``), its cookies lose
``Secure``, its redirects go to http, and every client seems to come from the proxy. That is
judged only when ``--url`` is the public URL: probed elsewhere (gunicorn directly, another
proxy), the server rightly sees another scheme and host, and ``url.public_url.differs`` says so.
"""

from __future__ import annotations

import requests

from authgate.config import Settings
from authgate.core.diagnostics import plain_http_cookie_problem
from authgate.core.origins import Origin, origin_of_url, parse_origin
from authgate.doctor.findings import Finding, ok_finding, warning_finding
from authgate.doctor.probes import DEFAULT_TIMEOUT_SECONDS, request_error_cause

__all__ = ["check_public_url_probed", "check_server_report"]

DIAGNOSE_PATH = "/api/auth/diagnose"
_FIX_PROXIES = (
    "Set AUTHGATE_TRUSTED_PROXIES to the number of proxies in front of authgate (1 behind one "
    "nginx), and let the proxy set X-Forwarded-For/-Proto/-Host (`authgate nginx` does)."
)
# The fix of each kind of problem the server reports (its diagnose ``findings``).
_FIXES = {
    "scheme": _FIX_PROXIES,
    "origin": (
        "Send the requests from a page on an origin in AUTHGATE_ORIGINS (exactly: scheme, host "
        "and port); `authgate doctor cors --origin ORIGIN` explains one origin."
    ),
    "cookie": (
        "Log in first and send requests with credentials: 'include'; `authgate doctor cors "
        "--origin ORIGIN` explains the cookies of a frontend on another site."
    ),
}
# The fix when the server explains a lost cookie by its plain-http public URL.
_FIX_PLAIN_HTTP = (
    "Serve the API over https (`authgate tls dev` makes a development certificate) with "
    "AUTHGATE_PUBLIC_URL set to its https:// URL, or use http://localhost while developing; "
    "see the cookies.secure_over_http check."
)
# Problems about the scheme and host of the probe itself: judged only through the public URL.
_VIEW_KINDS = frozenset({"scheme"})


def check_public_url_probed(base: Origin, settings: Settings) -> Finding:
    """``--url`` should be ``AUTHGATE_PUBLIC_URL``: browsers are sent there (cookies, redirects,
    OAuth callbacks), so that is the deployment to check."""
    public = parse_origin(settings.public_url)
    if base == public:
        return ok_finding("url.public_url.matches", f"--url is AUTHGATE_PUBLIC_URL ({public}).")
    return warning_finding(
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
    public_url_probed: bool = True,
) -> list[Finding]:
    """The server's own view of a request sent through ``base_url``: its problems, and the
    scheme, host and public URL it works with.

    ``public_url_probed`` is False when ``base_url`` is not the public URL: the scheme and host
    the server sees are then not judged (they are not what browsers' requests look like)."""
    try:
        response = session.get(base_url + DIAGNOSE_PATH, timeout=timeout, allow_redirects=False)
        report = response.json()
        problems = [(str(f["kind"]), str(f["message"])) for f in report["findings"]]
        scheme, host, public_url = str(report["scheme"]), str(report["host"]), report["public_url"]
    except requests.RequestException as e:
        return [_no_report(base_url, request_error_cause(e))]
    except (ValueError, KeyError, TypeError):
        return [_no_report(base_url, "no diagnose report in the answer")]
    plain_http = plain_http_cookie_problem(str(public_url))
    findings = [
        warning_finding(
            "url.server.problem",
            f"The server says: {message}",
            # The plain-http explanation carries its own fix; "log in first" would be wrong.
            _FIX_PLAIN_HTTP if message == plain_http else _FIXES.get(kind, ""),
        )
        for kind, message in problems
        if public_url_probed or kind not in _VIEW_KINDS
    ]
    public = origin_of_url(str(public_url))
    other_settings = _other_settings(str(public_url), public, settings)
    if other_settings is not None:
        findings.append(other_settings)
    if not public_url_probed:
        findings.append(
            ok_finding(
                "url.server.not_judged",
                f"Through {base_url} the server sees {scheme}://{host}: not judged, as --url is "
                "not the public URL (browsers' requests arrive through the public URL).",
                "Probe the public URL to check what the server sees behind its proxy.",
            )
        )
    elif other_settings is None and public is not None and host != public.netloc:
        findings.append(
            warning_finding(
                "url.server.wrong_host",
                f"The server sees the host {host!r}, not {public.netloc!r} of its public URL: "
                "the proxy does not pass the public host, or the app does not trust it.",
                _FIX_PROXIES,
            )
        )
    if not findings:
        findings.append(
            ok_finding(
                "url.server.view",
                f"Through {base_url} the server sees {scheme}://{host}, as its public URL says, "
                "and reports no problem.",
            )
        )
    return findings


def _other_settings(
    public_url: str, public: Origin | None, settings: Settings | None
) -> Finding | None:
    if settings is None or public == parse_origin(settings.public_url):
        return None
    return warning_finding(
        "url.server.other_settings",
        f"The server runs with public URL {public_url}, your settings say "
        f"{settings.public_url}: it runs with other settings.",
        "Restart authgate with the current settings (check the environment it really runs with).",
    )


def _no_report(base_url: str, why: str) -> Finding:
    return warning_finding(
        "url.server.no_report",
        f"{base_url}{DIAGNOSE_PATH} gave no report ({why}): not authgate, or the proxy does not "
        "forward /api/ to it.",
        "Forward the whole site (or at least /api/, /healthz and /.well-known/) to authgate.",
    )
