"""``AUTHGATE_LOG_FORMAT=json``: one JSON object per line, with the request id inside a request;
and the gunicorn options that carry it (and the metrics directory) to ``serve --production``."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask

from authgate.config import Settings
from authgate.log_format import JsonFormatter, configure_logging, gunicorn_logger_class
from authgate.production_server import (
    MULTIPROC_DIR_VARIABLE,
    gunicorn_options,
    prepare_metrics_directory,
)
from authgate.server import create_app
from tests.helpers import make_settings


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("authgate.test_json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_the_request_id_in_a_request(
    captured: io.StringIO, tmp_path: Path
) -> None:
    app = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'a.db'}"))
    logger = logging.getLogger("authgate.test_json")

    @app.get("/log-something")
    def log_something() -> str:
        logger.warning("line one\nline two %s", "with args")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")
        return "ok"

    logger.info("outside any request")
    client = app.test_client()
    response = client.get("/log-something", headers={"X-Request-ID": "req-abc.1"})
    assert response.status_code == 200
    generated = client.get("/log-something")
    outside, warning, failure, warning2, _ = _lines(captured)
    assert outside["message"] == "outside any request"
    assert "request_id" not in outside
    assert set(outside) == {"time", "level", "logger", "message"}
    assert str(outside["time"]).endswith("+00:00")
    assert warning["message"] == "line one\nline two with args"
    assert (warning["level"], warning["logger"]) == ("WARNING", "authgate.test_json")
    assert warning["request_id"] == "req-abc.1"
    assert failure["request_id"] == "req-abc.1"
    assert "ValueError: boom" in str(failure["exception"])
    assert "Traceback" in str(failure["exception"])
    assert warning2["request_id"] == generated.headers["X-Request-ID"]


def test_configure_logging_json_puts_one_handler_on_the_root_logger() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        configure_logging("json")
        configure_logging("json")
        added = [h for h in root.handlers if h not in before]
        assert len(added) == 1
        assert isinstance(added[0].formatter, JsonFormatter)
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)


def test_the_server_app_logs_json_when_asked(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        app = create_app(
            make_settings(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", log_format="json")
        )
        assert isinstance(app, Flask)
        assert any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)


def test_gunicorn_gets_the_json_logger_only_with_json() -> None:
    assert "logger_class" not in gunicorn_options(Settings())
    logger_class = gunicorn_options(Settings(log_format="json"))["logger_class"]
    assert logger_class is not None and issubclass(logger_class, gunicorn_logger_class().__mro__[1])


def test_the_gunicorn_access_line_is_json_with_the_request_fields() -> None:
    from gunicorn.config import Config

    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("errorlog", "-")
    logger = gunicorn_logger_class()(cfg)
    stream = io.StringIO()
    for handler in logger.access_log.handlers:
        handler.setStream(stream)  # type: ignore[attr-defined]
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/api/oauth/x/callback?code=secret",
        "PATH_INFO": "/api/oauth/x/callback",
        "QUERY_STRING": "code=secret",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.1",
        "HTTP_USER_AGENT": "probe",
        "authgate.request_id": "rid-1",
    }
    response = SimpleNamespace(status="302 FOUND", sent=12, headers=[])
    logger.access(response, SimpleNamespace(headers=[]), environ, _Elapsed())
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == "GET /api/oauth/x/callback 302"
    assert entry["logger"] == "gunicorn.access"
    assert (entry["status"], entry["bytes"], entry["request_id"]) == (302, 12, "rid-1")
    assert entry["duration_ms"] == 1.5
    assert "secret" not in line


class _Elapsed:
    seconds = 0
    microseconds = 1500


def test_metrics_under_gunicorn_get_a_directory_and_the_worker_hooks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(MULTIPROC_DIR_VARIABLE, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    off = Settings()
    assert prepare_metrics_directory(off) is None
    assert MULTIPROC_DIR_VARIABLE not in os.environ
    assert "child_exit" not in gunicorn_options(off)

    on = Settings(metrics="loopback")
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    directory = prepare_metrics_directory(on)
    assert directory is not None and directory.is_dir() and directory.parent == tmp_path
    assert os.environ[MULTIPROC_DIR_VARIABLE] == str(directory)
    options = gunicorn_options(on)
    (directory / "counter_4242.db").write_bytes(b"")
    (directory / "gauge_livesum_4242.db").write_bytes(b"")
    options["child_exit"](None, SimpleNamespace(pid=4242))
    assert (directory / "counter_4242.db").exists()  # a dead worker's counts still count
    assert not (directory / "gauge_livesum_4242.db").exists()
    options["on_exit"](None)
    assert not directory.exists()
    assert MULTIPROC_DIR_VARIABLE not in os.environ
