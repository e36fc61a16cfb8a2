"""Two-step verification in Chromium against the real server under gunicorn: set up an
authenticator app on the account page (QR code + a code computed with pyotp), the recovery codes
shown once and downloadable, log out, log in again through the second step; a step-up prompt
when a sensitive action needs a recent sign-in. Every page state passes axe-core."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import new_page
from tests.e2e.helpers import Server, ServerGroup, server_group
from tests.e2e.test_pages import axe_violations
from tests.helpers import PASSWORD, folder_mails, free_port, token_in

pytestmark = pytest.mark.usefixtures("page_problems")


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerGroup]:
    with server_group("sqlite", tmp_path_factory) as started:
        yield started


@pytest.fixture(scope="module")
def server(group: ServerGroup) -> tuple[Server, str]:
    port = free_port()
    (started,) = group.start(port=port)
    return started, f"http://localhost:{port}"


def fresh_code(secret: str) -> str:
    """A code of a time step not used yet: the next step's, once it has begun."""
    totp = pyotp.TOTP(secret)
    step = int(time.time()) // 30
    while int(time.time()) // 30 == step:
        time.sleep(0.2)
    return totp.now()


def log_in(page: Page, base: str, address: str) -> None:
    page.goto(f"{base}/?next=/account")
    page.get_by_label("Email or username").fill(address)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_enroll_log_out_and_log_in_with_the_second_step(
    browser: Browser, server: tuple[Server, str]
) -> None:
    api, base = server
    address = f"mfa-{uuid.uuid4().hex[:8]}@example.com"
    created = api.post("/api/auth/register", json={"email": address, "password": PASSWORD})
    assert created.status_code == 201, created.text
    context, page = new_page(browser)
    log_in(page, base, address)
    expect(page).to_have_url(f"{base}/account")
    expect(page.locator("#mfa-state")).to_contain_text("Off")

    mfa = page.get_by_role("region", name="Two-step verification")
    mfa.get_by_label("Password, to set up an app").fill(PASSWORD)
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.locator("#totp-qr svg")).to_be_visible()
    assert axe_violations(page) == []
    secret = page.locator("#totp-secret").text_content()
    assert secret
    mfa.get_by_label("Code", exact=True).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator("#recovery-codes-title")).to_be_focused()
    codes = (page.locator("#recovery-codes-list").text_content() or "").split()
    assert len(codes) == 10
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as .txt").click()
    assert download.value.suggested_filename == "recovery-codes.txt"
    assert download.value.path().read_text(encoding="utf-8").split() == codes
    expect(page.locator("#mfa-state")).to_contain_text("10 recovery codes left")
    assert axe_violations(page) == []

    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page).not_to_have_url(f"{base}/account")
    log_in(page, base, address)
    expect(page.locator("#mfa-heading")).to_be_focused()
    assert axe_violations(page) == []
    # The password alone opened no session.
    assert page.evaluate("fetch('/api/auth/me').then((r) => r.status)") == 401
    page.get_by_role("textbox", name="Code", exact=True).fill(fresh_code(secret))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{base}/account")
    expect(page.locator("#mfa-state")).to_contain_text("An authenticator app is on")

    # Logged out and in again with a recovery code.
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page).not_to_have_url(f"{base}/account")
    log_in(page, base, address)
    page.get_by_role("textbox", name="Code", exact=True).fill(codes[0].upper())
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{base}/account")
    expect(page.locator("#mfa-state")).to_contain_text("9 recovery codes left")
    context.close()


def test_a_sensitive_action_asks_to_confirm_it_is_you(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A deployment with a short step-up window (30 s): after it, changing the password opens
    the prompt; the password there lets the change through."""
    with server_group("sqlite", tmp_path_factory) as group:
        (strict,) = group.start(reauth_seconds="30")
        base = strict.env["AUTHGATE_PUBLIC_URL"]
        address = f"stepup-{uuid.uuid4().hex[:8]}@example.com"
        created = strict.post("/api/auth/register", json={"email": address, "password": PASSWORD})
        assert created.status_code == 201, created.text
        context, page = new_page(browser)
        log_in(page, base, address)
        expect(page).to_have_url(f"{base}/account")
        time.sleep(31)
        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_label("New password").fill("a brand new passphrase for ada")
        page.get_by_role("button", name="Change password").click()
        expect(page.locator("#step-up")).to_be_visible()
        assert axe_violations(page) == []
        page.get_by_label("Password or code").fill(PASSWORD)
        page.get_by_role("button", name="Confirm").click()
        expect(page.locator("#notice")).to_contain_text("Password changed")
        context.close()


def wait_for_reset_token(folder: Path, to: str) -> str:
    """The token of the reset link mailed to ``to`` (no SMTP: the development mail folder)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for mail in folder_mails(folder).values():
            if to in mail["to"] and "/reset-password#token=" in mail["text"]:
                return token_in(mail["text"])
        time.sleep(0.2)
    raise AssertionError(f"no reset mail to {to}")


def test_a_reset_link_asks_for_the_second_factor(
    browser: Browser, server: tuple[Server, str], group: ServerGroup
) -> None:
    api, base = server
    address = f"reset-{uuid.uuid4().hex[:8]}@example.com"
    assert api.post("/api/auth/register", json={"email": address, "password": PASSWORD}).ok
    token = api.post("/api/auth/login", json={"login": address, "password": PASSWORD}).json()[
        "access_token"
    ]
    headers = {"Authorization": f"Bearer {token}"}
    setup = api.post("/api/auth/mfa/totp", json={"password": PASSWORD}, headers=headers).json()
    confirmed = api.post(
        "/api/auth/mfa/totp/confirm",
        json={"code": pyotp.TOTP(setup["secret"]).now()},
        headers=headers,
    )
    codes = confirmed.json()["recovery_codes"]
    assert api.post("/api/auth/password/forgot", json={"email": address}).status_code == 202
    link_token = wait_for_reset_token(group.instance_path / "mail", address)

    context, page = new_page(browser)
    page.goto(f"{base}/reset-password#token={link_token}")
    page.get_by_label("New password", exact=True).fill("a brand new passphrase for ada")
    page.get_by_label("New password, again").fill("a brand new passphrase for ada")
    page.get_by_role("button", name="Set the new password").click()
    code_box = page.get_by_label("Code from your authenticator app, or a recovery code")
    expect(code_box).to_be_visible()
    expect(page.locator("#code-error")).to_contain_text("recovery code")
    assert axe_violations(page) == []
    code_box.fill(codes[0])
    page.get_by_role("button", name="Set the new password").click()
    expect(page).to_have_url(f"{base}/?notice=password-reset")
    context.close()
