"""The web side in a real browser: authgate's own pages (same origin), and the example frontend on
another origin using ``authgate.js`` — same-site, cross-site with third-party cookies blocked,
and an origin that is not allowed. Each server is the real one under gunicorn."""

from __future__ import annotations

import http.server
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, Route, expect

from authgate.proxy.tls import issue_dev_certificate
from tests.e2e.browser import (
    EXAMPLE_FRONTEND,
    new_page,
    screenshot,
    static_site,
)
from tests.e2e.helpers import Server, ServerGroup, error_code, server_group, time_until_status
from tests.helpers import PASSWORD, bearer, free_port

# Not the default (5 MB): the account page must take its limit from the server.
AVATAR_MAX_BYTES = 2 * 1024 * 1024

# A change confirmed on a page reaches the server's other worker within its revocation poll
# (0.25 s without Redis); counted from the confirmation, with room for a loaded 2-core machine.
# (The tight bounds are tests/e2e/test_revocation_two_processes.py's.)
PAGE_REVOCATION_BOUND_SECONDS = 3.0


# Every test here fails on an uncaught error or a CSP violation on any of its pages.
pytestmark = pytest.mark.usefixtures("page_problems")


@pytest.fixture(scope="module")
def frontend_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def frontend(frontend_port: int) -> Iterator[str]:
    with static_site(EXAMPLE_FRONTEND, frontend_port) as url:
        yield url


def start_api(group: ServerGroup, origins: str, **settings: str) -> tuple[Server, str]:
    port = free_port()
    (server,) = group.start(
        port=port, origins=origins, public_url=f"http://localhost:{port}", **settings
    )
    return server, f"http://localhost:{port}"


@pytest.fixture(scope="module")
def same_site(
    tmp_path_factory: pytest.TempPathFactory, frontend_port: int
) -> Iterator[tuple[ServerGroup, Server, str]]:
    """The API on http://localhost:<port>; the frontend on http://localhost:<frontend port>."""
    with server_group("sqlite", tmp_path_factory) as group:
        server, api = start_api(
            group, f"http://localhost:{frontend_port}", avatar_max_bytes=str(AVATAR_MAX_BYTES)
        )
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


def api_login(server: Server, address: str, device: str, password: str = PASSWORD) -> str:
    """Log in as a script on another device would; its access token."""
    response = server.post(
        "/api/auth/login",
        json={"login": address, "password": password},
        headers={"User-Agent": device},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def log_in_on_account_page(page: Page, api: str, address: str) -> None:
    page.goto(f"{api}/?next=/account")
    log_in_on_frontend(page, address)
    expect(page).to_have_url(f"{api}/account")
    expect(page.locator("#email")).to_have_text(address)


def reload_until_visible(page: Page, link: Locator, bound_seconds: float = 10.0) -> None:
    """Reload the account page until ``link`` shows: a change made by the CLI (another
    process) reaches each worker within its revocation poll."""
    deadline = time.monotonic() + bound_seconds
    while True:
        page.reload()
        expect(page.locator("#whoami")).not_to_be_empty()
        if link.is_visible() or time.monotonic() > deadline:
            break
    expect(link).to_be_visible()


def frontend_session(
    browser: Browser, frontend_url: str, api: str, address: str, label: str
) -> dict[str, Any]:
    """Open the example frontend, log in as ``address``, call the API; the session cookie as
    the browser keeps it (a screenshot ``frontend-<label>`` is taken of the page)."""
    context, page = new_page(browser, https_errors=frontend_url.startswith("https:"))
    page.goto(f"{frontend_url}/?api={api}")
    expect(page.locator("#status")).to_have_text("Not signed in.")

    log_in_on_frontend(page, address)

    expect(page.locator("#who")).to_have_text(address)
    page.get_by_role("button", name="Call a protected endpoint").click()
    expect(page.locator("#result")).to_contain_text("200")
    expect(page.locator("#result")).to_contain_text(address)
    screenshot(page, f"frontend-{label}")
    session = next(c for c in context.cookies(api) if c["name"] == "authgate_session")
    context.close()
    return dict(session)


# Same origin: the server's own pages -----------------------------------------------------------


def test_register_log_in_manage_tokens_and_log_out_everywhere(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    group, server, api = same_site
    address = email("pages")
    context, page = new_page(browser)
    page.goto(f"{api}/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    screenshot(page, "page-login")

    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    screenshot(page, "page-register")
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
    other_device = api_login(server, address, "other-device/1")
    lost_device = api_login(server, address, "lost-device/1")
    page.reload()
    expect(sessions).to_have_count(3)
    page.get_by_role("button", name="Log out lost-device/1", exact=True).click()
    expect(page.locator("#notice")).to_have_text("That device was logged out.")
    expect(sessions).to_have_count(2)
    expect(page.locator("#sessions")).not_to_contain_text("lost-device/1")
    # The other worker learns of it within its revocation poll (0.25 s without Redis).
    since = time.perf_counter()
    elapsed = time_until_status(
        lambda: server.get("/api/auth/me", headers=bearer(lost_device)),
        since=since,
        bound=PAGE_REVOCATION_BOUND_SECONDS,
    )
    assert elapsed <= PAGE_REVOCATION_BOUND_SECONDS, elapsed
    assert server.get("/api/auth/me", headers=bearer(other_device)).status_code == 200

    group.cli("users", "set-roles", address, "user", "admin")
    reload_until_visible(page, page.get_by_role("link", name="Users"))
    page.get_by_role("link", name="Users").click()
    expect(page).to_have_url(f"{api}/admin/users")
    expect(page.locator("#users")).to_contain_text(address)
    screenshot(page, "page-admin-users")
    page.get_by_role("link", name="Your account").click()

    page.get_by_role("button", name="Log out everywhere").click()
    expect(page).to_have_url(f"{api}/")
    page.goto(f"{api}/account")
    expect(page).to_have_url(f"{api}/?next=%2Faccount")
    since = time.perf_counter()
    elapsed = time_until_status(
        lambda: server.get("/api/auth/me", headers=bearer(other_device)),
        since=since,
        bound=PAGE_REVOCATION_BOUND_SECONDS,
    )
    assert elapsed <= PAGE_REVOCATION_BOUND_SECONDS, elapsed
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

    # The page knows the server's limit: a larger file is refused before it is sent.
    expect(page.locator("#avatar-hint")).to_have_text("(JPEG, PNG or GIF, at most 2 MB)")
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.method) if r.url.endswith("/avatar") else None)
    page.get_by_label("Avatar").set_input_files(str(huge))
    page.get_by_role("button", name="Upload avatar").click()
    expect(page.locator("#avatar-error")).to_have_text("The image must be at most 2 MB.")
    expect(page.get_by_label("Avatar")).to_have_attribute("aria-invalid", "true")
    assert "POST" not in uploads
    screenshot(page, "page-account-avatar-too-large")
    context.close()

    # A page that believes in a larger limit (its options say 64 MB): the server's own 413 is
    # shown.
    context, page = new_page(browser)

    def larger_limit(route: Route) -> None:
        if route.request.method != "GET":
            route.fallback()
            return
        body = {"max_bytes": 64 * 1024 * 1024, "types": [], "limit_message": "-"}
        route.fulfill(json=body)

    page.route(f"{api}/api/auth/me/avatar", larger_limit)
    page.goto(f"{api}/?next=/account")
    log_in_on_frontend(page, address)
    expect(page.locator("#avatar-hint")).to_have_text("(JPEG, PNG or GIF, at most 64 MB)")
    over_server_limit = tmp_path / "big.png"
    over_server_limit.write_bytes(b"\x89PNG" + b"\0" * (AVATAR_MAX_BYTES + 4096))
    with page.expect_response(
        lambda r: r.url == f"{api}/api/auth/me/avatar" and r.request.method == "POST"
    ) as answer:
        page.get_by_label("Avatar").set_input_files(str(over_server_limit))
        page.get_by_role("button", name="Upload avatar").click()
    assert answer.value.status == 413
    expect(page.locator("#avatar-error")).to_have_text("The image must be at most 2 MB.")
    expect(page.get_by_label("Avatar")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "page-account-avatar-refused-by-server")

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
    """The header, and no inline script of any type; that the pages break no rule of it in a
    browser is what the ``page_problems`` fixture checks in every test."""
    _, server, _ = same_site
    for path in ("/", "/register", "/account", "/admin/users"):
        response = server.get(path)
        assert response.status_code == 200
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp
        scripts = re.findall(r"<script\b[^>]*>", response.text, flags=re.IGNORECASE)
        assert scripts and all(re.search(r"\ssrc=", tag) for tag in scripts), scripts
        assert not re.search(r"\son[a-z]+\s*=", response.text)  # no inline event handlers


def test_pages_report_csp_violations_to_the_tests(
    browser: Browser, same_site: tuple[ServerGroup, Server, str], page_problems: list[str]
) -> None:
    """The watch itself can fail: an inline script added to a real page is refused and
    reported."""
    _, _, api = same_site
    context, page = new_page(browser)
    page.goto(f"{api}/register")
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()

    with page.expect_console_message(lambda m: m.text.startswith("CSP violation")):
        page.evaluate("""() => {
          const script = document.createElement('script');
          script.type = 'module';
          script.textContent = 'window.inlineRan = true';
          document.body.append(script);
        }""")

    assert page.evaluate("window.inlineRan === undefined")
    seen = [p for p in page_problems if "CSP violation: script-src" in p]
    assert seen, page_problems
    page_problems.clear()  # expected here
    context.close()


def test_unticking_every_scope_shows_the_message_on_the_scopes_group(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    """The scopes are a group of checkboxes (a RadioNodeList, not one input): the message goes
    under the group, which it describes, and focus moves to the group's first box."""
    _, server, api = same_site
    address = email("scopes")
    register(server, address)
    context, page = new_page(browser)
    log_in_on_account_page(page, api, address)
    boxes = page.locator("#token-scopes input[type=checkbox]")
    expect(boxes.first).to_be_visible()

    page.get_by_label("Token name").fill("no scopes")
    for box in boxes.all():
        box.uncheck()
    page.get_by_role("button", name="Create token").click()

    expect(page.locator("#scopes-error")).to_have_text("Choose at least one scope.")
    expect(boxes.first).to_be_focused()
    expect(boxes.first).to_have_attribute("aria-invalid", "true")
    describedby = page.locator("#token-scopes").get_attribute("aria-describedby") or ""
    assert "scopes-error" in describedby.split()
    assert [box.get_attribute("aria-describedby") for box in boxes.all()] == [None] * boxes.count()
    expect(page.locator("#tokens")).not_to_contain_text("no scopes")
    screenshot(page, "page-account-token-without-scopes")
    context.close()


def test_with_one_scope_configured_the_message_still_describes_the_scopes_group(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    """One checkbox is not a RadioNodeList: the message still goes to the group's fieldset,
    not to the box. (The scope list is narrowed to one in the browser; the server's 422 is
    real.)"""
    _, server, api = same_site
    address = email("onescope")
    register(server, address)
    context, page = new_page(browser)

    def one_scope(route: Route) -> None:
        options = route.fetch().json()
        route.fulfill(json={**options, "scopes": ["read"]})

    page.route(f"{api}/api/tokens/scopes", one_scope)
    log_in_on_account_page(page, api, address)
    box = page.locator("#token-scopes input[type=checkbox]")
    expect(box).to_have_count(1)

    page.get_by_label("Token name").fill("no scopes")
    box.uncheck()
    page.get_by_role("button", name="Create token").click()

    expect(page.locator("#scopes-error")).to_have_text("Choose at least one scope.")
    expect(box).to_be_focused()
    expect(box).to_have_attribute("aria-invalid", "true")
    assert box.get_attribute("aria-describedby") is None
    describedby = page.locator("#token-scopes").get_attribute("aria-describedby") or ""
    assert describedby.split() == ["scopes-error"]
    context.close()


NO_CLIPBOARD = "Object.defineProperty(Navigator.prototype, 'clipboard', { get: () => undefined });"


def test_account_buttons_are_busy_while_working_and_show_what_failed(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    """A double click on Revoke sends one DELETE; a session logged out elsewhere meanwhile
    says so in the page's alert; without the Clipboard API (plain http on a LAN name) Copy
    selects the token and says how to copy it."""
    _, server, api = same_site
    address = email("busy")
    register(server, address)
    context, page = new_page(browser, init_script=NO_CLIPBOARD)
    deletes: list[str] = []
    page.on("request", lambda r: deletes.append(r.url) if r.method == "DELETE" else None)
    log_in_on_account_page(page, api, address)

    page.get_by_label("Token name").fill("twice")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token-value")
    expect(secret).to_have_text(re.compile(r"^ag_\w+$"))
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator("#notice")).to_have_text(
        "The token is selected: press Ctrl+C (⌘C on a Mac) to copy it."
    )
    assert page.evaluate("getSelection().toString()") == secret.text_content()

    page.get_by_role("button", name="Revoke token twice").dblclick()
    expect(page.locator("#notice")).to_have_text('Token "twice" revoked.')
    expect(page.locator("#tokens")).not_to_contain_text("twice")
    assert len([url for url in deletes if "/api/tokens/" in url]) == 1, deletes

    elsewhere = api_login(server, address, "elsewhere/1")
    page.reload()
    expect(page.locator("#sessions tr")).to_have_count(2)
    assert server.post("/api/auth/logout", headers=bearer(elsewhere)).status_code == 204
    page.get_by_role("button", name="Log out elsewhere/1", exact=True).click()
    alert = page.locator("#page-error")
    expect(alert).to_have_text("No such session.")
    expect(alert).to_have_attribute("role", "alert")
    expect(page.get_by_role("button", name="Log out elsewhere/1", exact=True)).to_be_enabled()
    screenshot(page, "page-account-action-failed")
    context.close()


def test_the_account_page_says_so_when_the_server_cannot_tell_who_is_logged_in(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    _, _, api = same_site
    context, page = new_page(browser)
    failure = {"error": {"code": "internal_error", "message": "Something went wrong (id x1)."}}
    page.route(f"{api}/api/auth/me", lambda route: route.fulfill(status=500, json=failure))

    page.goto(f"{api}/account")

    expect(page.locator("#page-error")).to_have_text("Something went wrong (id x1).")
    expect(page).to_have_url(f"{api}/account")
    context.close()


def test_changing_the_password_retires_the_old_one(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    _, server, api = same_site
    address, new_password = email("password"), "a different correct horse"
    register(server, address)
    context, page = new_page(browser)
    log_in_on_account_page(page, api, address)

    page.get_by_label("Current password").fill("wrong password entirely")
    page.get_by_label("New password").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#current_password-error")).to_have_text(
        "The current password is incorrect."
    )
    expect(page.get_by_label("Current password")).to_be_focused()
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill(new_password)
    page.get_by_role("button", name="Change password").click()

    expect(page.locator("#notice")).to_have_text(
        "Password changed. Your other sessions were logged out."
    )
    old = server.post("/api/auth/login", json={"login": address, "password": PASSWORD})
    assert old.status_code == 401 and error_code(old) == "invalid_credentials"
    api_login(server, address, "after-change/1", password=new_password)
    context.close()


def test_the_admin_page_searches_edits_roles_and_disables_a_user(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    group, server, api = same_site
    admin, target = email("admin"), email("target")
    register(server, admin)
    register(server, target)
    group.cli("users", "set-roles", admin, "user", "admin")
    context, page = new_page(browser)
    page.goto(f"{api}/?next=/admin/users")
    log_in_on_frontend(page, admin)
    expect(page).to_have_url(f"{api}/admin/users")
    expect(page.locator("#paging")).to_be_visible()

    page.get_by_label("Search by email, username or name").fill(target)
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#users tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(target)
    expect(page.locator("#page-label")).to_have_text("Page 1 of 1 (1 users)")

    # Roles are chosen on the user's page, among the deployment's.
    page.get_by_role("link", name=f"Manage {target}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(target)
    page.get_by_role("group", name="Roles").get_by_role("checkbox", name="admin").check()
    page.get_by_role("button", name="Save roles").click()
    expect(page.locator("#notice")).to_have_text(f"Saved the roles of {target}: user, admin.")
    token = api_login(server, target, "target/1")
    assert server.get("/api/auth/me", headers=bearer(token)).json()["user"]["roles"] == [
        "user",
        "admin",
    ]

    page.get_by_role("link", name="Users").click()
    page.get_by_label("Search by email, username or name").fill(target)
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("user, admin")
    page.get_by_role("button", name=f"Disable {target}").click()
    expect(page.get_by_role("button", name=f"Enable {target}")).to_be_visible()
    expect(rows.first).to_contain_text("disabled")
    refused = server.post("/api/auth/login", json={"login": target, "password": PASSWORD})
    assert refused.status_code == 401 and error_code(refused) == "invalid_credentials"
    since = time.perf_counter()
    elapsed = time_until_status(
        lambda: server.get("/api/auth/me", headers=bearer(token)),
        since=since,
        bound=PAGE_REVOCATION_BOUND_SECONDS,
    )
    assert elapsed <= PAGE_REVOCATION_BOUND_SECONDS, elapsed
    screenshot(page, "page-admin-users-disabled")
    context.close()


def test_paging_keeps_next_disabled_on_the_last_page_and_previous_on_the_first(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    """The busy paging button gets the state the page gave it, not simply re-enabled. (The
    list is 60 made-up users over two pages; the admin, the login and /me are real.)"""
    group, server, api = same_site
    admin = email("pager")
    register(server, admin)
    group.cli("users", "set-roles", admin, "user", "admin")
    context, page = new_page(browser)
    asked: list[str] = []

    def users(route: Route) -> None:
        number = int(parse_qs(urlsplit(route.request.url).query)["page"][0])
        asked.append(str(number))
        listed = [
            {"id": f"u{i}", "email": f"u{i}@example.com", "name": None, "roles": [], "status": "ok"}
            for i in range((number - 1) * 50, min(number * 50, 60))
        ]
        route.fulfill(json={"users": listed, "total": 60, "page": number, "per_page": 50})

    page.route(re.compile(rf"^{re.escape(api)}/api/users\?"), users)
    page.goto(f"{api}/?next=/admin/users")
    log_in_on_frontend(page, admin)
    label, previous, following = (
        page.locator("#page-label"),
        page.get_by_role("button", name="Previous page"),
        page.get_by_role("button", name="Next page"),
    )
    expect(label).to_have_text("Page 1 of 2 (60 users)")
    expect(previous).to_be_disabled()
    expect(following).to_be_enabled()

    following.click()
    expect(label).to_have_text("Page 2 of 2 (60 users)")
    expect(page.locator("#users tr")).to_have_count(10)
    expect(following).not_to_have_attribute("aria-busy", "true")
    expect(following).to_be_disabled()
    expect(previous).to_be_enabled()

    previous.click()
    expect(label).to_have_text("Page 1 of 2 (60 users)")
    expect(previous).not_to_have_attribute("aria-busy", "true")
    expect(previous).to_be_disabled()
    expect(following).to_be_enabled()
    assert asked == ["1", "2", "1"]
    context.close()


def test_the_admin_page_shows_no_paging_to_a_user_who_is_not_an_admin(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    _, server, api = same_site
    address = email("notadmin")
    register(server, address)
    context, page = new_page(browser)
    page.goto(f"{api}/?next=/admin/users")
    log_in_on_frontend(page, address)

    expect(page.locator("#notice")).to_have_text("Only administrators can manage users.")
    expect(page.locator("#paging")).to_be_hidden()
    expect(page.locator("#search-form")).to_be_hidden()
    context.close()


def test_the_login_page_explains_an_error_even_when_already_logged_in(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    _, server, api = same_site
    address = email("already")
    register(server, address)
    context, page = new_page(browser)
    log_in_on_account_page(page, api, address)

    page.goto(f"{api}/?error=oauth_denied")
    page.wait_for_load_state("networkidle")

    expect(page.locator("#oauth-error")).to_have_text("The sign-in was cancelled at the provider.")
    expect(page).to_have_url(f"{api}/?error=oauth_denied")
    context.close()


def test_a_registration_whose_login_fails_sends_the_user_to_log_in(
    browser: Browser, same_site: tuple[ServerGroup, Server, str]
) -> None:
    _, server, api = same_site
    address = email("thenfail")
    context, page = new_page(browser)
    refusal = {"error": {"code": "rate_limited", "message": "Too many attempts; try later."}}
    page.route(f"{api}/api/auth/login", lambda route: route.fulfill(status=429, json=refusal))
    page.goto(f"{api}/register")

    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    done = page.locator("#registered")
    expect(done).to_be_visible()
    expect(done).to_be_focused()
    expect(done).to_contain_text("Your account was created, but logging you in failed")
    expect(done).to_contain_text("Too many attempts; try later.")
    expect(page.locator("#register-form")).to_be_hidden()
    expect(page.get_by_role("link", name="Log in with your new account")).to_have_attribute(
        "href", "/"
    )
    api_login(server, address, "check/1")  # the account does exist
    screenshot(page, "page-register-login-failed")
    context.close()


def test_this_chromium_rejects_an_unpartitioned_third_party_cookie(
    browser: Browser, frontend: str, frontend_port: int
) -> None:
    """Canary for the cross-site tests: they prove something only while this browser blocks
    third-party cookies. A fetch from http://127.0.0.1 to http://localhost (another site) sets
    two SameSite=None; Secure cookies: the Partitioned one is kept, the other one refused."""
    port = free_port()
    with cookie_setter(port, allow_origin=f"http://127.0.0.1:{frontend_port}"):
        context, page = new_page(browser)
        page.goto(f"http://127.0.0.1:{frontend_port}/README.md")
        status = page.evaluate(
            "url => fetch(url, { credentials: 'include' }).then((r) => r.status)",
            f"http://localhost:{port}/set",
        )
        assert status == 204
        names = {c["name"]: c for c in context.cookies(f"http://localhost:{port}")}
        assert "partitioned" in names and names["partitioned"].get("partitionKey"), names
        assert "unpartitioned" not in names, names
        context.close()


@contextmanager
def cookie_setter(port: int, *, allow_origin: str) -> Iterator[None]:
    """http://localhost:``port``/set answers a credentialed CORS fetch from ``allow_origin``
    with a partitioned and an unpartitioned third-party cookie."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(204)
            self.send_header("Access-Control-Allow-Origin", allow_origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Set-Cookie", "unpartitioned=1; Path=/; SameSite=None; Secure")
            self.send_header(
                "Set-Cookie", "partitioned=1; Path=/; SameSite=None; Secure; Partitioned"
            )
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


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

    session = frontend_session(
        browser, f"http://localhost:{frontend_port}", api, address, "same-site"
    )

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

        session = frontend_session(
            browser, f"http://127.0.0.1:{frontend_port}", api, address, "cross-site"
        )

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
        expect(problem).to_contain_text("The server at")  # the client's words, not the bare
        expect(problem).not_to_have_text(re.compile(r"^(TypeError: )?Failed to fetch\.?$"))
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

        session = frontend_session(browser, app_origin, api, address, "cross-site-https")

        assert session["sameSite"] == "None" and session.get("partitionKey"), session
        assert server.process is not None and server.process.poll() is None
