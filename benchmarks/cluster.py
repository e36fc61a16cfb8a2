"""Three instances behind nginx on one PostgreSQL and one Redis (the cluster of
``tests/e2e/cluster.py``: a network namespace per instance when run as root): how fast a logout
and a key rotation reach the other instances, and what an instance's death costs the requests in
flight. The figures are in docs/scaling.md.

    .venv/bin/python benchmarks/cluster.py [--logouts 30] [--threads 4] [--json out.json]

- logout: log in, warm the two other instances' caches, log out on the first; the time from the
  logout's answer until both others answer 401 (each asked directly, in a tight loop).
- rotation: the time from ``authgate keys rotate`` (run in the first instance's namespace)
  returning until the new key is in every instance's JWKS.
- failover: ``--threads`` keep-alive clients GET /api/auth/me through nginx; one instance is
  SIGKILLed (master and workers); the requests that failed and the latency percentiles before,
  during the second after, and after the kill.
"""

from __future__ import annotations

import argparse
import json
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.cluster import Cluster, Instance, running_cluster
from tests.helpers import PASSWORD, bearer


def _client(cluster: Cluster) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(cluster.ca_path))
    return httpx.Client(base_url=cluster.public_url, verify=context, trust_env=False, timeout=30)


def _login(http: httpx.Client, cluster: Cluster, email: str, *, register: bool) -> str:
    if register:
        created = http.post(
            "/api/auth/register",
            json={"email": email, "password": PASSWORD},
            headers={"Origin": cluster.origin, "X-Requested-With": "fetch"},
        )
        assert created.status_code == 201, created.text
    response = http.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _status(instance: Instance, token: str) -> int:
    return instance.request("GET", "/api/auth/me", headers=bearer(token)).status_code


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"n": len(ordered), "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0)}


def measure_logouts(cluster: Cluster, count: int) -> dict[str, Any]:
    first, *others = cluster.instances
    delays: list[float] = []
    with _client(cluster) as http:
        email = f"bench-logout-{time.time_ns()}@example.com"
        _login(http, cluster, email, register=True)
        for _ in range(count):
            token = _login(http, cluster, email, register=False)
            for instance in others:
                for _ in range(2):
                    assert _status(instance, token) == 200
            response = first.request("POST", "/api/auth/logout", headers=bearer(token))
            returned = time.perf_counter()
            assert response.status_code == 204, response.text
            waiting = list(others)
            while waiting:
                waiting = [i for i in waiting if _status(i, token) != 401]
                assert time.perf_counter() - returned < 5, "no refusal within 5 s"
            delays.append(time.perf_counter() - returned)
    return {**_percentiles(delays), "mean_ms": round(statistics.mean(delays) * 1000, 1)}


def measure_rotation(cluster: Cluster) -> dict[str, Any]:
    first = cluster.instances[0]
    kid = first.cli("keys", "rotate").splitlines()[0].strip()
    returned = time.perf_counter()
    waiting = list(cluster.instances)
    while waiting:
        waiting = [
            i
            for i in waiting
            if kid
            not in {k["kid"] for k in i.request("GET", "/.well-known/jwks.json").json()["keys"]}
        ]
        time.sleep(0.005)
    return {"in_every_jwks_ms": round((time.perf_counter() - returned) * 1000, 1)}


def measure_failover(cluster: Cluster, threads: int, seconds: float = 3.0) -> dict[str, Any]:
    with _client(cluster) as http:
        tokens = [
            _login(http, cluster, f"bench-load-{time.time_ns()}-{n}@example.com", register=True)
            for n in range(threads)
        ]
    samples: list[tuple[float, float, int]] = []  # (start, seconds, status; 0 = exception)
    lock = threading.Lock()
    stop = threading.Event()

    def read(token: str) -> None:
        with _client(cluster) as http:
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    status = http.get("/api/auth/me", headers=bearer(token)).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    samples.append((start, time.perf_counter() - start, status))

    workers = [threading.Thread(target=read, args=(token,)) for token in tokens]
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    killed_at = time.perf_counter()
    victim = cluster.instances[0]
    victim.kill()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    try:
        victim.start()
        victim.wait_ready()
    except BaseException as e:  # the figures are still worth printing
        print(f"(the killed instance did not restart: {e})", file=sys.stderr)
    before = [d for s, d, _ in samples if s < killed_at]
    around = [d for s, d, _ in samples if killed_at - 0.05 <= s < killed_at + 1.0]
    after = [d for s, d, _ in samples if s >= killed_at + 1.0]
    return {
        "requests": len(samples),
        "failed": sum(status != 200 for _, _, status in samples),
        "before": _percentiles(before),
        "first_second_after_kill": _percentiles(around),
        "after": _percentiles(after),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logouts", type=int, default=30)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="authgate-cluster-") as directory,
        running_cluster(Path(directory)) as cluster,
    ):
        results = {
            "namespaced": cluster.network.namespaced,
            "logout_propagation": measure_logouts(cluster, args.logouts),
            "key_rotation": measure_rotation(cluster),
            "failover": measure_failover(cluster, args.threads),
        }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
