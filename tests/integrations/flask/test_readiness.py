"""``/readyz`` through the Flask app: each check named, the body free of error text, the wait
bounded. (Against a stopped and a hung PostgreSQL and Redis: tests/faults/test_readiness.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from authgate.bootstrap import build_service
from authgate.integrations.flask.readiness import READY_TIMEOUT_SECONDS
from authgate.service import AuthService
from tests.helpers import StepClock, make_app, make_settings


@pytest.fixture
def ready_app(tmp_path: Path, clock: StepClock) -> Iterator[tuple[AuthService, FlaskClient]]:
    service = build_service(make_settings(tmp_path, f"sqlite:///{tmp_path / 'a.db'}"), clock=clock)
    yield service, make_app(service).test_client()
    service.close()


def test_ready_names_each_check(ready_app: tuple[AuthService, FlaskClient]) -> None:
    _, client = ready_app
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"database": "ok", "signing_keys": "ok"}}
    assert response.headers["Cache-Control"] == "no-store"


def test_a_failing_check_answers_503_without_its_error_text(
    ready_app: tuple[AuthService, FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, client = ready_app

    def broken() -> None:
        raise OSError("/secret/path/keys unreadable: password=hunter2")

    monkeypatch.setattr(service.keys, "refresh_if_changed", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json == {
        "status": "not_ready",
        "checks": {"database": "ok", "signing_keys": "failed"},
    }
    assert b"hunter2" not in response.data and b"secret" not in response.data


def test_a_hung_database_is_a_timeout_not_a_hang(
    ready_app: tuple[AuthService, FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, client = ready_app
    release = threading.Event()
    monkeypatch.setattr(service.store, "ping", lambda: release.wait(30))
    try:
        started = time.monotonic()
        response = client.get("/readyz")
        took = time.monotonic() - started
        assert response.status_code == 503
        assert response.json["checks"]["database"] == "timeout"
        assert READY_TIMEOUT_SECONDS - 0.1 < took < READY_TIMEOUT_SECONDS + 1.0
        # Still hung: the next probe does not start another check, and answers at once.
        started = time.monotonic()
        assert client.get("/readyz").json["checks"]["database"] == "timeout"
        assert time.monotonic() - started < 0.5
    finally:
        release.set()
    time.sleep(0.1)
    assert client.get("/readyz").status_code == 200
