"""One place that turns errors into JSON: ``{"error": {"code", "message"}}``.

Which requests get JSON (docs/api.md#errors): authgate's own errors (``AuthError``) always. For
framework errors (404, 405, 413, ...), database outages and unexpected exceptions:

- under ``/api/``, ``/.well-known/``, ``/healthz``, ``/readyz`` and ``/metrics``: always JSON;
- elsewhere, in an app using ``AuthGate(app)``: JSON when the client asks for it
  (``Accept: application/json``), otherwise the app's own error handling (its pages are not ours);
- elsewhere, on the standalone server (``register_error_pages``): JSON, except for a browser that
  prefers ``text/html`` over JSON, which gets a small HTML page in the style of authgate's pages.
"""

from __future__ import annotations

import logging
from html import escape
from typing import Literal

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from authgate.errors import (
    AuthError,
    NotFoundError,
    RateLimitedError,
    ServerBusyError,
    ServiceUnavailableError,
    StoreUnavailableError,
)
from authgate.integrations.flask.path_ids import PathIdNotFound
from authgate.integrations.flask.request_ids import current_request_id
from authgate.integrations.flask.web_views import PAGE_CSP

log = logging.getLogger("authgate")

_JSON_PREFIXES = ("/api/", "/.well-known/", "/healthz", "/readyz", "/metrics")
# Where an error answer's code is noted in the WSGI environ (read by the metrics, when on).
ERROR_CODE_KEY = "authgate.error_code"
# What a 503 asks the client to wait: a database restart or fail-over takes seconds.
RETRY_AFTER_SECONDS = 5
HTTP_ERROR_CODES = _HTTP_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "rate_limited",
}


# ``app.extensions`` key: the app is only authgate, so every path's errors are ours to render.
_ERROR_PAGES = "authgate.error_pages"

ErrorFormat = Literal["json", "html", "app"]


def register_error_pages(app: Flask) -> None:
    """For the standalone server: errors outside the JSON prefixes are JSON too, or a small
    HTML page for a browser asking for HTML -- never Werkzeug's bare HTML."""
    app.extensions[_ERROR_PAGES] = True


def _wants_json() -> bool:
    return request.path.startswith(_JSON_PREFIXES) or request.accept_mimetypes.best == (
        "application/json"
    )


def _error_format() -> ErrorFormat:
    """How to render a framework error or an outage here: see the module docstring."""
    if request.path.startswith(_JSON_PREFIXES):
        return "json"
    if current_app.extensions.get(_ERROR_PAGES):
        preferred = request.accept_mimetypes.best_match(("application/json", "text/html"))
        return "html" if preferred == "text/html" else "json"
    return "json" if _wants_json() else "app"


def _error_page(status: int, title: str, message: str) -> Response:
    """A small page for a browser, styled like the login pages (same stylesheet and CSP)."""
    heading = escape(f"{status} {title}")
    body = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{heading} — authgate</title>
  <link rel="icon" href="/static/authgate/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/static/authgate/app.css">
</head>
<body>
  <header class="top"><span class="brand">authgate</span><a href="/">Log in</a></header>
  <main class="narrow">
    <h1>{heading}</h1>
    <p>{escape(message)}</p>
  </main>
</body>
</html>
"""
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def error_response(error: AuthError) -> Response:
    request.environ[ERROR_CODE_KEY] = error.code
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if error.status == 401:
        value = 'Bearer realm="authgate"'
        if error.code in ("invalid_token", "token_expired", "token_revoked"):
            value += ', error="invalid_token"'
        response.headers["WWW-Authenticate"] = value
    if isinstance(error, (RateLimitedError, ServerBusyError)):
        response.headers["Retry-After"] = str(error.retry_after)
    elif error.status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _handle_http_exception(error: HTTPException) -> Response | HTTPException:
    error_format = _error_format()
    if error_format == "app":
        return error
    status = error.code or 500
    if error_format == "html":
        response = _error_page(status, error.name, error.description or error.name)
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response
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
    message = "The database is unavailable; try again in a few seconds."
    error_format = _error_format()
    if error_format == "app":
        return ServiceUnavailable(retry_after=RETRY_AFTER_SECONDS)
    if error_format == "html":
        response = _error_page(503, "Service Unavailable", message)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return error_response(ServiceUnavailableError(message))


def _handle_unexpected(error: Exception) -> Response | HTTPException:
    request_id = current_request_id()
    log.error(
        "unhandled error in %s %s [request %s]",
        request.method,
        request.path,
        request_id,
        exc_info=error,
    )
    message = f"An unexpected error occurred (request id {request_id})."
    error_format = _error_format()
    if error_format == "app":
        return InternalServerError()
    if error_format == "html":
        return _error_page(500, "Internal Server Error", message)
    response = jsonify({"error": {"code": "internal_error", "message": message}})
    response.status_code = 500
    return response


def _handle_path_id(_error: PathIdNotFound) -> Response:
    return error_response(NotFoundError())


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(AuthError, error_response)
    # authgate's own 404 for its ids, before any 404 handler of the app.
    app.register_error_handler(PathIdNotFound, _handle_path_id)
    app.register_error_handler(StoreUnavailableError, _handle_store_unavailable)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
