"""Passkeys: ``/api/auth/passkeys`` (register, list, rename, delete), the usernameless login at
``/api/auth/passkeys/login``, and ``/.well-known/webauthn`` (related origins)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Request, Response, jsonify, request

from authgate.errors import PasskeysUnavailableError
from authgate.http.schemas import (
    PasskeyAssertionInput,
    PasskeyMfaInput,
    PasskeyMfaOptionsInput,
    PasskeyRegisterInput,
    PasskeyRenameInput,
    passkey_to_json,
    user_to_json,
)
from authgate.integrations.flask.auth_views import guard_browser, session_response
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required
from authgate.integrations.flask.requests import client_info, read_json
from authgate.integrations.flask.transport import forbid_storing
from authgate.service import IssuedTokens, Principal
from authgate.service.passkeys import Ceremony

blueprint = Blueprint("authgate_passkeys", __name__)

# The browser binding of a ceremony's challenge (service.passkeys): set by the options, read by
# the answer, on the API's passkey paths only.
CHALLENGE_COOKIE = "authgate_webauthn"
CHALLENGE_COOKIE_PATH = "/api/auth"


def ceremony_response(ceremony: Ceremony) -> Response:
    """The options as JSON, never cached; a browser's binding as an HttpOnly cookie (with the
    session cookies' SameSite and Partitioned, so that a frontend on another site sends it)."""
    response = Response(ceremony.options_json, content_type="application/json")
    forbid_storing(response)
    if ceremony.binding is not None:
        policy = get_extension().transport.cookie_policy
        response.set_cookie(
            CHALLENGE_COOKIE,
            ceremony.binding,
            max_age=ceremony.max_age,
            path=CHALLENGE_COOKIE_PATH,
            secure=policy.secure,
            httponly=True,
            samesite=policy.samesite,
            partitioned=policy.partitioned,
        )
    return response


def challenge_binding(req: Request) -> str | None:
    return req.cookies.get(CHALLENGE_COOKIE) or None


def _is_browser() -> bool:
    return get_extension().transport.is_browser_request(request)


# Adding a way to log in and removing one are sensitive: a recent authentication is needed.
@blueprint.post("/api/auth/passkeys/register/options")
@token_required(sessions_only=True, fresh=True)
def registration_options() -> Response:
    passkeys = get_extension().service.passkeys
    return ceremony_response(
        passkeys.registration_options(authenticate_request(), browser=_is_browser())
    )


@blueprint.post("/api/auth/passkeys/register")
@token_required(sessions_only=True, fresh=True)
def register() -> tuple[dict[str, object], int]:
    data = read_json(PasskeyRegisterInput)
    passkey = get_extension().service.passkeys.register(
        authenticate_request(), data.credential, data.name, binding=challenge_binding(request)
    )
    return {"passkey": passkey_to_json(passkey)}, 201


@blueprint.get("/api/auth/passkeys")
@token_required(sessions_only=True)
def list_passkeys() -> dict[str, object]:
    passkeys = get_extension().service.passkeys.list_passkeys(authenticate_request())
    return {"passkeys": [passkey_to_json(p) for p in passkeys]}


@blueprint.patch("/api/auth/passkeys/<string(length=24):passkey_id>")
@token_required(sessions_only=True)
def rename_passkey(passkey_id: str) -> dict[str, object]:
    data = read_json(PasskeyRenameInput)
    passkey = get_extension().service.passkeys.rename(authenticate_request(), passkey_id, data.name)
    return {"passkey": passkey_to_json(passkey)}


@blueprint.delete("/api/auth/passkeys/<string(length=24):passkey_id>")
@token_required(sessions_only=True, fresh=True)
def delete_passkey(passkey_id: str) -> Response:
    get_extension().service.passkeys.delete(authenticate_request(), passkey_id)
    return Response(status=204)


@blueprint.post("/api/auth/passkeys/login/options")
def login_options() -> Response:
    is_browser = guard_browser()
    passkeys = get_extension().service.passkeys
    return ceremony_response(passkeys.login_options(browser=is_browser, ip=client_info().ip))


@blueprint.post("/api/auth/passkeys/login")
def login() -> Response:
    is_browser = guard_browser()
    data = read_json(PasskeyAssertionInput)
    issued = get_extension().service.passkeys.login(
        data.credential, binding=challenge_binding(request), client=client_info()
    )
    return session_response(issued, include_refresh_token=not is_browser)


@blueprint.get("/.well-known/webauthn")
def related_origins() -> Response:
    """WebAuthn Related Origin Requests: the origins that may use this RP ID's passkeys."""
    origins = get_extension().settings.webauthn
    if origins.rp_id is None:
        raise PasskeysUnavailableError()
    response = jsonify(origins.well_known())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# A passkey as the second step of a password login, and for step-up ---------------------------


@blueprint.post("/api/auth/passkeys/mfa/options")
def mfa_options() -> Response:
    ext = get_extension()
    is_browser = guard_browser()
    data = read_json(PasskeyMfaOptionsInput)
    ceremony = ext.service.passkeys.mfa_options(
        data.mfa_token, mfa_binding=ext.transport.mfa_cookie(request), browser=is_browser
    )
    return ceremony_response(ceremony)


@blueprint.post("/api/auth/passkeys/mfa")
def mfa_verify() -> Response:
    is_browser = guard_browser()
    data = read_json(PasskeyMfaInput)
    return mfa_login_response(complete_mfa_login(data.mfa_token, data.credential), is_browser)


def complete_mfa_login(mfa_token: str, credential: dict[str, Any]) -> IssuedTokens:
    """The second step of a login with a passkey (here and at ``POST /api/auth/mfa/verify``):
    the mfa token's browser binding and the ceremony's, from this request's cookies."""
    ext = get_extension()
    return ext.service.passkeys.complete_mfa_login(
        mfa_token,
        credential,
        mfa_binding=ext.transport.mfa_cookie(request),
        binding=challenge_binding(request),
        client=client_info(),
    )


def mfa_login_response(issued: IssuedTokens, is_browser: bool) -> Response:
    """The answer of a completed second step: a login's, and the binding cookie gone."""
    response = session_response(issued, include_refresh_token=not is_browser)
    get_extension().transport.clear_mfa_cookie(response)
    return response


@blueprint.post("/api/auth/passkeys/reauthenticate/options")
@token_required(sessions_only=True)
def reauthentication_options() -> Response:
    passkeys = get_extension().service.passkeys
    return ceremony_response(
        passkeys.reauthentication_options(authenticate_request(), browser=_is_browser())
    )


@blueprint.post("/api/auth/passkeys/reauthenticate")
@token_required(sessions_only=True)
def reauthenticate() -> Response:
    data = read_json(PasskeyAssertionInput)
    principal = authenticate_request()
    return reauthenticated_response(principal, reauthenticate_with(principal, data.credential))


def reauthenticate_with(principal: Principal, credential: dict[str, Any]) -> IssuedTokens:
    """Step-up with a passkey (here and at ``POST /api/auth/reauthenticate``)."""
    return get_extension().service.passkeys.reauthenticate(
        principal, credential, binding=challenge_binding(request), ip=client_info().ip
    )


def reauthenticated_response(principal: Principal, issued: IssuedTokens) -> Response:
    """As ``POST /api/auth/reauthenticate``: the new access token in the body for a bearer
    caller, in the session cookie for a browser."""
    transport = get_extension().transport
    by_cookie = principal.transport == "cookie"
    body: dict[str, object] = {"user": user_to_json(issued.user)}
    if not by_cookie:
        body["access_token"] = issued.access_token
    body["token_type"] = "Bearer"  # noqa: S105 - the scheme name, not a secret
    body["expires_in"] = issued.expires_in
    response = transport.credential_response(body)
    if by_cookie:
        transport.set_access_cookie(response, issued.access_token)
    return response
