"""What the tests' private servers (MariaDB, PgBouncer, moto's S3) share: finding a Debian
program, waiting until a process just started answers, stopping it, the end of its log for a
failure's message, and the ``with`` form of a server kept in a temporary directory of its own.

    class Bouncer(TemporaryServer):
        def start(self) -> None:
            self.process = subprocess.Popen([find_program("pgbouncer", MISSING), ...])
            if not wait_until_answering(self.process, lambda: port_answers(self.port), 30):
                self.stop()
                raise RuntimeError("pgbouncer did not start")
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self


def find_program(name: str, missing: str) -> str:
    """The path of a server program (also in ``/usr/sbin``, outside a non-root ``PATH``);
    ``RuntimeError(missing)`` — which says how to install it — when there is none."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.is_file()), None
    )
    if found is None:
        raise RuntimeError(missing)
    return found


def port_answers(port: int, host: str = "127.0.0.1") -> None:
    """Return once a TCP connection to ``host:port`` opens; ``OSError`` otherwise."""
    socket.create_connection((host, port), timeout=1).close()


def wait_until_answering(
    process: subprocess.Popen[bytes],
    probe: Callable[[], object],
    timeout: float,
    *,
    errors: tuple[type[Exception], ...] = (OSError,),
) -> bool:
    """Call ``probe`` until it returns without raising one of ``errors``: True. False as soon
    as ``process`` has exited, or after ``timeout`` seconds (the caller says why, with its log)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe()
            return True
        except errors:
            if process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def log_tail(path: Path, *, chars: int = 8000, missing: str = "(no log)") -> str:
    """The last ``chars`` characters of a server's log file: what a failing test shows."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return missing


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; returns once it has exited."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class TemporaryServer:
    """A server process kept in ``root`` (a temporary directory, removed on exit): ``start``
    and ``stop`` are the subclass's; ``with`` runs one, then the other."""

    root: Path
    process: subprocess.Popen[bytes] | None = None
    stop_timeout: float = 15.0

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, self.stop_timeout)
            self.process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
