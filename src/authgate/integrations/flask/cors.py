"""CORS from the one policy (``authgate.http.cors_policy``), answered by flask-cors's header logic.

Only requests that carry an ``Origin`` header can be cross-origin, so only they pay for the CORS
evaluation; every response says ``Vary: Origin`` so that caches keep the two kinds apart.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, request
from flask_cors.core import DEFAULT_OPTIONS, serialize_options, set_cors_headers

from authgate.config import Settings
from authgate.http.cors_policy import cors_options


def _add_vary_origin(response: Response) -> None:
    vary = response.headers.get("Vary")
    if not vary:
        response.headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Origin"


def make_cors(settings: Settings) -> Callable[[Response], None]:
    """The function that adds CORS headers (and ``Vary: Origin``) to a response."""
    options = serialize_options({**DEFAULT_OPTIONS, **cors_options(settings)})

    def apply_cors(response: Response) -> None:
        _add_vary_origin(response)
        origin = request.environ.get("HTTP_ORIGIN")
        if origin is not None and "Access-Control-Allow-Origin" not in response.headers:
            set_cors_headers(response, options)

    return apply_cors
