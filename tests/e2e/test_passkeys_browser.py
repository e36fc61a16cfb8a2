"""Passkeys in headless Chromium with the DevTools virtual authenticator (CTAP2, resident keys,
user verification), against the real server under gunicorn: a passkey added on the account
page, then a usernameless login from the login page's "Sign in with a passkey"; and the same
through authgate.js from a frontend on another origin (another localhost port) with
``credentials: 'include'``. The RP ID is ``localhost`` (the public URL's host): pages at
http://localhost:PORT are a secure context. Both pages pass axe-core with the passkey parts
shown."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.browser import new_page, screenshot, static_site
from tests.e2e.helpers import Server, server_group
from tests.e2e.test_pages import axe_violations
from tests.helpers import PASSWORD, free_port

pytestmark = pytest.mark.usefixtures("page_problems")


@dataclass(frozen=True)
class Site:
    server: Server
    api: str
    frontend: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    pages = tmp_path_factory.mktemp("frontend")
    (pages / "index.html").write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Frontend</title>"
        "</head><body><main><h1>Frontend</h1></main></body></html>",
        encoding="utf-8",
    )
    frontend_port = free_port()
    with (
        static_site(Path(pages), frontend_port),
        server_group("sqlite", tmp_path_factory) as group,
    ):
        port = free_port()
        frontend = f"http://localhost:{frontend_port}"
        (server,) = group.start(port=port, origins=frontend, app_name="Passkeys test")
        yield Site(server, f"http://localhost:{port}", frontend)


def unique_email() -> str:
    return f"passkey-{uuid.uuid4().hex[:8]}@example.com"


def register(site: Site, address: str) -> None:
    created = site.server.post("/api/auth/register", json={"email": address, "password": PASSWORD})
    assert created.status_code == 201, created.text


def virtual_authenticator(context: BrowserContext, page: Page) -> tuple[Any, str]:
    """A platform authenticator holding discoverable credentials, verifying its user."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, str(added["authenticatorId"])


def credentials(cdp: Any, authenticator_id: str) -> list[dict[str, Any]]:
    found = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    return list(found["credentials"])


def test_add_a_passkey_on_the_account_page_then_sign_in_with_it(
    browser: Browser, site: Site
) -> None:
    address = unique_email()
    register(site, address)
    context, page = new_page(browser)
    try:
        cdp, authenticator = virtual_authenticator(context, page)
        page.goto(f"{site.api}/?next=/account")
        page.get_by_label("Email or username").fill(address)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{site.api}/account")

        section = page.locator("#passkeys-section")
        expect(section).to_be_visible()
        expect(section.get_by_text("No passkeys yet.")).to_be_visible()
        page.get_by_label("Name of the new passkey").fill("Laptop")
        page.get_by_role("button", name="Add a passkey").click()
        expect(page.locator("#notice")).to_contain_text("Your passkey was added")
        expect(section.get_by_role("cell", name="Laptop", exact=True)).to_be_visible()
        [stored] = credentials(cdp, authenticator)
        assert stored["isResidentCredential"] is True
        assert stored["rpId"] == "localhost"
        assert axe_violations(page) == []
        screenshot(page, "passkeys-account")

        listed = page.evaluate(
            "async () => (await (await fetch('/api/auth/passkeys', {headers: "
            "{'X-Requested-With': 'fetch'}})).json()).passkeys"
        )
        assert [p["name"] for p in listed] == ["Laptop"]

        page.get_by_role("button", name="Log out").first.click()
        page.wait_for_url(lambda url: "/account" not in url)
        page.goto(f"{site.api}/?next=/account")
        assert page.evaluate("async () => (await fetch('/api/auth/me')).status") == 401
        button = page.get_by_role("button", name="Sign in with a passkey")
        expect(button).to_be_visible()
        assert axe_violations(page) == []
        button.click()
        expect(page).to_have_url(f"{site.api}/account")
        expect(page.locator("#whoami")).to_contain_text(address)
        [used] = credentials(cdp, authenticator)
        assert used["signCount"] >= 1
        last_used = page.evaluate(
            "async () => (await (await fetch('/api/auth/passkeys', {headers: "
            "{'X-Requested-With': 'fetch'}})).json()).passkeys[0].last_used_at"
        )
        assert last_used is not None
    finally:
        context.close()


def test_sign_in_with_an_unregistered_passkey_says_so(browser: Browser, site: Site) -> None:
    """A passkey the server does not know (deleted there, or made for another account
    database): the login page explains, no session."""
    context, page = new_page(browser)
    try:
        cdp, authenticator = virtual_authenticator(context, page)
        cdp.send(
            "WebAuthn.addCredential",
            {
                "authenticatorId": authenticator,
                "credential": {
                    "credentialId": base64.b64encode(bytes(range(16))).decode(),
                    "isResidentCredential": True,
                    "rpId": "localhost",
                    "userHandle": base64.b64encode(b"unknown").decode(),
                    "signCount": 0,
                    "privateKey": _new_pkcs8_p256(),
                },
            },
        )
        page.goto(f"{site.api}/")
        page.get_by_role("button", name="Sign in with a passkey").click()
        expect(page.locator("#page-error")).to_contain_text("not (or no longer) registered")
        assert page.evaluate("async () => (await fetch('/api/auth/me')).status") == 401
    finally:
        context.close()


def test_a_frontend_on_another_origin_uses_passkeys_through_authgate_js(
    browser: Browser, site: Site
) -> None:
    address = unique_email()
    register(site, address)
    context, page = new_page(browser)
    try:
        cdp, authenticator = virtual_authenticator(context, page)
        page.goto(f"{site.frontend}/index.html")
        result = page.evaluate(
            """async ([api, email, password]) => {
                const { createClient } = await import(`${api}/authgate.js`);
                const auth = createClient({ baseUrl: api });
                await auth.login(email, password);
                const passkey = await auth.registerPasskey('Frontend');
                const listed = (await auth.listPasskeys()).map((p) => p.name);
                await auth.logout();
                const before = await auth.me();
                const user = await auth.loginWithPasskey();
                const renamed = await auth.renamePasskey(passkey.id, 'Renamed');
                return { passkey: passkey.name, listed, before, user: user.email,
                         renamed: renamed.name, me: (await auth.me()).email };
            }""",
            [site.api, address, PASSWORD],
        )
        assert result == {
            "passkey": "Frontend",
            "listed": ["Frontend"],
            "before": None,
            "user": address,
            "renamed": "Renamed",
            "me": address,
        }
        [stored] = credentials(cdp, authenticator)
        assert stored["rpId"] == "localhost"
    finally:
        context.close()


def _new_pkcs8_p256() -> str:
    """A fresh P-256 private key, PKCS#8 DER in base64, as WebAuthn.addCredential takes it."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.b64encode(der).decode()


def test_a_passkey_is_the_second_factor_of_a_password_login(browser: Browser, site: Site) -> None:
    """Once a user has a passkey, their password alone answers mfa_required; the passkey
    (asked for the user's own credentials) completes the login, from the frontend's origin."""
    address = unique_email()
    register(site, address)
    context, page = new_page(browser)
    try:
        cdp, authenticator = virtual_authenticator(context, page)
        page.goto(f"{site.frontend}/index.html")
        result = page.evaluate(
            """async ([api, email, password]) => {
                const { createClient } = await import(`${api}/authgate.js`);
                const auth = createClient({ baseUrl: api });
                await auth.login(email, password);
                await auth.registerPasskey('Key');
                await auth.logout();
                const answer = await fetch(`${api}/api/auth/login`, {
                    method: 'POST', credentials: 'include',
                    headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'fetch' },
                    body: JSON.stringify({ login: email, password }),
                });
                const body = await answer.json();
                const before = await auth.me();
                const user = await auth.verifyMfaWithPasskey(body.mfa.token);
                return { status: answer.status, code: body.error.code, methods: body.mfa.methods,
                         before, user: user.email, me: (await auth.me()).email };
            }""",
            [site.api, address, PASSWORD],
        )
        assert result["status"] == 401
        assert result["code"] == "mfa_required"
        assert "passkey" in result["methods"]
        assert result["before"] is None
        assert result["user"] == result["me"] == address
        [used] = credentials(cdp, authenticator)
        assert used["signCount"] >= 1
    finally:
        context.close()


def test_the_login_pages_second_step_takes_a_passkey(browser: Browser, site: Site) -> None:
    address = unique_email()
    register(site, address)
    context, page = new_page(browser)
    try:
        virtual_authenticator(context, page)
        page.goto(f"{site.api}/?next=/account")
        page.get_by_label("Email or username").fill(address)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{site.api}/account")
        page.get_by_role("button", name="Add a passkey").click()
        expect(page.locator("#notice")).to_contain_text("Your passkey was added")
        page.get_by_role("button", name="Log out").first.click()
        page.wait_for_url(lambda url: "/account" not in url)

        page.goto(f"{site.api}/?next=/account")
        page.get_by_label("Email or username").fill(address)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        use = page.get_by_role("button", name="Use your passkey")
        expect(use).to_be_visible()
        expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_hidden()
        assert axe_violations(page) == []
        screenshot(page, "passkeys-second-step")
        use.click()
        expect(page).to_have_url(f"{site.api}/account")
        expect(page.locator("#whoami")).to_contain_text(address)
    finally:
        context.close()
