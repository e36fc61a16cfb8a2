"""The development server's glue: page requests at another loopback name are redirected to the
public URL (never API calls), it listens on both loopback families, and its last startup line
names the URL to open. The whole path in a browser: tests/e2e/test_first_hour.py."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authgate import dev_server
from authgate.config import Settings
from authgate.dev_server import development_app, open_line
from tests.helpers import PASSWORD, free_port, has_ipv6_loopback


def _app(tmp_path: Path, **values: object) -> Flask:
    """The app the development server runs."""
    return development_app(Settings(instance_path=tmp_path, **values))  # type: ignore[arg-type]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[FlaskClient]:
    yield _app(tmp_path, port=8099).test_client()


@pytest.mark.parametrize("host", ["127.0.0.1:8099", "[::1]:8099", "app.localhost:8099"])
@pytest.mark.parametrize("path", ["/", "/?next=/account", "/register", "/account", "/admin/users"])
def test_a_page_at_another_loopback_name_is_redirected_to_the_public_url(
    client: FlaskClient, host: str, path: str
) -> None:
    for method in (client.get, client.head):
        response = method(path, base_url=f"http://{host}")
        assert response.status_code == 307
        assert response.headers["Location"] == f"http://localhost:8099{path}"


def test_a_page_at_the_public_url_is_served(client: FlaskClient) -> None:
    with client.get("/?next=/account", base_url="http://localhost:8099") as response:
        assert response.status_code == 200
        assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/auth/me", 401),
        ("GET", "/healthz", 200),
        ("GET", "/authgate.js", 200),
        ("GET", "/static/authgate/app.css", 200),
        ("GET", "/nope", 404),
        ("POST", "/api/auth/login", 403),  # the CSRF answer naming the origin, as before
        ("POST", "/", 405),
    ],
)
def test_api_calls_assets_and_other_requests_are_never_redirected(
    client: FlaskClient, method: str, path: str, status: int
) -> None:
    with client.open(
        path,
        method=method,
        base_url="http://127.0.0.1:8099",
        headers={"Origin": "http://127.0.0.1:8099"},
        json={"login": "a@example.com", "password": PASSWORD} if method == "POST" else None,
    ) as response:
        assert response.status_code == status, response.get_data(as_text=True)[:300]


def test_a_public_url_that_is_not_loopback_redirects_nothing(tmp_path: Path) -> None:
    client = _app(tmp_path, public_url="https://auth.example.test").test_client()
    with client.get("/account", base_url="http://127.0.0.1:8086") as response:
        assert response.status_code == 200


def test_behind_a_trusted_proxy_nothing_is_redirected(tmp_path: Path) -> None:
    """The proxy chooses the Host the server sees: a redirect could send the browser round."""
    client = _app(tmp_path, trusted_proxies=1).test_client()
    with client.get("/account", base_url="http://127.0.0.1:8086") as response:
        assert response.status_code == 200


def test_a_host_header_that_is_no_host_is_answered_by_the_app(client: FlaskClient) -> None:
    with client.get("/", headers={"Host": "[::1"}) as response:
        assert response.status_code != 307


def test_the_last_line_names_the_url_to_open() -> None:
    default = Settings(port=8099)
    both = ["http://127.0.0.1:8099", "http://[::1]:8099"]
    assert open_line(default, both) == (
        "Open http://localhost:8099 in your browser "
        "(http://127.0.0.1:8099 and http://[::1]:8099 redirect pages there)."
    )
    assert open_line(default, both[:1]) == (
        "Open http://localhost:8099 in your browser (http://127.0.0.1:8099 redirects pages there)."
    )
    everywhere = Settings(host="0.0.0.0", port=8099)
    assert open_line(everywhere, ["http://0.0.0.0:8099"]) == (
        "Open http://localhost:8099 in your browser."
    )
    proxied = Settings(public_url="https://auth.example.test")
    assert open_line(proxied, both) == "Open https://auth.example.test in your browser."


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_loopback_listens_on_both_families(tmp_path: Path) -> None:
    port = free_port()
    servers = dev_server._servers(Settings(port=port), _app(tmp_path))
    try:
        assert [(s.address_family, s.server_address[:2]) for s in servers] == [
            (socket.AF_INET, ("127.0.0.1", port)),
            (socket.AF_INET6, ("::1", port)),
        ]
    finally:
        for server in servers:
            server.server_close()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_a_busy_ipv6_loopback_is_skipped_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET6) as holder:
        holder.bind(("::1", port))
        holder.listen()
        with caplog.at_level(logging.INFO, logger="authgate"):
            servers = dev_server._servers(Settings(port=port), _app(tmp_path))
    try:
        assert [s.server_address[:2] for s in servers] == [("127.0.0.1", port)]
        assert f"Not listening on [::1]:{port}" in caplog.text
    finally:
        for server in servers:
            server.server_close()


class _StoppedServer:
    """A server that returns at once from ``serve_forever``: the startup lines are all we want."""

    host = "127.0.0.1"
    port = 8086

    def serve_forever(self) -> None:
        pass


@pytest.mark.parametrize(
    ("public_url", "warned"),
    [("http://app.example.test:8086", True), ("http://localhost:8086", False)],
)
def test_serve_warns_at_startup_that_plain_http_off_localhost_drops_the_cookies(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, public_url: str, warned: bool
) -> None:
    monkeypatch.setattr(dev_server, "development_app", lambda settings: None)
    monkeypatch.setattr(dev_server, "_servers", lambda settings, app: [_StoppedServer()])
    with caplog.at_level(logging.INFO, logger="authgate"):
        dev_server.run_development_server(Settings(public_url=public_url))

    messages = [record.getMessage() for record in caplog.records]
    warning = [m for m in messages if "browsers drop the Secure cookies" in m]
    if warned:
        (line,) = warning
        assert "plain http on app.example.test, not localhost" in line
        assert "authgate tls dev" in line
    else:
        assert warning == []
    assert messages[-1].startswith("Open ")  # still the last line
