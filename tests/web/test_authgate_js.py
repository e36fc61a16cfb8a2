"""``authgate.js`` under Node.js with a scripted ``fetch``: which explanation the client picks
from the server's diagnosis, when a failed login check is a cookie problem, how bodies are sent,
and the base-URL rule. (The same client in a real browser against the real server:
tests/e2e/test_browser.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from authgate.core.diagnostics import RequestView, diagnose_request
from authgate.core.origins import CookiePolicy, OriginAllowlist

CLIENT = Path(__file__).resolve().parents[2] / "src" / "authgate" / "web" / "authgate.js"

# A fake fetch: `routes` maps "METHOD /path" to a response ({status, body}), to "reject" (what
# fetch does on a CORS refusal or a dead server), or to a list of those answered in turn (the
# last one from then on); an answer with "wait" comes once the script resolves `gate`. It
# takes what the real one takes (a URL and options, or a Request), reads the body as the real
# one does, and records every call in `calls`.
HARNESS = """
import * as client from './authgate.mjs';
const routes = ROUTES;
const calls = [];
globalThis.fetch = async (input, options = {}) => {
  const request = new Request(input, options);
  const key = `${request.method} ${new URL(request.url).pathname}`;
  calls.push({ key, credentials: request.credentials,
    contentType: request.headers.get('Content-Type'),
    body: request.body === null ? null : await request.text() });
  let answer = routes[key] ?? routes[`${key} ${request.credentials}`];
  if (Array.isArray(answer)) answer = answer.length > 1 ? answer.shift() : answer[0];
  if (answer?.wait) await globalThis.gate;  // answered when the script opens the gate
  if (answer === undefined || answer === 'reject') throw new TypeError('Failed to fetch');
  return new Response(JSON.stringify(answer.body ?? {}), {
    status: answer.status ?? 200, headers: { 'Content-Type': 'application/json' } });
};
const auth = client.createClient({ baseUrl: 'http://localhost:8086/' });
const stream = (text) => new ReadableStream({ start(controller) {
  controller.enqueue(new TextEncoder().encode(text));
  controller.close();
} });
let result, error = null;
try {
  result = await (async () => { SCRIPT })();
} catch (e) {
  error = { name: e.name, kind: e.kind ?? null, status: e.status ?? null, code: e.code ?? null,
            message: e.message };
}
console.log(JSON.stringify({ result: result ?? null, error, calls }));
"""


def run_client(tmp_path: Path, script: str, routes: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is not on PATH (scripts/bootstrap installs it for the OIDC peer)"
    shutil.copy(CLIENT, tmp_path / "authgate.mjs")
    program = HARNESS.replace("ROUTES", json.dumps(routes)).replace("SCRIPT", script)
    (tmp_path / "run.mjs").write_text(program)
    done = subprocess.run(
        [node, "run.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    output: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return output


def diagnosis(origin: str | None, *, allowlist: str = "http://localhost:4100", **seen: Any) -> Any:
    """What the real server's diagnosis says of a request from ``origin``."""
    view = RequestView(
        origin=origin,
        session_cookie=seen.get("session_cookie", False),
        refresh_cookie=False,
        scheme=seen.get("scheme", "http"),
        host="localhost:8086",
        client_ip="127.0.0.1",
    )
    return diagnose_request(
        view,
        public_url="http://localhost:8086",
        allowlist=OriginAllowlist([allowlist]),
        cookie_policy=CookiePolicy("Lax", secure=True, partitioned=False, cross_site_origins=()),
        cookie_name="authgate_session",
    )


def test_a_null_origin_gets_the_servers_explanation_not_add_it_to_the_allowlist(
    tmp_path: Path,
) -> None:
    report = diagnosis("null")
    out = run_client(
        tmp_path,
        "return auth.me();",
        {"GET /api/auth/me": "reject", "GET /api/auth/diagnose": {"body": report}},
    )

    assert out["error"]["kind"] == "origin"
    assert "'null' is not an origin" in out["error"]["message"]
    assert "serve the page from http(s)://host[:port]" in out["error"]["message"]
    assert "AUTHGATE_ORIGINS" not in out["error"]["message"]


def test_an_origin_not_allowed_says_add_it_to_authgate_origins(tmp_path: Path) -> None:
    report = diagnosis("http://localhost:5999")
    out = run_client(
        tmp_path,
        "return auth.me();",
        {"GET /api/auth/me": "reject", "GET /api/auth/diagnose": {"body": report}},
    )

    assert out["error"]["kind"] == "origin"
    assert "Origin http://localhost:5999 is not allowed" in out["error"]["message"]
    assert "AUTHGATE_ORIGINS" in out["error"]["message"]
    diagnose_calls = [c for c in out["calls"] if c["key"] == "GET /api/auth/diagnose"]
    assert [c["credentials"] for c in diagnose_calls] == ["omit"]  # no second, credentialed one


def test_a_failed_request_from_an_allowed_origin_names_the_relevant_problem_not_the_first(
    tmp_path: Path,
) -> None:
    """Without a cookie and with a scheme mismatch, problems[0] is the cookie, which cannot
    make fetch() reject; the scheme explanation is the one that matches."""
    report = diagnosis("http://localhost:4100", scheme="https")
    assert [f["kind"] for f in report["findings"]] == ["cookie", "scheme"]
    out = run_client(
        tmp_path,
        "return auth.me();",
        {"GET /api/auth/me": "reject", "GET /api/auth/diagnose": {"body": report}},
    )

    assert out["error"]["kind"] == "unreachable"
    assert "AUTHGATE_TRUSTED_PROXIES" in out["error"]["message"]
    assert "No session cookie arrived" not in out["error"]["message"]


def test_a_dead_server_is_unreachable(tmp_path: Path) -> None:
    out = run_client(tmp_path, "return auth.me();", {})

    assert out["error"]["kind"] == "unreachable"
    assert out["error"]["message"].startswith(
        "Cannot reach the authentication server at http://localhost:8086: it may be down"
    )


LOGIN = {"POST /api/auth/login": {"body": {"user": {"email": "ada@example.com"}}}}


def test_login_whose_cookie_does_not_come_back_is_a_cookie_error_with_the_cookie_finding(
    tmp_path: Path,
) -> None:
    report = diagnosis("http://localhost:4100", scheme="https")  # [cookie, scheme]
    out = run_client(
        tmp_path,
        "return auth.login('ada@example.com', 'pw');",
        {
            **LOGIN,
            "GET /api/auth/me": {"status": 401, "body": {"error": {"code": "x", "message": "m"}}},
            "GET /api/auth/diagnose": {"body": report},
        },
    )

    assert out["error"]["kind"] == "cookie"
    assert out["error"]["status"] == 401
    assert "No session cookie arrived" in out["error"]["message"]
    assert "AUTHGATE_TRUSTED_PROXIES" not in out["error"]["message"]


def test_login_followed_by_a_server_error_is_that_error_not_a_cookie_problem(
    tmp_path: Path,
) -> None:
    failure = {"status": 503, "body": {"error": {"code": "unavailable", "message": "Try later."}}}
    out = run_client(
        tmp_path,
        "return auth.login('ada@example.com', 'pw');",
        {**LOGIN, "GET /api/auth/me": failure, "GET /api/auth/diagnose": {"body": {}}},
    )

    assert out["error"] == {
        "name": "AuthgateError",
        "kind": "http",
        "status": 503,
        "code": "unavailable",
        "message": "Try later.",
    }
    assert "GET /api/auth/diagnose" not in [c["key"] for c in out["calls"]]


def test_a_401_although_the_cookie_arrived_is_not_called_a_cookie_problem(
    tmp_path: Path,
) -> None:
    refused = {"status": 401, "body": {"error": {"code": "account_disabled", "message": "Off."}}}
    report = diagnosis("http://localhost:4100", session_cookie=True)
    out = run_client(
        tmp_path,
        "return auth.login('ada@example.com', 'pw');",
        {**LOGIN, "GET /api/auth/me": refused, "GET /api/auth/diagnose": {"body": report}},
    )

    assert out["error"]["kind"] == "http"
    assert out["error"]["code"] == "account_disabled"


# A client for a plain-http API that is not on localhost, made by a page at `PAGE` (set
# before the client exists: it reads `location` when it explains a failure).
PAGE_CLIENT = """
globalThis.location = new URL(PAGE);
const remote = client.createClient({ baseUrl: 'http://api.example.test' });
"""


def test_a_login_over_plain_http_off_localhost_names_the_dropped_secure_cookie(
    tmp_path: Path,
) -> None:
    """The same-origin login page: the server's finding (its diagnose call has no Origin)."""
    view = RequestView(None, False, False, "http", "api.example.test", "127.0.0.1")
    report = diagnose_request(
        view,
        public_url="http://api.example.test",
        allowlist=OriginAllowlist([]),
        cookie_policy=CookiePolicy("Lax", secure=True, partitioned=False, cross_site_origins=()),
        cookie_name="authgate_session",
    )
    script = PAGE_CLIENT.replace("PAGE", "'http://api.example.test/login'")
    out = run_client(
        tmp_path,
        script + "return remote.login('ada@example.com', 'pw');",
        {
            **LOGIN,
            "GET /api/auth/me": {"status": 401, "body": {"error": {"code": "x", "message": "m"}}},
            "GET /api/auth/diagnose": {"body": report},
        },
    )

    assert out["error"]["kind"] == "cookie"
    assert "plain http on api.example.test, not localhost" in out["error"]["message"]
    assert "third-party" not in out["error"]["message"]
    assert "credentials: 'include'" not in out["error"]["message"]


def test_without_a_diagnosis_the_client_names_plain_http_itself(tmp_path: Path) -> None:
    script = PAGE_CLIENT.replace("PAGE", "'http://api.example.test/login'")
    out = run_client(
        tmp_path,
        script + "return remote.login('ada@example.com', 'pw');",
        {**LOGIN, "GET /api/auth/me": {"status": 401, "body": {}}},  # diagnose: rejected
    )

    assert out["error"]["kind"] == "cookie"
    assert "is plain http on api.example.test, not localhost" in out["error"]["message"]
    assert "third-party" not in out["error"]["message"]


def test_a_same_origin_page_is_not_told_about_third_party_cookies(tmp_path: Path) -> None:
    out = run_client(
        tmp_path,
        "globalThis.location = new URL('http://localhost:8086/login');"
        "return auth.login('ada@example.com', 'pw');",
        {**LOGIN, "GET /api/auth/me": {"status": 401, "body": {}}},
    )

    assert out["error"]["kind"] == "cookie"
    assert out["error"]["message"].endswith("The browser did not keep the session cookie.")


def test_an_https_page_calling_a_plain_http_server_is_told_mixed_content(tmp_path: Path) -> None:
    script = PAGE_CLIENT.replace("PAGE", "'https://app.example.test/'")
    out = run_client(tmp_path, script + "return remote.me();", {})

    assert out["error"]["kind"] == "unreachable"
    assert "blocks the request as mixed content" in out["error"]["message"]
    assert "Cannot reach" not in out["error"]["message"]
    assert out["calls"] == [
        {"key": "GET /api/auth/me", "credentials": "include", "contentType": None, "body": None}
    ]  # no diagnosis: blocked too


def test_an_https_page_calling_http_on_localhost_is_not_mixed_content(tmp_path: Path) -> None:
    """Browsers let an https page call http://localhost: a failure there is something else."""
    out = run_client(
        tmp_path,
        "globalThis.location = new URL('https://app.example.test/'); return auth.me();",
        {},
    )

    assert out["error"]["message"].startswith("Cannot reach the authentication server")


def test_bodies_fetch_understands_pass_through_and_objects_become_json(tmp_path: Path) -> None:
    """What was sent is what fetch makes of each body itself (its own Content-Type, if any);
    only the plain object became JSON."""
    ok: dict[str, Any] = {"body": {}}
    out = run_client(
        tmp_path,
        """
        await auth.fetch('/form', { method: 'POST', body: new URLSearchParams({ a: '1' }) });
        await auth.fetch('/bytes', { method: 'POST', body: new Uint8Array([65, 66]).buffer });
        await auth.fetch('/view', { method: 'POST', body: new Uint8Array([67, 68]) });
        await auth.fetch('/blob', { method: 'POST', body: new Blob(['x']) });
        await auth.fetch('/stream', { method: 'POST', body: stream('flow'), duplex: 'half' });
        await auth.fetch('/text', { method: 'POST', body: 'plain' });
        await auth.fetch('/object', { method: 'POST', body: { a: 1 } });
        """,
        {
            f"POST /{name}": ok
            for name in ("form", "bytes", "view", "blob", "stream", "text", "object")
        },
    )

    sent = {c["key"]: (c["contentType"], c["body"]) for c in out["calls"]}
    assert sent == {
        "POST /form": ("application/x-www-form-urlencoded;charset=UTF-8", "a=1"),
        "POST /bytes": (None, "AB"),
        "POST /view": (None, "CD"),
        "POST /blob": (None, "x"),
        "POST /stream": (None, "flow"),
        "POST /text": ("text/plain;charset=UTF-8", "plain"),
        "POST /object": ("application/json", '{"a":1}'),
    }


EXPIRED = {"status": 401, "body": {"error": {"code": "token_expired", "message": "Expired."}}}
REFRESHED = {"POST /api/auth/refresh": {"body": {"expires_in": 900}}}


def test_a_stream_body_is_not_sent_again_after_the_refresh(tmp_path: Path) -> None:
    """The first attempt read the stream: the 401 is the answer, not an ``unreachable`` error
    from re-sending a used stream; the refresh still happened, for the caller's next try."""
    out = run_client(
        tmp_path,
        """
        const response = await auth.fetch('/upload',
          { method: 'POST', body: stream('data'), duplex: 'half' });
        return { status: response.status, code: (await response.json()).error.code };
        """,
        {"POST /upload": [EXPIRED, {"body": {}}], **REFRESHED},
    )

    assert out["error"] is None, out["error"]
    assert out["result"] == {"status": 401, "code": "token_expired"}
    assert [c["key"] for c in out["calls"]] == ["POST /upload", "POST /api/auth/refresh"]


def test_a_stream_body_through_json_throws_the_servers_401(tmp_path: Path) -> None:
    out = run_client(
        tmp_path,
        "return auth.json('/upload', { method: 'POST', body: stream('data'), duplex: 'half' });",
        {"POST /upload": [EXPIRED, {"body": {}}], **REFRESHED},
    )

    assert out["error"] == {
        "name": "AuthgateError",
        "kind": "http",
        "status": 401,
        "code": "token_expired",
        "message": "Expired.",
    }
    assert [c["key"] for c in out["calls"]] == ["POST /upload", "POST /api/auth/refresh"]


def test_a_body_that_can_be_read_again_is_retried_after_the_refresh(tmp_path: Path) -> None:
    out = run_client(
        tmp_path,
        """
        const response = await auth.fetch('/upload', { method: 'POST', body: new Blob(['data']) });
        return response.status;
        """,
        {"POST /upload": [EXPIRED, {"status": 201, "body": {}}], **REFRESHED},
    )

    assert out["result"] == 201
    assert [(c["key"], c["body"]) for c in out["calls"]] == [
        ("POST /upload", "data"),
        ("POST /api/auth/refresh", None),
        ("POST /upload", "data"),
    ]


def test_a_401_that_arrives_after_the_refresh_is_retried_without_a_second_refresh(
    tmp_path: Path,
) -> None:
    """Concurrent calls share one refresh only while it runs: a call sent with the old token
    whose 401 comes back after the refresh finished retries with the new token."""
    out = run_client(
        tmp_path,
        """
        let open;
        globalThis.gate = new Promise((resolve) => { open = resolve; });
        const slow = auth.fetch('/slow');
        const fast = await auth.fetch('/fast');
        open();
        return [fast.status, (await slow).status];
        """,
        {
            "GET /fast": [EXPIRED, {"body": {}}],
            "GET /slow": [{**EXPIRED, "wait": True}, {"body": {}}],
            **REFRESHED,
        },
    )

    assert out["result"] == [200, 200]
    keys = [c["key"] for c in out["calls"]]
    assert keys.count("POST /api/auth/refresh") == 1, keys
    assert keys.count("GET /slow") == 2, keys


def test_a_request_that_cannot_be_built_throws_its_own_error_undiagnosed(
    tmp_path: Path,
) -> None:
    """A stream without ``duplex: 'half'`` (Chromium and Node refuse it) is the caller's bug:
    fetch's TypeError, not "Cannot reach the authentication server"."""
    out = run_client(
        tmp_path,
        "return auth.fetch('/upload', { method: 'POST', body: stream('data') });",
        {"POST /upload": {"body": {}}, "GET /api/auth/diagnose": {"body": {}}},
    )

    assert out["error"]["name"] == "TypeError"
    assert out["error"]["kind"] is None
    assert "duplex" in out["error"]["message"]
    assert out["calls"] == []  # nothing sent, no diagnosis asked for


def test_choose_base_url_by_the_pages_hostname(tmp_path: Path) -> None:
    out = run_client(
        tmp_path,
        """
        const urls = { local: 'http://localhost:8086/', deployed: 'https://auth.example.com//' };
        return ['localhost', '127.0.0.1', '[::1]', 'app.example.com', 'localhost.evil.test']
          .map((host) => client.chooseBaseUrl(urls, host));
        """,
        {},
    )

    assert out["result"] == [
        "http://localhost:8086",
        "http://localhost:8086",
        "http://localhost:8086",
        "https://auth.example.com",
        "https://auth.example.com",
    ]
