"""Instructions per request on the hot path, counted by valgrind's callgrind: repeatable on a
loaded machine, unlike wall-clock time.

Each scenario runs in its own process under ``valgrind --tool=callgrind``. The app is built, a
user registered and logged in, and the request made 50 times to warm every cache; then ``N``
more requests run inside one call of ``operator.call`` — the only code callgrind counts
(``--toggle-collect=_operator_call``; other threads are not counted) — and the total is divided
by ``N``. Requests go straight to the WSGI app with a prepared environ (no HTTP server, no test
client), so the figure is the app's own cost: Flask, authgate and the view.

``first_request`` is a token's first request, as after a deploy: 50 + ``N`` users each with a
session and an access token, the process's caches emptied, then one request per token (the
first 50 warm the code, the next ``N`` are counted); ``api_token_first_request`` is the same
with an API token (``ag_...``) per user. The peers (``peers.py``) are Flask-JWT-
Extended and Flask-Security-Too ``/me`` views in their documented style; they need
``pip install -e '.[bench]'`` and are reported as missing otherwise.

    .venv/bin/python benchmarks/instructions.py            # every scenario, N=200
    .venv/bin/python benchmarks/instructions.py --requests 500 me_bearer bare

Needs valgrind (Debian: ``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import operator
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

PASSWORD = "correct horse battery staple"
SCENARIOS = {
    "bare": "a bare Flask JSON view (no extension)",
    "public_route": "an unauthenticated view in an app with AuthGate(app)",
    "me_bearer": "GET /api/auth/me with Authorization: Bearer <access token>",
    "me_cookie": "GET /api/auth/me with the session cookie",
    "me_bearer_metrics": "me_bearer with AUTHGATE_METRICS=loopback (the metrics hook on)",
    "me_api_token": "GET /api/auth/me with Authorization: Bearer ag_...",
    "own_view": "the app's own @token_required() view, bearer access token",
    "first_request": "GET /api/auth/me, bearer, a token's first request (nothing cached)",
    "api_token_first_request": "first_request with an API token (ag_...) instead",
    "peer_jwt_extended": "Flask-JWT-Extended GET /me (documented style, HS256, user loader)",
    "peer_security_too": "Flask-Security-Too GET /me (documented style, auth token)",
}
PEERS = {"peer_jwt_extended": "flask_jwt_extended", "peer_security_too": "flask_security"}
WARM_UP = 50

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _environ(path: str, method: str = "GET", body: bytes = b"", **headers: str) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8086",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "localhost:8086",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in headers.items():
        environ["HTTP_" + name.upper()] = value
    return environ


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, bytes, list[tuple[str, str]]]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = status, headers

    chunks = app(
        dict(environ, **{"wsgi.input": io.BytesIO(environ["wsgi.input"].getvalue())}),
        start_response,
    )
    body = b"".join(chunks)
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
    return answer["status"], body, answer["headers"]


def _post_json(
    app: WsgiApp, path: str, data: dict[str, Any], **headers: str
) -> tuple[Any, list[tuple[str, str]]]:
    status, body, response_headers = _call(
        app, _environ(path, "POST", json.dumps(data).encode(), **headers)
    )
    assert status.startswith(("200", "201")), (path, status, body[:300])
    return json.loads(body), response_headers


def _authgate_app(instance: Path, *, own_views: bool) -> Any:
    os.environ.update(
        AUTHGATE_INSTANCE_PATH=str(instance),
        AUTHGATE_PUBLIC_URL="http://localhost:8086",
        AUTHGATE_ORIGINS="http://localhost:4100",
    )
    from flask import Flask

    from authgate import AuthGate, current_user, token_required
    from authgate.server import create_app

    if not own_views:
        return create_app()
    app = Flask("own", instance_path=str(instance))
    AuthGate(app)

    @app.get("/api/notes")
    @token_required()
    def notes() -> dict[str, str]:
        return {"owner": current_user.email}

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def _bare_app() -> Any:
    from flask import Flask

    app = Flask("bare")

    @app.get("/me")
    def me() -> dict[str, Any]:
        return {"id": "x", "email": "a@example.com", "roles": ["user"]}

    return app


def _first_request_environs(app: Any, count: int, credential: str) -> list[dict[str, Any]]:
    """``count`` users, each with a session and its access token (``credential`` "session")
    or an API token ("api_token"); then the process forgets everything it cached about them,
    as a new process would."""
    from authgate.integrations.flask.context import EXTENSION_KEY
    from authgate.service import ClientInfo

    service = app.extensions[EXTENSION_KEY].service
    environs = []
    for n in range(count):
        user = service.store.create_user(
            email=f"user{n}@example.com",
            username=None,
            name=None,
            password_hash=None,
            roles=["user"],
            now=service.clock.now(),
        )
        if credential == "api_token":
            bearer, _ = service.api_tokens.issue_api_token(user, name="bench", scopes=["read"])
        else:
            generation = service.cache.users.generation
            issued = service.sessions.open_session(user, ClientInfo(), generation=generation)
            bearer = issued.access_token
        environs.append(_environ("/api/auth/me", authorization=f"Bearer {bearer}"))
    service.cache.clear()
    return environs


def _prepare(scenario: str, instance: Path, requests: int) -> tuple[WsgiApp, list[dict[str, Any]]]:
    """The app and the environs of the requests (the first ``WARM_UP`` for the warm-up when
    there are several); asserts that the first answers 200."""
    if scenario.endswith("_metrics"):  # the same request, with the metrics middleware on
        os.environ["AUTHGATE_METRICS"] = "loopback"
        scenario = scenario.removesuffix("_metrics")
    if scenario == "bare":
        app = _bare_app()
        environs = [_environ("/me")]
    elif scenario in PEERS:
        import peers

        build = (
            peers.jwt_extended_app if scenario == "peer_jwt_extended" else peers.security_too_app
        )
        app, headers = build(instance)
        environs = [_environ("/me", **headers)]
    elif scenario == "first_request":
        app = _authgate_app(instance, own_views=False)
        environs = _first_request_environs(app, WARM_UP + requests, "session")
    elif scenario == "api_token_first_request":
        app = _authgate_app(instance, own_views=False)
        environs = _first_request_environs(app, WARM_UP + requests, "api_token")
    else:
        app = _authgate_app(instance, own_views=scenario in ("own_view", "public_route"))
        _post_json(app, "/api/auth/register", {"email": "ada@example.com", "password": PASSWORD})
        login, headers = _post_json(
            app, "/api/auth/login", {"login": "ada@example.com", "password": PASSWORD}
        )
        access = login["access_token"]
        if scenario == "me_bearer":
            environ = _environ("/api/auth/me", authorization=f"Bearer {access}")
        elif scenario == "me_cookie":
            cookies = "; ".join(
                value.split(";", 1)[0] for name, value in headers if name.lower() == "set-cookie"
            )
            environ = _environ("/api/auth/me", cookie=cookies)
        elif scenario == "me_api_token":
            created, _ = _post_json(
                app,
                "/api/tokens",
                {"name": "bench", "scopes": ["read"]},
                authorization=f"Bearer {access}",
            )
            environ = _environ("/api/auth/me", authorization=f"Bearer {created['token']}")
        elif scenario == "own_view":
            environ = _environ("/api/notes", authorization=f"Bearer {access}")
        else:
            environ = _environ("/hello")
        environs = [environ]
    status, body, _ = _call(app, environs[0])
    assert status.startswith("200"), (scenario, status, body[:300])
    return app, environs


def run_inner(scenario: str, requests: int) -> None:
    """In the process under callgrind: warm up, then the measured loop in operator.call."""
    with tempfile.TemporaryDirectory() as tmp:
        app, environs = _prepare(scenario, Path(tmp), requests)
        # One environ: the same request again and again. Several: each one once.
        warm, counted = (
            (environs[:WARM_UP], environs[WARM_UP:])
            if len(environs) > 1
            else (
                environs * WARM_UP,
                environs * requests,
            )
        )
        for environ in warm:
            _call(app, environ)

        def measured() -> None:
            for environ in counted:
                _call(app, environ)

        operator.call(measured)
        # Stop authgate's background threads (the mail sender writes the registration's
        # verification mail into ``tmp``) before the folder goes.
        state = getattr(app, "extensions", {}).get("authgate")
        if state is not None:
            state.service.close()


def count(scenario: str, requests: int) -> int | None:
    """Instructions per request of ``scenario``; None for a peer that is not installed."""
    if scenario in PEERS and importlib.util.find_spec(PEERS[scenario]) is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=_operator_call",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--inner",
                scenario,
                "--requests",
                str(requests),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        if done.returncode != 0:
            sys.exit(f"{scenario} failed under valgrind:\n{done.stderr[-3000:]}")
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        assert match is not None, "no totals in the callgrind output"
        return int(match.group(1)) // requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], default=[])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.inner:
        run_inner(args.scenarios[0], args.requests)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed: apt-get install valgrind")
    scenarios = args.scenarios or list(SCENARIOS)
    if "bare" not in scenarios:
        scenarios.insert(0, "bare")
    figures = {name: count(name, args.requests) for name in scenarios}
    bare = figures["bare"]
    assert bare is not None
    print(f"instructions per request (callgrind, {args.requests} requests after 50 warm-up)")
    for name, value in figures.items():
        if value is None:
            print(f"  {name:<23} {'-':>10}             not installed: pip install -e '.[bench]'")
            continue
        print(f"  {name:<23} {value:>10,}  {value / bare:6.2f} x bare   {SCENARIOS[name]}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
