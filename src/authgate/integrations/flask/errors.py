"""One place that turns errors into JSON: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from authgate.errors import (
    AuthError,
    RateLimitedError,
    ServiceUnavailableError,
    StoreUnavailableError,
)
from authgate.integrations.flask.request_ids import current_request_id

log = logging.getLogger("authgate")

_JSON_PREFIXES = ("/api/", "/.well-known/", "/healthz")
# What a 503 asks the client to wait: a database restart or fail-over takes seconds.
RETRY_AFTER_SECONDS = 5
_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "rate_limited",
}


def _wants_json() -> bool:
    return request.path.startswith(_JSON_PREFIXES) or request.accept_mimetypes.best == (
        "application/json"
    )


def error_response(error: AuthError) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if error.status == 401:
        value = 'Bearer realm="authgate"'
        if error.code in ("invalid_token", "token_expired", "token_revoked"):
            value += ', error="invalid_token"'
        response.headers["WWW-Authenticate"] = value
    if isinstance(error, RateLimitedError):
        response.headers["Retry-After"] = str(error.retry_after)
    elif error.status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _handle_http_exception(error: HTTPException) -> Response | HTTPException:
    if not _wants_json():
        return error
    status = error.code or 500
    response = jsonify(
        {
            "error": {
                "code": _HTTP_CODES.get(status, "http_error"),
                "message": error.description or error.name,
            }
        }
    )
    response.status_code = status
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _handle_store_unavailable(error: StoreUnavailableError) -> Response | HTTPException:
    """The database failed or does not answer: an outage, not a bug. 503 with ``Retry-After``,
    and one log line per request (the traceback only at debug level)."""
    request_id = current_request_id()
    cause = error.__cause__ or error
    log.warning(
        "database unavailable in %s %s [request %s]: %s",
        request.method,
        request.path,
        request_id,
        type(cause).__name__,
    )
    log.debug("database failure [request %s]", request_id, exc_info=error)
    if not _wants_json():
        return ServiceUnavailable(retry_after=RETRY_AFTER_SECONDS)
    return error_response(
        ServiceUnavailableError("The database is unavailable; try again in a few seconds.")
    )


def _handle_unexpected(error: Exception) -> Response | HTTPException:
    request_id = current_request_id()
    log.error(
        "unhandled error in %s %s [request %s]",
        request.method,
        request.path,
        request_id,
        exc_info=error,
    )
    if not _wants_json():
        return InternalServerError()
    response = jsonify(
        {
            "error": {
                "code": "internal_error",
                "message": f"An unexpected error occurred (request id {request_id}).",
            }
        }
    )
    response.status_code = 500
    return response


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(AuthError, error_response)
    app.register_error_handler(StoreUnavailableError, _handle_store_unavailable)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
