"""``authgate serve`` in development: werkzeug's threaded server, reachable at every loopback name.

Cookies, CSRF's Origin check, the token issuer, OAuth redirect URIs and avatar URLs all follow the
public URL (``http://localhost:<port>`` unless set), so the server does not pretend to be at
another name: a page opened at another loopback name (``127.0.0.1``, ``[::1]``) is redirected to
the public URL's host. Only GETs of the HTML pages are redirected, never an API call: a script
or frontend calling the API at the wrong name keeps getting the CSRF/CORS answer that names it.
On loopback it listens on both ``127.0.0.1`` and ``::1`` (when the machine has IPv6), so that
each name connects. Production (``serve --production``, gunicorn) has none of this.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.utils import redirect
from werkzeug.wsgi import get_current_url

from authgate.config import Settings
from authgate.core.diagnostics import plain_http_cookie_problem
from authgate.core.origins import is_local_host, parse_origin
from authgate.integrations.flask.web_views import page_asset, pages_blueprint
from authgate.server import create_app

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["LoopbackPageRedirect", "development_app", "open_line", "run_development_server"]

log = logging.getLogger("authgate")

_IPV4_LOOPBACK = "127.0.0.1"
_IPV6_LOOPBACK = "::1"
_PAGE_METHODS = frozenset({"GET", "HEAD"})


class LoopbackPageRedirect:
    """WSGI middleware: a page (GET/HEAD of one of the HTML pages) asked for at a loopback name
    other than the public URL's host is answered 307 to the same path at the public URL."""

    def __init__(self, app: Flask, public_url: str) -> None:
        self.app = app
        self.wsgi_app: WSGIApplication = app.wsgi_app
        self.public = parse_origin(public_url)
        self._asset_endpoint = f"{pages_blueprint.name}.{page_asset.__name__}"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        target = self.redirect_target(environ)
        if target is None:
            return self.wsgi_app(environ, start_response)
        return redirect(target, code=307)(environ, start_response)

    def redirect_target(self, environ: WSGIEnvironment) -> str | None:
        """The public URL of the page asked for, if it was asked for at another loopback name."""
        if environ.get("REQUEST_METHOD") not in _PAGE_METHODS:
            return None
        if not is_local_host(self.public.host):
            return None  # a public URL elsewhere (a tunnel, a proxy): not ours to guess
        try:
            url = urlsplit(get_current_url(environ))
            host = url.hostname or ""
        except ValueError:  # a Host header that is no host: let the app answer it
            return None
        if host.lower() == self.public.host.lower() or not is_local_host(host):
            return None
        if not self._is_page(environ):
            return None
        return urlunsplit((self.public.scheme, self.public.netloc, url.path, url.query, ""))

    def _is_page(self, environ: WSGIEnvironment) -> bool:
        try:
            endpoint, _ = self.app.url_map.bind_to_environ(environ).match()
        except HTTPException:  # not found, wrong method, a trailing-slash redirect
            return False
        return (
            isinstance(endpoint, str)
            and endpoint.startswith(pages_blueprint.name + ".")
            and endpoint != self._asset_endpoint
        )


def _format_url(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _listen_ipv6_loopback(port: int) -> socket.socket | None:
    """A listening socket on ``[::1]:port``, or None when the machine has no IPv6 loopback or
    another program holds that address."""
    if not socket.has_ipv6:
        return None
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((_IPV6_LOOPBACK, port))
        sock.listen(BaseWSGIServer.request_queue_size)
    except OSError as e:
        sock.close()
        log.info("Not listening on [::1]:%d (%s): use localhost or 127.0.0.1.", port, e.strerror)
        return None
    return sock


def _servers(settings: Settings, app: WSGIApplication) -> list[BaseWSGIServer]:
    """The main server on ``host:port`` (werkzeug exits with its message if the port is taken),
    and, when that is the IPv4 loopback, one on ``[::1]:port`` beside it."""
    main = make_server(settings.host, settings.port, app, threaded=True)
    servers = [main]
    if settings.host in (_IPV4_LOOPBACK, "localhost"):
        sock = _listen_ipv6_loopback(main.port)
        if sock is not None:
            with sock:  # werkzeug duplicates the descriptor
                servers.append(
                    make_server(_IPV6_LOOPBACK, main.port, app, threaded=True, fd=sock.fileno())
                )
    return servers


def open_line(settings: Settings, listening: list[str]) -> str:
    """The last startup line: the one URL to open, and which other addresses redirect there."""
    public = parse_origin(settings.public_url)
    others = [
        url
        for url in listening
        if url != settings.public_url and is_local_host(parse_origin(url).host)
    ]
    if others and is_local_host(public.host):
        verb = "redirects" if len(others) == 1 else "redirect"
        return (
            f"Open {settings.public_url} in your browser "
            f"({' and '.join(others)} {verb} pages there)."
        )
    return f"Open {settings.public_url} in your browser."


def development_app(settings: Settings) -> Flask:
    """``create_app(settings)``, its pages redirected to the public URL from other loopback names
    — unless a proxy is trusted: then the Host the server sees is the proxy's to choose (the
    generated nginx configuration sends the public URL's), and a redirect could loop."""
    app = create_app(settings)
    if not settings.trusted_proxies:
        app.wsgi_app = LoopbackPageRedirect(app, settings.public_url)  # type: ignore[method-assign]
    return app


def run_development_server(settings: Settings) -> None:
    """Serve until interrupted (Ctrl+C)."""
    app = development_app(settings)
    servers = _servers(settings, app)
    listening = [_format_url("http", server.host, server.port) for server in servers]
    log.warning(
        "Starting the authgate DEVELOPMENT server on %s (single process, not for production: "
        "use `authgate serve --production`). Press Ctrl+C to quit.",
        " and ".join(listening),
    )
    plain_http = plain_http_cookie_problem(settings.public_url)
    if plain_http is not None:
        log.warning("Logins will not stick: %s", plain_http)
    log.warning("%s", open_line(settings, listening))
    for extra in servers[1:]:
        threading.Thread(target=extra.serve_forever, name="authgate-ipv6", daemon=True).start()
    try:
        servers[0].serve_forever()
    finally:
        for extra in servers[1:]:
            extra.shutdown()
