"""``/api/auth/password/forgot`` and ``/reset``: recovering an account by a mailed link."""

from __future__ import annotations

from flask import Blueprint, Response

from authgate.http.schemas import ForgotPasswordInput, PasswordResetInput
from authgate.integrations.flask.auth_views import guard_browser
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.requests import client_info, read_json

blueprint = Blueprint("authgate_recovery", __name__, url_prefix="/api/auth/password")

# One answer for every address, known or not.
FORGOT_ANSWER = {
    "message": "If an account uses this address, a link to reset its password is on its way."
}


@blueprint.post("/forgot")
def forgot_password() -> tuple[dict[str, str], int]:
    guard_browser()
    data = read_json(ForgotPasswordInput)
    get_extension().service.recovery.request_password_reset(data.email, ip=client_info().ip)
    return FORGOT_ANSWER, 202


@blueprint.post("/reset")
def reset_password() -> Response:
    """Every session of the user ends; this browser's cookies (if any) go with them."""
    guard_browser()
    data = read_json(PasswordResetInput)
    ext = get_extension()
    ext.service.recovery.reset_password(
        data.token,
        data.password,
        code=data.code,
        recovery_code=data.recovery_code,
        ip=client_info().ip,
    )
    response = Response(status=204)
    ext.transport.clear_session_cookies(response)
    return response
