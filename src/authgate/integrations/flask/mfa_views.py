"""``/api/auth/mfa`` and ``/api/auth/reauthenticate``: second factors, the second step of a
login, and step-up. Every decision is ``service.second_factors``'s (docs/mfa.md)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from authgate.errors import BadRequestError
from authgate.http.schemas import (
    MfaVerifyInput,
    ReauthenticateInput,
    TotpBeginInput,
    TotpConfirmInput,
)
from authgate.integrations.flask.auth_views import guard_browser, session_response
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required
from authgate.integrations.flask.passkey_views import (
    complete_mfa_login,
    mfa_login_response,
    reauthenticate_with,
    reauthenticated_response,
)
from authgate.integrations.flask.requests import client_info, read_json
from authgate.service.second_factors import MfaStatus, TotpSetup

blueprint = Blueprint("authgate_mfa", __name__, url_prefix="/api/auth")


def _setup_json(setup: TotpSetup) -> dict[str, object]:
    return {"secret": setup.secret, "otpauth_uri": setup.otpauth_uri, "qr_svg": setup.qr_svg}


def _status_json(status: MfaStatus) -> dict[str, object]:
    return {
        "totp": status.totp,
        "totp_pending": status.totp_pending,
        "recovery_codes_left": status.recovery_codes_left,
        "passkeys": status.passkeys,
        "required": status.required,
    }


@blueprint.get("/mfa")
@token_required(sessions_only=True)
def mfa_status() -> dict[str, object]:
    return _status_json(get_extension().service.second_factors.status(authenticate_request()))


@blueprint.post("/mfa/totp")
def begin_totp() -> dict[str, object]:
    ext = get_extension()
    data = read_json(TotpBeginInput)
    factors = ext.service.second_factors
    if data.mfa_token is not None:  # enrollment required by role, during a login
        guard_browser()
        binding = ext.transport.mfa_cookie(request)
        return _setup_json(factors.begin_totp_for_login(data.mfa_token, browser_binding=binding))
    principal = authenticate_request()
    setup = factors.begin_totp(principal, data.password or "", ip=client_info().ip)
    return _setup_json(setup)


@blueprint.post("/mfa/totp/confirm")
def confirm_totp() -> Response | dict[str, object]:
    ext = get_extension()
    data = read_json(TotpConfirmInput)
    factors = ext.service.second_factors
    if data.mfa_token is None:
        return {"recovery_codes": factors.confirm_totp(authenticate_request(), data.code)}
    is_browser = guard_browser()
    codes, issued = factors.confirm_totp_for_login(
        data.mfa_token,
        data.code,
        browser_binding=ext.transport.mfa_cookie(request),
        client=client_info(),
    )
    response = session_response(
        issued, include_refresh_token=not is_browser, extra={"recovery_codes": codes}
    )
    ext.transport.clear_mfa_cookie(response)
    return response


@blueprint.delete("/mfa/totp")
@token_required(sessions_only=True)
def disable_totp() -> Response:
    get_extension().service.second_factors.disable_totp(authenticate_request())
    return Response(status=204)


@blueprint.post("/mfa/recovery-codes")
@token_required(sessions_only=True)
def regenerate_recovery_codes() -> dict[str, object]:
    codes = get_extension().service.second_factors.regenerate_recovery_codes(authenticate_request())
    return {"recovery_codes": codes}


@blueprint.post("/mfa/verify")
def verify() -> Response:
    """A code, a recovery code, or a passkey assertion (as ``/api/auth/passkeys/mfa``)."""
    ext = get_extension()
    is_browser = guard_browser()
    data = read_json(MfaVerifyInput)
    if data.credential is not None:
        if data.code is not None or data.recovery_code is not None:
            raise BadRequestError("Give a code, a recovery code or a passkey (one of them).")
        return mfa_login_response(complete_mfa_login(data.mfa_token, data.credential), is_browser)
    issued = ext.service.second_factors.verify(
        data.mfa_token,
        browser_binding=ext.transport.mfa_cookie(request),
        client=client_info(),
        code=data.code,
        recovery_code=data.recovery_code,
    )
    return mfa_login_response(issued, is_browser)


@blueprint.post("/reauthenticate")
@token_required(sessions_only=True)
def reauthenticate() -> Response:
    """The password, a code, or a passkey assertion (as ``/api/auth/passkeys/reauthenticate``)."""
    data = read_json(ReauthenticateInput)
    principal = authenticate_request()
    if data.credential is not None:
        if data.password is not None or data.code is not None:
            raise BadRequestError("Give your password, a code or a passkey (one of them).")
        return reauthenticated_response(principal, reauthenticate_with(principal, data.credential))
    issued = get_extension().service.second_factors.reauthenticate(
        principal, password=data.password, code=data.code, ip=client_info().ip
    )
    return reauthenticated_response(principal, issued)
