"""``AUTHGATE_LOG_FORMAT``: the server's log lines as text (the default) or one JSON object per
line (docs/operations.md#logs), for authgate's own loggers and, under ``authgate serve
--production``, gunicorn's error and access logs.

A JSON line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``request_id`` when
it was written while serving a request, and ``exception`` (the traceback, as one string) when it
carries one; gunicorn's access lines add the request's fields (``remote_addr``, ``method``,
``path``, ``status``, ``bytes``, ``duration_ms``, ``user_agent``).

This module is read by the gunicorn master too, which must stay light: it imports no Flask (a
request's id is looked up only once Flask is loaded, as it is in a worker).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Where a request's id is kept in its WSGI environ (``integrations.flask.request_ids``).
_REQUEST_ID_KEY = "authgate.request_id"
# The fields of a record a JSON line carries besides the standard ones (``extra=``).
_EXTRA_FIELDS = (
    "remote_addr",
    "method",
    "path",
    "status",
    "bytes",
    "duration_ms",
    "user_agent",
    "request_id",
)


def _current_request_id() -> str | None:
    flask = sys.modules.get("flask")
    if flask is None or not flask.has_request_context():
        return None
    request_id = flask.request.environ.get(_REQUEST_ID_KEY)
    return request_id if isinstance(request_id, str) else None


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _EXTRA_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if "request_id" not in entry:
            request_id = _current_request_id()
            if request_id is not None:
                entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


class _AuthgateHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure_logging`` adds to the root logger (found again, not doubled)."""


def configure_logging(log_format: str) -> None:
    """The standalone server's logging: INFO and above on stderr, as text or JSON lines.

    Text keeps ``logging.basicConfig`` (which leaves a root logger that already has handlers
    alone); JSON adds one handler of its own to the root logger, replacing any that
    ``basicConfig`` added before, so that every line is JSON."""
    root = logging.getLogger()
    if log_format != "json":
        logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)
        return
    for handler in list(root.handlers):
        if isinstance(handler, _AuthgateHandler) or _is_basic_config_handler(handler):
            root.removeHandler(handler)
    handler = _AuthgateHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)


def _is_basic_config_handler(handler: logging.Handler) -> bool:
    formatter = handler.formatter
    return (
        type(handler) is logging.StreamHandler
        and formatter is not None
        and formatter._fmt == TEXT_FORMAT
    )


def gunicorn_logger_class() -> type:
    """gunicorn's ``logger_class`` for JSON lines: its error log through ``JsonFormatter``,
    each access line with the request's fields (imported in the master, after the settings)."""
    from gunicorn.glogging import Logger

    class JsonGunicornLogger(Logger):  # type: ignore[misc]
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for logger in (self.error_log, self.access_log):
                for handler in logger.handlers:
                    handler.setFormatter(JsonFormatter())

        def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
            """One line per request; its path without the query (which may hold an OAuth
            code or a link token)."""
            if not self.access_log_enabled:
                return
            atoms = self.atoms(resp, req, environ, request_time)
            status = atoms["s"]
            try:
                self.access_log.info(
                    "%s %s %s",
                    atoms["m"],
                    atoms["U"],
                    status,
                    extra={
                        "remote_addr": atoms["h"],
                        "method": atoms["m"],
                        "path": atoms["U"],
                        "status": int(status) if str(status).isdigit() else status,
                        "bytes": atoms["B"],
                        "duration_ms": round(atoms["D"] / 1000, 3),
                        "user_agent": environ.get("HTTP_USER_AGENT"),
                        "request_id": environ.get(_REQUEST_ID_KEY),
                    },
                )
            except Exception:
                self.error("could not write an access log line", exc_info=True)

    return JsonGunicornLogger
