"""CORS from the one policy (``authgate.http.cors_policy``), answered by flask-cors's header logic.

Only requests that carry an ``Origin`` header can be cross-origin, so only they pay for the CORS
evaluation; every response says ``Vary: Origin`` so that caches keep the two kinds apart. Both
are added to the response's headers as it starts (``authgate.integrations.flask.response_headers``).
"""

from __future__ import annotations

from typing import Any

from flask_cors.core import DEFAULT_OPTIONS, get_cors_headers, serialize_options
from werkzeug.datastructures import EnvironHeaders

from authgate.config import Settings
from authgate.http.cors_policy import cors_options


def add_vary_origin(headers: list[tuple[str, str]], vary_index: int) -> None:
    """Make the response's ``Vary`` (at ``vary_index`` in ``headers``, -1 for none) name
    ``Origin``."""
    if vary_index < 0:
        headers.append(("Vary", "Origin"))
        return
    name, vary = headers[vary_index]
    if not vary:
        headers[vary_index] = (name, "Origin")
    elif "origin" not in vary.lower():
        headers[vary_index] = (name, f"{vary}, Origin")


class CorsPolicy:
    """The CORS headers that answer one request, from the settings' origin allowlist."""

    def __init__(self, settings: Settings):
        self._options = serialize_options({**DEFAULT_OPTIONS, **cors_options(settings)})

    def headers_for(self, environ: dict[str, Any]) -> list[tuple[str, str]]:
        """The ``Access-Control-*`` headers for a request that carries ``Origin`` (none for an
        origin outside the allowlist). ``Vary`` is left out: every response gets it anyway."""
        found = get_cors_headers(
            self._options, EnvironHeaders(environ), environ.get("REQUEST_METHOD", "GET")
        )
        return [(name, str(value)) for name, value in found.items() if name != "Vary"]
