"""``/readyz`` against a private PostgreSQL and a private redis-server, stopped, hung and
restarted under it: 503 naming the check that failed, never hanging, 200 again after."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from authgate.bootstrap import build_service
from authgate.integrations.flask.readiness import READY_TIMEOUT_SECONDS
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import upgrade_database
from tests.faults.postgres import PrivatePostgres
from tests.faults.test_redis_faults import RedisServer
from tests.helpers import make_app, make_settings

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

# What a probe may take at most: the checks' bound plus a loaded machine's slack.
PROBE_BOUND_SECONDS = READY_TIMEOUT_SECONDS + 1.5


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        engine = create_database_engine(server.url)
        upgrade_database(engine)
        engine.dispose()
        yield server
    finally:
        _signal_cluster(server, signal.SIGCONT)
        server.destroy()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.resume()
        server.kill()


@pytest.fixture
def client(
    tmp_path: Path, postgres: PrivatePostgres, redis_server: RedisServer
) -> Iterator[FlaskClient]:
    settings = make_settings(tmp_path, postgres.url, redis_url=redis_server.url)
    service = build_service(settings)
    yield make_app(service).test_client()
    service.close()


def _cluster_pids(server: PrivatePostgres) -> list[int]:
    """The private cluster's postmaster and its children (ours alone, never the shared one)."""
    try:
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return []
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            pids.append(int(entry.name))
    return pids


def _signal_cluster(server: PrivatePostgres, signum: signal.Signals) -> None:
    for pid in _cluster_pids(server):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _probe(client: FlaskClient) -> tuple[int, dict[str, object], float]:
    started = time.monotonic()
    response = client.get("/readyz")
    return response.status_code, response.json, time.monotonic() - started


def test_ready_when_everything_answers(client: FlaskClient) -> None:
    status, body, _ = _probe(client)
    assert status == 200
    assert body == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "signing_keys": "ok"},
    }
    assert client.get("/readyz").headers["Cache-Control"] == "no-store"


def test_database_stopped_answers_503_naming_the_database_then_recovers(
    client: FlaskClient, postgres: PrivatePostgres
) -> None:
    postgres.stop()
    status, body, took = _probe(client)
    assert status == 503
    assert body == {
        "status": "not_ready",
        "checks": {"database": "failed", "redis": "ok", "signing_keys": "ok"},
    }
    assert took < PROBE_BOUND_SECONDS
    postgres.start()
    status, body, _ = _probe(client)
    assert status == 200, body


def test_redis_stopped_answers_503_naming_redis_then_recovers(
    client: FlaskClient, redis_server: RedisServer
) -> None:
    redis_server.kill()
    status, body, took = _probe(client)
    assert status == 503
    assert body == {
        "status": "not_ready",
        "checks": {"database": "ok", "redis": "failed", "signing_keys": "ok"},
    }
    assert took < PROBE_BOUND_SECONDS
    redis_server.start()
    status, body, _ = _probe(client)
    assert status == 200, body


def test_a_hung_database_or_redis_does_not_hang_the_probe(
    client: FlaskClient, postgres: PrivatePostgres, redis_server: RedisServer
) -> None:
    _signal_cluster(postgres, signal.SIGSTOP)
    redis_server.hang()
    try:
        status, body, took = _probe(client)
        assert status == 503
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert checks["database"] == "timeout"
        assert checks["redis"] in ("failed", "timeout")
        assert took < PROBE_BOUND_SECONDS
        # The hung check is not started again while it hangs: the next probe answers at once.
        status, body, took = _probe(client)
        assert status == 503
        assert body["checks"]["database"] == "timeout"  # type: ignore[index]
        assert took < 1.0
    finally:
        _signal_cluster(postgres, signal.SIGCONT)
        redis_server.resume()
    deadline = time.monotonic() + 10
    while True:
        status, body, _ = _probe(client)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200, body
