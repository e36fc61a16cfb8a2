"""Benchmark authgate's hot path against a bare Flask app, both served by gunicorn, with wrk.

Run from the repository root::

    .venv/bin/python benchmarks/run.py                 # 10 s per measured run
    .venv/bin/python benchmarks/run.py --duration 30 --json bench.json

What it does (see benchmarks/README.md for how to read the output):

1. Creates a throw-away instance directory (SQLite database, development signing keys) and
   builds the service once so the database is migrated and the keys exist before workers fork.
2. Prepares to time ``PasswordHasher().verify_password`` in-process with the server's argon2id
   parameters (sampled right before and after the one-connection login run, median reported).
3. Starts authgate (``authgate.server:create_app()``) and ``benchmarks/bare_app.py`` under the same
   gunicorn settings, each on a free 127.0.0.1 port.
4. Registers a user, logs in as a script (no Origin header: the body has ``access_token``, the
   ``Set-Cookie`` header has the session cookie), creates an API token (``POST /api/tokens``,
   scope ``read``), and measures with wrk, one run after another, each after a short warm-up: the
   bare view, ``GET /api/auth/me`` with a bearer access token, with the session cookie and with
   the API token, and ``POST /api/auth/login`` under load and with a single connection; next to
   the latter, the bare app's ``POST /verify`` (the hash, served) and ``POST /login`` (the least
   a login does, written by hand), also with a single connection.
5. Prints a table with PASS/MISS against the targets; writes JSON with ``--json``. Targets are
   reported, not asserted: the exit status is 0 unless the run itself failed (a server did not
   start, wrk is missing, or a measured request got an error response).
"""

from __future__ import annotations

import argparse
import json
import math
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
PASSWORD = "Bench-mark-Passw0rd-7731"
SESSION_COOKIE = "authgate_session"
ME_TARGET_PCT = 85.0  # /api/auth/me rps as a percentage of the bare view's rps, at least
ME_KEYS = ("me_bearer", "me_cookie", "me_api_token")  # the /me rows held to ME_TARGET_PCT
API_TOKEN_NAME = "bench"
API_TOKEN_SCOPES = ["read"]
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


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def process_tree_cpu_seconds(root: int) -> float | None:
    """CPU time of ``root`` and its direct children, from /proc/<pid>/stat; None without /proc."""
    proc = Path("/proc")
    if not (proc / str(root) / "stat").exists():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root or ppid == root:
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / ticks


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
                raise BenchError(f"{self.name} server exited during start-up (log above).")
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

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the master and its workers so far (Linux /proc only)."""
        if self.proc is None:
            return None
        return process_tree_cpu_seconds(self.proc.pid)

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
    # CPU time (user + system) the server's processes spent per request during the run: far
    # less sensitive than rps to other load on the machine. None where /proc is unavailable.
    server_cpu_us_per_request: float | None = None


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
        f"-d{max(1, math.ceil(duration))}s",  # wrk takes whole seconds only
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


def combine(measured: list[Measurement]) -> Measurement:
    """One run as is; several rounds as the median of each figure (counts are summed)."""
    if len(measured) == 1:
        return measured[0]

    def med(field: str) -> float:
        return float(statistics.median(getattr(m, field) for m in measured))

    first = measured[0]
    cpus = [m.server_cpu_us_per_request for m in measured if m.server_cpu_us_per_request]
    return Measurement(
        name=first.name,
        url=first.url,
        threads=first.threads,
        connections=first.connections,
        duration_s=sum(m.duration_s for m in measured),
        requests=sum(m.requests for m in measured),
        rps=med("rps"),
        p50_ms=med("p50_ms"),
        p90_ms=med("p90_ms"),
        p99_ms=med("p99_ms"),
        mean_ms=med("mean_ms"),
        max_ms=max(m.max_ms for m in measured),
        error_responses=sum(m.error_responses for m in measured),
        socket_errors=sum(m.socket_errors for m in measured),
        server_cpu_us_per_request=float(statistics.median(cpus)) if cpus else None,
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
    from authgate.bootstrap import build_service
    from authgate.config import load_settings

    settings = load_settings(environ=env)
    build_service(settings).close()
    return {
        "time_cost": settings.password_time_cost,
        "memory_cost_kib": settings.password_memory_cost_kib,
        "parallelism": settings.password_parallelism,
    }


def measure_login_logic(env: dict[str, str], runs: int) -> dict[str, float]:
    """``AuthService.login`` against the argon2id verify it contains, in this process and
    interleaved (login, verify, login, ...), so both see the same machine: the cost of the login
    logic itself (user lookup, throttle, one transaction, token signing) without HTTP."""
    from authgate.bootstrap import build_service
    from authgate.config import load_settings
    from authgate.core.passwords import PasswordHasher
    from authgate.service import ClientInfo

    service = build_service(load_settings(environ=env))
    try:
        stored = service.sessions.hasher.hash_password(PASSWORD)
        hasher: PasswordHasher = service.sessions.hasher
        logins: list[float] = []
        verifies: list[float] = []
        cold: list[float] = []  # each login less the verify inside it: the logic right after a hash
        service.sessions.hasher = _Timed(hasher)  # type: ignore[assignment]
        for _ in range(runs):
            start = time.perf_counter()
            service.sessions.login(EMAIL, PASSWORD, ClientInfo(ip="127.0.0.1"))
            logins.append((time.perf_counter() - start) * 1000)
            cold.append(logins[-1] - service.sessions.hasher.last_ms)  # type: ignore[attr-defined]
            start = time.perf_counter()
            hasher.verify_password(PASSWORD, stored)
            verifies.append((time.perf_counter() - start) * 1000)
        # The same login with the hash's answer given: what the login adds to the hash.
        known = hasher.verify_password(PASSWORD, stored)
        service.sessions.hasher = _AnswerOnly(known)  # type: ignore[assignment]
        logic: list[float] = []
        for _ in range(runs * 4):
            start = time.perf_counter()
            service.sessions.login(EMAIL, PASSWORD, ClientInfo(ip="127.0.0.1"))
            logic.append((time.perf_counter() - start) * 1000)
    finally:
        service.close()
    login_ms, verify_ms = statistics.median(logins), statistics.median(verifies)
    logic_ms = statistics.median(logic)
    return {
        "login_median_ms": login_ms,
        "verify_median_ms": verify_ms,
        "ratio": login_ms / verify_ms,
        "runs": runs,
        "logic_median_ms": logic_ms,
        "logic_ratio": (verify_ms + logic_ms) / verify_ms,
        "logic_after_hash_median_ms": statistics.median(cold),
    }


class _Timed:
    """The server's hasher, remembering how long its last verify took."""

    def __init__(self, hasher: Any) -> None:
        self.hasher = hasher
        self.last_ms = 0.0

    def verify_password(self, password: str, stored_hash: str) -> Any:
        start = time.perf_counter()
        try:
            return self.hasher.verify_password(password, stored_hash)
        finally:
            self.last_ms = (time.perf_counter() - start) * 1000


class _AnswerOnly:
    """A hasher that answers without hashing (to time the rest of a login)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def verify_password(self, password: str, stored_hash: str) -> Any:
        return self.answer


class VerifyTimer:
    """Times ``PasswordHasher.verify_password`` for a correct password, in milliseconds."""

    def __init__(self, params: dict[str, int]):
        from authgate.core.passwords import PasswordHasher

        self.hasher = PasswordHasher(**params)
        self.stored = self.hasher.hash_password(PASSWORD)
        self.samples: list[float] = []
        for _ in range(3):  # warm up the allocator and caches
            self.hasher.verify_password(PASSWORD, self.stored)

    def sample(self, runs: int) -> None:
        for _ in range(runs):
            start = time.perf_counter()
            check = self.hasher.verify_password(PASSWORD, self.stored)
            self.samples.append((time.perf_counter() - start) * 1000)
            if not check.ok:
                raise BenchError("verify_password rejected the right password")

    def summary(self) -> dict[str, float]:
        samples = sorted(self.samples)
        return {
            "runs": len(samples),
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


def create_api_token(base_url: str, access_token: str) -> str:
    """An API token (``ag_...``) for the user, created with a login session's access token."""
    response = requests.post(
        base_url + "/api/tokens",
        json={"name": API_TOKEN_NAME, "scopes": API_TOKEN_SCOPES},
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=30,
    )
    if response.status_code != 201:
        raise BenchError(f"creating an API token failed: {response.status_code} {response.text}")
    token = response.json().get("token")
    if not isinstance(token, str) or not token.startswith("ag_"):
        raise BenchError(f"POST /api/tokens gave no ag_ token: {response.text}")
    return token


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
    for key in ME_KEYS:
        pct = 100 * results[key].rps / bare if bare else 0.0
        bare_cpu = results["bare"].server_cpu_us_per_request
        cpu = results[key].server_cpu_us_per_request
        targets[key] = {
            "pct_of_bare": round(pct, 1),
            # The same ratio from server CPU time per request: steadier on a busy machine.
            "cpu_pct_of_bare": round(100 * bare_cpu / cpu, 1) if bare_cpu and cpu else None,
            "target": f">= {ME_TARGET_PCT:g}% of bare rps",
            "pass": pct >= ME_TARGET_PCT,
        }
    p50 = results["login_c1"].p50_ms
    served = results["verify_c1"].p50_ms
    ratio = p50 / served
    targets["login_c1"] = {
        "p50_ms": round(p50, 3),
        "served_verify_p50_ms": round(served, 3),
        "ratio": round(ratio, 3),
        "overhead_ms": round(p50 - served, 3),
        # For scale: the same p50 against the verify alone in this process (no HTTP at all).
        "verify_median_ms": round(verify["median_ms"], 3),
        "ratio_to_bare_verify": round(p50 / verify["median_ms"], 3),
        "target": f"p50 <= {LOGIN_TARGET_RATIO:g} x the served argon2id verify's p50",
        "pass": ratio <= LOGIN_TARGET_RATIO,
    }
    if "floor_c1" in results:  # for scale: the bare app's hand-written login, the same way
        floor = results["floor_c1"].p50_ms
        targets["floor_c1"] = {
            "p50_ms": round(floor, 3),
            "ratio": round(floor / served, 3),
            "overhead_ms": round(floor - served, 3),
        }
    return targets


def print_table(
    results: dict[str, Measurement],
    verify: dict[str, float],
    targets: dict[str, Any],
    config: dict[str, Any],
) -> None:
    labels = {
        "bare": "bare Flask GET /me (same headers)",
        "me_bearer": "GET /api/auth/me  bearer",
        "me_cookie": "GET /api/auth/me  cookie",
        "me_api_token": "GET /api/auth/me  api token",
        "login": "POST /api/auth/login",
        "verify_c1": "bare POST /verify (argon2id)",
        "floor_c1": "bare POST /login (by hand)",
        "login_c1": "POST /api/auth/login",
    }
    print()
    print(
        f"authgate benchmark: gunicorn {config['worker_class']} x {config['workers']} workers, "
        f"{config['cpus']} CPUs, wrk {config['duration_s']:g} s per run "
        f"(+{config['warmup_s']:g} s warm-up), python {config['python']}, "
        f"load average {config['load_average_before']} -> {config['load_average_after']}"
    )
    header = (
        f"{'endpoint':<30} {'conn':>4} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'cpu us/req':>10}  vs target"
    )
    print(header)
    print("-" * (len(header) + 34))
    for key in [key for key in labels if key in results]:  # each reference above its row
        m = results[key]
        note = ""
        if key == "bare":
            note = "100% (reference)"
        elif key in ME_KEYS:
            t = targets[key]
            note = f"{t['pct_of_bare']:.1f}% of bare (>= {ME_TARGET_PCT:g}%)  {verdict(t['pass'])}"
            if t["cpu_pct_of_bare"] is not None:
                note += f"  [by cpu/req: {t['cpu_pct_of_bare']:.1f}%]"
        elif key == "login":
            note = "includes queueing for the workers"
        elif key == "login_c1":
            t = targets[key]
            note = (
                f"p50 = {t['ratio']:.3f} x served verify, {t['overhead_ms']:+.2f} ms "
                f"(<= {LOGIN_TARGET_RATIO:g} x)  {verdict(t['pass'])}  "
                f"[{t['ratio_to_bare_verify']:.3f} x in-process verify]"
            )
        elif key == "verify_c1":
            note = "the hash's own cost, served (reference)"
        elif key == "floor_c1":
            t = targets[key]
            note = (
                f"p50 = {t['ratio']:.3f} x served verify, {t['overhead_ms']:+.2f} ms: the least "
                "a login does (raw sqlite3, Ed25519), for scale"
            )
        errors = m.error_responses + m.socket_errors
        cpu = m.server_cpu_us_per_request
        cpu_text = f"{cpu:.0f}" if cpu is not None else "-"
        print(
            f"{labels[key]:<30} {m.connections:>4} {m.rps:>9.1f} {m.p50_ms:>8.2f} "
            f"{m.p99_ms:>8.2f} {errors:>6} {cpu_text:>10}  {note}"
        )
    print(
        f"{'argon2id verify (in-process)':<30} {'':>4} {'':>9} {verify['median_ms']:>8.2f} "
        f"{'':>8} {'':>6} {'':>10}  median of {verify['runs']:.0f} "
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
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat bare/bearer/cookie/api-token this many times, alternating; report medians",
    )
    parser.add_argument("--verify-runs", type=int, default=50, help="argon2id verify samples")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument(
        "--keep-instance", action="store_true", help="keep the temp dir (database, server logs)"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.workers < 1:
        parser.error("--duration and --workers must be positive, --warmup not negative")
    if args.rounds < 1 or args.verify_runs < 2:
        parser.error("need --rounds >= 1 and --verify-runs >= 2")
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
    server: Server,
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
    cpu_before = server.cpu_seconds()
    result = run_wrk(
        wrk, name, url, script, threads=threads, connections=connections, duration=args.duration
    )
    cpu_after = server.cpu_seconds()
    if cpu_before is not None and cpu_after is not None and result.requests:
        result.server_cpu_us_per_request = (cpu_after - cpu_before) / result.requests * 1e6
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

    load = load_average()
    if load is not None and load > 0.5 * cpu_count():
        log(
            f"warning: load average is {load} on {cpu_count()} CPUs before starting: other "
            "processes are busy, so the figures will be noisy (compare ratios, not absolutes)"
        )
    log(f"preparing instance in {instance} (migrate database, create development keys)")
    params = prepare_instance(env)
    verify_timer = VerifyTimer(params)

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
        "rounds": args.rounds,
        "load_average_before": load,
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
    bare_env["BARE_ARGON2"] = ",".join(
        str(params[k]) for k in ("time_cost", "memory_cost_kib", "parallelism")
    )
    bare_env["BARE_PASSWORD"] = PASSWORD
    bare_env["BARE_LOGIN"] = EMAIL
    bare_env["BARE_DB"] = str(workdir / "bare.sqlite3")
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
    rounds: dict[str, list[Measurement]] = {"bare": [], **{key: [] for key in ME_KEYS}}
    try:
        for server in (auth, bare):
            log(f"starting {server.name} on {server.base_url}: {' '.join(server.cmd[1:])}")
            server.start()
        auth.wait_ready("/healthz")
        bare.wait_ready("/me")
        register(auth.base_url)
        # An API token lasts days (not minutes like an access token), so one serves every round;
        # as for the other rows, the warm-up loads its record into each worker's cache.
        api_token = create_api_token(auth.base_url, login(auth.base_url)[0])

        under_load = {"threads": args.threads, "connections": args.connections}
        bare_url = bare.base_url + "/me"
        me_url = auth.base_url + "/api/auth/me"
        for number in range(1, args.rounds + 1):
            if args.rounds > 1:
                log(f"round {number} of {args.rounds}: bare, bearer, cookie, api token")
            token, cookie = login(auth.base_url)  # a fresh token for each round
            # The bare view gets the same Authorization header (and ignores it), so both servers
            # parse the same request bytes and the difference is authgate's own work.
            bare_headers = {"Authorization": f"Bearer {token}"}
            script = write_lua(scripts / "bare.lua", method="GET", headers=bare_headers, body=None)
            rounds["bare"].append(
                measure(wrk, "bare", bare_url, script, args, server=bare, **under_load)
            )
            for key in ME_KEYS:
                headers = {
                    "me_bearer": {"Authorization": f"Bearer {token}"},
                    "me_cookie": {"Cookie": f"{SESSION_COOKIE}={cookie}"},
                    "me_api_token": {"Authorization": f"Bearer {api_token}"},
                }[key]
                check_ok(me_url, headers)
                script = write_lua(scripts / f"{key}.lua", method="GET", headers=headers, body=None)
                rounds[key].append(
                    measure(wrk, key, me_url, script, args, server=auth, **under_load)
                )
        for key, measured in rounds.items():
            results[key] = combine(measured)

        body = json.dumps({"login": EMAIL, "password": PASSWORD})
        script = write_lua(
            scripts / "login.lua",
            method="POST",
            headers={"Content-Type": "application/json"},
            body=body,
        )
        login_url = auth.base_url + "/api/auth/login"
        results["login"] = measure(wrk, "login", login_url, script, args, server=auth, **under_load)
        # The hash cost is timed in this process right before and right after the one-connection
        # login run, so that both see the same machine (CPU frequency, other load).
        before = (args.verify_runs + 1) // 2
        log(
            f"timing argon2id verify in-process ({before} runs before, "
            f"{args.verify_runs - before} after the one-connection login run)"
        )
        verify_timer.sample(before)
        # The same login body, one argon2id verify and a JSON answer on the bare app, served the
        # same way: the hash's own cost as a served request. It runs right before and right
        # after the login run (half the duration each) so both see the same machine.
        # The bare app's hand-written login (the least a login must do) runs the same way.
        verify_url, floor_url = bare.base_url + "/verify", bare.base_url + "/login"
        half = argparse.Namespace(**{**vars(args), "duration": args.duration / 2})
        one = {"server": bare, "threads": 1, "connections": 1}
        halves = [measure(wrk, "verify_c1", verify_url, script, half, **one)]
        floor_halves = [measure(wrk, "floor_c1", floor_url, script, half, **one)]
        results["login_c1"] = measure(
            wrk, "login_c1", login_url, script, args, server=auth, threads=1, connections=1
        )
        floor_halves.append(measure(wrk, "floor_c1", floor_url, script, half, **one))
        halves.append(measure(wrk, "verify_c1", verify_url, script, half, **one))
        results["verify_c1"] = combine(halves)
        results["floor_c1"] = combine(floor_halves)
        verify_timer.sample(args.verify_runs - before)
    except BaseException:
        for server in (auth, bare):  # a server that died says why in its log
            if server.proc is not None and server.proc.poll() is not None:
                log(f"{server.name} server exited with {server.proc.returncode}")
                print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        for server in (auth, bare):
            server.stop()
        log("servers stopped")

    log(f"timing the login logic in-process ({args.verify_runs} interleaved runs)")
    login_logic = measure_login_logic(env, args.verify_runs)
    config["load_average_after"] = load_average()
    verify = verify_timer.summary()
    targets = evaluate(results, verify)
    targets["login_logic"] = {
        **{k: round(v, 3) for k, v in login_logic.items()},
        "target": f"<= {LOGIN_TARGET_RATIO:g} x argon2id verify",
        "pass": login_logic["logic_ratio"] <= LOGIN_TARGET_RATIO,
    }
    print_table(results, verify, targets, config)
    t = targets["login_logic"]
    print(
        f"{'login (in-process, no HTTP)':<30} {'':>4} {'':>9} {t['login_median_ms']:>8.2f} "
        f"{'':>8} {'':>6} {'':>10}  = {t['ratio']:.3f} x verify "
        f"({t['verify_median_ms']:.2f} ms, interleaved, {t['runs']:.0f} runs)"
    )
    print(
        f"{'  of which not the hash (warm)':<30} {'':>4} {'':>9} {t['logic_median_ms']:>8.2f} "
        f"{'':>8} {'':>6} {'':>10}  verify + this = {t['logic_ratio']:.3f} x verify "
        f"(<= {LOGIN_TARGET_RATIO:g} x)  {'PASS' if t['pass'] else 'MISS'}"
    )
    print(
        f"{'  the same, right after a hash':<30} {'':>4} {'':>9} "
        f"{t['logic_after_hash_median_ms']:>8.2f} {'':>8} {'':>6} {'':>10}  "
        "each login less its own verify: the caches the hash swept"
    )
    failed = {k: m for k, m in results.items() if m.error_responses or m.socket_errors}
    return {
        "config": config,
        "argon2id_verify": verify,
        "results": {k: asdict(m) for k, m in results.items()},
        "rounds": {k: [asdict(m) for m in ms] for k, ms in rounds.items()},
        "targets": targets,
        "valid": not failed,
        "server_logs": None if not args.keep_instance else str(workdir),
    }


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
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
