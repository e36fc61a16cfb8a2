"""``/api/tokens``: the caller's API tokens (login sessions only: a token cannot make tokens)."""

from __future__ import annotations

from flask import Blueprint, Response

from authgate.http.schemas import ApiTokenCreateInput, api_token_to_json
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required
from authgate.integrations.flask.requests import read_json

blueprint = Blueprint("authgate_tokens", __name__, url_prefix="/api/tokens")


@blueprint.post("")
@token_required(sessions_only=True)
def create_token() -> tuple[dict[str, object], int]:
    data = read_json(ApiTokenCreateInput)
    plaintext, record = get_extension().service.api_tokens.create_api_token(
        authenticate_request(),
        name=data.name,
        scopes=data.scopes,
        tenant_id=data.tenant_id,
        resource=data.resource,
        expires_in_days=data.expires_in_days,
    )
    return {"token": plaintext, **api_token_to_json(record)}, 201


@blueprint.get("/scopes")
@token_required(sessions_only=True)
def token_options() -> dict[str, object]:
    """What a new token may carry, for forms: scopes and lifetimes."""
    service = get_extension().service
    return {
        "scopes": list(service.api_tokens.scopes),
        "default_ttl_days": service.settings.api_token_default_ttl_days,
        "max_ttl_days": service.settings.api_token_max_ttl_days,
    }


@blueprint.get("")
@token_required(sessions_only=True)
def list_tokens() -> dict[str, object]:
    tokens = get_extension().service.api_tokens.list_api_tokens(authenticate_request())
    return {"tokens": [api_token_to_json(t) for t in tokens]}


@blueprint.delete("/<token_id>")
@token_required(sessions_only=True)
def revoke_token(token_id: str) -> Response:
    get_extension().service.api_tokens.revoke_api_token(authenticate_request(), token_id)
    return Response(status=204)
