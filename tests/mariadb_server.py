"""A private MariaDB server for the tests: Debian's ``mariadb-server`` binaries, a data directory
of its own (``mariadb-install-db``) in a temporary directory, listening on a free port of
127.0.0.1 and a socket in that directory. Never the system's server (port 3306, /var/lib/mysql).

The server runs as the current account (``--user=root`` under root); ``root`` connects over TCP
without a password. A missing ``mariadbd`` fails the test with how to install it: nothing is
skipped (``scripts/bootstrap`` installs the package).

    with MariaDBServer() as server:
        url = server.create_database("seed")  # mysql+pymysql://root@127.0.0.1:PORT/seed
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from pathlib import Path

import pymysql

from tests.helpers import free_port
from tests.server_process import TemporaryServer, find_program, log_tail, wait_until_answering

_MISSING = (
    "MariaDB's server is not installed (no mariadbd): run scripts/bootstrap, which installs the "
    "Debian package mariadb-server, or apt-get install mariadb-server"
)


class MariaDBServer(TemporaryServer):
    stop_timeout = 30.0

    def __init__(self) -> None:
        self.server = find_program("mariadbd", _MISSING)
        self.install = find_program("mariadb-install-db", _MISSING)
        self.root = Path(tempfile.mkdtemp(prefix="authgate-mariadb-"))
        self.data = self.root / "data"
        self.socket = self.root / "mariadb.sock"
        self.port = free_port()
        self.account = pwd.getpwuid(os.geteuid()).pw_name

    def start(self) -> None:
        subprocess.run(
            [
                self.install,
                "--no-defaults",
                f"--datadir={self.data}",
                f"--user={self.account}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.root,
        )
        log = (self.root / "server.log").open("wb")
        self.process = subprocess.Popen(
            [
                self.server,
                "--no-defaults",
                f"--datadir={self.data}",
                f"--user={self.account}",
                "--bind-address=127.0.0.1",
                f"--port={self.port}",
                f"--socket={self.socket}",
                f"--pid-file={self.root / 'mariadb.pid'}",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
                "--character-set-server=utf8mb4",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        log.close()
        answering = wait_until_answering(
            self.process, self._ping, 60, errors=(pymysql.err.OperationalError,)
        )
        if not answering:
            output = log_tail(self.root / "server.log", chars=2000)
            self.stop()
            raise RuntimeError(f"mariadbd did not start:\n{output}")

    def _ping(self) -> None:
        self.connect().close()

    def connect(self, database: str | None = None) -> pymysql.Connection:  # type: ignore[type-arg]
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", password="", database=database
        )

    def create_database(self, name: str) -> str:
        """A new empty database; its SQLAlchemy URL."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        finally:
            connection.close()
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{name}"
