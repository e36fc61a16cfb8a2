"""Benchmark authgate's hot path against a bare Flask app, both served by gunicorn, with wrk.

Run from the repository root::

    .venv/bin/python benchmarks/run.py                 # 10 s per measured run
    .venv/bin/python benchmarks/run.py --duration 30 --json bench.json

What it does (see benchmarks/README.md for how to read the output):

1. Creates a throw-away instance directory (SQLite database, development signing keys) and
   builds the service once so the database is migrated and the keys exist before workers fork.
2. Times ``PasswordHasher().verify_password`` in-process (median of ``--verify-runs``) with the
   server's argon2id parameters, while nothing else runs.
3. Starts authgate (``authgate.server:create_app()``) and ``benchmarks/bare_app.py`` under the same
   gunicorn settings, each on a free 127.0.0.1 port.
4. Registers a user, logs in as a script (no Origin header: the body has ``access_token``, the
   ``Set-Cookie`` header has the session cookie), and measures with wrk, one run after another,
   each after a short warm-up: the bare view, ``GET /api/auth/me`` with a bearer token and with
   the session cookie, and ``POST /api/auth/login`` under load and with a single connection.
5. Prints a table with PASS/MISS against the targets; writes JSON with ``--json``. Targets are
   reported, not asserted: the exit status is 0 unless the run itself failed (a server did not
   start, wrk is missing, or a measured request got an error response).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
ORIGIN = "http://localhost:4100"
EMAIL = "bench@example.com"
PASSWORD = "Bench-mark-Passw0rd-7731"  # noqa: S105 -- a throw-away benchmark account
SESSION_COOKIE = "authgate_session"
ME_TARGET_PCT = 85.0  # /api/auth/me rps as a percentage of the bare view's rps, at least
LOGIN_TARGET_RATIO = 1.05  # login p50 at one connection / argon2id verify time, at most
MARKER = "AGBENCH"

# wrk calls done() once at the end; printing the figures ourselves is sturdier than parsing its
# human-readable report (units vary: us/ms/s). Percentiles and durations are in microseconds.
LUA_DONE = f"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "{MARKER} requests=%.0f duration_us=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f "
    .. "mean_us=%.1f max_us=%.0f status=%.0f connect=%.0f read=%.0f write=%.0f timeout=%.0f\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max, e.status, e.connect, e.read, e.write,
    e.timeout))
end
"""


class BenchError(Exception):
    """The run itself failed: the message says what to do."""


# Tools ----------------------------------------------------------------------------------------

WRK_HELP = (
    "wrk is not installed and could not be installed automatically. Install it with "
    "`sudo apt-get update && sudo apt-get install -y wrk` (Debian/Ubuntu), "
    "`sudo dnf install wrk` (Fedora) or `brew install wrk` (macOS), then run again."
)


def ensure_wrk() -> str:
    """The path of wrk, installing it with apt-get when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise BenchError(WRK_HELP)
    log("wrk not found: installing it with apt-get ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run([apt, "update"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            [apt, "install", "-y", "wrk"], check=True, env=env, stdout=subprocess.DEVNULL
        )
    except (OSError, subprocess.CalledProcessError) as e:
        raise BenchError(f"{WRK_HELP} (apt-get failed: {e})") from None
    found = shutil.which("wrk")
    if not found:
        raise BenchError(WRK_HELP)
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout + out.stderr).splitlines()[0].strip() if (out.stdout + out.stderr) else "?"


def cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# Servers --------------------------------------------------------------------------------------


class Server:
    """One gunicorn master (and its workers), started in its own process group."""

    def __init__(
        self,
        name: str,
        app: str,
        *,
        port: int,
        workers: int,
        worker_class: str,
        env: dict[str, str],
        log_path: Path,
        extra_args: tuple[str, ...] = (),
    ):
        self.name = name
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--log-level",
            "warning",
            "--graceful-timeout",
            "5",
            *extra_args,
            app,
        ]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # our Ctrl-C reaches us; we stop the server ourselves
            )

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise BenchError(f"{self.name} server exited during start-up.\n{self.log_tail()}")
            try:
                if requests.get(self.base_url + path, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name} server not ready after {timeout:.0f} s.\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the master (which stops its workers) and wait; SIGKILL the group last."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log(f"{self.name} server did not stop after SIGTERM; killing its process group")
            os.killpg(proc.pid, signal.SIGKILL)  # the group we created, led by this pid
            proc.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return f"--- last lines of {self.log_path} ---\n" + "\n".join(text[-lines:])


# wrk ------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    name: str
    url: str
    threads: int
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    error_responses: int  # HTTP status >= 400
    socket_errors: int  # connect + read + write + timeout


def lua_string(value: str) -> str:
    """A Lua string literal for any text (escapes quotes, backslashes and control bytes)."""
    out = []
    for byte in value.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\' or byte < 32 or byte > 126:
            out.append(f"\\{byte:03d}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def write_lua(path: Path, *, method: str, headers: dict[str, str], body: str | None) -> Path:
    lines = [f"wrk.method = {lua_string(method)}"]
    if body is not None:
        lines.append(f"wrk.body = {lua_string(body)}")
    for name, value in headers.items():
        lines.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
    path.write_text("\n".join(lines) + "\n" + LUA_DONE)
    return path


def run_wrk(
    wrk: str,
    name: str,
    url: str,
    script: Path,
    *,
    threads: int,
    connections: int,
    duration: float,
) -> Measurement:
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration + 120, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish: {' '.join(cmd)}") from None
    figures: dict[str, float] = {}
    for line in done.stdout.splitlines():
        if line.startswith(MARKER + " "):
            for item in line.split()[1:]:
                key, _, value = item.partition("=")
                figures[key] = float(value)
    if done.returncode != 0 or not figures:
        raise BenchError(
            f"wrk failed (exit {done.returncode}): {' '.join(cmd)}\n{done.stdout}{done.stderr}"
        )
    seconds = figures["duration_us"] / 1e6
    requests_done = int(figures["requests"])
    return Measurement(
        name=name,
        url=url,
        threads=threads,
        connections=connections,
        duration_s=round(seconds, 3),
        requests=requests_done,
        rps=requests_done / seconds if seconds else 0.0,
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        mean_ms=figures["mean_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        error_responses=int(figures["status"]),
        socket_errors=int(
            figures["connect"] + figures["read"] + figures["write"] + figures["timeout"]
        ),
    )


# authgate set-up ------------------------------------------------------------------------------


def authgate_env(instance: Path, port: int, token_ttl: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    env.update(
        AUTHGATE_INSTANCE_PATH=str(instance),
        AUTHGATE_PUBLIC_URL=f"http://localhost:{port}",
        AUTHGATE_ORIGINS=ORIGIN,
    )
    if token_ttl is not None:
        env["AUTHGATE_ACCESS_TOKEN_TTL_SECONDS"] = str(token_ttl)
    return env


def prepare_instance(env: dict[str, str]) -> dict[str, int]:
    """Migrate the database and create the keys once; return the argon2id parameters."""
    from authgate.config import load_settings
    from authgate.integrations.flask.extension import build_service

    settings = load_settings(environ=env)
    build_service(settings).close()
    return {
        "time_cost": settings.password_time_cost,
        "memory_cost_kib": settings.password_memory_cost_kib,
        "parallelism": settings.password_parallelism,
    }


def time_verify(params: dict[str, int], runs: int) -> dict[str, float]:
    """Median (and spread) of ``verify_password`` for a correct password, in milliseconds."""
    from authgate.core.passwords import PasswordHasher

    hasher = PasswordHasher(**params)
    stored = hasher.hash_password(PASSWORD)
    for _ in range(3):  # warm up allocator and caches
        hasher.verify_password(PASSWORD, stored)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        check = hasher.verify_password(PASSWORD, stored)
        samples.append((time.perf_counter() - start) * 1000)
        if not check.ok:
            raise BenchError("verify_password rejected the right password")
    samples.sort()
    return {
        "runs": runs,
        "median_ms": statistics.median(samples),
        "min_ms": samples[0],
        "max_ms": samples[-1],
    }


def register(base_url: str) -> None:
    response = requests.post(
        base_url + "/api/auth/register", json={"email": EMAIL, "password": PASSWORD}, timeout=30
    )
    if response.status_code != 201:
        raise BenchError(f"register failed: {response.status_code} {response.text}")


def login(base_url: str) -> tuple[str, str]:
    """Log in as a script; (access token from the body, session cookie from Set-Cookie)."""
    response = requests.post(
        base_url + "/api/auth/login", json={"login": EMAIL, "password": PASSWORD}, timeout=30
    )
    if response.status_code != 200:
        raise BenchError(f"login failed: {response.status_code} {response.text}")
    token = response.json().get("access_token")
    cookie = response.cookies.get(SESSION_COOKIE)
    if not token or not cookie:
        raise BenchError(f"login gave no access_token or no {SESSION_COOKIE} cookie")
    return token, cookie


def check_ok(url: str, headers: dict[str, str]) -> None:
    response = requests.get(url, headers=headers, timeout=10)
    if response.status_code != 200:
        raise BenchError(f"GET {url} -> {response.status_code} {response.text}")


# Report ---------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def evaluate(results: dict[str, Measurement], verify: dict[str, float]) -> dict[str, Any]:
    bare = results["bare"].rps
    targets: dict[str, Any] = {}
    for key in ("me_bearer", "me_cookie"):
        pct = 100 * results[key].rps / bare if bare else 0.0
        targets[key] = {
            "pct_of_bare": round(pct, 1),
            "target": f">= {ME_TARGET_PCT:g}% of bare rps",
            "pass": pct >= ME_TARGET_PCT,
        }
    p50 = results["login_c1"].p50_ms
    ratio = p50 / verify["median_ms"]
    targets["login_c1"] = {
        "p50_ms": round(p50, 3),
        "verify_median_ms": round(verify["median_ms"], 3),
        "ratio": round(ratio, 3),
        "overhead_ms": round(p50 - verify["median_ms"], 3),
        "target": f"p50 <= {LOGIN_TARGET_RATIO:g} x argon2id verify",
        "pass": ratio <= LOGIN_TARGET_RATIO,
    }
    return targets


def print_table(
    results: dict[str, Measurement],
    verify: dict[str, float],
    targets: dict[str, Any],
    config: dict[str, Any],
) -> None:
    labels = {
        "bare": "bare Flask GET /me (ceiling)",
        "me_bearer": "GET /api/auth/me  bearer",
        "me_cookie": "GET /api/auth/me  cookie",
        "login": "POST /api/auth/login",
        "login_c1": "POST /api/auth/login",
    }
    print()
    print(
        f"authgate benchmark: gunicorn {config['worker_class']} x {config['workers']} workers, "
        f"{config['cpus']} CPUs, wrk {config['duration_s']:g} s per run "
        f"(+{config['warmup_s']:g} s warm-up), python {config['python']}"
    )
    header = (
        f"{'endpoint':<30} {'conn':>4} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}  "
        "vs target"
    )
    print(header)
    print("-" * (len(header) + 34))
    for key, m in results.items():
        note = ""
        if key == "bare":
            note = "100% (reference)"
        elif key in ("me_bearer", "me_cookie"):
            t = targets[key]
            note = f"{t['pct_of_bare']:.1f}% of bare (>= {ME_TARGET_PCT:g}%)  {verdict(t['pass'])}"
        elif key == "login":
            note = "includes queueing for the workers"
        elif key == "login_c1":
            t = targets[key]
            note = (
                f"p50 = {t['ratio']:.3f} x verify, +{t['overhead_ms']:.2f} ms "
                f"(<= {LOGIN_TARGET_RATIO:g} x)  {verdict(t['pass'])}"
            )
        errors = m.error_responses + m.socket_errors
        print(
            f"{labels[key]:<30} {m.connections:>4} {m.rps:>9.1f} {m.p50_ms:>8.2f} "
            f"{m.p99_ms:>8.2f} {errors:>6}  {note}"
        )
    print(
        f"{'argon2id verify (in-process)':<30} {'':>4} {'':>9} {verify['median_ms']:>8.2f} "
        f"{'':>8} {'':>6}  median of {verify['runs']:.0f} "
        f"(min {verify['min_ms']:.2f}, max {verify['max_ms']:.2f}); "
        f"m={config['argon2']['memory_cost_kib']} KiB, t={config['argon2']['time_cost']}, "
        f"p={config['argon2']['parallelism']}"
    )
    print()


# Main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cpus = cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each")
    parser.add_argument(
        "--workers", type=int, default=2 * cpus + 1, help="gunicorn workers (default 2*cpu+1)"
    )
    parser.add_argument(
        "--worker-class", default="sync", help="gunicorn worker class for both apps (sync)"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads under load")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections under load")
    parser.add_argument("--verify-runs", type=int, default=50, help="argon2id verify samples")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument(
        "--keep-instance", action="store_true", help="keep the temp dir (database, server logs)"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.workers < 1 or args.verify_runs < 1:
        parser.error("--duration and --workers must be positive, --warmup not negative")
    if args.threads < 1 or args.connections < args.threads:
        parser.error("need --threads >= 1 and --connections >= --threads")
    return args


def measure(
    wrk: str,
    name: str,
    url: str,
    script: Path,
    args: argparse.Namespace,
    *,
    threads: int,
    connections: int,
) -> Measurement:
    if args.warmup > 0:
        log(f"{name}: warm-up {args.warmup:g} s")
        run_wrk(
            wrk,
            name,
            url,
            script,
            threads=threads,
            connections=connections,
            duration=args.warmup,
        )
    log(f"{name}: measuring {args.duration:g} s, -t{threads} -c{connections}")
    result = run_wrk(
        wrk, name, url, script, threads=threads, connections=connections, duration=args.duration
    )
    if result.error_responses or result.socket_errors:
        log(
            f"{name}: {result.error_responses} error responses, "
            f"{result.socket_errors} socket errors"
        )
    return result


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    wrk = ensure_wrk()
    instance = workdir / "instance"
    scripts = workdir / "lua"
    scripts.mkdir()
    auth_port, bare_port = free_port(), free_port()
    while bare_port == auth_port:
        bare_port = free_port()
    # A fresh token is taken before each /me run; only very long runs need a longer lifetime.
    needed = int(args.duration + args.warmup + 120)
    env = authgate_env(instance, auth_port, needed if needed > 900 else None)

    log(f"preparing instance in {instance} (migrate database, create development keys)")
    params = prepare_instance(env)
    log(f"timing argon2id verify in-process ({args.verify_runs} runs)")
    verify = time_verify(params, args.verify_runs)

    config = {
        "workers": args.workers,
        "worker_class": args.worker_class,
        "cpus": cpu_count(),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "threads": args.threads,
        "connections": args.connections,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": wrk_version(wrk),
        "argon2": params,
    }
    common = {"workers": args.workers, "worker_class": args.worker_class}
    auth = Server(
        "authgate",
        "authgate.server:create_app()",
        port=auth_port,
        env=env,
        log_path=workdir / "authgate.log",
        **common,
    )
    bare_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    bare = Server(
        "bare",
        "bare_app:app",
        port=bare_port,
        env=bare_env,
        log_path=workdir / "bare.log",
        extra_args=("--pythonpath", str(HERE)),
        **common,
    )
    results: dict[str, Measurement] = {}
    try:
        for server in (auth, bare):
            log(f"starting {server.name} on {server.base_url}: {' '.join(server.cmd[1:])}")
            server.start()
        auth.wait_ready("/healthz")
        bare.wait_ready("/me")
        register(auth.base_url)

        load = {"threads": args.threads, "connections": args.connections}
        bare_url = bare.base_url + "/me"
        me_url = auth.base_url + "/api/auth/me"
        script = write_lua(scripts / "bare.lua", method="GET", headers={}, body=None)
        results["bare"] = measure(wrk, "bare", bare_url, script, args, **load)

        for key, make_headers in (
            ("me_bearer", lambda token, _c: {"Authorization": f"Bearer {token}"}),
            ("me_cookie", lambda _t, cookie: {"Cookie": f"{SESSION_COOKIE}={cookie}"}),
        ):
            headers = make_headers(*login(auth.base_url))  # a fresh token for each run
            check_ok(me_url, headers)
            script = write_lua(scripts / f"{key}.lua", method="GET", headers=headers, body=None)
            results[key] = measure(wrk, key, me_url, script, args, **load)

        body = json.dumps({"login": EMAIL, "password": PASSWORD})
        script = write_lua(
            scripts / "login.lua",
            method="POST",
            headers={"Content-Type": "application/json"},
            body=body,
        )
        login_url = auth.base_url + "/api/auth/login"
        results["login"] = measure(wrk, "login", login_url, script, args, **load)
        results["login_c1"] = measure(
            wrk, "login_c1", login_url, script, args, threads=1, connections=1
        )
    except BaseException:
        for server in (auth, bare):
            if server.proc is not None and server.proc.poll() is not None:
                log(server.log_tail())
        raise
    finally:
        for server in (auth, bare):
            server.stop()
        log("servers stopped")

    targets = evaluate(results, verify)
    print_table(results, verify, targets, config)
    failed = {k: m for k, m in results.items() if m.error_responses or m.socket_errors}
    return {
        "config": config,
        "argon2id_verify": verify,
        "results": {k: asdict(m) for k, m in results.items()},
        "targets": targets,
        "valid": not failed,
        "server_logs": None if not args.keep_instance else str(workdir),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="authgate-bench-"))
    try:
        report = run(args, workdir)
    except BenchError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("benchmark interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep_instance:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    if not report["valid"]:
        print(
            "benchmark failed: some measured requests got error responses or socket errors "
            "(see the errors column); the figures above are not comparable.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
