"""The web side in a real browser: authgate's own pages (same origin), and the example frontend on
another origin using ``authgate.js`` — same-site, cross-site with third-party cookies blocked,
and an origin that is not allowed. Each server is the real one under gunicorn."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from authgate.deploy.tls import issue_dev_certificate
from tests.e2e.browser import EXAMPLE_FRONTEND, chromium, new_page, screenshot, static_site
from tests.e2e.conftest import (
    PASSWORD,
    Server,
    ServerGroup,
    free_port,
    server_group,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def frontend_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def frontend(frontend_port: int) -> Iterator[str]:
    with static_site(EXAMPLE_FRONTEND, frontend_port) as url:
        yield url


def start_api(group: ServerGroup, origins: str) -> tuple[Server, str]:
    port = free_port()
    (server,) = group.start(port=port, origins=origins, public_url=f"http://localhost:{port}")
    return server, f"http://localhost:{port}"


@pytest.fixture(scope="module")
def same_site(
    tmp_path_factory: pytest.TempPathFactory, frontend_port: int
) -> Iterator[tuple[ServerGroup, Server, str]]:
    """The API on http://localhost:<port>; the frontend on http://localhost:<frontend port>."""
    with server_group("sqlite", tmp_path_factory) as group:
        server, api = start_api(group, f"http://localhost:{frontend_port}")
        yield group, server, api


def register(server: Server, address: str) -> None:
    """Register as a script would (no Origin: the CSRF check is for browsers)."""
    response = server.post("/api/auth/register", json={"email": address, "password": PASSWORD})
    assert response.status_code == 201, response.text


def email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


def log_in_on_frontend(page: Page, login: str) -> None:
    page.get_by_label("Email or username").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def frontend_session(browser: Browser, frontend_url: str, api: str, address: str) -> dict[str, Any]:
    """Open the example frontend, log in as ``address``, call the API; the session cookie as
    the browser keeps it (a screenshot is taken of the page)."""
    context, page = new_page(browser, https_errors=frontend_url.startswith("https:"))
    page.goto(f"{frontend_url}/?api={api}")
    expect(page.locator("#status")).to_have_text("Not signed in.")

    log_in_on_frontend(page, address)

    expect(page.locator("#who")).to_have_text(address)
    page.get_by_role("button", name="Call a protected endpoint").click()
    expect(page.locator("#result")).to_contain_text("200")
    expect(page.locator("#result")).to_contain_text(address)
    screenshot(page, "frontend-" + re.sub(r"\W+", "-", frontend_url.split("//")[1]).strip("-"))
    session = next(c for c in context.cookies(api) if c["name"] == "authgate_session")
    context.close()
    return dict(session)


# Same origin: the server's own pages -----------------------------------------------------------


def test_register_log_in_manage_tokens_and_log_out_everywhere(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    group, _, api = same_site
    address = email("pages")
    context, page = new_page(browser)
    page.goto(f"{api}/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    screenshot(page, "page-login")

    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    password_error = page.locator("#password-error")
    expect(password_error).to_contain_text("8")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "page-register-error")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Name (optional)", exact=True).fill("Page Tester")
    page.get_by_role("button", name="Create account").click()

    expect(page).to_have_url(f"{api}/account")
    expect(page.locator("#email")).to_have_text(address)
    expect(page.get_by_label("Name", exact=True)).to_have_value("Page Tester")
    page.get_by_label("Name", exact=True).fill("Page Tester II")
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator("#notice")).to_have_text("Profile saved.")

    page.get_by_label("Name", exact=True).press("Tab")
    page.get_by_label("Token name").fill("ci script")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token-value")
    expect(secret).to_have_text(re.compile(r"^ag_\w+$"))
    expect(page.locator("#tokens")).to_contain_text("ci script")
    screenshot(page, "page-account")
    page.get_by_role("button", name="Revoke token ci script").click()
    expect(page.locator("#tokens")).not_to_contain_text("ci script")

    sessions = page.locator("#sessions tr")
    expect(sessions).to_have_count(1)
    expect(sessions.first).to_contain_text("(this device)")

    group.cli("users", "set-roles", address, "user", "admin")
    page.reload()
    page.get_by_role("link", name="Users").click()
    expect(page).to_have_url(f"{api}/admin/users")
    expect(page.locator("#users")).to_contain_text(address)
    screenshot(page, "page-admin-users")
    page.get_by_role("link", name="Your account").click()

    page.get_by_role("button", name="Log out everywhere").click()
    expect(page).to_have_url(f"{api}/")
    page.goto(f"{api}/account")
    expect(page).to_have_url(f"{api}/?next=%2Faccount")
    context.close()


def test_avatar_upload_on_the_account_page(
    browser: Browser, same_site: tuple[ServerGroup, Server, str], tmp_path: Path
) -> None:
    _, server, api = same_site
    address = email("avatar")
    register(server, address)
    picture, fake, huge = tmp_path / "me.png", tmp_path / "fake.png", tmp_path / "huge.png"
    Image.new("RGB", (800, 600), (200, 40, 90)).save(picture)
    fake.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    huge.write_bytes(b"\x89PNG" + b"\0" * (6 * 1024 * 1024))
    context, page = new_page(browser)
    page.goto(f"{api}/?next=/account")
    log_in_on_frontend(page, address)
    expect(page).to_have_url(f"{api}/account")

    page.get_by_label("Avatar").set_input_files(str(picture))
    page.get_by_role("button", name="Upload avatar").click()

    avatar = page.locator("#avatar")
    expect(avatar).to_be_visible()
    expect(avatar).to_have_attribute("src", re.compile(rf"^{re.escape(api)}/avatars/"))
    assert page.evaluate("document.querySelector('#avatar').naturalWidth") == 512
    screenshot(page, "page-account-avatar")

    page.get_by_label("Avatar").set_input_files(str(huge))
    page.get_by_role("button", name="Upload avatar").click()
    expect(page.locator("#avatar-error")).to_contain_text("larger than 5 MB")
    expect(page.get_by_label("Avatar")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "page-account-avatar-too-large")

    page.get_by_label("Avatar").set_input_files(str(fake))
    page.get_by_role("button", name="Upload avatar").click()
    expect(page.locator("#avatar-error")).to_contain_text("JPEG, PNG or GIF")
    context.close()


@pytest.mark.parametrize(
    "next_value", ["/%09/evil.test/x", "//evil.test", "/%0a/evil.test", "https://evil.test/"]
)
def test_the_login_page_never_sends_a_user_to_another_origin(
    browser: Browser, same_site: tuple[ServerGroup, Server, str], next_value: str
) -> None:
    """Browsers drop tabs and newlines from URLs: ``/<TAB>/evil.test`` is ``//evil.test``."""
    _, server, api = same_site
    address = email("next")
    register(server, address)
    context, page = new_page(browser)
    page.goto(f"{api}/?next={next_value}")

    log_in_on_frontend(page, address)

    expect(page).to_have_url(f"{api}/account")
    context.close()


def test_pages_have_a_strict_content_security_policy(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    _, server, _ = same_site
    for path in ("/", "/register", "/account", "/admin/users"):
        response = server.get(path)
        assert response.status_code == 200
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp
        assert "<script>" not in response.text  # no inline script, only modules by URL


# Another origin: the example frontend with authgate.js ------------------------------------------


def test_frontend_on_the_same_site_logs_in_and_calls_the_api(
    browser: Browser,
    same_site: tuple[ServerGroup, Server, str],
    frontend: str,
    frontend_port: int,
) -> None:
    _, server, api = same_site
    address = email("samesite")
    register(server, address)

    session = frontend_session(browser, f"http://localhost:{frontend_port}", api, address)

    assert session["sameSite"] == "Lax"


def test_frontend_on_another_site_works_with_third_party_cookies_blocked(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, frontend: str, frontend_port: int
) -> None:
    """127.0.0.1 and localhost are different sites: the session cookie is third-party for the
    frontend's page, and only a Partitioned cookie survives Chromium's blocking."""
    with server_group("sqlite", tmp_path_factory) as group:
        server, api = start_api(group, f"http://127.0.0.1:{frontend_port}")
        address = email("crosssite")
        register(server, address)

        session = frontend_session(browser, f"http://127.0.0.1:{frontend_port}", api, address)

        assert session["sameSite"] == "None" and session["secure"] is True
        assert session.get("partitionKey"), session  # CHIPS: kept per top-level site


def test_an_origin_that_is_not_allowed_is_explained(
    browser: Browser, same_site: tuple[ServerGroup, Server, str], frontend_port: int
) -> None:
    _, _, api = same_site
    other_port = free_port()
    with static_site(EXAMPLE_FRONTEND, other_port):
        context, page = new_page(browser)
        page.goto(f"http://localhost:{other_port}/?api={api}")

        problem = page.locator("#problem")
        expect(problem).to_contain_text(f"http://localhost:{other_port}")
        expect(problem).to_contain_text("is not allowed")
        expect(problem).to_contain_text("AUTHGATE_ORIGINS")
        expect(problem).not_to_contain_text("Failed to fetch")
        screenshot(page, "frontend-origin-not-allowed")
        context.close()


def test_https_frontend_on_another_site_works_with_third_party_cookies_blocked(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """https://app.test (the frontend) and https://api.test (authgate) are different sites; the
    names resolve to 127.0.0.1 inside Chromium, the certificates come from `authgate tls dev`."""
    tls = issue_dev_certificate(
        tmp_path / "tls", ["api.test", "app.test", "127.0.0.1"], now=datetime.now(UTC)
    )
    api_port, app_port = free_port(), free_port()
    app_origin, api = f"https://app.test:{app_port}", f"https://api.test:{api_port}"
    with (
        server_group("sqlite", tmp_path_factory) as group,
        static_site(EXAMPLE_FRONTEND, app_port, tls=(tls.cert_path, tls.key_path)),
    ):
        server = group.start_tls(
            tls.cert_path,
            tls.key_path,
            port=api_port,
            host="api.test",
            workers=2,
            origins=app_origin,
        )
        address = email("https")
        response = requests.post(
            f"https://127.0.0.1:{api_port}/api/auth/register",
            json={"email": address, "password": PASSWORD},
            verify=str(tls.ca_path),
            timeout=10,
        )
        assert response.status_code == 201, response.text

        session = frontend_session(browser, app_origin, api, address)

        assert session["sameSite"] == "None" and session.get("partitionKey"), session
        assert server.process is not None and server.process.poll() is None
