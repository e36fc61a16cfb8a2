"""What the doctor tests share: settings built here, findings picked by check, the command
line, and a tiny fake HTTP server answering what a misconfigured proxy would."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from authgate.cli import main
from authgate.config import Environment, Settings
from authgate.core.keys import generate_key
from authgate.doctor import Finding
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import upgrade_database
from tests.helpers import KEY_ENCRYPTION_KEY

PUBLIC = "https://auth.example.com"
SAME_SITE = "https://app.example.com"
CROSS_SITE = "https://app.other-example.org"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def only(findings: list[Finding], check: str) -> Finding:
    found = [f for f in findings if f.check == check]
    assert len(found) == 1, (check, findings)
    return found[0]


def checks(findings: list[Finding]) -> set[str]:
    return {f.check for f in findings}


def errors(findings: list[Finding]) -> set[str]:
    return {f.check for f in findings if f.level == "error"}


def sqlite_url(tmp_path: Path, name: str = "authgate.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def migrated_sqlite(tmp_path: Path, revision: str = "head") -> str:
    url = sqlite_url(tmp_path)
    engine = create_database_engine(url)
    try:
        upgrade_database(engine, revision)
    finally:
        engine.dispose()
    return url


def production_keys(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    generate_key(directory, dev=False, now=NOW)
    return directory


def dev_settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(instance_path=tmp_path, **values)


def production_settings(tmp_path: Path, **values: Any) -> Settings:
    defaults: dict[str, Any] = {
        "env": Environment.PRODUCTION,
        "instance_path": tmp_path,
        "public_url": PUBLIC,
        "database_url": sqlite_url(tmp_path),
        "keys_dir": tmp_path / "keys",
        "key_encryption_key": KEY_ENCRYPTION_KEY,
        "origins": (SAME_SITE,),
    }
    return Settings(**{**defaults, **values})


def run_cli(runner: CliRunner, args: list[str], env: Mapping[str, str]) -> Result:
    return runner.invoke(main, ["doctor", *args], env=dict(env), catch_exceptions=False)


def json_findings(result: Result) -> dict[str, Finding]:
    document = json.loads(result.stdout)
    return {
        f["check"]: Finding(f["level"], f["check"], f["message"], f["fix"])
        for f in document["findings"]
    }


Responder = Callable[[str, str, Mapping[str, str]], tuple[int, list[tuple[str, str]]]]


@contextmanager
def fake_server(respond: Responder, *, body: bytes | None = None) -> Iterator[str]:
    """A tiny HTTP server on 127.0.0.1 answering every request with ``respond(method, path,
    headers) -> (status, headers)``; headers may repeat. The body is ``body`` when given, else
    a JSON status for a 200 and nothing otherwise. Yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status, headers = respond(self.command, self.path, dict(self.headers.items()))
            content = body if body is not None else b'{"status": "ok"}' if status == 200 else b""
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_OPTIONS = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
