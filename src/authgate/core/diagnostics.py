"""What the server saw of a request, in plain words: ``GET /api/auth/diagnose``.

A browser says only "Failed to fetch" when CORS refuses a response, and nothing at all when it
drops a cookie. This report lets a client (or a developer with curl) tell "your origin is not
allowed" from "the cookie was not sent" from "the proxy hides https from the server".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authgate.core.origins import (
    CookiePolicy,
    Origin,
    OriginAllowlist,
    explain_refused_origin,
    is_local_host,
    is_same_site,
    parse_origin,
)

__all__ = ["RequestView", "diagnose_request", "plain_http_cookie_problem"]


@dataclass(frozen=True, slots=True)
class RequestView:
    """The parts of a request the diagnosis looks at, as the server saw them."""

    origin: str | None
    session_cookie: bool
    refresh_cookie: bool
    scheme: str
    host: str
    client_ip: str | None
    # What the browser said of the request's site (Fetch Metadata; sent to https and loopback
    # hosts only): "same-origin", "same-site", "cross-site" or "none".
    sec_fetch_site: str | None = None


def plain_http_cookie_problem(public_url: str) -> str | None:
    """Why no cookie survives when the public URL is plain http on a host that is not loopback
    (browsers accept Secure cookies over http on localhost only), or None."""
    own = parse_origin(public_url)
    if own.scheme != "http" or is_local_host(own.host):
        return None
    return (
        f"The public URL {own.serialize()} is plain http on "
        f"{own.host}, not localhost, and browsers drop the Secure cookies authgate sets over "
        "plain http except on localhost, so a login answers 200 but every later request is 401. "
        "Serve the API over https (for development `authgate tls dev` makes a certificate) and "
        "set AUTHGATE_PUBLIC_URL to its https:// URL, or use http://localhost while developing."
    )


def diagnose_request(
    request: RequestView,
    *,
    public_url: str,
    allowlist: OriginAllowlist,
    cookie_policy: CookiePolicy,
    cookie_name: str,
    trusted_proxies: int = 0,
) -> dict[str, Any]:
    """The report: what arrived, what is configured, and ``problems`` with their fixes.

    ``findings`` holds the same explanations with the ``kind`` of failure each one explains
    (``origin``, ``cookie`` or ``scheme``), so that a client can show the one that matches what
    went wrong instead of whichever comes first; ``problems`` is their messages in order."""
    own = parse_origin(public_url)
    origin = _parse(request.origin)
    allowed = origin is not None and (origin == own or origin in allowlist)
    findings: list[dict[str, str]] = []

    def found(kind: str, message: str) -> None:
        findings.append({"kind": kind, "message": message})

    if request.origin is None:
        pass  # same-origin GET, curl, a server: nothing to say about CORS
    elif origin is None:
        found(
            "origin",
            f"The Origin header {request.origin[:80]!r} is not an origin (a sandboxed iframe or a "
            "file:// page sends 'null'); serve the page from http(s)://host[:port].",
        )
    elif not allowed:
        refused = explain_refused_origin(origin, own, allowlist)
        found(
            "origin",
            " ".join(
                part
                for part in (
                    f"Origin {origin.serialize()} is not allowed, so the browser hides every "
                    "response from this page ('Failed to fetch').",
                    refused.hint(),
                    refused.advice(),
                )
                if part
            ),
        )
    cross_site = origin is not None and origin != own and not is_same_site(origin, own)
    plain_http = plain_http_cookie_problem(public_url) if cookie_policy.secure else None
    # Only a browser's call (an Origin, or Fetch Metadata, which browsers send to loopback): a
    # script probing 127.0.0.1 on purpose (`authgate doctor --url`) is not told off.
    from_browser = request.origin is not None or request.sec_fetch_site is not None
    other_host = _other_loopback_name(request, own) if from_browser else None
    if (allowed or request.origin is None) and not request.session_cookie:
        if plain_http is not None:
            found("cookie", f"No session cookie arrived. {plain_http}")
        elif other_host is not None:
            from_elsewhere = request.sec_fetch_site == "cross-site" or (
                origin is not None and origin.host != other_host.host
            )
            found(
                "cookie",
                f"No session cookie arrived: the API was called as {other_host.netloc} but its "
                f"public URL is {own.serialize()}. Browsers keep cookies per host name, and "
                f"{other_host.host} and {own.host} are different sites to them"
                + (
                    f", so this call from {origin.serialize() if origin else 'the page'} is "
                    "cross-site (Sec-Fetch-Site: cross-site) and the SameSite=Lax session "
                    "cookie stays behind"
                    if from_elsewhere
                    else ""
                )
                + f". Call the API at its public URL, {own.serialize()} (createClient({{ "
                f"baseUrl: '{own.serialize()}' }})), from a page on the same host name.",
            )
        elif request.origin is None:
            pass  # same-origin or curl: not logged in yet, nothing to explain
        elif cross_site:
            found(
                "cookie",
                f"No session cookie arrived. {origin.serialize() if origin else ''} and "
                f"{own.serialize()} are different sites, so the cookie is a third-party cookie: "
                "authgate sets it SameSite=None; Secure; Partitioned, which browsers that block "
                "third-party cookies accept only from a fetch with credentials: 'include' after "
                "logging in from this same page. Or serve the API on the frontend's site.",
            )
        else:
            found(
                "cookie",
                "No session cookie arrived: not logged in yet, or the request was made without "
                "credentials: 'include'.",
            )
    expected_scheme = own.scheme
    if request.scheme != expected_scheme:
        seen = f"The server sees {request.scheme}:// but its public URL is {public_url}: "
        if trusted_proxies:
            fix = (
                f"AUTHGATE_TRUSTED_PROXIES is {trusted_proxies}, so the proxy in front did not "
                "send X-Forwarded-Proto (nginx: proxy_set_header X-Forwarded-Proto $scheme;), "
                "or there are more proxies than that number."
            )
        else:
            fix = (
                "behind a reverse proxy, set AUTHGATE_TRUSTED_PROXIES to the number of proxies "
                "so that X-Forwarded-Proto/-For/-Host are trusted."
            )
        found("scheme", seen + fix)
    return {
        "origin": request.origin,
        "origin_allowed": allowed if request.origin is not None else None,
        "same_site": _same_site(request, origin, cross_site),
        "session_cookie_received": request.session_cookie,
        "refresh_cookie_received": request.refresh_cookie,
        "cookie_mode": {
            "name": cookie_name,
            "samesite": cookie_policy.samesite,
            "secure": cookie_policy.secure,
            "partitioned": cookie_policy.partitioned,
        },
        "scheme": request.scheme,
        "host": request.host,
        "client_ip": request.client_ip,
        "public_url": public_url,
        "problems": [finding["message"] for finding in findings],
        "findings": findings,
    }


def _same_site(request: RequestView, origin: Origin | None, cross_site: bool) -> bool | None:
    """What the browser said (Sec-Fetch-Site), else what the Origin header implies."""
    if request.sec_fetch_site == "cross-site":
        return False
    if request.sec_fetch_site in ("same-origin", "same-site"):
        return True
    return None if origin is None else not cross_site


def _other_loopback_name(request: RequestView, own: Origin) -> Origin | None:
    """The host the request was sent to, when the public URL is on loopback and the browser
    called it by another loopback name (127.0.0.1 for localhost, or the reverse)."""
    try:
        seen = parse_origin(f"{own.scheme}://{request.host}")
    except ValueError:
        return None
    if seen.host == own.host or not (is_local_host(seen.host) and is_local_host(own.host)):
        return None
    return seen


def _parse(value: str | None) -> Origin | None:
    if not value:
        return None
    try:
        return parse_origin(value)
    except ValueError:
        return None
