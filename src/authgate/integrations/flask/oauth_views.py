"""``/api/oauth``: "Log in with ..." redirects and callbacks; ``/api/auth/identities``.

A browser arrives here by navigation, not by ``fetch``: failures redirect it to the frontend with
``?error=<code>`` (and are logged) instead of showing a JSON or error page.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from authgate.core.oauth import add_query_parameter
from authgate.errors import AuthError, MfaRequiredError, OAuthError
from authgate.http.schemas import HandoffInput, identity_to_json
from authgate.integrations.flask.auth_views import (
    guard_browser,
    mfa_required_response,
    new_browser_binding,
    session_response,
)
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required
from authgate.integrations.flask.request_ids import current_request_id
from authgate.integrations.flask.requests import client_info, read_json
from authgate.service.oauth_logins import OAuthStart
from authgate.service.second_factors import MFA_TOKEN_SECONDS

log = logging.getLogger("authgate.oauth")

blueprint = Blueprint("authgate_oauth", __name__)


def _log_name(provider: str) -> str:
    """A provider name fit for a log line: a configured one as it is, anything else from the
    URL quoted and cut short (it may hold a line break to forge log lines)."""
    if provider in get_extension().service.oauth_logins.clients:
        return provider
    return repr(provider[:64])


def _redirect(location: str, *, error: AuthError | None = None, provider: str) -> BaseResponse:
    if error is not None:
        log.warning("OAuth with %s failed: %s (%s)", _log_name(provider), error.code, error.message)
    return _redirect_with(location, error.code if error is not None else None)


def _redirect_with(location: str, error_code: str | None) -> BaseResponse:
    if error_code is not None:
        location = add_query_parameter(location, "error", error_code)
    response = redirect(location, code=302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the callback URL holds the code
    return response


def _flow_response(response: BaseResponse, start: OAuthStart) -> BaseResponse:
    get_extension().transport.set_oauth_flow_cookie(response, start.binding, start.max_age)
    return response


@blueprint.get("/api/oauth/providers")
def providers() -> Response:
    infos = get_extension().service.oauth_logins.oauth_providers()
    return jsonify([{"name": i.name, "display_name": i.display_name} for i in infos])


def _unexpected(provider: str, step: str, redirect_to: str) -> BaseResponse:
    """A browser navigated here: something we did not expect (a database error, a library
    bug) is logged once, with the request id, and sends it back with ``oauth_failed``, not a
    500."""
    log.exception(
        "OAuth %s with %s failed unexpectedly [request %s]",
        step,
        _log_name(provider),
        current_request_id(),
    )
    return _redirect_with(redirect_to, OAuthError.code)


@blueprint.get("/api/oauth/<provider>/login")
def login(provider: str) -> BaseResponse:
    service = get_extension().service
    next_url = request.args.get("next")
    try:
        start = service.oauth_logins.begin_oauth(
            provider, next_url=next_url, handoff_challenge=request.args.get("handoff_challenge")
        )
    except OAuthError as error:
        if error.status == 404:
            raise
        return _redirect(
            service.oauth_logins.redirect_target(next_url), error=error, provider=provider
        )
    except AuthError:
        raise  # validation_failed: a bad request by the page, answered as JSON
    except Exception:
        return _unexpected(provider, "login", service.oauth_logins.redirect_target(next_url))
    return _flow_response(redirect(start.authorization_url, code=302), start)


@blueprint.get("/api/oauth/<provider>/callback")
def callback(provider: str) -> BaseResponse:
    ext = get_extension()
    args = request.args
    try:
        outcome = ext.service.oauth_logins.finish_oauth(
            provider,
            binding=ext.transport.oauth_flow_cookie(request),
            state=args.get("state"),
            code=args.get("code"),
            error=args.get("error"),
            iss=args.get("iss"),
            client=client_info(),
        )
    except Exception:
        response = _unexpected(provider, "callback", ext.service.oauth_logins.redirect_target(None))
        ext.transport.clear_oauth_flow_cookie(response)
        return response
    response = _redirect(outcome.redirect_to, error=outcome.error, provider=provider)
    ext.transport.clear_oauth_flow_cookie(response)
    if outcome.issued is not None:
        ext.transport.set_session_cookies(response, outcome.issued)
    if outcome.mfa is not None and outcome.mfa.binding is not None:  # a second step is due
        ext.transport.set_mfa_cookie(response, outcome.mfa.binding, MFA_TOKEN_SECONDS)
    return response


@blueprint.post("/api/oauth/exchange")
def exchange() -> Response:
    """A page on another site collects the login it started (see ``begin_oauth``): the session
    cookies are set by this, its own request, so they land in its cookie partition."""
    is_browser = guard_browser()
    data = read_json(HandoffInput)
    try:
        issued = get_extension().service.oauth_logins.complete_handoff(
            data.code,
            data.code_verifier,
            client_info(),
            browser_binding=new_browser_binding() if is_browser else None,
        )
    except MfaRequiredError as required:  # a second factor is due, as after a password
        return mfa_required_response(required)
    return session_response(issued, include_refresh_token=not is_browser)


@blueprint.post("/api/oauth/<provider>/link")
@token_required(sessions_only=True)
def link(provider: str) -> BaseResponse:
    start = get_extension().service.oauth_logins.begin_oauth(
        provider, next_url=request.args.get("next"), linking=authenticate_request()
    )
    return _flow_response(jsonify({"authorization_url": start.authorization_url}), start)


@blueprint.get("/api/auth/identities")
@token_required(sessions_only=True)
def list_identities() -> dict[str, object]:
    identities = get_extension().service.oauth_logins.list_identities(authenticate_request())
    return {"identities": [identity_to_json(i) for i in identities]}


@blueprint.delete("/api/auth/identities/<identity_id>")
@token_required(sessions_only=True)
def unlink_identity(identity_id: str) -> Response:
    get_extension().service.oauth_logins.unlink_identity(authenticate_request(), identity_id)
    return Response(status=204)
