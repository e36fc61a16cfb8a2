"""A cluster as several hosts would run it: three ``authgate serve --production`` instances that
share nothing but one PostgreSQL and one Redis, and nginx balancing over them (its site written by
``authgate nginx --upstream ... --upstream ...``).

Each instance is a separate process tree with its own instance folder; the signing keys are in
the database (``AUTHGATE_SIGNING_KEYS=database``). Run as root where
``ip netns`` works, each instance is in a network namespace of its own, as on another host: its
own loopback, its own ports, and one address (10.x.y.2, .3, .4) on a bridge whose host side
(10.x.y.1) is where PostgreSQL and Redis listen and where nginx and the tests reach the
instances from. Elsewhere (not root, no ``ip``) the instances are processes on 127.0.0.1, each on
a port of its own, and ``Network.namespaced`` says so.

PostgreSQL and Redis are private (the shared test servers listen on 127.0.0.1 only, which no
namespace reaches): an ``initdb`` cluster and a ``redis-server`` of the cluster's own, on the
bridge's address. Everything is torn down at the end, namespaces and links included, whatever
failed.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from authgate.config import load_settings
from authgate.proxy.nginx import NginxOptions, render_nginx_config
from authgate.proxy.tls import issue_dev_certificate
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import upgrade_database
from tests.e2e.helpers import new_http_session, send
from tests.e2e.nginx_harness import Nginx
from tests.faults.postgres import PrivatePostgres
from tests.helpers import KEY_ENCRYPTION_KEY, free_port
from tests.server_process import log_tail

INSTANCES = 3
WORKERS = 2  # per instance
STARTUP_TIMEOUT_SECONDS = 60.0  # a loaded 2-core machine: ~20 s seen
ORIGIN = "https://app.example.test"
# A rotated key is in every JWKS this long before it signs (360 s by default).
KEY_PUBLISH_DELAY_SECONDS = 2
# The credential endpoints' limits in nginx, generous: the load comes from one address.
LOGIN_RATE, LOGIN_BURST = "1000r/s", 10000


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def namespaces_work() -> bool:
    """Root, ``ip`` installed, and a network namespace can be made (and removed)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"agprobe{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", name)
    except (subprocess.CalledProcessError, OSError):
        return False
    with contextlib.suppress(subprocess.CalledProcessError):
        _ip("netns", "del", name)
    return True


@dataclass
class Host:
    """Where one instance runs: a network namespace (``namespace``) or this host (None)."""

    address: str
    namespace: str | None = None

    def command(self, argv: list[str]) -> list[str]:
        if self.namespace is None:
            return argv
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass
class Network:
    """A bridge and one namespace per host, or nothing but 127.0.0.1."""

    namespaced: bool
    shared_address: str  # where PostgreSQL and Redis listen
    subnet: str | None  # the bridge's network, allowed to connect to PostgreSQL
    hosts: list[Host]
    _links: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Remove the namespaces (their veth ends go with them) and the bridge; kill whatever
        still runs in a namespace first. Every step is tried, whatever failed before."""
        for host in self.hosts:
            if host.namespace is None:
                continue
            listed = subprocess.run(
                ["ip", "netns", "pids", host.namespace], capture_output=True, text=True, check=False
            )
            for pid in listed.stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True, check=False)
        for link in self._links:
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)


def _free_subnet() -> str:
    """A 10.x.y.0/24 that no interface of this host is on."""
    taken = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for _ in range(100):
        prefix = f"10.{random.randint(160, 250)}.{random.randint(0, 255)}"
        if f" {prefix}." not in taken:
            return prefix
    raise RuntimeError("no free 10.x.y.0/24 for the cluster's bridge")


def create_network(count: int) -> Network:
    if not namespaces_work():
        return Network(False, "127.0.0.1", None, [Host("127.0.0.1") for _ in range(count)])
    tag = uuid.uuid4().hex[:6]
    prefix = _free_subnet()
    bridge = f"ag{tag}br"
    network = Network(True, f"{prefix}.1", f"{prefix}.0/24", [], [bridge])
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{prefix}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for index in range(count):
            namespace, outside, inside = f"ag{tag}n{index}", f"ag{tag}h{index}", f"ag{tag}p{index}"
            network.hosts.append(Host(f"{prefix}.{index + 2}", namespace))
            network._links.append(outside)
            _ip("netns", "add", namespace)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", namespace)
            _ip("link", "set", outside, "master", bridge)
            _ip("link", "set", outside, "up")
            _ip("-n", namespace, "addr", "add", f"{prefix}.{index + 2}/24", "dev", inside)
            _ip("-n", namespace, "link", "set", inside, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
    except BaseException:
        network.close()
        raise
    return network


class PrivateRedis:
    """A redis-server of the cluster's own on ``address``."""

    def __init__(self, address: str, directory: Path) -> None:
        self.address = address
        self.port = free_port()
        self.process = subprocess.Popen(
            # Bound to the bridge alone (or loopback): reachable by the instances, no password.
            ["redis-server", "--bind", address, "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--protected-mode", "no", "--dir", str(directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(host=address, port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise
                    time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        finally:
            client.close()

    @property
    def url(self) -> str:
        return f"redis://{self.address}:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@dataclass(eq=False)  # hashable: compared by identity
class Instance:
    """One ``authgate serve --production`` on its host."""

    name: str
    host: Host
    port: int
    env: dict[str, str]
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    http: requests.Session = field(default_factory=new_http_session)

    @property
    def upstream(self) -> str:
        return f"{self.host.address}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.upstream}"

    @property
    def log_path(self) -> Path:
        return self.folder / "serve.log"

    def log(self) -> str:
        return log_tail(self.log_path, chars=6000)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request straight to this instance (not through nginx)."""
        return send(self.http, method, self.base_url + path, **kwargs)

    def start(self) -> None:
        argv = [sys.executable, "-m", "authgate", "serve", "--production",
                "--host", self.host.address, "--port", str(self.port),
                "--workers", str(WORKERS)]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.host.command(argv),
                env=self.env,
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the master and its workers
            )

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.request("GET", "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        pytest.fail(f"{self.name} did not answer /healthz:\n{self.log()}")

    def cli(self, *args: str) -> str:
        """``authgate`` run on this instance's host (in its namespace), with its settings."""
        return run_cli(self.env, *args, host=self.host)

    def kill(self) -> None:
        """SIGKILL to the whole instance (master and workers), as when its host dies."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """At the end: nothing is left to finish, so no graceful shutdown to wait for."""
        self.http.close()
        if self.process is not None and self.process.returncode is None:
            self.kill()


@dataclass
class Cluster:
    network: Network
    instances: list[Instance]
    nginx: Nginx
    https_port: int
    ca_path: Path
    database_url: str
    redis_url: str
    base_env: dict[str, str]
    directory: Path

    @property
    def public_url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def origin(self) -> str:
        """The one allowed origin (AUTHGATE_ORIGINS)."""
        return ORIGIN

    def cli(self, *args: str, stdin: str = "") -> str:
        """``authgate`` with the instances' settings, on this host; its stdout."""
        return run_cli(self.base_env, *args, stdin=stdin)


def run_cli(env: dict[str, str], *args: str, stdin: str = "", host: Host | None = None) -> str:
    argv = [sys.executable, "-m", "authgate", *args]
    completed = subprocess.run(
        host.command(argv) if host else argv,
        env=env,
        cwd=env["AUTHGATE_INSTANCE_PATH"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, (args, completed.stdout, completed.stderr)
    return completed.stdout


def _base_env(
    directory: Path, https_port: int, database_url: str, redis_url: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    env.update(
        {
            "AUTHGATE_PUBLIC_URL": f"https://localhost:{https_port}",
            "AUTHGATE_ORIGINS": ORIGIN,
            "AUTHGATE_DATABASE_URL": database_url,
            "AUTHGATE_REDIS_URL": redis_url,
            "AUTHGATE_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
            "AUTHGATE_TRUSTED_PROXIES": "1",
            "AUTHGATE_INSTANCE_PATH": str(directory / "admin"),
            # Signing keys in the database (sealed with the key-encryption key): no key file.
            "AUTHGATE_SIGNING_KEYS": "database",
            "AUTHGATE_KEY_PUBLISH_DELAY_SECONDS": str(KEY_PUBLISH_DELAY_SECONDS),
        }
    )
    return env


@contextlib.contextmanager
def running_cluster(directory: Path) -> Iterator[Cluster]:
    """Three instances behind nginx on a private PostgreSQL and Redis; all gone afterwards."""
    with contextlib.ExitStack() as stack:
        network = create_network(INSTANCES)
        stack.callback(network.close)
        postgres = PrivatePostgres(address=network.shared_address, clients=network.subnet)
        stack.callback(postgres.destroy)
        postgres.start()
        redis_server = PrivateRedis(network.shared_address, directory)
        stack.callback(redis_server.stop)

        https_port, http_port = free_port(), free_port()
        base_env = _base_env(directory, https_port, postgres.url, redis_server.url)
        (directory / "admin").mkdir()
        engine = create_database_engine(postgres.url)
        try:
            upgrade_database(engine)
        finally:
            engine.dispose()
        run_cli(base_env, "keys", "rotate")  # the first key signs at once

        instances: list[Instance] = []
        for index, host in enumerate(network.hosts):
            folder = directory / f"instance-{index}"
            folder.mkdir()
            env = {**base_env, "AUTHGATE_INSTANCE_PATH": str(folder)}
            # In a namespace every instance may use the same port; on one host they cannot.
            instance = Instance(f"instance-{index}", host, free_port(), env, folder)
            instances.append(instance)
            stack.callback(instance.stop)
            instance.start()

        # What `authgate nginx --upstream A --upstream B --upstream C ...` prints (rendered here,
        # while the instances start: tests/proxy runs the command itself).
        certificate = issue_dev_certificate(
            directory / "tls", ["localhost", "127.0.0.1"], now=datetime.now(UTC)
        )
        options = NginxOptions(
            http_port=http_port,
            https_port=https_port,
            listen_addresses=("127.0.0.1",),
            cert_path=str(certificate.cert_path),
            key_path=str(certificate.key_path),
            upstreams=tuple(instance.upstream for instance in instances),
            login_rate=LOGIN_RATE,
            login_burst=LOGIN_BURST,
        )
        settings = load_settings(
            environ={k: v for k, v in base_env.items() if k.startswith("AUTHGATE_")}
        )
        nginx = Nginx(
            directory / "nginx", render_nginx_config(settings, options), ports=(https_port,)
        )
        for instance in instances:
            instance.wait_ready()
        stack.enter_context(nginx)
        yield Cluster(
            network,
            instances,
            nginx,
            https_port,
            certificate.ca_path,
            postgres.url,
            redis_server.url,
            base_env,
            directory,
        )
