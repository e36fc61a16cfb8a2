"""``/api/tokens``: the caller's API tokens (login sessions only: a token cannot make tokens)."""

from __future__ import annotations

from flask import Blueprint, Response
from flask.blueprints import BlueprintSetupState

from authgate.http.schemas import ApiTokenCreateInput, api_token_to_json
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required
from authgate.integrations.flask.path_ids import PathIdConverter
from authgate.integrations.flask.requests import read_json

blueprint = Blueprint("authgate_tokens", __name__, url_prefix="/api/tokens")


class TokenIdConverter(PathIdConverter):
    """A token id: any one path segment but ``scopes``, the route beside it. Without this,
    ``/api/tokens/scopes`` would match ``/api/tokens/<token_id>`` too, and its ``Allow`` (an
    OPTIONS, a 405) would offer DELETE. Control characters are refused as in every id."""

    regex = r"(?!scopes$)[^/]+"


@blueprint.record_once  # before the routes below, which name it
def _add_token_id_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("authgate_token_id", TokenIdConverter)


@blueprint.post("")
@token_required(sessions_only=True)
def create_token() -> Response:
    ext = get_extension()
    data = read_json(ApiTokenCreateInput)
    plaintext, record = ext.service.api_tokens.create_api_token(
        authenticate_request(),
        name=data.name,
        scopes=data.scopes,
        tenant_id=data.tenant_id,
        resource=data.resource,
        expires_in_days=data.expires_in_days,
    )
    body = {"token": plaintext, **api_token_to_json(record)}
    return ext.transport.credential_response(body, status=201)


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


@blueprint.delete("/<authgate_token_id:token_id>")
@token_required(sessions_only=True)
def revoke_token(token_id: str) -> Response:
    get_extension().service.api_tokens.revoke_api_token(authenticate_request(), token_id)
    return Response(status=204)
