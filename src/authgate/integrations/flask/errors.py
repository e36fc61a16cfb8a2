"""One place that turns errors into JSON: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from authgate.errors import AuthError, RateLimitedError

log = logging.getLogger("authgate")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_JSON_PREFIXES = ("/api/", "/.well-known/", "/healthz")
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
    return response


class RequestIds:
    """Unique request ids without a system call per request: a random per-process prefix and a
    counter (the prefix is drawn again in a forked child)."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count()

    def next(self) -> str:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._prefix = secrets.token_hex(8)
            self._counter = itertools.count()
        return f"{self._prefix}{next(self._counter):016x}"


_request_ids = RequestIds()


def _assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID")
    if incoming and _REQUEST_ID.match(incoming):
        g.authgate_request_id = incoming
    else:
        g.authgate_request_id = _request_ids.next()


def _echo_request_id(response: Response) -> Response:
    request_id = g.get("authgate_request_id")
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response


def _handle_auth_error(error: AuthError) -> Response:
    return error_response(error)


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


def _handle_unexpected(error: Exception) -> Response | HTTPException:
    request_id = g.get("authgate_request_id", "-")
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
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
    app.register_error_handler(AuthError, _handle_auth_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
