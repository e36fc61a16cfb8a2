"""The real nginx (Debian's ``/usr/sbin/nginx``) running a configuration from ``authgate nginx``.

The generated file is a site (zones, maps and ``server`` blocks for nginx's ``http`` context); the
harness wraps it in a minimal main ``nginx.conf`` whose pid file, temp folders and logs all live
in a temporary prefix, so nginx runs without touching ``/etc/nginx`` or ``/var``: in the
foreground (``daemon off``), logging to stderr, as root in CI (``user root`` so that the workers
can read the 0700 temporary folders) or as any other user.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import pytest

from tests.server_process import log_tail

STARTUP_TIMEOUT_SECONDS = 10.0
_TEMP_DIRECTORIES = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_binary() -> str:
    """The nginx executable; fails (never skips) when it is missing."""
    found = shutil.which("nginx")
    if found:
        return found
    if os.access("/usr/sbin/nginx", os.X_OK):
        return "/usr/sbin/nginx"
    pytest.fail("nginx is not installed: run scripts/bootstrap (it installs Debian's nginx).")


def main_config(prefix: Path, site: Path) -> str:
    """A main ``nginx.conf`` that includes ``site`` in its ``http`` block."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {name}_temp_path {prefix / 'temp' / name};" for name in _TEMP_DIRECTORIES
    )
    return (
        f"{user}"
        "worker_processes 1;\n"
        "daemon off;\n"
        "master_process on;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        "error_log stderr notice;\n"
        "events {\n    worker_connections 256;\n}\n"
        "http {\n"
        "    default_type application/octet-stream;\n"
        f"    access_log {prefix / 'logs' / 'access.log'};\n"
        f"{temp}\n"
        f"    include {site};\n"
        "}\n"
    )


class Nginx:
    """One nginx master process serving ``site`` (the text of a generated configuration)."""

    def __init__(self, prefix: Path, site: str, *, ports: tuple[int, ...] = ()):
        self.prefix = prefix
        self.ports = ports
        self.process: subprocess.Popen[bytes] | None = None
        for directory in ("logs", *(f"temp/{name}" for name in _TEMP_DIRECTORIES)):
            (prefix / directory).mkdir(parents=True, exist_ok=True)
        self.site_path = prefix / "authgate-site.conf"
        self.site_path.write_text(site)
        self.conf_path = prefix / "nginx.conf"
        self.conf_path.write_text(main_config(prefix, self.site_path))
        self.log_path = prefix / "logs" / "nginx.out"

    def _command(self, *extra: str) -> list[str]:
        return [
            nginx_binary(),
            "-p",
            f"{self.prefix}/",
            "-e",
            "stderr",
            "-c",
            str(self.conf_path),
            *extra,
        ]

    def check(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t`` on the configuration: its exit status and output."""
        return subprocess.run(
            self._command("-t"), capture_output=True, text=True, timeout=30, check=False
        )

    def log(self) -> str:
        text = log_tail(self.log_path, missing="(no output)")
        return f"{text}\n--- configuration ---\n{self.site_path.read_text()}"

    def start(self) -> Nginx:
        """Start nginx and wait until every port in ``ports`` accepts connections."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        waiting = list(self.ports)
        while waiting:
            if self.process.poll() is not None:
                pytest.fail(f"nginx exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"nginx did not listen on {waiting} in time:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", waiting[0]), timeout=0.5):
                    waiting.pop(0)
            except OSError:
                time.sleep(0.05)
        return self

    def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)  # fast shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
