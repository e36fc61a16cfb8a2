"""Public endpoints: JWKS, health, the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from authgate.errors import ServiceUnavailableError
from authgate.integrations.flask.context import get_extension
from authgate.openapi import build_openapi

blueprint = Blueprint("authgate_meta", __name__)


@blueprint.get("/.well-known/jwks.json")
def jwks() -> Response:
    response = jsonify(get_extension().service.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@blueprint.get("/healthz")
def healthz() -> dict[str, str]:
    if not get_extension().service.is_healthy():
        raise ServiceUnavailableError("The database does not answer.")
    return {"status": "ok"}


@blueprint.get("/api/openapi.json")
def openapi() -> dict[str, object]:
    return build_openapi(get_extension().settings)
