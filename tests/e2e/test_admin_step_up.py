"""The admin console's sensitive actions in Chromium against the real server (gunicorn,
PostgreSQL), with a 30-second step-up window: once it has passed, changing a user's roles and
removing their second factors open the "Confirm it is you" dialog (axe: no violation), and the
admin's password there lets the action through — the factors removed, the user's sessions
revoked."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import new_page, screenshot
from tests.e2e.helpers import NO_REDIS_BOUND_SECONDS, Server, server_group, time_until_status
from tests.e2e.test_pages import AXE, axe_violations
from tests.helpers import PASSWORD, bearer, free_port

REAUTH_SECONDS = 30  # the smallest window the settings allow

pytestmark = pytest.mark.usefixtures("page_problems")


@dataclass(frozen=True)
class Site:
    server: Server
    api: str
    admin: str


def email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


def register(server: Server, address: str) -> str:
    response = server.post("/api/auth/register", json={"email": address, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return str(response.json()["user"]["id"])


def api_login(server: Server, address: str) -> str:
    response = server.post("/api/auth/login", json={"login": address, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with server_group("postgresql", tmp_path_factory) as group:
        port = free_port()
        (server,) = group.start(port=port, reauth_seconds=str(REAUTH_SECONDS))
        admin = email("admin")
        register(server, admin)
        group.cli("users", "set-roles", admin, "user", "admin")
        yield Site(server, f"http://localhost:{port}", admin)


def a_user_with_an_authenticator_app(site: Site) -> tuple[str, str]:
    """A user with TOTP on (set up by the API, as a script); their id and an access token."""
    address = email("target")
    user_id = register(site.server, address)
    token = api_login(site.server, address)
    setup = site.server.post(
        "/api/auth/mfa/totp", json={"password": PASSWORD}, headers=bearer(token)
    )
    assert setup.status_code == 200, setup.text
    confirmed = site.server.post(
        "/api/auth/mfa/totp/confirm",
        json={"code": pyotp.TOTP(setup.json()["secret"]).now()},
        headers=bearer(token),
    )
    assert confirmed.status_code == 200, confirmed.text
    return user_id, token


def open_user_page(browser: Browser, site: Site, user_id: str) -> Page:
    _, page = new_page(browser)
    page.goto(f"{site.api}/?next=/admin/users/{user_id}")
    page.get_by_label("Email or username").fill(site.admin)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site.api}/admin/users/{user_id}")
    expect(page.locator("#mfa-methods")).to_have_text("On: authenticator app, recovery codes.")
    return page


def confirm_it_is_you(page: Page) -> None:
    dialog = page.get_by_role("dialog", name="Confirm it is you")
    expect(dialog).to_be_visible()
    expect(page.get_by_label("Password or code")).to_be_focused()
    page.wait_for_load_state("networkidle")
    assert axe_violations(page) == []
    page.get_by_label("Password or code").fill(PASSWORD)
    dialog.get_by_role("button", name="Confirm").click()
    expect(dialog).to_be_hidden()


def test_old_admin_sign_ins_are_asked_to_confirm_before_roles_change_or_factors_go(
    browser: Browser, site: Site
) -> None:
    assert AXE.exists(), f"{AXE} is missing: run scripts/bootstrap (npm ci in tests/peers/axe)"
    user_id, user_token = a_user_with_an_authenticator_app(site)
    # Two pages of the admin, both signed in now: each action below is refused once for an
    # old sign-in (one wait for both).
    roles_page = open_user_page(browser, site, user_id)
    factors_page = open_user_page(browser, site, user_id)
    time.sleep(REAUTH_SECONDS + 1)

    # Roles: refused for the old sign-in, the dialog, then saved.
    roles = roles_page.get_by_role("group", name="Roles")
    roles.get_by_role("checkbox", name="admin", exact=True).check()
    roles_page.get_by_role("button", name="Save roles").click()
    confirm_it_is_you(roles_page)
    expect(roles_page.locator("#notice")).to_contain_text("Saved the roles")
    expect(roles_page.locator("#notice")).to_contain_text("admin")
    user = site.server.get(
        f"/api/users/{user_id}", headers=bearer(api_login(site.server, site.admin))
    )
    assert "admin" in user.json()["user"]["roles"], user.text

    # Second factors: the button, refused for the old sign-in, the dialog, then removed.
    remove = factors_page.get_by_role("button", name="Remove second factors")
    expect(remove).to_be_visible()
    remove.click()
    confirm_it_is_you(factors_page)
    expect(factors_page.locator("#notice")).to_contain_text("Removed the second factors")
    removed = time.perf_counter()
    expect(factors_page.locator("#mfa-methods")).to_have_text(
        "None: a password (or a provider) alone logs this user in."
    )
    expect(remove).to_be_hidden()
    screenshot(factors_page, "admin-user-step-up")
    # The user's sessions ended with their factors (on the other worker too, which learns it
    # from the polled revocation log: no Redis here); their password alone logs in again.
    ended = time_until_status(
        lambda: site.server.get("/api/auth/me", headers=bearer(user_token)),
        since=removed,
        bound=NO_REDIS_BOUND_SECONDS,
    )
    assert ended <= NO_REDIS_BOUND_SECONDS
    address = factors_page.locator("#email").inner_text()
    assert api_login(site.server, address)
    factors_page.context.close()
    roles_page.context.close()


def test_cancelling_the_dialog_changes_nothing(browser: Browser, site: Site) -> None:
    user_id, _ = a_user_with_an_authenticator_app(site)
    page = open_user_page(browser, site, user_id)
    time.sleep(REAUTH_SECONDS + 1)

    page.get_by_role("button", name="Remove second factors").click()
    dialog = page.get_by_role("dialog", name="Confirm it is you")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()

    expect(dialog).to_be_hidden()
    expect(page.locator("#page-error")).to_contain_text("Not changed")
    expect(page.locator("#mfa-methods")).to_have_text("On: authenticator app, recovery codes.")
    page.context.close()
