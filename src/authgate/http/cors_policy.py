"""The CORS policy, from the one origin allowlist: what the Flask adapter answers with
(through flask-cors's header logic) and the generated nginx configuration repeats."""

from __future__ import annotations

from typing import Any

from authgate.config import Settings
from authgate.core.csrf import CSRF_HEADERS

ALLOW_HEADERS = ["Authorization", "Content-Type", *CSRF_HEADERS]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
EXPOSE_HEADERS = ["X-Request-ID", "WWW-Authenticate", "Retry-After"]


def cors_options(settings: Settings) -> dict[str, Any]:
    """Exact origins only; credentials allowed; nothing for any other origin."""
    return {
        "origins": list(settings.origins),
        "supports_credentials": True,
        "allow_headers": ALLOW_HEADERS,
        "methods": METHODS,
        "expose_headers": EXPOSE_HEADERS,
        "max_age": 600,
        "vary_header": True,
        "send_wildcard": False,
        "always_send": False,
    }
