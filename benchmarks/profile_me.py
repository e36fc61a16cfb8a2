"""Where does ``GET /api/auth/me`` spend its time, compared with the bare Flask view?

Runs both apps in this one process (no server, no network): builds a WSGI environ once and calls
each app ``--requests`` times, first timed without a profiler, then under cProfile, and prints the
per-request CPU cost and the functions with the most own time and cumulative time.

    .venv/bin/python benchmarks/profile_me.py                    # bearer, 20000 requests
    .venv/bin/python benchmarks/profile_me.py --transport cookie --top 40
    .venv/bin/python benchmarks/profile_me.py --transport api-token  # an ag_ API token as bearer
    .venv/bin/python benchmarks/profile_me.py --breakdown --no-profile  # each hook and step
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.test import EnvironBuilder

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

EMAIL = "bench@example.com"
PASSWORD = "Bench-mark-Passw0rd-7731"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    if not status.startswith("200"):
        raise RuntimeError(f"unexpected status {status}")


def call(app: WsgiApp, environ: dict[str, Any]) -> None:
    body = app(dict(environ), _start_response)
    for _chunk in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()


def loop(app: WsgiApp, environ: dict[str, Any], n: int) -> float:
    """CPU microseconds per request (thread CPU time: other processes' load does not count)."""
    start = time.thread_time()
    for _ in range(n):
        call(app, environ)
    return (time.thread_time() - start) / n * 1e6


def compare(
    app: WsgiApp, environ: dict[str, Any], bare: WsgiApp, bare_environ: dict[str, Any], n: int
) -> tuple[float, float]:
    """Best-of-5 per-request CPU time of each app, the two measured in alternation."""
    chunk = max(1, n // 5)
    app_us, bare_us = [], []
    for _ in range(5):
        app_us.append(loop(app, environ, chunk))
        bare_us.append(loop(bare, bare_environ, chunk))
    return min(app_us), min(bare_us)


def profile(app: WsgiApp, environ: dict[str, Any], n: int, top: int, title: str) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        call(app, environ)
    profiler.disable()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order)
        stats.print_stats(top)
        print(f"\n===== {title}: top {top} by {order} ({n} requests) =====")
        print(out.getvalue().split("\n", 4)[-1].rstrip())


def best_us(fn: Callable[[], object], n: int) -> float:
    """Best of 5 runs of ``n`` calls, in CPU microseconds per call."""
    best = float("inf")
    for _ in range(5):
        start = time.thread_time()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time() - start) / n * 1e6)
    return best


def apply_to_empty(hook: Callable[[Any], object], make: Callable[[], Any]) -> object:
    return hook(make())


def breakdown(app: Flask, headers: list[tuple[str, str]], token: str, n: int) -> None:
    """The pieces of an authenticated request, each timed alone inside a request context."""
    from flask import g, request

    from authgate.http.schemas import user_to_json
    from authgate.integrations.flask.decorators import authenticate_request

    ext = app.extensions["authgate"]
    service = ext.service
    rows: list[tuple[str, float]] = []
    with app.test_request_context("/api/auth/me", headers=headers):

        def empty_response() -> Any:
            return app.response_class("{}", mimetype="application/json")

        base = best_us(empty_response, n)
        for hook in app.before_request_funcs.get(None, []):
            rows.append((f"before_request {hook.__qualname__}", best_us(hook, n)))
        for after in app.after_request_funcs.get(None, []):
            cost = best_us(functools.partial(apply_to_empty, after, empty_response), n) - base
            rows.append((f"after_request  {after.__qualname__}", cost))

        def fresh_credential() -> object:
            request.__dict__.pop("cookies", None)  # cached per request: parse it again
            return ext.transport.credential(request)

        def fresh_authenticate() -> object:
            request.__dict__.pop("cookies", None)
            g.pop("authgate_principal", None)
            return authenticate_request()

        transport = ext.transport.credential(request)[1]
        user = service.authenticate(token, transport).user
        rows += [
            ("authenticate_request (whole)", best_us(fresh_authenticate, n)),
            ("  transport.credential", best_us(fresh_credential, n)),
            ("  service.authenticate", best_us(lambda: service.authenticate(token, transport), n)),
            ("  transport.check_csrf (GET)", best_us(lambda: ext.transport.check_csrf(request), n)),
            ("user_to_json", best_us(lambda: user_to_json(user), n)),
            (
                "JSON response, authgate body",
                best_us(lambda: app.make_response({"user": user_to_json(user)}), n),
            ),
            (
                "JSON response, bare body",
                best_us(
                    lambda: app.make_response(
                        {"id": "x", "email": "a@example.com", "roles": ["user"]}
                    ),
                    n,
                ),
            ),
        ]
    print(f"\ncost of each piece, timed alone (CPU us/call, best of 5 x {n}):")
    for label, cost in rows:
        print(f"  {label:66.66s} {cost:6.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument(
        "--transport",
        choices=("bearer", "cookie", "api-token"),
        default="bearer",
        help="bearer access token, session cookie, or an API token (ag_...) sent as bearer",
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", action="store_true", help="only the timings")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time each hook and step of /me alone"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="authgate-profile-"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
        env.update(
            AUTHGATE_INSTANCE_PATH=str(workdir / "instance"),
            AUTHGATE_PUBLIC_URL="http://localhost:8086",
            AUTHGATE_ORIGINS="http://localhost:4100",
        )
        from bare_app import app as bare

        from authgate.config import load_settings
        from authgate.server import create_app

        settings = load_settings(environ=env)
        app = create_app(settings)
        client = app.test_client()
        response = client.post("/api/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 201, response.get_data(as_text=True)
        response = client.post("/api/auth/login", json={"login": EMAIL, "password": PASSWORD})
        assert response.status_code == 200, response.get_data(as_text=True)
        token = response.get_json()["access_token"]
        if args.transport == "api-token":
            response = client.post(
                "/api/tokens",
                json={"name": "bench", "scopes": ["read"]},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 201, response.get_data(as_text=True)
            token = response.get_json()["token"]  # the credential /me is called with from here on
        if args.transport == "cookie":
            headers = [("Cookie", f"authgate_session={token}")]
        else:
            headers = [("Authorization", f"Bearer {token}")]
        auth_env = EnvironBuilder(path="/api/auth/me", headers=headers).get_environ()
        bare_env = EnvironBuilder(path="/me").get_environ()

        n = args.requests
        loop(app, auth_env, 500)  # warm caches (claims, session, user)
        loop(bare, bare_env, 500)
        auth_us, bare_us = compare(app, auth_env, bare, bare_env, n)
        print(
            f"in-process, no profiler, CPU time, best of 5 x {n // 5} requests ({args.transport}):"
        )
        print(f"  bare /me          {bare_us:8.1f} us/request  ({1e6 / bare_us:8.0f} req/s)")
        print(f"  authgate /me      {auth_us:8.1f} us/request  ({1e6 / auth_us:8.0f} req/s)")
        print(
            f"  authgate overhead {auth_us - bare_us:8.1f} us/request; "
            f"authgate rps = {100 * bare_us / auth_us:.1f}% of bare"
        )
        if args.breakdown:
            breakdown(app, headers, token, n)
        if not args.no_profile:
            profile(bare, bare_env, n, args.top, "bare /me")
            profile(app, auth_env, n, args.top, f"authgate /me ({args.transport})")
        app.extensions["authgate"].service.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
