"""CSRF defence for cookie-authenticated requests: a trusted origin AND a custom header.

A state-changing request passes only when

1. its origin (the ``Origin`` header, or failing that the origin of the ``Referer``) is the
   server's own origin or one of the allowlisted origins, matched exactly; and
2. it carries one of :data:`CSRF_HEADERS`, which a cross-site form or ``<img>`` cannot send and a
   cross-site ``fetch`` can only send after a CORS preflight the allowlist also guards.

Requests authenticated by a bearer token carry no ambient credential and need no check; that
choice belongs to the caller.
"""

from __future__ import annotations

from authgate.core.origins import (
    Origin,
    OriginAllowlist,
    explain_refused_origin,
    origin_of_url,
    parse_origin,
)
from authgate.errors import CsrfFailedError

__all__ = ["CSRF_HEADERS", "SAFE_METHODS", "check_csrf"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADERS = ("X-Requested-With", "X-Origin")


def check_csrf(
    *,
    method: str,
    origin: str | None,
    referer: str | None,
    has_csrf_header: bool,
    own_origin: Origin,
    allowlist: OriginAllowlist,
) -> None:
    """Return if the request may proceed; otherwise raise :class:`CsrfFailedError` saying why."""
    if method.upper() in SAFE_METHODS:
        return

    request_origin = _request_origin(origin, referer)
    if request_origin != own_origin and request_origin not in allowlist:
        hint = explain_refused_origin(request_origin, own_origin, allowlist).hint()
        message = f"Origin {request_origin.serialize()} is not allowed."
        raise CsrfFailedError(f"{message} {hint}" if hint else message)

    if not has_csrf_header:
        names = " or ".join(CSRF_HEADERS)
        raise CsrfFailedError(f"The request must carry an {names} header.")


def _request_origin(origin: str | None, referer: str | None) -> Origin:
    if origin:
        if origin == "null":
            raise CsrfFailedError(
                "The request's Origin is null (a sandboxed or privacy-restricted context); "
                "it cannot be trusted."
            )
        try:
            return parse_origin(origin)
        except ValueError:
            raise CsrfFailedError("The request's Origin header is not a valid origin.") from None
    if referer:
        referer_origin = origin_of_url(referer)
        if referer_origin is None:
            raise CsrfFailedError("The request's Referer header is not a valid http(s) URL.")
        return referer_origin
    raise CsrfFailedError("The request has no Origin or Referer header.")
