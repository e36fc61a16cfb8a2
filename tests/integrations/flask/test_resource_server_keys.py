"""``ResourceServer``'s key fetching: an outage of authgate must not leave it without keys."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from authgate.core.keys import JWKS_MAX_AGE_SECONDS, KeyRing, generate_key
from authgate.errors import ServiceUnavailableError
from authgate.integrations.flask import resource_server
from authgate.integrations.flask.resource_server import JwksKeys


class JwksServer(http.server.ThreadingHTTPServer):
    jwks: dict[str, object] | None = None  # None: answer 503


class _Handler(http.server.BaseHTTPRequestHandler):
    server: JwksServer

    def do_GET(self) -> None:
        body = json.dumps(self.server.jwks).encode() if self.server.jwks else b"down"
        self.send_response(200 if self.server.jwks else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_keys_are_fetched_as_soon_as_authgate_answers_again(
    jwks_server: JwksServer, tmp_path: Path
) -> None:
    key = generate_key(tmp_path, dev=True, now=datetime.now(UTC))
    keys = JwksKeys(f"http://127.0.0.1:{jwks_server.server_port}/jwks", refetch_seconds=3600)

    with pytest.raises(ServiceUnavailableError):
        keys.current()
    jwks_server.jwks = KeyRing([key]).jwks()

    found = keys.current()

    assert found.public_key(key.kid) is not None


def test_known_keys_outlive_an_outage(jwks_server: JwksServer, tmp_path: Path) -> None:
    key = generate_key(tmp_path, dev=True, now=datetime.now(UTC))
    jwks_server.jwks = KeyRing([key]).jwks()
    keys = JwksKeys(f"http://127.0.0.1:{jwks_server.server_port}/jwks", refetch_seconds=0)
    assert keys.current().public_key(key.kid) is not None
    jwks_server.jwks = None

    still = keys.current(refresh=True)

    assert still.public_key(key.kid) is not None


def test_the_keys_are_fetched_again_after_the_documents_max_age(
    jwks_server: JwksServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key authgate retired (compromised: ``keys rotate --immediate``) stops verifying here
    once the JWKS's ``max-age`` has passed, not an hour later."""
    now = [1000.0]
    monkeypatch.setattr(resource_server.time, "monotonic", lambda: now[0])
    retired = generate_key(tmp_path, dev=True, now=datetime.now(UTC))
    successor = generate_key(tmp_path, dev=True, now=datetime.now(UTC))
    jwks_server.jwks = KeyRing([retired, successor]).jwks()
    keys = JwksKeys(f"http://127.0.0.1:{jwks_server.server_port}/jwks")
    assert keys.current().public_key(retired.kid) is not None
    jwks_server.jwks = KeyRing([successor]).jwks()

    now[0] += JWKS_MAX_AGE_SECONDS - 1
    assert keys.current().public_key(retired.kid) is not None
    now[0] += 1
    assert keys.current().public_key(retired.kid) is None
