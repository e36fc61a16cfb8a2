"""The newcomer's first hour: `authgate serve --port <port>` with nothing configured, then the
pages in Chromium at whichever loopback name the newcomer types. The public URL follows the port;
a page opened at ``127.0.0.1`` or ``[::1]`` is redirected to ``localhost``, where registering
and logging in work; the startup log ends with the one URL to open."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, expect

from tests.e2e.browser import new_page
from tests.e2e.helpers import new_http_session
from tests.helpers import PASSWORD, free_port, has_ipv6_loopback

pytestmark = pytest.mark.usefixtures("page_problems")


class DevServer:
    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.public_url = f"http://localhost:{port}"

    def startup_lines(self) -> list[str]:
        """The log's lines up to the first request line (werkzeug's, logger ``werkzeug``)."""
        lines = self.log.read_text().splitlines()
        requests_start = next(
            (i for i, line in enumerate(lines) if " INFO werkzeug: " in line), len(lines)
        )
        return lines[:requests_start]


def _wait_for_line(
    process: subprocess.Popen[bytes], log: Path, text: str, *, timeout: float = 30
) -> None:
    """Until ``text`` is in the log (the server logs it once it listens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        if process.poll() is not None:
            pytest.fail(f"authgate serve exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.05)
    pytest.fail(f"authgate serve never logged {text!r}:\n{log.read_text()}")


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """`authgate serve --port <free port>` as a newcomer runs it: no AUTHGATE_* settings, a fresh
    working directory (the instance folder is created in it)."""
    workdir = tmp_path_factory.mktemp("first-hour")
    port = free_port()
    server = DevServer(port, workdir / "serve.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    with server.log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "authgate", "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_line(process, server.log, " in your browser")
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_startup_log_ends_with_the_url_to_open(dev_server: DevServer) -> None:
    port = dev_server.port
    *_, starting, open_this = dev_server.startup_lines()
    assert "DEVELOPMENT server on http://127.0.0.1:" in starting
    others = f"http://127.0.0.1:{port} and http://[::1]:{port} redirect"
    if not has_ipv6_loopback():
        others = f"http://127.0.0.1:{port} redirects"
    assert open_this.endswith(
        f"Open http://localhost:{port} in your browser ({others} pages there)."
    ), open_this


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_the_port_flows_into_the_public_url(dev_server: DevServer) -> None:
    """The token issuer and the CSRF check agree with the address the server listens on."""
    http: requests.Session = new_http_session()
    public = dev_server.public_url
    address = f"script-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": address, "password": PASSWORD}
    assert http.post(public + "/api/auth/register", json=body, timeout=5).status_code == 201
    browser_like = {"Origin": public, "X-Requested-With": "fetch"}
    response = http.post(
        public + "/api/auth/login",
        json={"login": address, "password": PASSWORD},
        headers=browser_like,
        timeout=5,
    )
    assert response.status_code == 200, response.text
    assert _claims(response.json()["access_token"])["iss"] == public


LOOPBACK_NAMES = ["localhost", "127.0.0.1"]
if has_ipv6_loopback():
    LOOPBACK_NAMES.append("[::1]")


@pytest.mark.parametrize("name", LOOPBACK_NAMES)
def test_register_and_log_in_at_each_loopback_name(
    browser: Browser, dev_server: DevServer, name: str
) -> None:
    _register_and_log_in_through_the_pages(
        browser, f"http://{name}:{dev_server.port}", dev_server.public_url
    )


def _register_and_log_in_through_the_pages(browser: Browser, typed: str, public: str) -> None:
    """Register on the page opened at ``typed``, then log in from a fresh browser: both end at
    the account page on the public URL, with the session cookie there."""
    address = f"newcomer-{uuid.uuid4().hex[:8]}@example.com"

    context, page = new_page(browser)
    page.goto(f"{typed}/")
    expect(page).to_have_url(f"{public}/")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{public}/account")
    expect(page.locator("#email")).to_have_text(address)
    context.close()

    # Later, in a fresh browser, straight to the login page at the name typed.
    context, page = new_page(browser)
    page.goto(f"{typed}/?next=/account")
    expect(page).to_have_url(f"{public}/?next=/account")
    page.get_by_label("Email or username").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{public}/account")
    expect(page.locator("#email")).to_have_text(address)
    session = [c for c in context.cookies(public) if c["name"] == "authgate_session"]
    assert len(session) == 1 and session[0]["domain"] == "localhost"
    context.close()


def test_a_fresh_clone_serves_with_the_readme_command(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The README's first command, verbatim, in a fresh clone of this repository: `scripts/serve`
    creates its virtualenv, installs authgate, and serves; then the pages work at both loopback
    names. (On a free port, with the README's `scripts/serve --port N`, so that the test does
    not depend on 8086 being free.)"""
    repo = Path(__file__).resolve().parents[2]
    clone = tmp_path_factory.mktemp("newcomer") / "authgate"
    subprocess.run(
        ["git", "clone", "--quiet", "--depth", "1", f"file://{repo}", str(clone)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    server = DevServer(port, clone.parent / "serve.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHGATE_", "VIRTUAL_ENV"))}
    with server.log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", f"scripts/serve --port {port}"],
            env=env,
            cwd=clone,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_line(process, server.log, " in your browser", timeout=600)
        assert (clone / "instance" / "keys").is_dir()  # generated dev keys, in ./instance
        for name in ("localhost", "127.0.0.1"):
            _register_and_log_in_through_the_pages(
                browser, f"http://{name}:{port}", server.public_url
            )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
