"""What the server saw of a request, in plain words: ``GET /api/auth/diagnose``.

A browser says only "Failed to fetch" when CORS refuses a response, and nothing at all when it
drops a cookie. This report lets a client (or a developer with curl) tell "your origin is not
allowed" from "the cookie was not sent" from "the proxy hides https from the server".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authgate.core.origins import CookiePolicy, Origin, OriginAllowlist, is_same_site, parse_origin

__all__ = ["RequestView", "diagnose_request"]


@dataclass(frozen=True, slots=True)
class RequestView:
    """The parts of a request the diagnosis looks at, as the server saw them."""

    origin: str | None
    session_cookie: bool
    refresh_cookie: bool
    scheme: str
    host: str
    client_ip: str | None


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
        found(
            "origin",
            f"Origin {origin.serialize()} is not allowed: add it to AUTHGATE_ORIGINS (exactly: "
            "scheme, host and port) and restart the server. Until then the browser hides every "
            "response from this page ('Failed to fetch').",
        )
    cross_site = origin is not None and origin != own and not is_same_site(origin, own)
    if allowed and not request.session_cookie:
        if cross_site:
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
        "same_site": None if origin is None else not cross_site,
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


def _parse(value: str | None) -> Origin | None:
    if not value:
        return None
    try:
        return parse_origin(value)
    except ValueError:
        return None
