"""What every response of an app with ``AuthGate(app)`` carries: ``X-Request-ID`` and, with an
origin allowlist, ``Vary: Origin`` and the CORS headers.

They are added by a WSGI middleware around ``app.wsgi_app``, to the header list the app starts
its response with, instead of a Flask ``after_request`` hook, which reached the request and the
response through Flask's context proxies and Werkzeug's ``Headers`` on every route of the app
(most of the 90,000 instructions per request measured by ``benchmarks/instructions.py``). Every
response passes here, errors included, whichever view or handler made it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from authgate.integrations.flask.cors import CorsPolicy, add_vary_origin
from authgate.integrations.flask.request_ids import assign_request_id

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_REQUEST_ID_HEADER = "X-Request-ID"


class ResponseHeaders:
    """``app.wsgi_app = ResponseHeaders(app.wsgi_app, cors=...)``."""

    def __init__(self, wsgi_app: WsgiApp, *, cors: CorsPolicy | None):
        self.wsgi_app = wsgi_app
        self.cors = cors

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request_id = assign_request_id(environ)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            self._finish(environ, headers, request_id)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)

    def _finish(self, environ: Environ, headers: list[tuple[str, str]], request_id: str) -> None:
        vary_index = request_id_index = -1
        allows_origin = False
        for index, (name, _) in enumerate(headers):
            lowered = name.lower()
            if lowered == "vary":
                vary_index = index
            elif lowered == "x-request-id":
                request_id_index = index
            elif lowered == "access-control-allow-origin":
                allows_origin = True
        # The request id is ours to say, whatever a view set.
        if request_id_index < 0:
            headers.append((_REQUEST_ID_HEADER, request_id))
        else:
            headers[request_id_index] = (_REQUEST_ID_HEADER, request_id)
        cors = self.cors
        if cors is None:
            return
        add_vary_origin(headers, vary_index)
        if not allows_origin and "HTTP_ORIGIN" in environ:
            headers.extend(cors.headers_for(environ))
