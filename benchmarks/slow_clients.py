"""How a few slow clients affect ``authgate serve --production`` with no proxy in front.

Run from the repository root::

    .venv/bin/python benchmarks/slow_clients.py                    # every setup, a few minutes
    .venv/bin/python benchmarks/slow_clients.py --setups shipped,sync --attacks 0:0,2:1

For each serving setup and each attack level it starts a fresh server on a free 127.0.0.1 port
(a throw-away production instance: SQLite, a production key made with ``authgate keys rotate``,
an https public URL), opens the attack connections, and times normal requests beside them:

- **slow-loris**: a ``GET`` whose headers arrive one byte a second and never end;
- **slow body**: a login announcing ``Content-Length: 1000000`` that sends 10 bytes of the body,
  then one more byte every 10 s (never finishing);
- **probes**: ``--requests`` ``GET /healthz`` and ``--logins`` correct-password logins, each on a
  new connection, started ``--spacing`` seconds apart, each given at most ``--timeout`` seconds.

A connection the server closes is opened again at once (as an attacker's tool does), and counted
in the ``reopened`` column. Setups (``--setups``, comma-separated):

- ``shipped``: the real ``python -m authgate serve --production`` (whatever it runs by default);
- ``sync``, ``gthread:THREADS``, ``gevent``: ``authgate.cli.gunicorn_options`` with that worker
  class, run through ``authgate.cli.GunicornApplication`` (patched by gevent in the worker, late);
- ``gevent-inline``: ``gevent`` with the password hashes on the event loop (not offloaded);
- ``waitress:THREADS``: one waitress process (needs ``pip install waitress``).

``--attacks`` takes ``slow-loris:slow-body[:login-flood]`` counts; a login flood is that many
clients logging in back to back (CPU load: an argon2id verify each).

Everything is bounded: each probe by ``--timeout``, each level by the probes' schedule plus that
timeout; every server is stopped (SIGTERM, then SIGKILL of its process group) whatever happens.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

EMAIL = "slow-clients@example.com"
PASSWORD = "Slow-clients-Passw0rd-4471"
LORIS_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
LORIS_LINE = b"X-a: b\r\n"  # repeated, one byte a second, never the blank line
SLOW_BODY_LENGTH = 1_000_000
SLOW_BODY_START = b'{"login": "'  # 10 bytes of a body that never completes
SLOW_BODY_TRICKLE_SECONDS = 10.0


class BenchError(Exception):
    """The run itself failed: the message says why."""


def log(message: str) -> None:
    print(f"[slow-clients] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The attack ------------------------------------------------------------------------------------


class _SlowConnection:
    def __init__(self, port: int, kind: str):
        self.port = port
        self.kind = kind
        self.sock: socket.socket | None = None
        self.sent = 0
        self.next_send = 0.0

    def open(self, now: float) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        self.sent = 0
        if self.kind == "body":
            head = (
                "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {SLOW_BODY_LENGTH}\r\n\r\n"
            ).encode()
            self.sock.sendall(head + SLOW_BODY_START)
            self.next_send = now + SLOW_BODY_TRICKLE_SECONDS
        else:
            self.next_send = now

    def tick(self, now: float) -> None:
        """Send the next byte when due; raise OSError when the server closed the connection."""
        assert self.sock is not None
        if now < self.next_send:
            return
        if self.kind == "body":
            self.sock.sendall(b" ")
            self.next_send = now + SLOW_BODY_TRICKLE_SECONDS
            return
        stream = LORIS_HEAD if self.sent < len(LORIS_HEAD) else LORIS_LINE
        index = self.sent if self.sent < len(LORIS_HEAD) else (self.sent - len(LORIS_HEAD))
        self.sock.sendall(stream[index % len(stream) : index % len(stream) + 1])
        self.sent += 1
        self.next_send = now + 1.0

    def closed_by_server(self) -> bool:
        """Whether the server answered or closed (a readable socket here is one of those)."""
        assert self.sock is not None
        self.sock.setblocking(False)
        try:
            return self.sock.recv(1, socket.MSG_PEEK) is not None
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Attack:
    """Slow connections kept open (and opened again when closed) on one thread until stopped,
    and ``logins`` clients logging in back to back (CPU load: one argon2id verify each)."""

    def __init__(self, port: int, loris: int, bodies: int, logins: int = 0):
        self.connections = [_SlowConnection(port, "loris") for _ in range(loris)]
        self.connections += [_SlowConnection(port, "body") for _ in range(bodies)]
        self.reopened = 0
        self.open_failures = 0
        self.flood_logins = 0
        self._base_url = f"http://127.0.0.1:{port}"
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, name="attack", daemon=True)]
        self._threads += [
            threading.Thread(target=self._flood, name="flood", daemon=True) for _ in range(logins)
        ]

    def __enter__(self) -> Attack:
        now = time.monotonic()
        for connection in self.connections:
            connection.open(now)
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        for connection in self.connections:
            connection.close()

    def _flood(self) -> None:
        with requests.Session() as http:
            while not self._stop.is_set():
                try:
                    http.post(
                        self._base_url + "/api/auth/login",
                        json={"login": EMAIL, "password": PASSWORD},
                        timeout=10,
                    )
                    self.flood_logins += 1
                except requests.RequestException:
                    pass

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            for connection in self.connections:
                try:
                    if connection.sock is None or connection.closed_by_server():
                        raise ConnectionResetError
                    connection.tick(now)
                except OSError:
                    connection.close()
                    try:
                        connection.open(now)
                        self.reopened += 1
                    except OSError:
                        self.open_failures += 1


# The probes ------------------------------------------------------------------------------------


@dataclass
class Probe:
    kind: str
    seconds: float | None  # None: no answer within the timeout
    status: int | None = None


def _probe(base_url: str, kind: str, timeout: float, out: list[Probe]) -> None:
    started = time.monotonic()
    headers = {"Connection": "close"}
    try:
        if kind == "login":
            response = requests.post(
                base_url + "/api/auth/login",
                json={"login": EMAIL, "password": PASSWORD},
                headers=headers,
                timeout=timeout,
            )
        else:
            response = requests.get(base_url + "/healthz", headers=headers, timeout=timeout)
        out.append(Probe(kind, time.monotonic() - started, response.status_code))
    except requests.RequestException:
        out.append(Probe(kind, None))


def run_probes(
    base_url: str, *, requests_: int, logins: int, spacing: float, timeout: float
) -> list[Probe]:
    """Probes started ``spacing`` seconds apart, logins among them; all done by the timeout."""
    kinds = ["healthz"] * requests_ + ["login"] * logins
    # Spread the logins over the run instead of putting them all at the end.
    if logins:
        step = max(1, len(kinds) // logins)
        kinds = ["healthz"] * requests_
        for i in range(logins):
            kinds.insert(min(len(kinds), i * step + step // 2), "login")
    results: list[Probe] = []
    threads = []
    for kind in kinds:
        thread = threading.Thread(target=_probe, args=(base_url, kind, timeout, results))
        thread.start()
        threads.append(thread)
        time.sleep(spacing)
    for thread in threads:
        thread.join(timeout + 5)
    return results


# Servers ---------------------------------------------------------------------------------------


def instance_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    env.update(
        AUTHGATE_ENV="production",
        AUTHGATE_INSTANCE_PATH=str(workdir / "instance"),
        AUTHGATE_PUBLIC_URL="https://auth.example.test",
        AUTHGATE_ORIGINS="https://app.example.test",
        AUTHGATE_DATABASE_URL=f"sqlite:///{workdir / 'authgate.db'}",
        AUTHGATE_KEYS_DIR=str(workdir / "keys"),
        # production seals stored secrets with a key-encryption key (a throw-away one here)
        AUTHGATE_KEY_ENCRYPTION_KEY="FXhJLkGT6FKNr9vCvIzqq99xXvNmSGulpOgpO3NZIeI",
    )
    return env


def prepare_instance(env: dict[str, str]) -> None:
    """A production key, the migrated database and the probes' user."""
    for command in (["keys", "rotate"], ["db", "upgrade"]):
        done = subprocess.run(
            [sys.executable, "-m", "authgate", *command],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"authgate {' '.join(command)} failed:\n{done.stderr}")
    done = subprocess.run(
        [sys.executable, "-m", "authgate", "users", "create", EMAIL, "--password-stdin"],
        env=env,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"authgate users create failed:\n{done.stderr}")


def server_command(setup: str, port: int, workers: int) -> list[str]:
    if setup == "shipped":
        return [
            sys.executable,
            "-m",
            "authgate",
            "serve",
            "--production",
            "--workers",
            str(workers),
            "--port",
            str(port),
        ]
    return [
        sys.executable,
        __file__,
        "--serve",
        setup,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


class Server:
    def __init__(self, setup: str, port: int, workers: int, env: dict[str, str], log_path: Path):
        self.setup = setup
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        with log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                server_command(setup, port, workers),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, which stop() may kill
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.setup} exited during start-up:\n{self.log_tail()}")
            try:
                if requests.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.setup} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group this script created
            self.proc.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@contextmanager
def running(setup: str, workers: int, env: dict[str, str], workdir: Path) -> Iterator[Server]:
    port = free_port()
    server = Server(setup, port, workers, env, workdir / f"{setup.replace(':', '-')}.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def serve(setup: str, port: int, workers: int) -> None:
    """The server of one setup, in this process (``--serve``); settings from the environment."""
    from authgate.cli import GunicornApplication, gunicorn_options
    from authgate.config import load_settings

    os.environ.update(AUTHGATE_HOST="127.0.0.1", AUTHGATE_PORT=str(port))
    settings = load_settings()
    name, _, threads = setup.partition(":")
    if name == "gevent-inline":  # hashes on the event loop, not offloaded to native threads
        import authgate.bootstrap

        authgate.bootstrap.gevent_offload = lambda *args, **kwargs: None
        name = "gevent"
    if name == "waitress":
        import waitress

        from authgate.server import create_app

        waitress.serve(create_app(settings), host="127.0.0.1", port=port, threads=int(threads or 4))
        return
    options = {**gunicorn_options(settings, workers), "worker_class": name}
    if threads:
        options["threads"] = int(threads)
    GunicornApplication(settings, options).run()


# The run ---------------------------------------------------------------------------------------


@dataclass
class Level:
    setup: str
    loris: int
    bodies: int
    flood: int
    healthz: list[float | None] = field(default_factory=list)
    logins: list[float | None] = field(default_factory=list)
    errors: int = 0  # answers other than 200
    reopened: int = 0
    flood_logins: int = 0


def measure(
    args: argparse.Namespace,
    setup: str,
    attack_spec: tuple[int, ...],
    env: dict[str, str],
    workdir: Path,
) -> Level:
    loris, bodies, flood = (*attack_spec, 0)[:3]
    level = Level(setup, loris, bodies, flood)
    with running(setup, args.workers, env, workdir) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        with Attack(port, loris, bodies, flood) as attack:
            time.sleep(args.settle)  # the slow connections are accepted and sending
            probes = run_probes(
                server.base_url,
                requests_=args.requests,
                logins=args.logins,
                spacing=args.spacing,
                timeout=args.timeout,
            )
            level.reopened = attack.reopened
        level.flood_logins = attack.flood_logins
    for probe in probes:
        (level.logins if probe.kind == "login" else level.healthz).append(probe.seconds)
        if probe.status is not None and probe.status != 200:
            level.errors += 1
    return level


def _fmt(values: list[float | None], pick: str) -> str:
    answered = [v for v in values if v is not None]
    if not answered:
        return "-"
    value = statistics.median(answered) if pick == "p50" else max(answered)
    return f"{value:.2f}"


def print_table(levels: list[Level], timeout: float) -> None:
    header = (
        f"{'setup':<14} {'loris+body+flood':>16} {'healthz p50':>11} {'max':>7} {'no answer':>9} "
        f"{'login p50':>9} {'max':>7} {'no answer':>9} {'reopened':>8} {'flood logins':>12}"
    )
    print(f"\nseconds per request; 'no answer': none within {timeout:.0f} s")
    print(header)
    print("-" * len(header))
    for lv in levels:
        print(
            f"{lv.setup:<14} {f'{lv.loris}+{lv.bodies}+{lv.flood}':>16} "
            f"{_fmt(lv.healthz, 'p50'):>11} "
            f"{_fmt(lv.healthz, 'max'):>7} "
            f"{f'{lv.healthz.count(None)}/{len(lv.healthz)}':>9} "
            f"{_fmt(lv.logins, 'p50'):>9} {_fmt(lv.logins, 'max'):>7} "
            f"{f'{lv.logins.count(None)}/{len(lv.logins)}':>9} {lv.reopened:>8} "
            f"{lv.flood_logins:>12}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--setups", default="shipped,sync,gthread:8,gthread:32,gevent-inline,waitress:8"
    )
    parser.add_argument(
        "--attacks",
        default="0:0,2:1,8:2,64:16,0:0:4",
        help="slow-loris:slow-body[:login-flood] counts, comma-separated (flood: clients "
        "logging in back to back)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=8, help="/healthz probes per level")
    parser.add_argument("--logins", type=int, default=2, help="login probes per level")
    parser.add_argument("--spacing", type=float, default=0.5, help="seconds between probes")
    parser.add_argument("--timeout", type=float, default=40.0, help="seconds a probe may wait")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before the probes")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.workers)
        return 0
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    attacks = [tuple(int(n) for n in a.split(":")) for a in args.attacks.split(",")]
    if any(len(a) not in (2, 3) for a in attacks):
        raise SystemExit("--attacks: slow-loris:slow-body[:login-flood], e.g. 2:1 or 0:0:4")
    workdir = Path(tempfile.mkdtemp(prefix="authgate-slow-clients-"))
    levels: list[Level] = []
    try:
        env = instance_env(workdir)
        prepare_instance(env)
        for setup in args.setups.split(","):
            if setup.startswith("waitress") and importlib.util.find_spec("waitress") is None:
                log(f"skipping {setup}: waitress is not installed (pip install waitress)")
                continue
            for attack in attacks:
                log(f"{setup}: slow-loris:slow-body:login-flood {':'.join(map(str, attack))}")
                levels.append(measure(args, setup, attack, env, workdir))
    except BenchError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(levels, args.timeout)
    if args.json:
        report: dict[str, Any] = {"args": {**vars(args), "json": str(args.json)}}
        report["levels"] = [asdict(level) for level in levels]
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
