"""Plain http must redirect permanently to https (group ``url.redirect``).

The redirect is probed where browsers send ``http://`` addresses: port 80 of the host (or the
address given with ``--http-url``). nginx answers plain http sent to its TLS port with a 400
("The plain HTTP request was sent to HTTPS port"). On a port named with ``--http-url`` that is a
TLS port probed on purpose, which serves nothing over http: no finding against the deployment.
On the default port 80 it is a mistake (``listen 80 ssl;``): whoever types ``http://`` gets the
400 instead of the site.
"""

from __future__ import annotations

import requests

from authgate.core.origins import Origin, origin_of_url
from authgate.doctor.findings import Finding, error_finding, ok_finding, warning_finding
from authgate.doctor.probes import DEFAULT_TIMEOUT_SECONDS, request_error_cause

__all__ = ["NGINX_PLAIN_HTTP_TO_TLS_PORT", "check_http_redirect", "default_http_url"]

# What nginx answers (with a 400) to a plain-http request on a port it serves TLS on.
NGINX_PLAIN_HTTP_TO_TLS_PORT = "The plain HTTP request was sent to HTTPS port"

_FIX_REDIRECT = (
    "Redirect plain http to https at the proxy, e.g. nginx: "
    "`server { listen 80; return 301 https://$host$request_uri; }`."
)
_REDIRECTS = (301, 302, 303, 307, 308)


def default_http_url(https_origin: Origin) -> str:
    """Where a browser goes for ``http://<host>``: port 80 of the https origin's host."""
    return Origin("http", https_origin.host, None).serialize() + "/"


def check_http_redirect(
    session: requests.Session,
    http_url: str,
    https_origin: Origin,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    named: bool = False,
) -> Finding:
    """``http_url`` should answer 301/308 to ``https_origin``.

    ``named``: the user gave ``http_url`` (``--http-url``); otherwise it is port 80, where
    browsers go for ``http://``, and a TLS port there is a missing redirect."""
    try:
        response = session.get(http_url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as e:
        return warning_finding(
            "url.redirect.missing",
            f"Nothing answers plain http at {http_url} ({request_error_cause(e)}): no redirect for "
            "users typing http:// (they get an error instead of the site).",
            _FIX_REDIRECT + " If the redirect is on another port, name it with --http-url.",
        )
    status = response.status_code
    location = response.headers.get("Location", "")
    target = origin_of_url(location)
    if status in (301, 308) and target == https_origin:
        return ok_finding(
            "url.redirect.permanent", f"{http_url} redirects ({status}) to {location}."
        )
    if status in _REDIRECTS:
        return _redirect_finding(http_url, https_origin, status, location, target)
    if status == 400 and NGINX_PLAIN_HTTP_TO_TLS_PORT in response.text:
        return _tls_port_finding(http_url, named=named)
    if 200 <= status < 300:
        return error_finding(
            "url.redirect.serves_http",
            f"{http_url} answers {status} over plain http instead of redirecting to https: "
            "passwords and tokens sent there travel unencrypted.",
            _FIX_REDIRECT,
        )
    return warning_finding(
        "url.redirect.not_redirected",
        f"{http_url} answers {status} over plain http instead of redirecting to https: users "
        "typing http:// get an error instead of the site.",
        _FIX_REDIRECT,
    )


def _tls_port_finding(http_url: str, *, named: bool) -> Finding:
    if named:
        return ok_finding(
            "url.redirect.tls_port",
            f"{http_url} is a TLS port: it refuses plain http (400) rather than serving it.",
            "Name the port that redirects to https with --http-url to check the redirect.",
        )
    return warning_finding(
        "url.redirect.not_redirected",
        f"{http_url} speaks TLS: it answers plain http with a 400 ({NGINX_PLAIN_HTTP_TO_TLS_PORT}) "
        "instead of redirecting to https: users typing http:// get an error instead of the site.",
        _FIX_REDIRECT + " Port 80 listens without `ssl` (`listen 80;`, not `listen 80 ssl;`).",
    )


def _redirect_finding(
    http_url: str, https_origin: Origin, status: int, location: str, target: Origin | None
) -> Finding:
    if target is not None and target.scheme == "https" and target.host == https_origin.host:
        return warning_finding(
            "url.redirect.temporary" if status in (302, 303, 307) else "url.redirect.wrong_target",
            f"{http_url} redirects with {status} to {location}; expected a permanent "
            f"redirect (301 or 308) to {https_origin}.",
            _FIX_REDIRECT,
        )
    return warning_finding(
        "url.redirect.wrong_target",
        f"{http_url} redirects ({status}) to {location or 'nowhere'}, not to {https_origin}.",
        _FIX_REDIRECT,
    )
