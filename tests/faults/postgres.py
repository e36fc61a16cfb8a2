"""A private PostgreSQL server for fault tests: its own cluster (``initdb``) in a temporary
directory, on a free port of 127.0.0.1, that a test may stop and start again. Never the shared
server of the rest of the suite.

PostgreSQL refuses to run as root: under root the cluster belongs to, and the server runs as,
the ``postgres`` account."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.helpers import free_port

_BIN_PATTERN = "/usr/lib/postgresql/*/bin"


def _bin_dir() -> Path:
    found = sorted(glob.glob(_BIN_PATTERN), key=lambda p: int(Path(p).parent.name.split(".")[0]))
    if not found:
        raise RuntimeError(f"no PostgreSQL server binaries under {_BIN_PATTERN}")
    return Path(found[-1])


class PrivatePostgres:
    """``address``: where it listens (127.0.0.1, or e.g. a bridge's address for clients in other
    network namespaces); ``clients``: a network (``10.1.2.0/24``) allowed to connect (trust)
    besides the loopback addresses."""

    def __init__(self, *, address: str = "127.0.0.1", clients: str | None = None) -> None:
        self.bin = _bin_dir()
        self.address = address
        self.root = Path(tempfile.mkdtemp(prefix="authgate-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")  # fmt: skip
        if clients is not None:
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {clients} trust\n")
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@{self.address}:{self.port}/postgres"

    def _run(self, program: str, *args: object) -> None:
        subprocess.run(
            [str(self.bin / program), *map(str, args)],
            check=True,
            capture_output=True,
            timeout=60,
            cwd=self.root,
            **self._as,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses={self.address} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l", self.root / "log", "-w",
                  "-t", "30", "start")  # fmt: skip
        self.running = True

    def stop(self) -> None:
        """A fast shutdown: connections are closed, the server is gone until ``start``."""
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop")
        self.running = False

    def destroy(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "30", "stop")
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)
