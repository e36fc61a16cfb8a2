"""``/api/auth/email``: proving one's address (verification) and moving to another one."""

from __future__ import annotations

from flask import Blueprint

from authgate.http.schemas import (
    EmailChangeInput,
    LinkTokenInput,
    VerificationResendInput,
    user_to_json,
)
from authgate.integrations.flask.auth_views import guard_browser
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required
from authgate.integrations.flask.requests import client_info, read_json

blueprint = Blueprint("authgate_email", __name__, url_prefix="/api/auth/email")

VERIFICATION_SENT = {"message": "A verification link is on its way to your address."}
RESEND_ANSWER = {
    "message": "If these are the login and password of an unverified account, a new "
    "verification link is on its way."
}
CHANGE_SENT = {
    "message": "A confirmation link is on its way to the new address; your address changes "
    "when you follow it."
}


@blueprint.post("/verify/request")
@token_required(sessions_only=True)
def request_verification() -> tuple[dict[str, str], int]:
    get_extension().service.email_addresses.request_verification(
        authenticate_request(), ip=client_info().ip
    )
    return VERIFICATION_SENT, 202


@blueprint.post("/verify/resend")
def resend_verification() -> tuple[dict[str, str], int]:
    guard_browser()
    data = read_json(VerificationResendInput)
    get_extension().service.email_addresses.resend_verification(
        data.email, data.password, ip=client_info().ip
    )
    return RESEND_ANSWER, 202


@blueprint.post("/verify")
def verify_email() -> dict[str, object]:
    guard_browser()
    data = read_json(LinkTokenInput)
    user = get_extension().service.email_addresses.verify_email(data.token)
    return {"user": user_to_json(user)}


@blueprint.post("/change")
@token_required(sessions_only=True)
def request_email_change() -> tuple[dict[str, str], int]:
    data = read_json(EmailChangeInput)
    get_extension().service.email_addresses.request_email_change(
        authenticate_request(), new_email=data.email, password=data.password, ip=client_info().ip
    )
    return CHANGE_SENT, 202


@blueprint.post("/change/confirm")
def confirm_email_change() -> dict[str, object]:
    guard_browser()
    data = read_json(LinkTokenInput)
    user = get_extension().service.email_addresses.confirm_email_change(data.token)
    return {"user": user_to_json(user)}
