"""Headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright, and static sites for
the example frontend. Fresh profile per test; third-party cookies stay blocked (Chromium's
default here), as in Safari and in Chrome's future.

Screenshots go to ``$AUTHGATE_TEST_ARTIFACTS`` (default ``test-artifacts/``) for review.
"""

from __future__ import annotations

import functools
import http.server
import os
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    sync_playwright,
)

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
EXAMPLE_FRONTEND = REPO / "examples" / "frontend"
ARTIFACTS = Path(os.environ.get("AUTHGATE_TEST_ARTIFACTS", REPO / "test-artifacts"))


@contextmanager
def chromium(
    *, host_rules: str = "MAP localhost 127.0.0.1, MAP app.test 127.0.0.1, MAP api.test 127.0.0.1"
) -> Iterator[Browser]:
    """One Chromium per test module (Playwright's sync API cannot nest); the test names
    ``app.test`` and ``api.test`` lead to 127.0.0.1."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `apt-get install chromium` (scripts/bootstrap)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[f"--host-resolver-rules={host_rules}", "--no-sandbox"],
        )
        try:
            yield browser
        finally:
            browser.close()


# What went wrong on any page of the test running now: uncaught errors and unhandled
# rejections ("pageerror"), and Content-Security-Policy violations — reported by the browser
# as `securitypolicyviolation` events (turned into console errors below) and console errors.
PAGE_PROBLEMS: list[str] = []

_REPORT_CSP_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`
    + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""


def _watch(page: Page) -> None:
    def on_console(message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "error" and (
            text.startswith("CSP violation") or "Content Security Policy" in text
        ):
            PAGE_PROBLEMS.append(f"{page.url}: {text}")

    page.on("pageerror", lambda error: PAGE_PROBLEMS.append(f"{page.url}: uncaught {error}"))
    page.on("console", on_console)


@contextmanager
def no_page_problems() -> Iterator[list[str]]:
    """Fail unless the pages opened inside had no uncaught error and no CSP violation."""
    PAGE_PROBLEMS.clear()
    yield PAGE_PROBLEMS
    problems, PAGE_PROBLEMS[:] = list(PAGE_PROBLEMS), []
    assert problems == [], "\n".join(problems)


def new_page(
    browser: Browser,
    *,
    https_errors: bool = False,
    init_script: str | None = None,
    viewport: ViewportSize | None = None,
) -> tuple[BrowserContext, Page]:
    """A fresh context (profile) and a page in it; every page of the context is watched for
    ``PAGE_PROBLEMS``. ``init_script`` runs before any page script (e.g. to remove an API);
    ``viewport`` is the window's size (Playwright's default: 1280x720)."""
    if viewport is None:
        context = browser.new_context(ignore_https_errors=https_errors)
    else:
        context = browser.new_context(ignore_https_errors=https_errors, viewport=viewport)
    context.add_init_script(_REPORT_CSP_VIOLATIONS)
    if init_script:
        context.add_init_script(init_script)
    context.on("page", _watch)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@contextmanager
def static_site(
    directory: Path, port: int, *, tls: tuple[Path, Path] | None = None
) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1:``port`` (https with ``tls`` = (cert, key))."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
