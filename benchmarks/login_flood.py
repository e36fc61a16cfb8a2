"""A login flood against ``authgate serve --production``: do protected requests still get served?

Run from the repository root::

    .venv/bin/python benchmarks/login_flood.py                  # about a minute
    .venv/bin/python benchmarks/login_flood.py --factor 20 --duration 20 --json flood.json
    .venv/bin/python benchmarks/login_flood.py --server-env AUTHGATE_PASSWORD_HASH_QUEUE=100000

It starts the real production server (``python -m authgate serve --production``: gunicorn, gevent
workers) on a free 127.0.0.1 port, on a throw-away production instance (``slow_clients.py``'s:
SQLite, or a fresh database on the PostgreSQL server ``--postgresql URL``), with the login
throttle's limits raised out of the way (a credential-stuffing flood comes from many addresses;
here it comes from one), then with wrk:

1. **hash rate**: bad-password logins back to back on ``2 x workers x concurrency`` connections
   (``--capacity-seconds``): the logins answered ``401`` per second are the rate at which this
   server checks passwords, ``H``. A connection refused ``503`` waits its ``Retry-After`` before
   it sends again, as a well-behaved client does: without that, a worker that happened to accept
   more connections than its queue holds answers a storm of refusals back to back, its hash
   thread (a lower CPU priority) starves, and ``H`` -- so the flood -- comes out a third of the
   server's real rate (15/s instead of 45/s on a 2-core machine);
2. **idle**: ``GET /api/auth/me`` with a bearer token, paced at ``--me-rate`` requests a second
   (wrk's ``delay()``), for ``--duration`` seconds: its p50 and p99;
3. **flood**: the same ``/me`` run again while wrk sends bad-password logins (a new unknown name
   each: credential stuffing) paced to ``--factor`` x H in all, on ``--flood-connections``
   connections (by default enough for one login every 500 ms each -- under gunicorn's 2 s
   keep-alive -- plus one per place in the workers' hash queues, which hold theirs); the flood
   starts 2 s before and ends after the ``/me`` run. Each flood answer is counted by status
   (``401`` checked, ``503`` refused as busy -- with or without ``Retry-After`` --, other), as is
   the rate actually sent.

It prints both ``/me`` p99s and their ratio (target: at most 2), and writes every figure with
``--json``. ``--server-env NAME=VALUE`` (repeatable) sets a server setting, e.g. to compare with a
gate that never refuses. ``--server-cpus 0 --client-cpus 1`` puts the server (every process and
thread) and wrk on CPUs of their own, as a server host and a load generator on another would be
(a database server on this machine is not pinned). The server is stopped whatever happens
(SIGTERM, then SIGKILL of its process group).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests
from run import MARKER, ensure_wrk, lua_string
from slow_clients import EMAIL, PASSWORD, BenchError, instance_env, prepare_instance, running

P99_TARGET_RATIO = 2.0
FLOOD_PACE_MS = 500
# High enough never to refuse: the flood stands for many addresses, the throttle for one.
UNTHROTTLED = "1000000 per second"

# Per-thread counters of the answers' statuses, summed by done() (wrk's pattern: setup() keeps
# each thread, done() reads their globals). Latencies and durations are in microseconds.
LUA_COUNTING = f"""
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  n401, n503, n503_retry, nother, sent = 0, 0, 0, 0, 0
  pace = tonumber(args[1]) or 0
  prefix = args[2] or "t"
  backoff = args[3] == "backoff"
  held = 0
end
function delay()
  -- wrk asks right after response() of the same connection: a refused one waits Retry-After
  if held > 0 then
    local wait = held
    held = 0
    return wait
  end
  return pace
end
function response(status, headers, body)
  if status == 401 then n401 = n401 + 1
  elseif status == 503 then
    n503 = n503 + 1
    local retry_after = headers["Retry-After"] or headers["retry-after"]
    if retry_after ~= nil then
      n503_retry = n503_retry + 1
    end
    if backoff then
      held = 1000 * (tonumber(retry_after) or 1)
    end
  elseif status ~= 200 then nother = nother + 1 end
end
function done(summary, latency, requests)
  local a, b, c, d = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("n401"); b = b + t:get("n503"); c = c + t:get("n503_retry")
    d = d + t:get("nother")
  end
  local e = summary.errors
  io.write(string.format(
    "{MARKER} requests=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f "
    .. "n401=%.0f n503=%.0f n503_retry=%.0f nother=%.0f socket=%.0f\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, a, b, c, d, e.connect + e.read + e.write + e.timeout))
end
"""

LUA_STUFFING = """
local counter = 0
function request()
  counter = counter + 1
  local body = '{"login": "stuffed-' .. prefix .. '-' .. counter
    .. '@example.com", "password": "Not-the-password-' .. counter .. '"}'
  return wrk.format("POST", "/api/auth/login", {["Content-Type"] = "application/json"}, body)
end
"""


def log(message: str) -> None:
    print(f"[login_flood] {message}", file=sys.stderr, flush=True)


@dataclass
class Run:
    name: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    n401: int
    n503: int
    n503_with_retry_after: int
    other_status: int
    socket_errors: int


def write_script(path: Path, head: str, tail: str = "") -> Path:
    path.write_text(head + "\n" + tail + LUA_COUNTING)
    return path


def wrk_command(
    wrk: str,
    url: str,
    script: Path,
    *,
    connections: int,
    seconds: int,
    pace_ms: int,
    tag: str,
    backoff: bool = False,
    cpus: str | None = None,
) -> list[str]:
    threads = min(2, connections)
    return [
        *(["taskset", "--cpu-list", cpus] if cpus else []),
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
        "--",
        str(pace_ms),
        tag,
        *(["backoff"] if backoff else []),
    ]


def parse_run(name: str, connections: int, output: str) -> Run:
    figures: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith(MARKER + " "):
            for item in line.split()[1:]:
                key, _, value = item.partition("=")
                figures[key] = float(value)
    if not figures:
        raise BenchError(f"wrk printed no figures for {name}:\n{output}")
    seconds = figures["duration_us"] / 1e6
    return Run(
        name=name,
        connections=connections,
        duration_s=round(seconds, 3),
        requests=int(figures["requests"]),
        rps=figures["requests"] / seconds if seconds else 0.0,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        n401=int(figures["n401"]),
        n503=int(figures["n503"]),
        n503_with_retry_after=int(figures["n503_retry"]),
        other_status=int(figures["nother"]),
        socket_errors=int(figures["socket"]),
    )


def run_wrk(name: str, command: list[str], connections: int, timeout: float) -> Run:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed for {name} (exit {done.returncode}):\n{done.stderr}")
    return parse_run(name, connections, done.stdout)


def access_token(base_url: str) -> str:
    """Log in (as a script); a ``503 server_busy`` (the previous run's queue) is tried again
    after its ``Retry-After``, as a client should."""
    for _ in range(30):
        answer = requests.post(
            base_url + "/api/auth/login", json={"login": EMAIL, "password": PASSWORD}, timeout=30
        )
        if answer.status_code != 503:
            break
        time.sleep(float(answer.headers.get("Retry-After", "1")))
    if answer.status_code != 200:
        raise BenchError(f"login failed: {answer.status_code} {answer.text}")
    return str(answer.json()["access_token"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=None, help="default: the server's own")
    parser.add_argument("--factor", type=float, default=20.0, help="flood rate / hash rate")
    parser.add_argument("--duration", type=int, default=15, help="seconds of each /me run")
    parser.add_argument("--capacity-seconds", type=int, default=8)
    parser.add_argument("--me-rate", type=int, default=200, help="/me requests a second")
    parser.add_argument("--me-connections", type=int, default=4)
    parser.add_argument(
        "--flood-connections", type=int, default=None, help="default: from the rate (see above)"
    )
    parser.add_argument(
        "--postgresql",
        default=None,
        metavar="URL",
        help="a PostgreSQL server's URL: a fresh database is made there for the run, then dropped "
        "(default: SQLite in the instance)",
    )
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--server-cpus",
        default=None,
        metavar="LIST",
        help="pin the server (every process and thread) to these CPUs, e.g. 0",
    )
    parser.add_argument(
        "--client-cpus", default=None, metavar="LIST", help="run wrk on these CPUs, e.g. 1"
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep-instance", action="store_true")
    return parser.parse_args(argv)


def parse_cpu_list(text: str) -> set[int]:
    """``0,2-3`` -> {0, 2, 3}."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def pin_process_tree(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` and of its descendants onto ``cpus`` (threads started later
    inherit their creator's): the server on CPUs of its own, as on a host of its own, with the
    load generator elsewhere (``--client-cpus``)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
            children = (task / "children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread has ended meanwhile
        for child in children:
            pin_process_tree(int(child), cpus)


def measure(args: argparse.Namespace, wrk: str, workdir: Path) -> dict[str, Any]:
    env = instance_env(workdir)
    env.update(
        AUTHGATE_LOGIN_RATE_LIMIT_PER_IP=UNTHROTTLED,
        AUTHGATE_LOGIN_RATE_LIMIT_PER_ACCOUNT=UNTHROTTLED,
    )
    if args.postgresql:
        env["AUTHGATE_DATABASE_URL"] = args.postgresql
    for item in args.server_env:
        name, _, value = item.partition("=")
        env[name] = value
    prepare_instance(env)
    workers = args.workers or min(2 * (os.cpu_count() or 1) + 1, 64)
    concurrency = int(env.get("AUTHGATE_PASSWORD_HASH_CONCURRENCY", "1"))
    queue = min(int(env.get("AUTHGATE_PASSWORD_HASH_QUEUE", "8")), 64)
    scripts = workdir / "lua"
    scripts.mkdir()
    with running("shipped", workers, env, workdir) as server:
        if args.server_cpus:
            pin_process_tree(server.proc.pid, parse_cpu_list(args.server_cpus))
        login_url = server.base_url + "/api/auth/login"
        me_url = server.base_url + "/api/auth/me"
        stuffing = write_script(scripts / "stuffing.lua", "", LUA_STUFFING)

        slots = workers * concurrency
        log(f"hash rate: {2 * slots} connections, {args.capacity_seconds} s")
        capacity = run_wrk(
            "hash rate",
            wrk_command(
                wrk,
                login_url,
                stuffing,
                connections=2 * slots,
                seconds=args.capacity_seconds,
                pace_ms=0,
                tag="c",
                cpus=args.client_cpus,
                backoff=True,
            ),
            2 * slots,
            args.capacity_seconds + 60,
        )
        hash_rate = capacity.n401 / capacity.duration_s

        token = access_token(server.base_url)
        me_script = write_script(
            scripts / "me.lua", f'wrk.headers["Authorization"] = {lua_string("Bearer " + token)}'
        )
        me_pace = max(1, round(1000 * args.me_connections / args.me_rate))

        def me_run(name: str) -> Run:
            return run_wrk(
                name,
                wrk_command(
                    wrk,
                    me_url,
                    me_script,
                    connections=args.me_connections,
                    seconds=args.duration,
                    pace_ms=me_pace,
                    tag="m",
                    cpus=args.client_cpus,
                ),
                args.me_connections,
                args.duration + 60,
            )

        log(f"idle /me: {args.me_rate}/s for {args.duration} s")
        idle = me_run("GET /api/auth/me idle")

        flood_rate = args.factor * hash_rate
        # Each connection sends a login every FLOOD_PACE_MS (under gunicorn's 2 s keep-alive);
        # the logins waiting at the gates hold connections of their own (each worker's queue).
        if args.flood_connections:
            flood_connections = args.flood_connections
            flood_pace = max(1, round(1000 * flood_connections / flood_rate))
        else:
            flood_pace = FLOOD_PACE_MS
            held = workers * (concurrency + queue)
            flood_connections = math.ceil(flood_rate * FLOOD_PACE_MS / 1000) + held
        flood_seconds = args.duration + 4
        log(
            f"flood: {flood_rate:.0f} logins/s offered ({args.factor:g} x {hash_rate:.1f}) on "
            f"{flood_connections} connections, one every {flood_pace} ms each"
        )
        flood_proc = subprocess.Popen(
            wrk_command(
                wrk,
                login_url,
                stuffing,
                connections=flood_connections,
                seconds=flood_seconds,
                pace_ms=flood_pace,
                tag="f",
                cpus=args.client_cpus,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(2)
            flooded = me_run("GET /api/auth/me under the flood")
            out, err = flood_proc.communicate(timeout=flood_seconds + 60)
        finally:
            if flood_proc.poll() is None:
                flood_proc.kill()
                flood_proc.wait()
        if flood_proc.returncode != 0:
            raise BenchError(f"the flood's wrk failed:\n{err}")
        flood = parse_run("POST /api/auth/login flood", flood_connections, out)
        ratio = flooded.p99_ms / idle.p99_ms if idle.p99_ms else float("inf")
        return {
            "workers": workers,
            "hash_concurrency_per_worker": concurrency,
            "server_env": args.server_env,
            "server_cpus": args.server_cpus,
            "client_cpus": args.client_cpus,
            "database": "postgresql" if args.postgresql else "sqlite",
            "hash_rate_per_s": round(hash_rate, 1),
            "flood_offered_per_s": round(flood_rate, 1),
            "flood_sent_per_s": round(flood.rps, 1),
            "flood_factor_sent": round(flood.rps / hash_rate, 1) if hash_rate else None,
            "me_p99_ratio": round(ratio, 2),
            "me_p99_target_ratio": P99_TARGET_RATIO,
            "runs": [asdict(r) for r in (capacity, idle, flooded, flood)],
        }


def print_report(result: dict[str, Any]) -> None:
    print(
        f"{result['workers']} gevent workers, {result['hash_concurrency_per_worker']} hash(es) at "
        f"once per worker; server settings: {' '.join(result['server_env']) or 'defaults'}; "
        f"CPUs: server {result['server_cpus'] or 'any'}, wrk {result['client_cpus'] or 'any'}"
    )
    print(
        f"{'run':34} {'conn':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'401':>6} {'503':>6} {'503+RA':>6} {'other':>6} {'sock':>5}"
    )
    for run in result["runs"]:
        print(
            f"{run['name']:34} {run['connections']:>5} {run['rps']:>8.1f} {run['p50_ms']:>8.2f}"
            f" {run['p99_ms']:>8.2f} {run['max_ms']:>8.1f} {run['n401']:>6} {run['n503']:>6}"
            f" {run['n503_with_retry_after']:>6} {run['other_status']:>6} {run['socket_errors']:>5}"
        )
    verdict = "PASS" if result["me_p99_ratio"] <= P99_TARGET_RATIO else "MISS"
    print(
        f"hash rate {result['hash_rate_per_s']}/s; flood sent {result['flood_sent_per_s']}/s "
        f"= {result['flood_factor_sent']} x the hash rate"
        f" (offered {result['flood_offered_per_s']}/s)"
    )
    print(
        f"/me p99 under the flood / idle = {result['me_p99_ratio']} "
        f"(<= {P99_TARGET_RATIO:g})  {verdict}"
    )


@contextmanager
def fresh_database(server_url: str | None) -> Iterator[str | None]:
    """A new, empty database on the PostgreSQL server of ``server_url`` (its URL), dropped
    afterwards; None without a server (SQLite)."""
    if server_url is None:
        yield None
        return
    from sqlalchemy import create_engine, make_url, text

    name = f"authgate_flood_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    try:
        wrk = ensure_wrk()
    except Exception as e:  # run.BenchError: its message says how to install wrk
        print(f"error: {e}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="authgate-flood-"))
    try:
        with fresh_database(args.postgresql) as url:
            args.postgresql = url
            result = measure(args, wrk, workdir)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if args.keep_instance:
            log(f"instance kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
