"""Plain http must redirect permanently to https (group ``url.redirect``)."""

from __future__ import annotations

import requests

from authgate.core.origins import Origin, origin_of_url
from authgate.doctor.findings import Finding, _error, _ok, _warning
from authgate.doctor.probes import DEFAULT_TIMEOUT_SECONDS, _request_error

__all__ = ["check_http_redirect"]

_FIX_REDIRECT = (
    "Redirect plain http to https at the proxy, e.g. nginx: "
    "`server { listen 80; return 301 https://$host$request_uri; }`."
)


def check_http_redirect(
    session: requests.Session,
    http_url: str,
    https_origin: Origin,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Finding:
    """``http_url`` should answer 301/308 to ``https_origin``."""
    try:
        response = session.get(http_url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as e:
        return _warning(
            "url.redirect.missing",
            f"Nothing answers plain http at {http_url} ({_request_error(e)}): someone typing the "
            "address without https:// gets an error instead of the site.",
            _FIX_REDIRECT,
        )
    status = response.status_code
    location = response.headers.get("Location", "")
    target = origin_of_url(location)
    if status in (301, 308) and target == https_origin:
        return _ok("url.redirect.permanent", f"{http_url} redirects ({status}) to {location}.")
    if status in (301, 302, 303, 307, 308):
        if target is not None and target.scheme == "https" and target.host == https_origin.host:
            return _warning(
                "url.redirect.temporary"
                if status in (302, 303, 307)
                else "url.redirect.wrong_target",
                f"{http_url} redirects with {status} to {location}; expected a permanent "
                f"redirect (301 or 308) to {https_origin}.",
                _FIX_REDIRECT,
            )
        return _warning(
            "url.redirect.wrong_target",
            f"{http_url} redirects ({status}) to {location or 'nowhere'}, not to {https_origin}.",
            _FIX_REDIRECT,
        )
    return _error(
        "url.redirect.serves_http",
        f"{http_url} answers {status} over plain http instead of redirecting to https: "
        "passwords and tokens sent there travel unencrypted.",
        _FIX_REDIRECT,
    )
