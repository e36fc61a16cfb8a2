"""A private PgBouncer for the tests: Debian's ``pgbouncer`` in transaction pooling mode, with its
own configuration in a temporary directory, on a free port of 127.0.0.1, in front of the shared
PostgreSQL test server (never reconfigured: PgBouncer only connects to it).

Its one database, ``authgate``, is the test database with ``search_path`` set to a private
schema by PgBouncer's ``connect_query`` on every server connection (PgBouncer forwards no
``options`` startup parameter). Clients authenticate with ``auth_type = trust`` (the user must
still be in the ``auth_file``). PgBouncer refuses to run as root: under root it is started with
``-u postgres``, its directory owned by that account.

    with PgBouncer(schema="authgate_pgb_1234") as bouncer:
        bouncer.url  # postgresql+psycopg://postgres@127.0.0.1:PORT/authgate
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.helpers import free_port, pg_base_url
from tests.server_process import (
    TemporaryServer,
    find_program,
    log_tail,
    port_answers,
    wait_until_answering,
)

_MISSING = (
    "PgBouncer is not installed (no pgbouncer): run scripts/bootstrap, which installs the Debian "
    "package pgbouncer, or apt-get install pgbouncer"
)


class PgBouncer(TemporaryServer):
    def __init__(self, *, schema: str, pool_size: int = 4, max_clients: int = 200) -> None:
        self.program = find_program("pgbouncer", _MISSING)
        self.schema = schema
        self.root = Path(tempfile.mkdtemp(prefix="authgate-pgbouncer-"))
        self.port = free_port()
        self.pool_size = pool_size
        self.max_clients = max_clients
        self.account: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self.account = pwd.getpwnam("postgres")
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
            self.root.chmod(0o755)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/authgate"

    def _write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)
        return path

    def start(self) -> None:
        target = make_url(pg_base_url())
        user = target.username or "postgres"
        self._write("users.txt", f'"{user}" ""\n')
        config = self._write(
            "pgbouncer.ini",
            f"""[databases]
authgate = host={target.host or "127.0.0.1"} port={target.port or 5432} \
dbname={target.database or "test"} user={user} \
connect_query='SET search_path TO "{self.schema}"'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.root / "users.txt"}
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = {self.max_clients}
query_wait_timeout = 60
logfile = {self.root / "pgbouncer.log"}
pidfile = {self.root / "pgbouncer.pid"}
""",
        )
        command = [self.program]
        if self.account is not None:
            command += ["-u", self.account.pw_name]
        self.process = subprocess.Popen(
            [*command, str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.root,
        )
        if not wait_until_answering(self.process, lambda: port_answers(self.port), 30):
            log = self.log()
            self.stop()
            raise RuntimeError(f"pgbouncer did not start:\n{log}")

    def log(self) -> str:
        return log_tail(self.root / "pgbouncer.log", chars=3000, missing="")
