"""Operations on the real production server, ``authgate serve --production --workers 2``:
metrics scraped over HTTP and summed across both gunicorn workers, readiness, and JSON log
lines carrying the request id."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import Database, create_database, new_http_session
from tests.e2e.test_serve_command import _env, _serve, _stop, _wait_healthy
from tests.helpers import KEY_ENCRYPTION_KEY, PASSWORD, free_port

LOGINS = 40
WRONG_LOGINS = 12
SCRAPES = 6


@dataclass
class Production:
    process: subprocess.Popen[bytes]
    base: str
    log: Path
    tmp: Path  # the server's TMPDIR: where its metrics directory is

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """On a connection of its own (``Connection: close``): any worker may take it."""
        with new_http_session() as http:
            headers = {"Connection": "close", **kwargs.pop("headers", {})}
            return http.post(self.base + path, headers=headers, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        with new_http_session() as http:
            headers = {"Connection": "close", **kwargs.pop("headers", {})}
            return http.get(
                self.base + path, headers=headers, timeout=10, allow_redirects=False, **kwargs
            )

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def metrics_directory(self) -> Path:
        (directory,) = self.tmp.glob("authgate-metrics-*")
        return directory


def _production_env(workdir: Path, database_url: str, **extra: str) -> dict[str, str]:
    settings = {
        "AUTHGATE_ENV": "production",
        "AUTHGATE_PUBLIC_URL": "https://auth.example.test",
        "AUTHGATE_DATABASE_URL": database_url,
        "AUTHGATE_KEYS_DIR": str(workdir / "keys"),
        "AUTHGATE_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
        "AUTHGATE_ORIGINS": "https://app.example.test",
        **extra,
    }
    try:  # production seals second-factor secrets with a key of its own, where that exists
        from authgate.core.secret_boxes import new_key_encryption_key
    except ImportError:
        pass
    else:
        settings["AUTHGATE_KEY_ENCRYPTION_KEY"] = new_key_encryption_key()
    rotate = subprocess.run(
        [sys.executable, "-m", "authgate", "keys", "rotate"],
        env=_env(**settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rotate.returncode == 0, rotate.stderr
    tmp = workdir / "tmp"
    tmp.mkdir(exist_ok=True)
    return _env(**settings, TMPDIR=str(tmp))


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = create_database("postgresql", tmp_path)
    try:
        yield db
    finally:
        db.close()


def _start(workdir: Path, database: Database, **extra: str) -> Production:
    env = _production_env(workdir, database.url, **extra)
    port = free_port()
    log = workdir / "serve.log"
    process = _serve(["--production", "--workers", "2", "--port", str(port)], env, workdir, log)
    base = f"http://127.0.0.1:{port}"
    _wait_healthy(process, base, log)
    return Production(process, base, log, workdir / "tmp")


@pytest.fixture
def production(tmp_path: Path, database: Database) -> Iterator[Production]:
    server = _start(tmp_path, database, AUTHGATE_METRICS="loopback", AUTHGATE_LOG_FORMAT="json")
    try:
        yield server
    finally:
        if server.process.poll() is None:
            _stop(server.process)


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def _value(text: str, name: str, **labels: str) -> float:
    return _samples(text).get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_summed_across_two_gunicorn_workers(production: Production) -> None:
    body = {"email": "ops@example.com", "password": PASSWORD}
    assert production.post("/api/auth/register", json=body).status_code == 201
    for _ in range(LOGINS):
        login = production.post(
            "/api/auth/login", json={"login": body["email"], "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
    for i in range(WRONG_LOGINS):
        wrong = {"login": f"nobody{i}@example.com", "password": "not the password"}
        assert production.post("/api/auth/login", json=wrong).status_code == 401

    # Whichever worker answers a scrape, it reports what both did.
    for _ in range(SCRAPES):
        scrape = production.get("/metrics")
        assert scrape.status_code == 200, scrape.text
        text = scrape.text
        assert _value(text, "authgate_logins_total", outcome="success") == LOGINS
        assert _value(text, "authgate_logins_total", outcome="invalid_credentials") == WRONG_LOGINS
        requests_counted = _value(
            text,
            "authgate_http_request_duration_seconds_count",
            route="/api/auth/login",
            method="POST",
            status="2xx",
        )
        assert requests_counted == LOGINS

    # Both workers served some of them: each wrote its values to a file named by its pid.
    workers = production.worker_pids()
    assert len(workers) == 2, workers
    writers = {
        int(m.group(1))
        for f in production.metrics_directory().iterdir()
        if (m := re.fullmatch(r"(?:counter|histogram)_(\d+)\.db", f.name))
    }
    assert writers == workers, (writers, workers)

    # Not through a proxy, even one on this host.
    proxied = production.get("/metrics", headers={"X-Forwarded-For": "192.0.2.7"})
    assert proxied.status_code == 403


def test_readiness_on_the_production_server(production: Production) -> None:
    ready = production.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "signing_keys": "ok"}}
    assert production.get("/healthz").json() == {"status": "ok"}


def test_json_log_lines_carry_the_request_id(production: Production) -> None:
    request_id = "ops-log-check-1"
    failed = production.get(
        "/api/oauth/nosuch/callback", params={"state": "x"}, headers={"X-Request-ID": request_id}
    )
    assert failed.status_code == 302
    assert failed.headers["X-Request-ID"] == request_id
    directory = production.metrics_directory()
    assert _stop(production.process) == 0
    assert not directory.exists()  # the master removed its metrics directory

    # Every line the server wrote, gunicorn's master and access log included, is one object.
    lines = production.log.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    assert entries[0]["message"].startswith("Starting gunicorn"), entries[0]
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
    app_lines = [e for e in entries if e["logger"] == "authgate.oauth"]
    assert app_lines and app_lines[0]["request_id"] == request_id, app_lines
    assert app_lines[0]["level"] == "WARNING"
    access = [e for e in entries if e["logger"] == "gunicorn.access" and e.get("path", "")]
    callback = [e for e in access if e["path"] == "/api/oauth/nosuch/callback"]
    assert callback, access[-5:]
    assert callback[0]["request_id"] == request_id
    assert callback[0]["status"] == 302
    assert "state=" not in callback[0]["message"]  # the query (an OAuth code...) is left out
    assert any(e["logger"] == "gunicorn.error" for e in entries)


def test_metrics_off_is_404_on_the_production_server(tmp_path: Path, database: Database) -> None:
    server = _start(tmp_path, database)
    try:
        assert server.get("/metrics").status_code == 404
        assert not list(server.tmp.glob("authgate-metrics-*"))
        # Text logs by default: the access lines are not JSON.
        server.get("/healthz")
        time.sleep(0.2)
    finally:
        _stop(server.process)
    assert '"GET /healthz HTTP/1.1" 200' in server.log.read_text()


def test_metrics_token_on_the_production_server(tmp_path: Path, database: Database) -> None:
    token = "e2e-metrics-token-" + "0123456789abcdef" * 2
    server = _start(tmp_path, database, AUTHGATE_METRICS=token)
    try:
        assert server.get("/metrics").status_code == 401
        assert server.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        scrape = server.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert scrape.status_code == 200
        refused = _value(
            scrape.text,
            "authgate_http_request_duration_seconds_count",
            route="/metrics",
            method="GET",
            status="4xx",
        )
        assert refused == 2
    finally:
        _stop(server.process)
