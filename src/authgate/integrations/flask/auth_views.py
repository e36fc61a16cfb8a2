"""``/api/auth``: register, login, refresh, logout, the caller's account and sessions."""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, jsonify, request

from authgate.errors import AuthenticationRequiredError, AuthError, MfaRequiredError
from authgate.http.schemas import (
    LoginInput,
    PasswordChangeInput,
    ProfileInput,
    RefreshInput,
    RegisterInput,
    session_to_json,
    user_to_json,
)
from authgate.integrations.flask.context import current_flask_app, get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required
from authgate.integrations.flask.errors import ERROR_CODE_KEY
from authgate.integrations.flask.requests import client_info, read_json
from authgate.service import IssuedTokens
from authgate.service.second_factors import MFA_TOKEN_SECONDS
from authgate.store.records import UserRecord

blueprint = Blueprint("authgate_auth", __name__, url_prefix="/api/auth")


def guard_browser() -> bool:
    """Login CSRF: a browser request must come from an allowed origin. True for browsers."""
    transport = get_extension().transport
    if transport.is_browser_request(request):
        transport.check_csrf(request)
        return True
    return False


def session_response(
    issued: IssuedTokens,
    *,
    include_refresh_token: bool,
    include_access_token: bool = True,
    extra: dict[str, object] | None = None,
) -> Response:
    body: dict[str, object] = {"user": user_to_json(issued.user), **(extra or {})}
    if include_access_token:
        body["access_token"] = issued.access_token
    body["token_type"] = "Bearer"  # noqa: S105 - the scheme name, not a secret
    body["expires_in"] = issued.expires_in
    if include_refresh_token:
        body["refresh_token"] = issued.refresh_token
    return get_extension().transport.credential_response(body, cookies=issued)


def new_browser_binding() -> str:
    """The value of the cookie that binds a browser's mfa token to it."""
    return secrets.token_urlsafe(32)


def mfa_required_response(error: MfaRequiredError) -> Response:
    """401 ``mfa_required`` (or ``mfa_enrollment_required``) with its ``mfa`` token, and for a
    browser the HttpOnly cookie the token is bound to."""
    request.environ[ERROR_CODE_KEY] = error.code  # the outcome the metrics count
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if error.binding is not None:
        get_extension().transport.set_mfa_cookie(response, error.binding, MFA_TOKEN_SECONDS)
    return response


def _cleared_response() -> Response:
    response = Response(status=204)
    get_extension().transport.clear_session_cookies(response)
    return response


@blueprint.post("/register")
def register() -> tuple[dict[str, object], int]:
    guard_browser()
    data = read_json(RegisterInput)
    user = get_extension().service.accounts.register(
        email=data.email,
        password=data.password,
        name=data.name,
        username=data.username,
        invitation_token=data.invitation_token,
    )
    return {"user": user_to_json(user)}, 201


@blueprint.post("/login")
def login() -> Response:
    is_browser = guard_browser()
    data = read_json(LoginInput)
    binding = new_browser_binding() if is_browser else None
    try:
        issued = get_extension().service.sessions.login(
            data.login, data.password, client_info(), browser_binding=binding
        )
    except MfaRequiredError as required:  # a second factor is due: no session yet
        return mfa_required_response(required)
    return session_response(issued, include_refresh_token=not is_browser)


@blueprint.post("/refresh")
def refresh() -> Response:
    ext = get_extension()
    data = read_json(RefreshInput, optional=True)
    token = data.refresh_token
    if token is None:
        token = ext.transport.refresh_cookie(request)
        if token is None:
            raise AuthenticationRequiredError("No refresh token: log in again.")
        ext.transport.check_csrf(request)
    issued = ext.service.sessions.refresh(token)
    by_body = data.refresh_token is not None
    # A cookie refresh hands the new access token to the cookie only: script on the page
    # (an XSS included) cannot turn the HttpOnly session into a bearer token.
    return session_response(issued, include_refresh_token=by_body, include_access_token=by_body)


@blueprint.post("/logout")
def logout() -> Response:
    try:
        principal = authenticate_request()
    except AuthError as error:
        if error.status != 401:
            raise
        _logout_by_refresh_token(error)
    else:
        # Not needed with a valid access token, but a body sent is still refused unless it is
        # what the endpoint takes (the OpenAPI document says so).
        read_json(RefreshInput, optional=True)
        get_extension().service.sessions.logout(principal)
    return _cleared_response()


def _logout_by_refresh_token(error: AuthError) -> None:
    """The access token is expired, revoked or absent: end the session by its refresh token."""
    ext = get_extension()
    token = read_json(RefreshInput, optional=True).refresh_token
    if token is None:
        token = ext.transport.refresh_cookie(request)
        if token is None and not ext.transport.has_session_cookie(request):
            raise error
        ext.transport.check_csrf(request)
    if token is not None:
        ext.service.sessions.logout_refresh_token(token)


@blueprint.post("/logout-all")
@token_required(sessions_only=True)
def logout_all() -> Response:
    get_extension().service.sessions.logout_all(authenticate_request())
    return _cleared_response()


# /me is the endpoint clients poll: its body is serialised and encoded once per user record
# (records are immutable and replaced when the user changes), then reused.
_ME_BODIES_LIMIT = 10_000
_me_bodies: dict[tuple[int, str], tuple[UserRecord, bytes]] = {}


def _me_body(user: UserRecord) -> bytes:
    provider = current_flask_app().json
    key = (id(provider), user.id)
    cached = _me_bodies.get(key)
    if cached is not None and cached[0] is user:
        return cached[1]
    if len(_me_bodies) >= _ME_BODIES_LIMIT:
        _me_bodies.clear()
    body = (provider.dumps({"user": user_to_json(user)}) + "\n").encode()
    _me_bodies[key] = (user, body)
    return body


@blueprint.get("/me")
@token_required()
def me() -> Response:
    return Response(_me_body(authenticate_request().user), content_type="application/json")


@blueprint.patch("/me")
@token_required(sessions_only=True)
def update_me() -> dict[str, object]:
    data = read_json(ProfileInput)
    user = get_extension().service.accounts.update_profile(
        authenticate_request(),
        fields=data.model_fields_set,
        name=data.name,
        username=data.username,
    )
    return {"user": user_to_json(user)}


@blueprint.post("/password")
@token_required(sessions_only=True)
def change_password() -> Response:
    data = read_json(PasswordChangeInput)
    get_extension().service.accounts.change_password(
        authenticate_request(), data.current_password, data.new_password, ip=client_info().ip
    )
    return Response(status=204)


@blueprint.get("/sessions")
@token_required(sessions_only=True)
def list_sessions() -> dict[str, object]:
    sessions = get_extension().service.sessions.list_sessions(authenticate_request())
    return {"sessions": [session_to_json(s, current=c) for s, c in sessions]}


@blueprint.delete("/sessions/<session_id>")
@token_required(sessions_only=True)
def revoke_session(session_id: str) -> Response:
    principal = authenticate_request()
    get_extension().service.sessions.revoke_session(principal, session_id)
    if session_id == principal.session_id:
        return _cleared_response()
    return Response(status=204)
