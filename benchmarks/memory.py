"""Memory of a gunicorn worker after boot: ``authgate serve --production`` beside a bare Flask app.

Starts each server on a free 127.0.0.1 port with one worker, waits until ``GET /healthz`` answers
(the worker has built its app and served a request), then reads the worker's resident set size
(``VmRSS``, shared pages included), proportional set size (``Pss``: shared pages split among
the processes sharing them) and unique set size (USS: ``Private_Clean`` + ``Private_Dirty``, the
memory only that worker holds, which another worker would add) from ``/proc``. authgate runs as
shipped: a production instance (SQLite, a key from ``authgate keys rotate``, an https public URL),
gevent workers. The bare app is a one-route Flask app under the same worker class.

    .venv/bin/python benchmarks/memory.py
    .venv/bin/python benchmarks/memory.py --json memory.json

The target (issue 17) is an authgate worker <= 70 MB RSS after boot.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_MB = 70.0


def bare_app() -> object:
    """gunicorn's ``memory:bare_app()``: a Flask app with the one route the probe asks for."""
    from flask import Flask

    app = Flask("bare")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(env: dict[str, str]) -> None:
    for command in (["keys", "rotate"], ["db", "upgrade"]):
        subprocess.run(
            [sys.executable, "-m", "authgate", *command], env=env, capture_output=True, check=True
        )


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


def _memory_mb(pid: int) -> tuple[float, float, float]:
    """(RSS, PSS, USS) in MB."""
    rss = pss = uss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1])
        elif line.startswith(("Private_Clean:", "Private_Dirty:")):
            uss += int(line.split()[1])
    return rss / 1024, pss / 1024, uss / 1024


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited during start-up (status {proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer from {url} after {timeout:.0f} s")


def measure(name: str, command: list[str], env: dict[str, str], port: int) -> dict[str, float]:
    proc = subprocess.Popen(
        command,
        env=env,
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}/healthz")
        time.sleep(1.0)  # let the worker settle (its background threads start)
        workers = _children(proc.pid)
        if not workers:
            raise RuntimeError(f"{name}: no worker process")
        rss, pss, uss = _memory_mb(workers[0])
        master_rss, _, _ = _memory_mb(proc.pid)
        return {
            "worker_rss_mb": rss,
            "worker_pss_mb": pss,
            "worker_uss_mb": uss,
            "master_rss_mb": master_rss,
        }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    # Here, not at the top: the bare app's worker imports this module, and slow_clients imports
    # requests (5.4 MB of RSS that a bare Flask worker does not have).
    from slow_clients import instance_env

    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = instance_env(Path(tmp))
        _prepare(env)
        port = _free_port()
        command = ["-m", "authgate", "serve", "--production", "--workers", "1", "--port", str(port)]
        figures["authgate"] = measure("authgate", [sys.executable, *command], env, port)
        port = _free_port()
        command = ["-m", "gunicorn", "-k", "gevent", "-w", "1", "-b", f"127.0.0.1:{port}"]
        figures["bare Flask"] = measure(
            "bare Flask", [sys.executable, *command, "memory:bare_app()"], env, port
        )
    print("memory of one gunicorn worker after boot (gevent workers)")
    print(f"  {'':<12} {'RSS MB':>8} {'PSS MB':>8} {'USS MB':>8} {'master RSS MB':>14}")
    for name, values in figures.items():
        print(
            f"  {name:<12} {values['worker_rss_mb']:8.1f} {values['worker_pss_mb']:8.1f}"
            f" {values['worker_uss_mb']:8.1f} {values['master_rss_mb']:14.1f}"
        )
    rss = figures["authgate"]["worker_rss_mb"]
    verdict = "PASS" if rss <= TARGET_MB else "MISS"
    print(f"  authgate worker RSS {rss:.1f} MB (target <= {TARGET_MB:.0f} MB)  {verdict}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
