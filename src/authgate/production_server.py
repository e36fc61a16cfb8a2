"""The gunicorn master of ``authgate serve --production`` (``python -m authgate.serving`` runs
it once gevent has patched the process) and the app each of its workers builds.

Every worker is a fork of the master and starts with the master's memory. So the master imports
the settings, gunicorn and the code every worker runs (``authgate.server`` and what it imports,
``preload_app_code``), and nothing else: the commands (``authgate.cli``) are never loaded here,
nor what only some requests or settings need. Each worker builds its own app (``create_app``:
database pool, keys, threads) after the fork.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from authgate.config import Settings, load_settings
from authgate.errors import ConfigError

if TYPE_CHECKING:
    from flask import Flask

# The path without its query string (%(U)s, not %(r)s): a query may carry an OAuth code or state.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(D)s "%(a)s" %({x-request-id}o)s'
MAX_DEFAULT_WORKERS = 64  # the most AUTHGATE_WORKERS accepts

# gevent workers: each connection is a greenlet, so a client that sends its request slowly holds
# one of a worker's WORKER_CONNECTIONS, not the whole worker (sync) nor one of a few threads
# (gthread). Measured with benchmarks/slow_clients.py; the figures are in docs/deploy.md.
WORKER_CLASS = "gevent"
WORKER_CONNECTIONS = 1000


def default_workers() -> int:
    """Gunicorn's rule of thumb, ``2 * CPUs + 1``, capped at what the settings accept."""
    return min(2 * (os.cpu_count() or 1) + 1, MAX_DEFAULT_WORKERS)


def _bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def gunicorn_options(settings: Settings, workers: int | None = None) -> dict[str, Any]:
    """The gunicorn settings ``authgate serve --production`` runs with."""
    return {
        "bind": [_bind_address(settings.host, settings.port)],
        "workers": workers or settings.workers or default_workers(),
        "worker_class": WORKER_CLASS,
        "worker_connections": WORKER_CONNECTIONS,
        # The gevent worker also gives a request's head this long to arrive: a slow-loris client
        # is cut off after 2 s (a request body has no such limit; it holds one connection).
        "keepalive": 2,
        "graceful_timeout": 30,
        "timeout": 30,
        "accesslog": "-",
        "errorlog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        # Each worker builds its own app (database pool, revocation threads) after the fork.
        "preload_app": False,
        "proc_name": "authgate",
        # gunicorn >= 25 opens a control socket in $HOME by default; two servers on one host
        # would fight over it, and authgate does not need it.
        "control_socket_disable": True,
        **_log_options(settings),
        **_metrics_options(settings),
    }


def _log_options(settings: Settings) -> dict[str, Any]:
    if settings.log_format != "json":
        return {}
    from authgate.log_format import gunicorn_logger_class

    return {"logger_class": gunicorn_logger_class()}


# Metrics under several workers ---------------------------------------------------------------
#
# Each worker keeps its own counters; for a scrape (answered by any one worker) to see them all,
# prometheus_client's multiprocess mode has every worker write its values to files in one
# directory, PROMETHEUS_MULTIPROC_DIR, which it reads when it is imported. So the master (which
# never imports prometheus_client before forking) makes a fresh directory per instance and puts
# it in its environment before the workers are forked; a worker that exits is marked dead (its
# live gauges go; its counters stay, as counters must); the directory goes when the master exits.

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def _metrics_options(settings: Settings) -> dict[str, Any]:
    if settings.metrics_mode == "off":
        return {}
    return {"child_exit": _worker_exited, "on_exit": _remove_metrics_directory}


def prepare_metrics_directory(settings: Settings) -> Path | None:
    """With metrics on: a new, empty directory for this instance's workers' values, named in
    the environment the workers inherit. None with metrics off."""
    if settings.metrics_mode == "off":
        return None
    directory = Path(tempfile.mkdtemp(prefix="authgate-metrics-"))
    os.environ[MULTIPROC_DIR_VARIABLE] = str(directory)
    return directory


def _worker_exited(_server: Any, worker: Any) -> None:
    if not os.environ.get(MULTIPROC_DIR_VARIABLE):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _remove_metrics_directory(_server: Any) -> None:
    directory = os.environ.pop(MULTIPROC_DIR_VARIABLE, None)
    if directory and Path(directory).name.startswith("authgate-metrics-"):
        shutil.rmtree(directory, ignore_errors=True)


def preload_app_code() -> None:
    """Import the app's code in the master, to be inherited by every worker it forks: the
    modules, not an app (no connection, thread or key is made by importing them; each worker
    still builds its own app after the fork, gunicorn's ``preload_app`` stays off).

    What a worker would import for itself is then the master's, shared with it until written:
    a worker's unique memory (USS) is 24 MB instead of 56 MB, and even its resident set, which
    counts shared pages in full, is 6 MB smaller (80 MB instead of 86 MB): compiled code that
    only importing runs (pydantic-core's, building the request schemas: 3.7 MB) is paged in by
    the master alone (``benchmarks/memory.py``, benchmarks/README.md). The code is read once, at
    the start: a new version takes a restart (gunicorn's ``HUP`` forks new workers from this
    code), as new settings do."""
    import authgate.server  # noqa: F401  (imported for the workers)


_OPTIONAL_GUNICORN_SETTINGS = frozenset({"control_socket_disable"})


class GunicornApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn, driven from Python: ``create_app(settings)`` in every worker after the fork."""

    def __init__(self, settings: Settings, options: Mapping[str, Any]):
        self.settings = settings
        self.options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in _OPTIONAL_GUNICORN_SETTINGS and key not in self.cfg.settings:
                continue  # an older gunicorn without this feature
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from authgate.server import create_app  # in the worker, after the fork

        return create_app(self.settings)


def run_production_server() -> None:
    """The gunicorn master of ``authgate serve --production``, with settings from the environment.

    ``python -m authgate.serving`` calls this once gevent has monkey-patched the process."""
    try:
        settings = load_settings()
    except ConfigError as e:
        raise SystemExit(f"Error: {e}") from None
    master = os.getpid()
    directory = prepare_metrics_directory(settings)
    try:
        preload_app_code()  # after the metrics directory: prometheus_client reads it on import
        GunicornApplication(settings, gunicorn_options(settings)).run()
    finally:
        # In the master only: a worker leaves through here too (gunicorn's sys.exit).
        if directory is not None and os.getpid() == master:
            shutil.rmtree(directory, ignore_errors=True)
