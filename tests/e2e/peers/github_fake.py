"""A local fake of GitHub's OAuth web flow and of the REST endpoints a login needs, speaking
GitHub's wire format, on ``127.0.0.1`` in a background thread.

One origin (``GitHubFake.base_url``) serves what GitHub splits between ``github.com`` and
``api.github.com``:

- ``GET /login/oauth/authorize``: approves at once as the selected user (``select_user``) and
  redirects to the redirect_uri with ``code`` and ``state``; after ``deny_next()`` it redirects
  with ``error=access_denied`` instead. A redirect_uri that does not match the registered callback
  (same scheme, host and port; same path or a path below it) gets GitHub's documented answer: a
  redirect to the *registered* callback with ``error=redirect_uri_mismatch``. An unknown
  ``client_id`` gets a 404 page.
- ``POST /login/oauth/access_token``: client credentials in the form body or HTTP Basic. Answers
  ``200`` even for errors, like GitHub, in ``application/x-www-form-urlencoded`` unless the request
  has ``Accept: application/json``. The granted ``scope`` is comma-separated (``read:user,
  user:email``), as GitHub's is. Codes are single-use (the first exchange attempt consumes one,
  whatever its outcome), live 10 minutes, and are bound to the client, the redirect_uri and the
  PKCE challenge (S256) given at the authorize step.
- ``GET /user`` and ``GET /user/emails`` with ``Authorization: Bearer <token>`` (or ``token
  <token>``); ``/user/emails`` needs the ``user:email`` or ``user`` scope, else 404 like GitHub.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

CODE_TTL_SECONDS = 600
DOCS = "https://docs.github.com"
AUTHORIZE_ERRORS_URI = (
    f"{DOCS}/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-authorization-request-errors"
)
TOKEN_ERRORS_URI = (
    f"{DOCS}/apps/oauth-apps/maintaining-oauth-apps/"
    "troubleshooting-oauth-app-access-token-request-errors"
)
_BASE62 = string.ascii_letters + string.digits


@dataclass
class GitHubUser:
    login: str
    id: int
    name: str | None
    emails: list[dict[str, Any]]  # {"email", "primary", "verified", "visibility"}
    avatar_url: str

    @property
    def public_email(self) -> str | None:
        """The email GitHub shows in ``/user``: the one the user made public, if any."""
        for email in self.emails:
            if email.get("visibility") == "public":
                return str(email["email"])
        return None


@dataclass(frozen=True)
class _Client:
    client_id: str
    client_secret: str
    redirect_uri: str


@dataclass
class _Code:
    client_id: str
    login: str
    scopes: list[str]
    redirect_uri: str
    code_challenge: str | None
    expires_at: float


@dataclass(frozen=True)
class _Token:
    client_id: str
    login: str
    scopes: tuple[str, ...]


@dataclass
class _State:
    clients: dict[str, _Client] = field(default_factory=dict)
    users: dict[str, GitHubUser] = field(default_factory=dict)
    codes: dict[str, _Code] = field(default_factory=dict)
    tokens: dict[str, _Token] = field(default_factory=dict)
    selected: str | None = None
    deny_next: bool = False
    clock_offset: float = 0.0


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class GitHubFake:
    """GitHub's OAuth web flow and user API, on ``127.0.0.1:port`` (a free port if 0).

    Register clients and users, pick who "logs in" with ``select_user``, then point the relying
    party's GitHub authorize, token and API URLs at ``base_url``. Use as a context manager or
    call ``stop()``.
    """

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._state = _State()
        self.calls: list[str] = []
        """Every request served, as ``"METHOD /path"``, in order."""
        self._urls = Map(
            [
                Rule("/login/oauth/authorize", endpoint="authorize", methods=["GET"]),
                Rule("/login/oauth/access_token", endpoint="access_token", methods=["POST"]),
                Rule("/user", endpoint="user", methods=["GET"]),
                Rule("/user/emails", endpoint="user_emails", methods=["GET"]),
            ]
        )
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", port, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self.port: int = self._server.server_port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"github-fake-{self.port}", daemon=True
        )
        self._thread.start()

    # Setting up ----------------------------------------------------------------------------

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/login/oauth/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/login/oauth/access_token"

    @property
    def api_url(self) -> str:
        """Where ``/user`` and ``/user/emails`` live (``https://api.github.com`` on GitHub)."""
        return self.base_url

    def add_client(self, client_id: str, client_secret: str, redirect_uri: str) -> None:
        """Register an OAuth app with its one callback URL."""
        with self._lock:
            self._state.clients[client_id] = _Client(client_id, client_secret, redirect_uri)

    def add_user(
        self,
        login: str,
        *,
        id: int,
        name: str | None = None,
        emails: Iterable[Mapping[str, Any]] = (),
        avatar_url: str | None = None,
    ) -> GitHubUser:
        """Add (or replace) a user. ``emails`` are ``{"email", "primary", "verified",
        "visibility"}`` dicts as ``/user/emails`` returns them (``visibility`` ``"public"``,
        ``"private"`` or ``None``); ``/user``'s ``email`` is the one with ``"public"``."""
        user = GitHubUser(
            login=login,
            id=id,
            name=name,
            emails=[dict(email) for email in emails],
            avatar_url=avatar_url or f"https://avatars.githubusercontent.com/u/{id}?v=4",
        )
        with self._lock:
            self._state.users[login] = user
        return user

    def select_user(self, login: str) -> None:
        """The user the authorize page approves as from now on (like a browser's session)."""
        with self._lock:
            if login not in self._state.users:
                raise KeyError(f"no user {login!r}: add_user first")
            self._state.selected = login

    def deny_next(self) -> None:
        """The next authorization request is refused by the user (``error=access_denied``)."""
        with self._lock:
            self._state.deny_next = True

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's time forward (codes expire after 10 minutes)."""
        with self._lock:
            self._state.clock_offset += seconds

    def issue_token(self, login: str, scopes: Iterable[str] = (), client_id: str = "") -> str:
        """An access token for ``login`` without the web flow (for API-only tests)."""
        with self._lock:
            return self._new_token(client_id, login, list(scopes))

    def stop(self) -> None:
        """Stop serving and close the socket. Safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> GitHubFake:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Serving -------------------------------------------------------------------------------

    def _now(self) -> float:
        return time.time() + self._state.clock_offset

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        with self._lock:
            self.calls.append(f"{request.method} {request.path}")
            try:
                endpoint, _ = self._urls.bind_to_environ(environ).match()
                response: Response = getattr(self, f"_{endpoint}")(request)
            except NotFound:
                response = _json({"message": "Not Found", "documentation_url": DOCS}, 404)
            except HTTPException as e:
                response = e.get_response(environ)
        return response(environ, start_response)

    def _authorize(self, request: Request) -> Response:
        args = request.args
        client = self._state.clients.get(args.get("client_id", ""))
        if client is None:
            return _html(404, "Not Found", "There is no OAuth app with this client_id.")
        state = args.get("state")
        redirect_uri = args.get("redirect_uri") or client.redirect_uri
        if not _redirect_uri_allowed(redirect_uri, client.redirect_uri):
            return _redirect(
                client.redirect_uri,
                error="redirect_uri_mismatch",
                error_description=(
                    "The redirect_uri MUST match the registered callback URL for this application."
                ),
                error_uri=f"{AUTHORIZE_ERRORS_URI}#redirect-uri-mismatch",
                state=state,
            )
        if self._state.deny_next:
            self._state.deny_next = False
            return _redirect(
                redirect_uri,
                error="access_denied",
                error_description="The user has denied your application access.",
                error_uri=f"{AUTHORIZE_ERRORS_URI}#access-denied",
                state=state,
            )
        challenge = args.get("code_challenge")
        method = args.get("code_challenge_method")
        if (challenge or method) and (method != "S256" or not challenge):
            return _redirect(
                redirect_uri,
                error="invalid_request",
                error_description="code_challenge_method must be S256 with a code_challenge.",
                state=state,
            )
        login = self._state.selected
        if login is None:
            return _html(500, "GitHub fake", "No user is signed in: call select_user() first.")
        scopes = [s for s in args.get("scope", "").replace(",", " ").split() if s]
        code = secrets.token_hex(10)
        self._state.codes[code] = _Code(
            client_id=client.client_id,
            login=login,
            scopes=list(dict.fromkeys(scopes)),
            redirect_uri=redirect_uri,
            code_challenge=challenge,
            expires_at=self._now() + CODE_TTL_SECONDS,
        )
        return _redirect(redirect_uri, code=code, state=state)

    def _access_token(self, request: Request) -> Response:
        params = {**request.args.to_dict(), **request.form.to_dict()}
        as_json = "application/json" in request.headers.get("Accept", "")
        client_id, client_secret = params.get("client_id", ""), params.get("client_secret", "")
        if request.authorization is not None and request.authorization.type == "basic":
            client_id = request.authorization.username or ""
            client_secret = request.authorization.password or ""
        client = self._state.clients.get(client_id)
        if client is None or not hmac.compare_digest(
            client.client_secret.encode(), client_secret.encode()
        ):
            return _token_error(
                as_json,
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
                "#incorrect-client-credentials",
            )
        code = self._state.codes.pop(params.get("code", ""), None)  # single use
        if code is None or code.client_id != client_id or code.expires_at <= self._now():
            return _bad_code(as_json)
        if params.get("redirect_uri") and params["redirect_uri"] != code.redirect_uri:
            return _token_error(
                as_json,
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
                "#redirect-uri-mismatch",
            )
        if code.code_challenge is not None:
            verifier = params.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not verifier or not hmac.compare_digest(expected, code.code_challenge):
                return _bad_code(as_json)
        token = self._new_token(client_id, code.login, code.scopes)
        body = {"access_token": token, "token_type": "bearer", "scope": ",".join(code.scopes)}
        return _token_response(as_json, body)

    def _new_token(self, client_id: str, login: str, scopes: list[str]) -> str:
        token = "gho_" + "".join(secrets.choice(_BASE62) for _ in range(36))
        self._state.tokens[token] = _Token(client_id, login, tuple(dict.fromkeys(scopes)))
        return token

    def _authenticated(self, request: Request) -> _Token | Response:
        header = request.headers.get("Authorization")
        if not header:
            return _json(
                {
                    "message": "Requires authentication",
                    "documentation_url": f"{DOCS}/rest/users/users#get-the-authenticated-user",
                    "status": "401",
                },
                401,
            )
        scheme, _, credential = header.partition(" ")
        token = self._state.tokens.get(credential.strip())
        if scheme.lower() not in ("bearer", "token") or token is None:
            return _json(
                {
                    "message": "Bad credentials",
                    "documentation_url": f"{DOCS}/rest",
                    "status": "401",
                },
                401,
            )
        return token

    def _user(self, request: Request) -> Response:
        token = self._authenticated(request)
        if isinstance(token, Response):
            return token
        user = self._state.users[token.login]
        body = {
            "login": user.login,
            "id": user.id,
            "node_id": base64.b64encode(f"04:User{user.id}".encode()).decode(),
            "avatar_url": user.avatar_url,
            "gravatar_id": "",
            "url": f"{self.api_url}/users/{user.login}",
            "html_url": f"https://github.com/{user.login}",
            "type": "User",
            "user_view_type": "public",
            "site_admin": False,
            "name": user.name,
            "company": None,
            "blog": "",
            "location": None,
            "email": user.public_email,
            "hireable": None,
            "bio": None,
            "twitter_username": None,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
        }
        return _json(body, 200, scopes=token.scopes, accepted="")

    def _user_emails(self, request: Request) -> Response:
        token = self._authenticated(request)
        if isinstance(token, Response):
            return token
        if not {"user", "user:email"} & set(token.scopes):
            return _json(
                {
                    "message": "Not Found",
                    "documentation_url": (
                        f"{DOCS}/rest/users/emails#list-email-addresses-for-the-authenticated-user"
                    ),
                    "status": "404",
                },
                404,
                scopes=token.scopes,
                accepted="user",
            )
        emails = [dict(email) for email in self._state.users[token.login].emails]
        return _json(emails, 200, scopes=token.scopes, accepted="user")


# Helpers -----------------------------------------------------------------------------------


def _redirect_uri_allowed(given: str, registered: str) -> bool:
    """GitHub's rule: same scheme, host and port as the callback URL, and its path or below."""
    try:
        a, b = urlsplit(given), urlsplit(registered)
        same_origin = (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
    except ValueError:
        return False
    base = b.path.rstrip("/")
    return same_origin and (a.path in (b.path, base) or a.path.startswith(base + "/"))


def _redirect(url: str, **params: str | None) -> Response:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    location = urlunsplit(parts._replace(query=urlencode(query)))
    return Response(status=302, headers={"Location": location})


def _html(status: int, title: str, text: str) -> Response:
    body = f"<!DOCTYPE html><html><head><title>{escape(title)}</title></head><body>"
    body += f"<h1>{escape(title)}</h1><p>{escape(text)}</p></body></html>"
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def _json(
    body: Any, status: int, *, scopes: Iterable[str] | None = None, accepted: str | None = None
) -> Response:
    response = Response(
        json.dumps(body), status=status, content_type="application/json; charset=utf-8"
    )
    if scopes is not None:
        response.headers["X-OAuth-Scopes"] = ", ".join(scopes)
    if accepted is not None:
        response.headers["X-Accepted-OAuth-Scopes"] = accepted
    response.headers["X-GitHub-Media-Type"] = "github.v3; format=json"
    return response


def _token_response(as_json: bool, body: Mapping[str, str]) -> Response:
    """200 in JSON (``Accept: application/json``) or, by default, form-encoded: GitHub's way,
    errors included."""
    if as_json:
        return Response(json.dumps(body), 200, content_type="application/json; charset=utf-8")
    return Response(
        urlencode(body), 200, content_type="application/x-www-form-urlencoded; charset=utf-8"
    )


def _token_error(as_json: bool, error: str, description: str, anchor: str) -> Response:
    return _token_response(
        as_json,
        {"error": error, "error_description": description, "error_uri": TOKEN_ERRORS_URI + anchor},
    )


def _bad_code(as_json: bool) -> Response:
    return _token_error(
        as_json,
        "bad_verification_code",
        "The code passed is incorrect or expired.",
        "#bad-verification-code",
    )


__all__ = ["CODE_TTL_SECONDS", "GitHubFake", "GitHubUser"]
