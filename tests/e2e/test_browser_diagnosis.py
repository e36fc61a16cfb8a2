"""The misconfigurations whose explanation used to be wrong, in Debian's Chromium against the real
server under gunicorn, with the example hostnames mapped to 127.0.0.1 (``--host-resolver-rules``):

- the API's public URL is plain http on a host that is not localhost: the browser drops the
  Secure session cookie, and the login page says so (not "third-party cookies blocked?");
- a frontend on ``localhost`` calls the API as ``127.0.0.1`` (public URL ``localhost``): the
  browser calls it cross-site, and the page names the other host name and the fix
  (tests/e2e/test_browser_client.py);
- an https page calls an http API: the browser blocks it as mixed content, and the client says
  so instead of "Cannot reach the authentication server";
- a page on a look-alike of an allowed origin calls the API: it is called a look-alike, with
  "Did you mean", and nothing advises to allow it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from authgate.proxy.tls import issue_dev_certificate
from tests.e2e.browser import EXAMPLE_FRONTEND, chromium, new_page, static_site
from tests.e2e.helpers import server_group, unique_email
from tests.helpers import PASSWORD, free_port

CLIENT = Path(__file__).resolve().parents[2] / "src" / "authgate" / "web" / "authgate.js"
HOSTS = (
    "MAP localhost 127.0.0.1, MAP app.example.test 127.0.0.1, MAP api.example.test 127.0.0.1, "
    "MAP app.example.test.evil.test 127.0.0.1"
)

pytestmark = pytest.mark.usefixtures("page_problems")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium(host_rules=HOSTS) as launched:
        yield launched


def test_plain_http_off_localhost_is_named_on_the_login_page(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Same origin (the login page's calls carry no Origin header on GET): the cookie is
    first-party, and the page names the real cause."""
    with server_group("sqlite", tmp_path_factory) as group:
        port = free_port()
        public = f"http://app.example.test:{port}"
        (server,) = group.start(port=port, public_url=public, origins="")
        address = unique_email("plainhttp")
        response = server.post("/api/auth/register", json={"email": address, "password": PASSWORD})
        assert response.status_code == 201, response.text
        context, page = new_page(browser)
        page.goto(f"{public}/")
        page.get_by_label("Email or username").fill(address)
        page.get_by_label("Password").fill(PASSWORD)

        with page.expect_response(f"{public}/api/auth/login") as login:
            page.get_by_role("button", name="Log in").click()

        assert login.value.status == 200
        alert = page.locator("#login-form [role=alert]")
        expect(alert).to_contain_text("Logged in, but the session cookie does not come back")
        expect(alert).to_contain_text("plain http on app.example.test, not localhost")
        expect(alert).to_contain_text("Serve the API over https")
        expect(alert).not_to_contain_text("third-party")
        context.close()


def test_an_https_page_calling_an_http_api_is_told_mixed_content(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The server is up and answers; only the browser's mixed-content block stands between."""
    tls = issue_dev_certificate(tmp_path / "tls", ["app.example.test"], now=datetime.now(UTC))
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(CLIENT, site / "authgate.js")  # the https page's own copy of the client
    (site / "index.html").write_text("<!doctype html><title>app</title>")
    app_port = free_port()
    with (
        server_group("sqlite", tmp_path_factory) as group,
        static_site(site, app_port, tls=(tls.cert_path, tls.key_path)),
    ):
        api_port = free_port()
        api = f"http://api.example.test:{api_port}"
        group.start(port=api_port, public_url=api, origins=f"https://app.example.test:{app_port}")
        context, page = new_page(browser, https_errors=True)
        page.goto(f"https://app.example.test:{app_port}/")

        kind, message = page.evaluate(
            """async (api) => {
              const { createClient } = await import('/authgate.js');
              try {
                await createClient({ baseUrl: api }).me();
                return ['none', ''];
              } catch (error) {
                return [error.kind, error.message];
              }
            }""",
            api,
        )

        assert kind == "unreachable"
        assert "blocks the request as mixed content" in message, message
        assert f"the authentication server's URL {api} is plain http" in message
        assert "Cannot reach" not in message
        context.close()


def test_a_look_alike_origin_is_called_so_and_never_advised(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The example frontend served at ``app.example.test.evil.test`` calls an API that allows
    ``app.example.test`` (same port): the page shows the server's explanation."""
    port = free_port()
    allowed = f"http://app.example.test:{port}"
    lookalike = f"http://app.example.test.evil.test:{port}"
    with (
        server_group("sqlite", tmp_path_factory) as group,
        static_site(EXAMPLE_FRONTEND, port),
    ):
        api_port = free_port()
        api = f"http://localhost:{api_port}"
        group.start(port=api_port, public_url=api, origins=allowed)
        context, page = new_page(browser)
        page.goto(f"{lookalike}/?api={api}")

        problem = page.locator("#problem")
        expect(problem).to_contain_text(f"Did you mean {allowed}?")
        expect(problem).to_contain_text("look-alike")
        expect(problem).not_to_contain_text(f"AUTHGATE_ORIGINS={allowed},")
        expect(problem).not_to_contain_text(f"Add {lookalike}")
        context.close()
