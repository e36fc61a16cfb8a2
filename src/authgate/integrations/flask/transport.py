"""Where credentials travel: the ``Authorization: Bearer`` header or the session cookie."""

from __future__ import annotations

from typing import Any, Literal

from flask import Request, jsonify
from flask import Response as JsonResponse
from werkzeug.wrappers import Response

from authgate.config import Settings
from authgate.core.csrf import CSRF_HEADERS, SAFE_METHODS, check_csrf
from authgate.core.origins import CookiePolicy, derive_cookie_policy, parse_origin
from authgate.errors import AuthenticationRequiredError, InvalidTokenError
from authgate.service import IssuedTokens

REFRESH_COOKIE_PATH = "/api/auth"
OAUTH_FLOW_COOKIE = "authgate_oauth_flow"
OAUTH_FLOW_COOKIE_PATH = "/api/oauth"


MFA_COOKIE = "authgate_mfa"
MFA_COOKIE_PATH = "/api/auth"


def forbid_storing(response: Response) -> None:
    """No cache, shared or the browser's, may keep this response: it carries a credential (an
    access, refresh or API token in the body or a cookie, or a login flow's binding). RFC 6749
    §5.1 asks the same of every token response; ``Pragma`` for HTTP/1.0 caches."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


def read_bearer_token(environ: dict[str, Any]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None without the header,
    ``InvalidTokenError`` for any other form (a present header is never skipped)."""
    header: str | None = environ.get("HTTP_AUTHORIZATION")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidTokenError("Use the header form 'Authorization: Bearer <token>'.")
    return token


class Transport:
    """Reads credentials from requests and writes session cookies, following the settings."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.allowlist = settings.allowlist
        self.own_origin = parse_origin(settings.public_url)
        self.cookie_policy: CookiePolicy = derive_cookie_policy(settings.public_url, self.allowlist)

    def credential(self, request: Request) -> tuple[str, Literal["bearer", "cookie"]]:
        """The access token and how it came. A present Authorization header is never skipped."""
        # The hot path: read the WSGI environ directly (EnvironHeaders.get rebuilds the key).
        environ = request.environ
        token = read_bearer_token(environ)
        if token is not None:
            return token, "bearer"
        cookie = self._session_cookie(request, environ.get("HTTP_COOKIE"))
        if cookie:
            return cookie, "cookie"
        raise AuthenticationRequiredError()

    def check_csrf(self, request: Request) -> None:
        if request.method in SAFE_METHODS:
            return
        check_csrf(
            method=request.method,
            origin=request.headers.get("Origin"),
            referer=request.headers.get("Referer"),
            has_csrf_header=any(request.headers.get(name) for name in CSRF_HEADERS),
            own_origin=self.own_origin,
            allowlist=self.allowlist,
        )

    def is_browser_request(self, request: Request) -> bool:
        """Browsers send Origin (or at least Referer) with every POST; scripts usually neither."""
        return bool(request.headers.get("Origin") or request.headers.get("Referer"))

    def _session_cookie(self, request: Request, header: str | None) -> str | None:
        """The session cookie's value. Our values are never quoted, so a plain scan of the
        header finds them without parsing every cookie; anything unusual goes to Werkzeug."""
        if not header:
            return None
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.settings.session_cookie_name:
                if value.startswith('"'):
                    break
                return value
        else:
            return None
        return request.cookies.get(self.settings.session_cookie_name)

    def has_session_cookie(self, request: Request) -> bool:
        return bool(self._session_cookie(request, request.environ.get("HTTP_COOKIE")))

    def refresh_cookie(self, request: Request) -> str | None:
        return request.cookies.get(self.settings.refresh_cookie_name) or None

    def credential_response(
        self, body: dict[str, object], *, status: int = 200, cookies: IssuedTokens | None = None
    ) -> JsonResponse:
        """The JSON answer that hands over a credential — in ``body`` (a token) or as the
        session ``cookies`` — and that no cache keeps. Every view that issues one answers
        with this (or ``set_session_cookies`` for a redirect), so none can forget."""
        response = jsonify(body)
        response.status_code = status
        if cookies is not None:
            self.set_session_cookies(response, cookies)
        forbid_storing(response)
        return response

    def set_session_cookies(self, response: Response, issued: IssuedTokens) -> None:
        forbid_storing(response)
        self._set(
            response,
            self.settings.session_cookie_name,
            issued.access_token,
            "/",
            self.settings.access_token_ttl_seconds,
        )
        self._set(
            response,
            self.settings.refresh_cookie_name,
            issued.refresh_token,
            REFRESH_COOKIE_PATH,
            self.settings.refresh_token_ttl_seconds,
        )

    def set_access_cookie(self, response: Response, access_token: str) -> None:
        """Only the access-token cookie (after a reauthentication: the refresh token stays)."""
        forbid_storing(response)
        self._set(
            response,
            self.settings.session_cookie_name,
            access_token,
            "/",
            self.settings.access_token_ttl_seconds,
        )

    def set_mfa_cookie(self, response: Response, binding: str, max_age: int) -> None:
        """Binds a login's mfa token to this browser (the token alone, taken from the page,
        completes nothing). Sent only to ``/api/auth/``."""
        forbid_storing(response)
        self._set(response, MFA_COOKIE, binding, MFA_COOKIE_PATH, max_age)

    def mfa_cookie(self, request: Request) -> str | None:
        return request.cookies.get(MFA_COOKIE) or None

    def clear_mfa_cookie(self, response: Response) -> None:
        policy = self.cookie_policy
        response.delete_cookie(
            MFA_COOKIE,
            path=MFA_COOKIE_PATH,
            secure=policy.secure,
            httponly=True,
            samesite=policy.samesite,
            partitioned=policy.partitioned,
        )

    def clear_session_cookies(self, response: Response) -> None:
        policy = self.cookie_policy
        for name, path in (
            (self.settings.session_cookie_name, "/"),
            (self.settings.refresh_cookie_name, REFRESH_COOKIE_PATH),
        ):
            response.delete_cookie(
                name,
                path=path,
                secure=policy.secure,
                httponly=True,
                samesite=policy.samesite,
                partitioned=policy.partitioned,
            )

    def oauth_flow_cookie(self, request: Request) -> str | None:
        return request.cookies.get(OAUTH_FLOW_COOKIE) or None

    def set_oauth_flow_cookie(self, response: Response, binding: str, max_age: int) -> None:
        """Ties a login at a provider to this browser. ``SameSite=Lax`` whatever the session
        cookies use: the provider sends the browser back with a top-level GET, which carries
        Lax cookies, and the cookie is set and read on our own site only."""
        forbid_storing(response)
        response.set_cookie(
            OAUTH_FLOW_COOKIE,
            binding,
            max_age=max_age,
            path=OAUTH_FLOW_COOKIE_PATH,
            secure=self.cookie_policy.secure,
            httponly=True,
            samesite="Lax",
        )

    def clear_oauth_flow_cookie(self, response: Response) -> None:
        response.delete_cookie(
            OAUTH_FLOW_COOKIE,
            path=OAUTH_FLOW_COOKIE_PATH,
            secure=self.cookie_policy.secure,
            httponly=True,
            samesite="Lax",
        )

    def _set(self, response: Response, name: str, value: str, path: str, max_age: int) -> None:
        policy = self.cookie_policy
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            secure=policy.secure,
            httponly=True,
            samesite=policy.samesite,
            partitioned=policy.partitioned,
        )
