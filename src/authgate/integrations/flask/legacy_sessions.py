"""The dual run in Flask: a request with no authgate credential but a valid session token of
the previous app (its cookie, or a header) is exchanged for an authgate session on the spot —
the request is served, the session cookies are set on its response and the old cookie is
cleared. The decisions (cut-off, signature, which user) are the service's
(``AuthService.legacy_sessions``)."""

from __future__ import annotations

from flask import Request, Response, g

from authgate.config import Settings
from authgate.errors import AuthenticationRequiredError, LegacySessionEndedError
from authgate.integrations.flask.requests import client_info
from authgate.integrations.flask.transport import Transport
from authgate.service import AuthService, IssuedTokens, Principal

_ISSUED = "authgate_legacy_issued"
_CLEAR = "authgate_legacy_clear"


def _legacy_token(settings: Settings, request: Request) -> tuple[str, bool] | None:
    """The legacy token and whether it came in a cookie; None when the request has none."""
    if settings.legacy_jwt_header:
        value = request.headers.get(settings.legacy_jwt_header, "").strip()
        scheme, _, rest = value.partition(" ")
        if rest and scheme.lower() == "bearer":
            value = rest.strip()
        if value:
            return value, False
    if settings.legacy_jwt_cookie:
        cookie = request.cookies.get(settings.legacy_jwt_cookie)
        if cookie:
            return cookie, True
    return None


def exchange_legacy_session(
    service: AuthService, transport: Transport, request: Request
) -> Principal:
    """The caller, once its legacy token is exchanged; ``AuthenticationRequiredError`` when the
    request carries none (as without the dual run)."""
    found = _legacy_token(service.settings, request)
    if found is None:
        raise AuthenticationRequiredError()
    token, from_cookie = found
    if from_cookie:
        transport.check_csrf(request)  # a cookie rides along with cross-site requests
    try:
        issued = service.legacy_sessions.exchange(token, client_info())
    except LegacySessionEndedError:
        g.setdefault(_CLEAR, from_cookie)
        raise
    setattr(g, _ISSUED, issued)
    g.setdefault(_CLEAR, from_cookie)
    return service.authenticate(issued.access_token, "cookie", ip=(request.remote_addr or "")[:64])


def finish_legacy_exchange(transport: Transport, response: Response) -> Response:
    """After the request: the new session's cookies, and the old cookie cleared."""
    issued: IssuedTokens | None = g.pop(_ISSUED, None)
    if issued is not None:
        transport.set_session_cookies(response, issued)
    cookie = transport.settings.legacy_jwt_cookie
    if g.pop(_CLEAR, False) and cookie:
        policy = transport.cookie_policy
        response.delete_cookie(
            cookie,
            path="/",
            secure=policy.secure,
            httponly=True,
            samesite=policy.samesite,
        )
    return response
