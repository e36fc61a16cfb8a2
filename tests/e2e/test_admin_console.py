"""The admin console in Chromium against the real server (gunicorn, two workers, PostgreSQL):
a user's page — roles chosen among the deployment's, sessions shown as devices and revoked for
their holder, API tokens, linked accounts, activity — and the audit page; each checked with
axe-core at a desktop and a phone size, with nothing scrolling sideways."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.e2e.browser import new_page, screenshot
from tests.e2e.helpers import Server, ServerGroup, server_group, time_until_status
from tests.e2e.test_pages import _WIDTHS, AXE, axe_violations
from tests.helpers import PASSWORD, bearer, free_port

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)
# Two workers without Redis: the other one learns of a revocation within its poll (0.25 s).
REVOCATION_BOUND_SECONDS = 3.0

pytestmark = pytest.mark.usefixtures("page_problems")


@dataclass(frozen=True)
class Site:
    group: ServerGroup
    server: Server
    api: str
    admin: str
    admin_id: str


def email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


def register(server: Server, address: str) -> str:
    response = server.post("/api/auth/register", json={"email": address, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return str(response.json()["user"]["id"])


def api_login(server: Server, address: str, device: str) -> str:
    response = server.post(
        "/api/auth/login",
        json={"login": address, "password": PASSWORD},
        headers={"User-Agent": device},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with server_group("postgresql", tmp_path_factory) as group:
        port = free_port()
        (server,) = group.start(port=port, roles="support billing")
        admin = email("admin")
        admin_id = register(server, admin)
        group.cli("users", "set-roles", admin, "user", "admin")
        yield Site(group, server, f"http://localhost:{port}", admin, admin_id)


def log_in(page: Page, site: Site, next_path: str) -> None:
    page.goto(f"{site.api}/?next={next_path}")
    page.get_by_label("Email or username").fill(site.admin)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site.api}{next_path}")


def a_user_with_two_devices(site: Site) -> tuple[str, str, str, str]:
    """A user logged in on a Chrome laptop and a Firefox PC, with an API token."""
    address = email("target")
    user_id = register(site.server, address)
    laptop = api_login(site.server, address, CHROME)
    pc = api_login(site.server, address, FIREFOX)
    created = site.server.post(
        "/api/tokens", json={"name": "nightly export", "scopes": ["read"]}, headers=bearer(pc)
    )
    assert created.status_code == 201, created.text
    return address, user_id, laptop, pc


def eventually(check: Callable[[], bool], bound: float = REVOCATION_BOUND_SECONDS) -> bool:
    """Whether ``check`` holds 5 times in a row (either worker) within ``bound`` seconds."""
    deadline, streak = time.monotonic() + bound, 0
    while time.monotonic() < deadline:
        streak = streak + 1 if check() else 0
        if streak >= 5:
            return True
        time.sleep(0.05)
    return False


def me(site: Site, token: str) -> requests.Response:
    return site.server.get("/api/auth/me", headers=bearer(token))


def test_an_admin_chooses_roles_and_logs_a_device_out_for_its_holder(
    browser: Browser, site: Site
) -> None:
    address, user_id, laptop, pc = a_user_with_two_devices(site)
    context, page = new_page(browser)
    log_in(page, site, "/admin/users")
    page.get_by_label("Search by email, username or name").fill(address)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=address, exact=True).click()
    expect(page).to_have_url(f"{site.api}/admin/users/{user_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(address)

    # Devices in words, not user-agent strings.
    sessions = page.locator("#sessions")
    expect(sessions).to_contain_text("Chrome 156 on Linux")
    expect(sessions).to_contain_text("Firefox 133 on Windows 10")
    expect(sessions).not_to_contain_text("Mozilla/5.0")
    expect(page.locator("#tokens")).to_contain_text("nightly export")
    expect(page.locator("#identities")).to_have_text("No linked accounts.")
    expect(page.locator("#mfa-methods")).to_have_text(
        "None: a password (or a provider) alone logs this user in."
    )
    expect(page.get_by_role("button", name="Remove second factors")).to_be_hidden()

    # Roles: a choice among the deployment's, not free text.
    roles = page.get_by_role("group", name="Roles")
    for role, checked in (("user", True), ("admin", False), ("support", False), ("billing", False)):
        box = roles.get_by_role("checkbox", name=role, exact=True)
        expect(box).to_be_checked(checked=checked)
    roles.get_by_role("checkbox", name="support", exact=True).check()
    page.get_by_role("button", name="Save roles").click()
    expect(page.locator("#notice")).to_have_text(f"Saved the roles of {address}: user, support.")
    # Every worker knows within its revocation poll.
    assert eventually(lambda: me(site, pc).json()["user"]["roles"] == ["user", "support"])

    # Log the laptop out: gone from the list, and for the laptop's holder.
    assert me(site, laptop).status_code == 200
    page.get_by_role("button", name="Log out Chrome 156 on Linux", exact=True).click()
    expect(page.locator("#notice")).to_have_text("Logged out Chrome 156 on Linux.")
    since = time.perf_counter()
    expect(sessions).not_to_contain_text("Chrome 156 on Linux")
    expect(sessions).to_contain_text("Firefox 133 on Windows 10")
    elapsed = time_until_status(
        lambda: me(site, laptop), since=since, bound=REVOCATION_BOUND_SECONDS
    )
    assert elapsed <= REVOCATION_BOUND_SECONDS, elapsed
    assert me(site, laptop).json()["error"]["code"] == "token_revoked"
    assert me(site, pc).status_code == 200

    # Revoke the API token.
    page.get_by_role("button", name="Revoke token nightly export").click()
    expect(page.locator("#tokens")).to_have_text("No API tokens.")
    screenshot(page, "admin-user-page")
    context.close()


def test_the_last_admin_cannot_drop_their_own_admin_role(browser: Browser, site: Site) -> None:
    context, page = new_page(browser)
    log_in(page, site, f"/admin/users/{site.admin_id}")
    roles = page.get_by_role("group", name="Roles")
    expect(roles.get_by_role("checkbox", name="admin", exact=True)).to_be_checked()
    roles.get_by_role("checkbox", name="admin", exact=True).uncheck()
    page.get_by_role("button", name="Save roles").click()
    expect(page.locator("#roles-form [role=alert]")).to_have_text(
        "This is the last active administrator: make someone else an administrator first."
    )
    page.get_by_role("button", name="Disable account").click()
    expect(page.locator("#page-error")).to_contain_text("last active administrator")
    response = site.server.get(f"/api/users/{site.admin_id}", headers=bearer(admin_token(site)))
    assert response.json()["user"]["roles"] == ["user", "admin"]
    assert response.json()["user"]["status"] == "active"
    context.close()


def test_everyone_logs_out_everywhere_from_the_user_page(browser: Browser, site: Site) -> None:
    _, user_id, laptop, pc = a_user_with_two_devices(site)
    context, page = new_page(browser)
    log_in(page, site, f"/admin/users/{user_id}")
    expect(page.locator("#sessions tr")).to_have_count(2)
    page.get_by_role("button", name="Log out everywhere").click()
    expect(page.locator("#sessions")).to_have_text("No active sessions.")
    since = time.perf_counter()
    elapsed = time_until_status(
        lambda: me(site, laptop), lambda: me(site, pc), since=since, bound=REVOCATION_BOUND_SECONDS
    )
    assert elapsed <= REVOCATION_BOUND_SECONDS, elapsed
    context.close()


def admin_token(site: Site) -> str:
    return api_login(site.server, site.admin, "tests/1")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_user_page_has_no_axe_violation_and_no_sideways_scroll(
    browser: Browser, site: Site, viewport: ViewportSize
) -> None:
    assert AXE.exists(), f"{AXE} is missing: run scripts/bootstrap (npm ci in tests/peers/axe)"
    _, user_id, _, _ = a_user_with_two_devices(site)
    context, page = new_page(browser, viewport=viewport)
    log_in(page, site, f"/admin/users/{user_id}")
    expect(page.locator("#sessions tr")).to_have_count(2)
    expect(page.locator("#tokens tr")).to_have_count(1)
    expect(page.locator("#events tr").first).to_be_attached()
    page.wait_for_load_state("networkidle")
    widths = page.evaluate(_WIDTHS)
    assert widths["scrollWidth"] <= widths["innerWidth"], widths
    assert axe_violations(page) == []
    label = "desktop" if viewport == DESKTOP else "phone"
    screenshot(page, f"admin-user-{label}")
    context.close()


def test_a_user_who_is_no_admin_sees_only_a_notice(browser: Browser, site: Site) -> None:
    address = email("plain")
    register(site.server, address)
    context, page = new_page(browser)
    page.goto(f"{site.api}/?next=/admin/users/{site.admin_id}")
    page.get_by_label("Email or username").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#notice")).to_have_text("Only administrators can manage users.")
    expect(page.locator("#details")).to_be_hidden()
    context.close()


# The audit page --------------------------------------------------------------------------------


def test_the_audit_page_filters_by_type_user_and_time_and_loads_more(
    browser: Browser, site: Site
) -> None:
    address = email("audited")
    user_id = register(site.server, address)
    for i in range(54):  # with the registration: 55 events of this user, 50 to a page
        api_login(site.server, address, f"script/{i}")
    refused = site.server.post("/api/auth/login", json={"login": address, "password": "wrong!"})
    assert refused.status_code == 401

    context, page = new_page(browser)
    log_in(page, site, f"/admin/audit?user_id={user_id}")
    events = page.locator("#events tr")
    expect(events).to_have_count(50)
    expect(page.get_by_label("User id")).to_have_value(user_id)
    expect(events.first).to_contain_text("login.failed")
    more = page.get_by_role("button", name="Load more")
    more.click()
    expect(events).to_have_count(56)
    expect(more).to_be_hidden()
    expect(events.last).to_contain_text("user.created")
    expect(page.locator("#count")).to_have_text("56 events shown.")

    page.get_by_label("Event type").fill("login.failed")
    page.get_by_role("button", name="Show events").click()
    expect(events).to_have_count(1)
    expect(events.first).to_contain_text("failure")
    assert "type=login.failed" in page.url and f"user_id={user_id}" in page.url

    # A time range that holds none of them.
    page.get_by_label("Until").fill("2001-01-01T00:00")
    page.get_by_role("button", name="Show events").click()
    expect(page.locator("#events td.empty")).to_have_text("No events match these filters.")
    expect(events).to_have_count(1)
    assert "until=2001-01-01T" in page.url
    page.get_by_role("button", name="Clear filters").click()
    expect(page.get_by_label("User id")).to_have_value("")
    expect(events).to_have_count(50)
    context.close()


def test_the_users_activity_links_to_the_audit_page(browser: Browser, site: Site) -> None:
    _, user_id, _, _ = a_user_with_two_devices(site)
    context, page = new_page(browser)
    log_in(page, site, f"/admin/users/{user_id}")
    expect(page.locator("#events")).to_contain_text("api_token.created")
    page.get_by_role("link", name="All of this user's events").click()
    expect(page).to_have_url(f"{site.api}/admin/audit?user_id={user_id}")
    expect(page.locator("#events tr")).to_have_count(4)  # created, two logins, a token
    context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_audit_page_has_no_axe_violation_and_no_sideways_scroll(
    browser: Browser, site: Site, viewport: ViewportSize
) -> None:
    a_user_with_two_devices(site)
    context, page = new_page(browser, viewport=viewport)
    log_in(page, site, "/admin/audit")
    expect(page.locator("#events tr").nth(3)).to_be_attached()
    page.wait_for_load_state("networkidle")
    widths = page.evaluate(_WIDTHS)
    assert widths["scrollWidth"] <= widths["innerWidth"], widths
    assert axe_violations(page) == []
    label = "desktop" if viewport == DESKTOP else "phone"
    screenshot(page, f"admin-audit-{label}")
    context.close()
