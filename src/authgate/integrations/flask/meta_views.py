"""Public endpoints: JWKS, health and readiness, the OpenAPI document."""

from __future__ import annotations

from typing import cast

from flask import Blueprint, Response, current_app, jsonify, request

from authgate.core.diagnostics import RequestView, diagnose_request
from authgate.core.keys import JWKS_MAX_AGE_SECONDS
from authgate.errors import ServiceUnavailableError
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.readiness import READINESS_KEY, Readiness

blueprint = Blueprint("authgate_meta", __name__)


@blueprint.get("/.well-known/jwks.json")
def jwks() -> Response:
    response = jsonify(get_extension().service.keys.jwks())
    # A rotated key is published at least this long before it signs (docs/sessions.md).
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE_SECONDS}"
    return response


@blueprint.get("/healthz")
def healthz() -> dict[str, str]:
    if not get_extension().service.is_healthy():
        raise ServiceUnavailableError("The database does not answer.")
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz() -> Response:
    """Ready to serve: the database, Redis (when configured) and the signing keys; 503 naming
    the check that failed (``readiness``)."""
    ready, checks = cast(Readiness, current_app.extensions[READINESS_KEY]).check()
    response = jsonify({"status": "ready" if ready else "not_ready", "checks": checks})
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/api/auth/diagnose")
def diagnose() -> Response:
    """No authentication; readable from any origin (without credentials) so that a page on an
    origin that is not allowed can still learn why."""
    ext = get_extension()
    view = RequestView(
        origin=request.headers.get("Origin"),
        session_cookie=ext.transport.has_session_cookie(request),
        refresh_cookie=ext.transport.refresh_cookie(request) is not None,
        scheme=request.scheme,
        host=request.host,
        client_ip=request.remote_addr,
        sec_fetch_site=request.headers.get("Sec-Fetch-Site"),
    )
    report = diagnose_request(
        view,
        public_url=ext.settings.public_url,
        allowlist=ext.transport.allowlist,
        cookie_policy=ext.transport.cookie_policy,
        cookie_name=ext.settings.session_cookie_name,
        trusted_proxies=ext.settings.trusted_proxies,
    )
    response = jsonify(report)
    response.headers["Cache-Control"] = "no-store"
    if view.origin is not None and not report["origin_allowed"]:
        response.headers["Access-Control-Allow-Origin"] = "*"  # never with credentials
    return response


@blueprint.get("/api/openapi.json")
def openapi() -> dict[str, object]:
    # Imported here: the document's code (1.5 MB) is loaded by the first process asked for it.
    from authgate.http.openapi import build_openapi

    ext = get_extension()
    return build_openapi(ext.settings, ext.service.api_tokens.scopes)
