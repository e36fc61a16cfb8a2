"""`authgate serve` itself, as the README tells people to run it: dev default and production."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.helpers import create_database, new_http_session
from tests.helpers import KEY_ENCRYPTION_KEY, PASSWORD, free_port


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    env.update(settings)
    return env


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    http = new_http_session()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"authgate serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if http.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    pytest.fail(f"authgate serve did not answer /healthz:\n{log.read_text()}")


def _serve(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "authgate", "serve", *args],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


# The access log format of `authgate serve --production`: one request per line.
ACCESS_LINE = re.compile(
    r'^(?P<remote>\S+) "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'(?P<micros>\d+) "(?P<agent>[^"]*)" (?P<request_id>\S+)$',
    re.MULTILINE,
)
_SLOW_BODY = b'{"login": "nobody@example.com", "password": "not the password"}'


def _start_slow_login(port: int) -> socket.socket:
    """A login whose body has not fully arrived yet: a request in flight."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    head = (
        f"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(_SLOW_BODY)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    sock.sendall(head + _SLOW_BODY[:10])
    return sock


def _stop_during(process: subprocess.Popen[bytes], in_flight: socket.socket) -> int:
    """SIGTERM while a request is in flight; the request must still get its answer."""
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with in_flight:
        in_flight.sendall(_SLOW_BODY[10:])
        answer = b""
        while chunk := in_flight.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"invalid_credentials" in answer
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def test_dev_default_generates_keys_and_serves(workdir: Path) -> None:
    port = free_port()
    log = workdir / "serve.log"
    process = _serve(["--port", str(port)], _env(), workdir, log)
    try:
        _wait_healthy(process, f"http://127.0.0.1:{port}", log)
        keys = list((workdir / "instance" / "keys").glob("dev-*.pem"))
        assert len(keys) == 1
        assert stat.S_IMODE(keys[0].stat().st_mode) == 0o600
        assert (workdir / "instance" / "authgate.db").exists()
        http = new_http_session()
        base = f"http://127.0.0.1:{port}"
        body = {"email": "dev@example.com", "password": PASSWORD}
        assert http.post(base + "/api/auth/register", json=body, timeout=5).status_code == 201
    finally:
        _stop(process)
    assert "Generated a development signing key" in log.read_text()


def _production_settings(workdir: Path, database_url: str) -> dict[str, str]:
    """Production settings with a production signing key (made by ``authgate keys rotate``)."""
    settings = {
        "AUTHGATE_ENV": "production",
        "AUTHGATE_PUBLIC_URL": "https://auth.example.test",
        "AUTHGATE_DATABASE_URL": database_url,
        "AUTHGATE_KEYS_DIR": str(workdir / "keys"),
        "AUTHGATE_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
        "AUTHGATE_ORIGINS": "https://app.example.test",
    }
    rotate = subprocess.run(
        [sys.executable, "-m", "authgate", "keys", "rotate"],
        env=_env(**settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rotate.returncode == 0, rotate.stderr
    return settings


def _start_production(
    workdir: Path, database_url: str
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``authgate serve --production --workers 2`` on a free port, answering: (process, base
    URL, log file)."""
    settings = _production_settings(workdir, database_url)
    port = free_port()
    log = workdir / "serve.log"
    process = _serve(
        ["--production", "--workers", "2", "--port", str(port)], _env(**settings), workdir, log
    )
    base = f"http://127.0.0.1:{port}"
    _wait_healthy(process, base, log)
    return process, base, log


def _register_and_log_in(
    http: requests.Session, base: str, email: str, **headers: str
) -> requests.Response:
    body = {"email": email, "password": PASSWORD}
    assert http.post(base + "/api/auth/register", json=body, timeout=5).status_code == 201
    return http.post(
        base + "/api/auth/login",
        json={"login": email, "password": PASSWORD},
        headers=headers,
        timeout=5,
    )


def test_production_serve_runs_gunicorn_and_stops_gracefully(workdir: Path) -> None:
    database = create_database("postgresql", workdir)
    try:
        process, base, log = _start_production(workdir, database.url)
        port = int(base.rsplit(":", 1)[1])
        try:
            http = new_http_session()
            login = _register_and_log_in(http, base, "prod@example.com")
            token = login.json()["access_token"]
            me = http.get(
                base + "/api/auth/me?code=never-logged",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            assert me.json()["user"]["email"] == "prod@example.com"
            assert "SameSite=Lax" in login.headers["Set-Cookie"]
            in_flight = _start_slow_login(port)
            time.sleep(0.3)  # the worker is reading that request now
        finally:
            code = _stop_during(process, in_flight)
        assert code == 0, log.read_text()
        output = log.read_text()
        assert "Generated a development signing key" not in output
        entries = [m.groupdict() for m in ACCESS_LINE.finditer(output)]
        me_lines = [e for e in entries if e["request"] == "GET /api/auth/me HTTP/1.1"]
        assert me_lines and me_lines[0]["status"] == "200", output
        assert re.fullmatch(r"[0-9a-f-]{8,}", me_lines[0]["request_id"]), me_lines[0]
        assert "never-logged" not in output  # no query string in the access log
    finally:
        database.close()


class SlowClients:
    """Requests that never finish arriving, kept open on one thread: ``loris`` send their
    headers one byte every half second, ``bodies`` announce a 1 MB login body and send 10 bytes.
    A connection the server closes is opened again at once, as an attacker's tool would."""

    def __init__(self, port: int, *, loris: int, bodies: int):
        self.port = port
        self.kinds = ["loris"] * loris + ["body"] * bodies
        self.sockets: list[socket.socket | None] = [None] * len(self.kinds)
        self.sent = [0] * len(self.kinds)  # header bytes each slow-loris connection has sent
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    _HEADER = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-a: b\r\n" * 100

    def _open(self, i: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        if self.kinds[i] == "body":
            sock.sendall(
                b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
                + _SLOW_BODY[:10]
            )
        self.sent[i] = 0
        return sock

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for i, kind in enumerate(self.kinds):
                sock = self.sockets[i]
                try:
                    if sock is None:
                        raise ConnectionResetError
                    if kind == "loris" and self.sent[i] < len(self._HEADER):
                        sock.sendall(self._HEADER[self.sent[i] : self.sent[i] + 1])
                        self.sent[i] += 1
                except OSError:
                    if sock is not None:
                        sock.close()
                    try:
                        self.sockets[i] = self._open(i)
                        self.reopened += 1
                    except OSError:
                        self.sockets[i] = None

    def __enter__(self) -> SlowClients:
        self.sockets = [self._open(i) for i in range(len(self.kinds))]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for sock in self.sockets:
            if sock is not None:
                sock.close()


def test_production_serve_answers_beside_slow_clients(workdir: Path) -> None:
    """No proxy in front: slow requests hold a connection each, not a worker (sync workers:
    two slow-loris connections stalled a 2-worker server for ~30 s) nor a thread (gthread)."""
    process, base, log = _start_production(workdir, f"sqlite:///{workdir / 'authgate.db'}")
    port = int(base.rsplit(":", 1)[1])
    try:
        http = new_http_session()
        body = {"email": "slow@example.com", "password": PASSWORD}
        assert http.post(base + "/api/auth/register", json=body, timeout=5).status_code == 201
        with SlowClients(port, loris=16, bodies=8):
            time.sleep(1.5)  # every slow connection accepted and sending
            for _ in range(6):
                started = time.monotonic()
                # requests raises Timeout (failing the test) past 2 s
                answer = http.get(base + "/healthz", headers={"Connection": "close"}, timeout=2)
                assert answer.status_code == 200
                assert time.monotonic() - started < 2
                time.sleep(0.2)
            login = http.post(
                base + "/api/auth/login",
                json={"login": body["email"], "password": PASSWORD},
                headers={"Connection": "close"},
                timeout=2,
            )
            assert login.status_code == 200, login.text
    finally:
        assert _stop(process) == 0, log.read_text()
    assert "Using worker: gevent" in log.read_text()


def test_production_serve_workers_follow_revocations(workdir: Path) -> None:
    """Each gevent worker starts its revocation follower after the fork: a session logged out
    through one worker is refused by every worker that had it cached as live."""
    process, base, log = _start_production(workdir, f"sqlite:///{workdir / 'authgate.db'}")
    try:
        http = new_http_session()
        login = _register_and_log_in(http, base, "revoked@example.com")
        auth = {"Authorization": f"Bearer {login.json()['access_token']}", "Connection": "close"}
        for _ in range(10):  # new connections: both workers answer some, and remember the session
            assert http.get(base + "/api/auth/me", headers=auth, timeout=5).status_code == 200
        assert http.post(base + "/api/auth/logout", headers=auth, timeout=5).status_code == 204
        # Every worker refuses it once it has polled the revocation log (every 0.25 s): wait for
        # ten refusals in a row (new connections, so both workers answer), up to 10 s.
        deadline = time.monotonic() + 10
        refused_in_a_row = 0
        while refused_in_a_row < 10 and time.monotonic() < deadline:
            status = http.get(base + "/api/auth/me", headers=auth, timeout=5).status_code
            refused_in_a_row = refused_in_a_row + 1 if status == 401 else 0
        assert refused_in_a_row == 10
    finally:
        assert _stop(process) == 0, log.read_text()
    pids = set(re.findall(r"Booting worker with pid: (\d+)", log.read_text()))
    assert len(pids) == 2


def test_production_serve_refuses_weak_settings(workdir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "authgate", "serve", "--production"],
        env=_env(AUTHGATE_INSTANCE_PATH=str(workdir)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Refusing to start in production mode" in result.stderr
    assert "Traceback" not in result.stderr


def test_plain_gunicorn_with_several_workers_on_a_fresh_instance(workdir: Path) -> None:
    """Workers starting at once: one migrates and makes the key, the others wait for it."""
    port = free_port()
    log = workdir / "gunicorn.log"
    env = _env(AUTHGATE_INSTANCE_PATH=str(workdir / "inst"))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "4",
                "authgate.server:create_app()",
            ],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(process, f"http://127.0.0.1:{port}", log)
        http = new_http_session()
        for i in range(8):  # reach several workers
            body = {"email": f"w{i}@example.com", "password": PASSWORD}
            response = http.post(f"http://127.0.0.1:{port}/api/auth/register", json=body, timeout=5)
            assert response.status_code == 201
    finally:
        _stop(process)
    assert len(list((workdir / "inst" / "keys").glob("*.pem"))) == 1
    assert "Traceback" not in log.read_text()
