"""What the end-to-end tests share: the real server under gunicorn, on free ports, spoken to over
sockets, and the requests, cookies and timings they check (the fixtures are in ``conftest.py``).

Nothing here uses the Flask test client. Each server is a ``gunicorn`` subprocess running
``authgate.server:create_app()`` with its configuration in ``AUTHGATE_*`` environment variables,
a database (a SQLite file, or a fresh PostgreSQL schema) and an instance folder with the keys.
Only 127.0.0.1 is ever contacted: the HTTP sessions ignore proxy variables and cookies.
"""

from __future__ import annotations

import contextlib
import http.client
import http.cookiejar
import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import text

from authgate.bootstrap import build_service
from authgate.config import Settings, load_settings
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import upgrade_database
from tests.helpers import (
    BROWSER,
    FRONTEND,
    PASSWORD,
    REDIS_URL,
    folder_mails,
    free_port,
    pg_base_url,
    token_in,
)
from tests.server_process import log_tail

STARTUP_TIMEOUT_SECONDS = 20.0
THREADS_PER_WORKER = 8  # gunicorn's gthread workers: see Server.launch
# The client authgate is registered as at the OpenID Provider of the OAuth tests.
CLIENT_ID = "authgate-e2e"
CLIENT_SECRET = "e2e-client-secret-0123456789"


def unique_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}@example.com"


def new_http_session() -> requests.Session:
    """A session that never uses a proxy from the environment and never keeps cookies."""
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


# Databases -------------------------------------------------------------------------------------


@dataclass
class Database:
    """Where a group of servers keeps its data; ``close()`` drops a PostgreSQL schema."""

    kind: str
    url: str
    schema: str | None = None

    def close(self) -> None:
        if self.schema is None:
            return
        admin = create_database_engine(pg_base_url())
        try:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        finally:
            admin.dispose()


def create_database(kind: str, directory: Path) -> Database:
    if kind == "sqlite":
        return Database("sqlite", f"sqlite:///{directory / 'authgate.db'}")
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    admin = create_database_engine(pg_base_url())
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    separator = "&" if "?" in pg_base_url() else "?"
    database = Database(
        "postgresql", f"{pg_base_url()}{separator}options=-csearch_path%3D{schema}", schema
    )
    try:
        engine = create_database_engine(database.url)
        try:
            upgrade_database(engine)
        finally:
            engine.dispose()
    except BaseException:
        database.close()
        raise
    return database


# Servers ---------------------------------------------------------------------------------------


def send(http: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    """A request as the tests make them to a server: redirects are not followed (a test looks
    at each one), and no answer within 10 s fails instead of hanging the suite."""
    kwargs.setdefault("timeout", 10)
    kwargs.setdefault("allow_redirects", False)
    return http.request(method, url, **kwargs)


def server_env(
    *,
    instance_path: Path,
    database_url: str,
    port: int,
    redis_url: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The process environment of a server: ours without any AUTHGATE_*, plus its settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    env.update(
        {
            "AUTHGATE_INSTANCE_PATH": str(instance_path),
            "AUTHGATE_DATABASE_URL": database_url,
            "AUTHGATE_PUBLIC_URL": f"http://localhost:{port}",
            "AUTHGATE_ORIGINS": FRONTEND,
        }
    )
    if redis_url:
        env["AUTHGATE_REDIS_URL"] = redis_url
    env.update(extra or {})
    return env


def authgate_settings(env: Mapping[str, str]) -> Settings:
    return load_settings(environ={k: v for k, v in env.items() if k.startswith("AUTHGATE_")})


@dataclass
class Server:
    """One gunicorn process tree serving authgate on ``127.0.0.1:port``."""

    port: int
    env: dict[str, str]
    workers: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    http: requests.Session = field(default_factory=new_http_session)
    # More gunicorn options, e.g. ["--certfile", cert, "--keyfile", key] to serve https.
    gunicorn_args: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        return log_tail(self.log_path)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return send(self.http, method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def launch(self) -> None:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            # Not sync workers: Chromium opens connections it sends nothing on (preconnects it
            # then does not use), and a sync worker waits on such a connection until gunicorn's
            # timeout kills it, so two of them stalled a 2-worker server for a minute. gthread
            # gives a connection 5 s to send its request before setting it aside, and 8 threads
            # answer the rest meanwhile. No keep-alive: each request is a new connection that
            # any worker may take, as with sync, so the tests of several workers still reach
            # them all. (`authgate serve --production` runs gevent: test_serve_command.py.)
            "--worker-class",
            "gthread",
            "--threads",
            str(THREADS_PER_WORKER),
            "--keep-alive",
            "0",
            "--graceful-timeout",
            "5",
            "--timeout",
            "60",
            # gunicorn >= 25 opens a control socket at one path per user: the tests' servers
            # running side by side would take it from one another.
            "--no-control-socket",
            *self.gunicorn_args,
            "authgate.server:create_app()",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                cwd=self.env["AUTHGATE_INSTANCE_PATH"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        """Wait until ``/healthz`` answers; fail with the server's output if it does not."""
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                pytest.fail(
                    f"gunicorn exited with {self.process.returncode} before answering /healthz:\n"
                    f"{self.log()}"
                )
            try:
                response = self.get("/healthz", timeout=max(0.1, deadline - time.monotonic()))
            except (requests.ConnectionError, requests.Timeout) as e:
                last_error = repr(e)
            else:
                if response.status_code == 200 and response.json() == {"status": "ok"}:
                    return
                last_error = f"{response.status_code} {response.text[:200]}"
            time.sleep(0.05)
        self.stop()
        pytest.fail(
            f"gunicorn on port {self.port} did not answer /healthz within "
            f"{STARTUP_TIMEOUT_SECONDS:.0f} s ({last_error}):\n{self.log()}"
        )

    def wait_ready_over_tls(self) -> None:
        """Wait until ``/healthz`` answers over TLS, whatever the certificate."""
        assert self.process is not None
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=1, context=context
            )
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"gunicorn with TLS did not answer /healthz:\n{self.log()}")

    def stop(self) -> None:
        self.http.close()
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class ServerGroup:
    """Servers sharing one database and one instance (keys) folder."""

    database: Database
    instance_path: Path
    log_dir: Path
    servers: list[Server] = field(default_factory=list)

    def start(
        self,
        *,
        count: int = 1,
        workers: int = 2,
        redis_url: str | None = None,
        port: int | None = None,
        **extra: str,
    ) -> list[Server]:
        """Start ``count`` more servers (in parallel). All are instances of one deployment:
        they share the public URL (so the token issuer) of the first, as behind one balancer.
        ``port`` chooses the port of a single server (one known in advance, e.g. to register
        its callback URL at a provider)."""
        assert port is None or count == 1
        servers: list[Server] = []
        for _ in range(count):
            server_port = port or free_port()
            env = server_env(
                instance_path=self.instance_path,
                database_url=self.database.url,
                port=server_port,
                redis_url=redis_url,
                extra={f"AUTHGATE_{k.upper()}": v for k, v in extra.items()},
            )
            if self.servers:
                env["AUTHGATE_PUBLIC_URL"] = self.servers[0].env["AUTHGATE_PUBLIC_URL"]
            else:
                # Migrate SQLite and create the development keys once, before any worker starts.
                build_service(authgate_settings(env)).close()
            server = Server(
                port=server_port,
                env=env,
                workers=workers,
                log_path=self.log_dir / f"gunicorn-{server_port}.log",
            )
            self.servers.append(server)
            servers.append(server)
            server.launch()
        for server in servers:
            server.wait_ready()
        return servers

    def start_tls(
        self,
        cert: Path,
        key: Path,
        *,
        port: int | None = None,
        host: str = "localhost",
        workers: int = 1,
        **extra: str,
    ) -> Server:
        """One more server of the group serving https itself (gunicorn's TLS with ``cert`` and
        ``key``) at ``https://<host>:<port>``, its public URL."""
        port = port or free_port()
        env = server_env(
            instance_path=self.instance_path,
            database_url=self.database.url,
            port=port,
            extra={
                "AUTHGATE_PUBLIC_URL": f"https://{host}:{port}",
                **{f"AUTHGATE_{k.upper()}": v for k, v in extra.items()},
            },
        )
        if not self.servers:
            build_service(authgate_settings(env)).close()  # migrate, make the keys
        server = Server(
            port=port,
            env=env,
            workers=workers,
            log_path=self.log_dir / f"gunicorn-tls-{port}.log",
            gunicorn_args=["--certfile", str(cert), "--keyfile", str(key)],
        )
        self.servers.append(server)
        server.launch()
        server.wait_ready_over_tls()
        return server

    def cli(self, *args: str, stdin: str = "") -> str:
        """Run the ``authgate`` command line with the servers' settings; its stdout."""
        # ``python -m authgate.cli`` does nothing (the module has no ``__main__`` block), so
        # call ``main`` the way the ``authgate`` console script does.
        completed = subprocess.run(
            [sys.executable, "-c", "from authgate.cli import main; main()", *args],
            env=self.servers[0].env,
            cwd=self.instance_path,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, (args, completed.stdout, completed.stderr)
        return completed.stdout

    def close(self) -> None:
        try:
            for server in reversed(self.servers):
                server.stop()
        finally:
            self.database.close()


@contextlib.contextmanager
def server_group(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerGroup]:
    """A group of servers on a fresh database of ``kind``; every server stopped at the end."""
    directory = tmp_path_factory.mktemp(f"e2e-{kind}")
    instance = directory / "instance"
    instance.mkdir()
    group = ServerGroup(create_database(kind, directory), instance, directory)
    try:
        yield group
    finally:
        group.close()


# Client helpers --------------------------------------------------------------------------------


def register(server: Server, email: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    response = server.post(
        "/api/auth/register",
        json={"email": email, "password": password, **extra},
        headers=BROWSER,
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()["user"]
    assert user["email"] == email
    return user


def wait_for_mailed_token(server: Server, kind: str, to: str, *, timeout: float = 10.0) -> str:
    """The token of the link in the latest ``kind`` mail to ``to`` from a server without SMTP:
    its sender writes each mail as an ``.eml`` file in the instance's ``mail/`` folder (the
    outbox keeps no body once a mail is sent), soon after the request that queued it."""
    folder = Path(server.env["AUTHGATE_INSTANCE_PATH"]) / "mail"
    deadline = time.monotonic() + timeout
    while True:
        mails = [
            m
            for m in folder_mails(folder).values()
            if m["kind"] == kind and m["to"].casefold() == to.casefold()
        ]
        if mails:
            return token_in(mails[-1]["text"])
        assert time.monotonic() < deadline, f"no {kind} mail to {to} in {folder}"
        time.sleep(0.05)


def login_script(server: Server, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Log in as a script (no Origin): tokens come in the body."""
    response = server.post("/api/auth/login", json={"login": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"] and body["refresh_token"]
    return body


def error_code(response: requests.Response) -> str:
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        response.status_code,
        response.headers,
        response.text[:300],
    )
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    code: str = body["error"]["code"]
    return code


@dataclass(frozen=True)
class SetCookie:
    name: str
    value: str
    attributes: dict[str, str]  # lower-case attribute name -> value ("" for flags)


def set_cookies(response: requests.Response) -> dict[str, SetCookie]:
    """Every ``Set-Cookie`` header of a response, parsed (``requests`` would join them)."""
    cookies: dict[str, SetCookie] = {}
    for header in response.raw.headers.getlist("Set-Cookie"):
        first, *rest = (part.strip() for part in header.split(";"))
        name, _, value = first.partition("=")
        attributes: dict[str, str] = {}
        for part in rest:
            if not part:
                continue
            key, _, attribute_value = part.partition("=")
            key = key.strip().lower()
            assert key not in attributes, f"attribute {key} twice in {header!r}"
            attributes[key] = attribute_value.strip()
        assert name not in cookies, f"cookie {name} set twice: {header!r}"
        cookies[name] = SetCookie(name, value, attributes)
    return cookies


# Revocation timing -----------------------------------------------------------------------------

NO_REDIS_BOUND_SECONDS = 1.0  # the poll interval is 0.25 s by default
REDIS_BOUND_SECONDS = 0.1
STABLE_ROUNDS = 30  # consecutive rounds with the new answer that count as "for good"


def time_until_status(
    *checks: Callable[[], requests.Response],
    since: float,
    bound: float,
    new: int = 401,
    old: int = 200,
) -> float:
    """Run ``checks`` in a tight loop; seconds from ``since`` (a ``time.perf_counter()``) until
    every one of them answered ``new`` instead of ``old`` for good.

    "For good" means no ``old`` answer followed: the loop runs until ``STABLE_ROUNDS``
    consecutive rounds of only ``new`` that reach past ``bound`` (a server with several workers
    may send a run of requests to the one that already knows while another, still within the
    bound, does not yet), and at most until well past ``bound``. Any status other than ``old``
    and ``new`` fails the test at once.
    """
    history: list[tuple[float, tuple[int, ...]]] = []
    first_of_streak: float | None = None
    streak = 0
    hard_stop = since + max(2 * bound, bound + 0.5)
    while True:
        statuses: list[int] = []
        for check in checks:
            response = check()
            if response.status_code not in (old, new):
                pytest.fail(
                    f"unexpected {response.status_code} (expected {old} or {new}): "
                    f"{response.text[:300]}; history {history[-10:]}"
                )
            statuses.append(response.status_code)
        now = time.perf_counter()
        history.append((round(now - since, 4), tuple(statuses)))
        if all(status == new for status in statuses):
            if streak == 0:
                first_of_streak = now
            streak += 1
        else:
            streak = 0
            first_of_streak = None
        if (streak >= STABLE_ROUNDS and now >= since + bound) or now > hard_stop:
            break
    if first_of_streak is None:
        pytest.fail(
            f"still {old} {history[-1][0]:.3f} s after the change (bound {bound} s); "
            f"history {history[-10:]}"
        )
    assert streak >= 3, f"only {streak} rounds of {new} before the deadline: {history[-10:]}"
    return first_of_streak - since


def warm_up(check: Callable[[], requests.Response], expected: int = 200, times: int = 2) -> None:
    """Make a server cache what it needs to answer ``check`` (and prove it answered)."""
    for _ in range(times):
        response = check()
        assert response.status_code == expected, response.text


# Deployments: SQLite or PostgreSQL, each with and without Redis ---------------------------------

DEPLOYMENTS = [("sqlite", False), ("sqlite", True), ("postgresql", False), ("postgresql", True)]
DEPLOYMENT_IDS = ["sqlite-poll", "sqlite-redis", "postgresql-poll", "postgresql-redis"]


def redis_url_for(with_redis: bool) -> str | None:
    """The Redis URL for a deployment that uses it, after checking that Redis answers."""
    if not with_redis:
        return None
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        assert client.ping(), "Redis at 127.0.0.1:6379 does not answer"
    finally:
        client.close()
    return REDIS_URL
