"""Database round trips and statements per login, refresh, logout and /me on PostgreSQL (with an
access token, cached or new to the process, and with an API token new to the process).

Run from the repository root::

    .venv/bin/python benchmarks/round_trips.py                    # this checkout
    .venv/bin/python benchmarks/round_trips.py --baseline HEAD    # and a git ref, side by side
    .venv/bin/python benchmarks/round_trips.py --latency-ms 1     # wall clock, 0 and 1 ms away

The app talks to PostgreSQL through a small TCP proxy in this process, which counts what crosses
it, on the wire, whatever the code above it does:

- a **round trip** is a burst of client→server bytes sent after the server has spoken (or the
  first bytes of a connection): the client sent something and waits for the answer before it
  sends more. Statements sent together (psycopg's extended protocol sends Parse/Bind/Execute/
  Sync in one write) are one round trip; a pool's ping, a ``BEGIN`` or a ``COMMIT`` are one each.
  Connecting counts too (startup, authentication), but connections are warmed up first;
- a **statement** is a ``Query`` ('Q', the simple protocol: ``BEGIN``, ``COMMIT``, ``ROLLBACK``,
  a ping) or an ``Execute`` ('E', the extended protocol) message of the client, read from the
  PostgreSQL protocol stream.

``--latency-ms N`` delays every chunk N ms in each direction (in order), as a database on another
host would be, and prints the wall-clock milliseconds of each operation at 0 and N ms
(median of ``--repeat``). A login's figure includes its argon2id hash (the minimum parameters).

The database is a private schema (dropped at the end) on ``--database-url`` (the shared
127.0.0.1:5432 server by default); nothing else of that server is touched.
``--baseline REF`` runs this same script over ``git archive REF src`` in a temporary directory
(the checkout is not touched) and prints its figures beside this checkout's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the counting proxy is the tests' (tests/counting_proxy.py)

from tests.counting_proxy import CountingProxy  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
EMAIL = "round-trips@example.com"
PASSWORD = "Round-trips-Passw0rd-8817"
API_TOKEN_FIRST = "/me, API token (new to the process)"
OPERATIONS = (
    "login",
    "refresh",
    "logout",
    "/me (cached)",
    "/me (new to the process)",
    API_TOKEN_FIRST,
)


def _measure(url: str, proxy: CountingProxy, repeat: int) -> dict[str, Any]:
    """Counts and milliseconds of each operation, the app connected through ``proxy``."""
    from flask import Flask

    from authgate import AuthGate
    from authgate.bootstrap import build_service
    from authgate.config import Settings

    with tempfile.TemporaryDirectory() as instance:
        settings = Settings(
            instance_path=Path(instance),
            database_url=url,  # type: ignore[arg-type]
            public_url="http://localhost:8086",
            login_rate_limit_per_account="100000 per minute",
            login_rate_limit_per_ip="100000 per minute",
        )
        services = [build_service(settings), build_service(settings)]
        try:
            clients = []
            for service in services:
                app = Flask("round-trips")
                AuthGate(app, service=service)
                clients.append(app.test_client())
            this, other = clients
            registered = this.post(
                "/api/auth/register", json={"email": EMAIL, "password": PASSWORD}
            )
            if registered.status_code not in (201, 409):  # 409: registered by a run before
                raise SystemExit(f"registration: {registered.status_code} {registered.json}")
            credentials = {"login": EMAIL, "password": PASSWORD}
            counts: dict[str, list[tuple[int, int]]] = {name: [] for name in OPERATIONS}
            times: dict[str, list[float]] = {name: [] for name in OPERATIONS}

            def run(name: str, client: Any, method: str, path: str, **kwargs: Any) -> Any:
                expected = kwargs.pop("expected", 200)
                with proxy.counting() as counted:
                    started = time.perf_counter()
                    response = client.open(path, method=method, **kwargs)
                    took = time.perf_counter() - started
                if response.status_code != expected:
                    raise SystemExit(f"{name}: {response.status_code} {response.get_data()!r}")
                counts[name].append((counted.round_trips, counted.statements))
                times[name].append(took * 1000)
                return response.json

            for round_ in range(repeat + 3):  # the first rounds warm the pools up
                issued = run("login", this, "POST", "/api/auth/login", json=credentials)
                bearer = {"Authorization": f"Bearer {issued['access_token']}"}
                refresh = {"refresh_token": issued["refresh_token"]}
                run("/me (cached)", this, "GET", "/api/auth/me", headers=bearer)
                run("/me (new to the process)", other, "GET", "/api/auth/me", headers=bearer)
                # A new API token each round: the other process has never seen it.
                created = this.post(
                    "/api/tokens",
                    json={"name": f"round {round_}", "scopes": ["read"]},
                    headers=bearer,
                )
                if created.status_code != 201:
                    raise SystemExit(f"API token: {created.status_code} {created.json}")
                api_token = {"Authorization": f"Bearer {created.json['token']}"}
                services[1].cache.clear()  # nor its user, nor the membership (same each round)
                run(API_TOKEN_FIRST, other, "GET", "/api/auth/me", headers=api_token)
                rotated = run("refresh", this, "POST", "/api/auth/refresh", json=refresh)
                bearer = {"Authorization": f"Bearer {rotated['access_token']}"}
                run("logout", this, "POST", "/api/auth/logout", headers=bearer, expected=204)
                if round_ < 3:
                    for name in OPERATIONS:
                        counts[name].clear()
                        times[name].clear()
        finally:
            for service in services:
                service.close()
    return {
        name: {
            "round_trips": max(c[0] for c in counts[name]),
            "statements": max(c[1] for c in counts[name]),
            "ms": statistics.median(times[name]),
        }
        for name in OPERATIONS
    }


def _private_schema(database_url: str) -> tuple[str, Callable[[], None]]:
    from sqlalchemy import create_engine, text

    schema = f"round_trips_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return schema, drop


def _in_schema(database_url: str, schema: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def measure(database_url: str, repeat: int, latency_ms: float) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    from authgate.store.sqlalchemy.engines import create_database_engine
    from authgate.store.sqlalchemy.migrate import upgrade_database

    parsed = make_url(database_url)
    target = (parsed.host or "127.0.0.1", parsed.port or 5432)
    schema, drop = _private_schema(database_url)
    try:
        url = _in_schema(database_url, schema)
        engine = create_database_engine(url)
        upgrade_database(engine)
        engine.dispose()
        results: dict[str, Any] = {}
        for delay in sorted({0.0, latency_ms}):
            with CountingProxy(target, delay / 1000) as proxy:
                results[f"{delay:g}"] = _measure(proxy.url(url), proxy, repeat)
        return results
    finally:
        drop()


def _baseline(ref: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tree:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": str(Path(tree) / "src")}
        options = ["--repeat", str(args.repeat), "--latency-ms", str(args.latency_ms)]
        command = [
            sys.executable,
            __file__,
            "--json",
            *options,
            "--database-url",
            args.database_url,
        ]
        done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        return dict(json.loads(done.stdout))


def _print(columns: dict[str, dict[str, Any]], latency_ms: float) -> None:
    delays = [f"{d:g}" for d in sorted({0.0, latency_ms})]
    header = f"{'operation':<36}"
    for label in columns:
        header += f" | {label + ' round trips':>22} {'statements':>10}"
        header += "".join(f" {'ms @' + d + ' ms':>11}" for d in delays)
    print(header)
    print("-" * len(header))
    for name in OPERATIONS:
        line = f"{name:<36}"
        for results in columns.values():
            counted = results["0"][name]
            line += f" | {counted['round_trips']:>22} {counted['statements']:>10}"
            line += "".join(f" {results[d][name]['ms']:>11.2f}" for d in delays)
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=1.0)
    parser.add_argument("--baseline", metavar="REF", help="also measure this git ref's src/")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results = measure(args.database_url, args.repeat, args.latency_ms)
    if args.json:
        print(json.dumps(results))
        return
    columns = {"this checkout": results}
    if args.baseline:
        columns = {args.baseline: _baseline(args.baseline, args), **columns}
    _print(columns, args.latency_ms)
    print(
        "\nround trips: client→server bursts through the proxy; statements: Query and Execute"
        " messages;\nms: median wall clock of the request through the Flask test client, with"
        f" the proxy adding 0 or {args.latency_ms:g} ms each way (the largest count is shown)."
    )


if __name__ == "__main__":
    main()
