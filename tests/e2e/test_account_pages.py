"""The pages of the mailed links in Chromium, against the real server under gunicorn delivering
to a real SMTP server process (aiosmtpd): forgot → mail → reset → log in; verify an address from
its mailed link; change the address; an invitation accepted after registering through its link;
a login refused for an unverified address offering a new mail. Each link's token leaves the
address bar as soon as its page loads and never appears in a URL the browser requests nor in the
server's log. Every new page passes axe-core and fits a phone (390 px) without scrolling sideways.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, ViewportSize, expect

from tests.e2e.browser import new_page, screenshot, static_site
from tests.e2e.helpers import Server, ServerGroup, server_group
from tests.e2e.test_pages import _WIDTHS, AXE, BOTH_SIZES, DESKTOP, PHONE, axe_violations
from tests.helpers import PASSWORD, bearer, free_port
from tests.mail_server import MailServer

pytestmark = pytest.mark.usefixtures("page_problems")

NEW_PASSWORD = "a brand new passphrase for ada"
MAIL_TIMEOUT_SECONDS = 20.0
LINK_PAGES = ("/reset-password", "/verify-email", "/confirm-email-change", "/invitation")


@dataclass(frozen=True)
class Site:
    group: ServerGroup
    server: Server
    api: str  # the public URL: the links' base
    mail: MailServer


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with (
        MailServer(tmp_path_factory.mktemp("smtp")) as mail,
        server_group("sqlite", tmp_path_factory) as group,
    ):
        port = free_port()
        (server,) = group.start(
            port=port,
            smtp_url=mail.url,
            mail_from="authgate <noreply@example.com>",
            app_name="Pages test",
        )
        yield Site(group, server, f"http://localhost:{port}", mail)


def unique_email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


# Mail ------------------------------------------------------------------------------------------


def wait_for_mail(
    site: Site, to: str, path: str, *, after: int = 0, base: str | None = None
) -> str:
    """The token of the ``after``+1-th mail to ``to`` holding a link to ``path`` (polled: the
    outbox sender delivers in the background); its link must be ``{base}{path}#token=``, the
    base being the public URL."""
    link = re.compile(re.escape(f"{base or site.api}{path}#token=") + r"([A-Za-z0-9_\-]+)")
    deadline = time.monotonic() + MAIL_TIMEOUT_SECONDS
    while True:
        tokens = [
            match.group(1)
            for mail in site.mail.messages()
            if to in mail.to
            for match in [link.search(mail.text)]
            if match
        ]
        if len(tokens) > after:
            return tokens[after]
        if time.monotonic() > deadline:
            subjects = [(m.to, m.subject) for m in site.mail.messages()]
            pytest.fail(f"no mail to {to} with a {path} link arrived; got {subjects}")
        time.sleep(0.1)


# Browser helpers -------------------------------------------------------------------------------


def register(site: Site, address: str, password: str = PASSWORD) -> None:
    created = site.server.post("/api/auth/register", json={"email": address, "password": password})
    assert created.status_code == 201, created.text


def script_token(site: Site, address: str, password: str = PASSWORD) -> str:
    response = site.server.post("/api/auth/login", json={"login": address, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def log_in(page: Page, site: Site, address: str, password: str = PASSWORD) -> None:
    page.goto(f"{site.api}/?next=/account")
    page.get_by_label("Email or username").fill(address)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site.api}/account")


def watch_urls(page: Page) -> list[str]:
    """Every URL the page's browser context requests from now on."""
    urls: list[str] = []

    def on_request(request: Request) -> None:
        urls.append(request.url)

    page.context.on("request", on_request)
    return urls


def assert_token_kept_secret(
    site: Site, token: str, page: Page, urls: list[str], *, server: Server | None = None
) -> None:
    """Not in the address bar, in no requested URL (a fragment is never sent, but a page could
    have put it in a query), and not in the log of the server (``site``'s unless given)."""
    assert token not in page.url
    assert "token=" not in page.url
    leaked = [url for url in urls if token in url.split("#")[0]]
    assert leaked == []
    assert token not in (server or site.server).log()


# The flows -------------------------------------------------------------------------------------


@BOTH_SIZES
def test_forgot_password_mail_reset_and_log_in_with_the_new_password(
    browser: Browser, site: Site, viewport: ViewportSize
) -> None:
    address = unique_email("forgot")
    register(site, address)
    context, page = new_page(browser, viewport=viewport)
    urls = watch_urls(page)

    page.goto(f"{site.api}/")
    page.get_by_role("link", name="Forgot password?").click()
    expect(page).to_have_url(f"{site.api}/forgot-password")
    page.get_by_label("Email").fill(address)
    page.get_by_role("button", name="Send the link").click()
    expect(page.locator("#notice")).to_contain_text(
        f"If an account exists for {address}, we sent a link"
    )

    token = wait_for_mail(site, address, "/reset-password")
    page.goto(f"{site.api}/reset-password#token={token}")
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    expect(page).to_have_url(f"{site.api}/reset-password")  # the token left the address bar
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password, again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()

    expect(page).to_have_url(f"{site.api}/?notice=password-reset")
    expect(page.locator("#notice")).to_contain_text("Log in with the new password")
    page.get_by_label("Email or username").fill(address)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site.api}/account")
    expect(page.locator("#email")).to_have_text(address)
    assert_token_kept_secret(site, token, page, urls)
    screenshot(page, f"reset-done-{'phone' if viewport == PHONE else 'desktop'}")
    context.close()

    old = site.server.post("/api/auth/login", json={"login": address, "password": PASSWORD})
    assert old.status_code == 401

    # The link works once: opened again, the page says so and offers a new one.
    context, page = new_page(browser, viewport=viewport)
    page.goto(f"{site.api}/reset-password#token={token}")
    page.get_by_label("New password", exact=True).fill("yet another passphrase")
    page.get_by_label("New password, again").fill("yet another passphrase")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.locator("#dead-link")).to_contain_text("expired or was already used")
    expect(page.get_by_role("link", name="Send a new link")).to_have_attribute(
        "href", "/forgot-password"
    )
    context.close()


def test_forgot_password_for_an_unknown_address_says_the_same(browser: Browser, site: Site) -> None:
    address = unique_email("nobody")
    context, page = new_page(browser)
    page.goto(f"{site.api}/forgot-password")
    page.get_by_label("Email").fill(address)
    page.get_by_role("button", name="Send the link").click()
    expect(page.locator("#notice")).to_contain_text(
        f"If an account exists for {address}, we sent a link"
    )
    expect(page.locator("#forgot-form")).to_be_hidden()
    context.close()


def test_the_reset_page_checks_the_two_passwords_before_sending(
    browser: Browser, site: Site
) -> None:
    context, page = new_page(browser)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/password/reset" in r.url else None)
    page.goto(f"{site.api}/reset-password#token=agl_not-sent")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password, again").fill(NEW_PASSWORD + "x")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.locator("#password_again-error")).to_have_text("The two passwords differ.")
    expect(page.get_by_label("New password, again")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("New password, again")).to_be_focused()
    assert sent == []
    context.close()


def test_verify_email_from_the_mailed_link(browser: Browser, site: Site) -> None:
    address = unique_email("verify")
    register(site, address)  # registering mails the link
    token = wait_for_mail(site, address, "/verify-email")

    context, page = new_page(browser)
    urls = watch_urls(page)
    page.goto(f"{site.api}/verify-email#token={token}")
    expect(page.locator("#notice")).to_have_text(
        f"Your email address {address} is verified. Thank you!"
    )
    expect(page).to_have_url(f"{site.api}/verify-email")
    assert_token_kept_secret(site, token, page, urls)
    me = site.server.get("/api/auth/me", headers=bearer(script_token(site, address)))
    assert me.json()["user"]["email_verified"] is True

    # Used: the second visit says so. Logged out, it says how to get a new one.
    page.goto(f"{site.api}/verify-email#token={token}")
    expect(page.locator("#page-error")).to_have_text(
        "This link has expired or was already used — send a new one."
    )
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    context.close()


def test_a_dead_verification_link_offers_a_new_mail_when_logged_in(
    browser: Browser, site: Site
) -> None:
    address = unique_email("resend")
    register(site, address)
    wait_for_mail(site, address, "/verify-email")
    context, page = new_page(browser)
    log_in(page, site, address)

    page.goto(f"{site.api}/verify-email#token=agl_expired-or-never-issued")
    expect(page.locator("#page-error")).to_have_text(
        "This link has expired or was already used — send a new one."
    )
    page.get_by_role("button", name="Send a new verification mail").click()
    expect(page.locator("#notice")).to_contain_text("We sent a new verification mail")
    token = wait_for_mail(site, address, "/verify-email", after=1)

    page.goto(f"{site.api}/verify-email#token={token}")
    expect(page.locator("#notice")).to_contain_text("is verified")
    page.get_by_role("link", name="Go to your account").click()
    # The account page may be served by the other worker, whose cached user learns of the
    # change from the revocation log within its poll interval (0.25 s): load it again until then.
    deadline = time.monotonic() + 5
    while (
        page.locator("#email-status").inner_text() != "(verified)" and time.monotonic() < deadline
    ):
        page.wait_for_timeout(300)
        page.reload()
        expect(page.locator("#email-status")).not_to_have_text("")
    expect(page.locator("#email-status")).to_have_text("(verified)")
    expect(page.get_by_role("button", name="Send verification mail")).to_be_hidden()
    context.close()


def test_the_account_page_sends_a_verification_mail(browser: Browser, site: Site) -> None:
    address = unique_email("account")
    register(site, address)
    wait_for_mail(site, address, "/verify-email")
    context, page = new_page(browser)
    log_in(page, site, address)
    expect(page.locator("#email-status")).to_have_text("(not verified)")

    page.get_by_role("button", name="Send verification mail").click()
    expect(page.locator("#notice")).to_contain_text(f"We sent a verification mail to {address}")
    token = wait_for_mail(site, address, "/verify-email", after=1)
    page.goto(f"{site.api}/verify-email#token={token}")
    expect(page.locator("#notice")).to_contain_text("is verified")
    context.close()


def test_change_email_from_the_account_page(browser: Browser, site: Site) -> None:
    address, new_address = unique_email("old"), unique_email("new")
    register(site, address)
    context, page = new_page(browser)
    log_in(page, site, address)

    page.get_by_label("New email address").fill(new_address)
    page.get_by_label("Your password").fill("wrong password")
    page.get_by_role("button", name="Change email").click()
    expect(page.locator("#email_password-error")).not_to_be_empty()
    expect(page.get_by_label("Your password")).to_be_focused()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Change email").click()
    expect(page.locator("#notice")).to_contain_text(f"We sent a link to {new_address}")

    token = wait_for_mail(site, new_address, "/confirm-email-change")
    urls = watch_urls(page)
    page.goto(f"{site.api}/confirm-email-change#token={token}")
    expect(page.locator("#notice")).to_have_text(f"Your email address is now {new_address}.")
    assert_token_kept_secret(site, token, page, urls)
    context.close()

    context, page = new_page(browser)
    log_in(page, site, new_address)
    expect(page.locator("#email")).to_have_text(new_address)
    context.close()


def test_an_invitation_accepted_after_registering_through_its_link(
    browser: Browser, site: Site
) -> None:
    """The owner invites from the account page; the invitee, with no account yet, opens the
    link, sees who invites them where, registers, comes back to the invitation and accepts.
    The token waits in sessionStorage meanwhile: never in a URL, never in the server's log."""
    owner, invitee = unique_email("owner"), unique_email("invitee")
    register(site, owner)
    team = f"Team {uuid.uuid4().hex[:6]}"
    created = site.server.post(
        "/api/tenants", json={"name": team}, headers=bearer(script_token(site, owner))
    )
    assert created.status_code == 201, created.text

    context, page = new_page(browser)
    log_in(page, site, owner)
    page.get_by_label("Email address", exact=True).fill(invitee)
    page.get_by_label("Role", exact=True).select_option("admin")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#notice")).to_have_text(f"We mailed an invitation to {invitee}.")
    expect(page.locator("#invitations")).to_contain_text(invitee)
    context.close()

    token = wait_for_mail(site, invitee, "/invitation")
    register_through_the_invitation_and_accept(browser, site, site.server, token, team, "admin")


def register_through_the_invitation_and_accept(
    browser: Browser, site: Site, server: Server, token: str, team: str, role: str
) -> None:
    """The invitee, with no account yet, opens the invitation link on ``server``, sees who
    invites them where, registers, comes back to the invitation logged in (the registration
    carried the token, which proves the address: the login works even where verification is
    required) and accepts. The token waits in sessionStorage meanwhile: never in a URL, never in
    the server's log."""
    base = server.env["AUTHGATE_PUBLIC_URL"]
    context, page = new_page(browser)
    urls = watch_urls(page)
    page.goto(f"{base}/invitation#token={token}")
    expect(page.locator("#tenant-name")).to_have_text(team)
    expect(page.locator("#role")).to_have_text(role)
    invitee = page.locator("#invited-email").inner_text()
    expect(page).to_have_url(f"{base}/invitation")

    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(invitee)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{base}/invitation")
    page.get_by_role("button", name="Accept the invitation").click()
    expect(page.locator("#notice")).to_have_text(f"You joined {team} as {role}.")
    assert_token_kept_secret(site, token, page, urls, server=server)
    assert page.evaluate("sessionStorage.length") == 0  # forgotten once used
    context.close()

    login = server.post("/api/auth/login", json={"login": invitee, "password": PASSWORD})
    assert login.status_code == 200, login.text
    me = server.get("/api/auth/me", headers=bearer(login.json()["access_token"])).json()
    assert me["user"]["email_verified"] is True
    tenants = server.get("/api/tenants", headers=bearer(login.json()["access_token"]))
    assert {(t["name"], t["role"]) for t in tenants.json()["tenants"]} >= {(team, role)}


def test_an_invitation_for_someone_else_says_so_and_logging_in_as_the_invitee_accepts(
    browser: Browser, site: Site
) -> None:
    owner, invitee, other = unique_email("owner"), unique_email("invitee"), unique_email("other")
    for address in (owner, other):
        register(site, address)
    tenant = site.server.post(
        "/api/tenants", json={"name": "Switch team"}, headers=bearer(script_token(site, owner))
    ).json()["tenant"]
    invited = site.server.post(
        f"/api/tenants/{tenant['id']}/invitations",
        json={"email": invitee, "role": "member"},
        headers=bearer(script_token(site, owner)),
    )
    assert invited.status_code == 201, invited.text
    token = wait_for_mail(site, invitee, "/invitation")

    context, page = new_page(browser)
    log_in(page, site, other)
    page.goto(f"{site.api}/invitation#token={token}")
    expect(page.locator("#current-email")).to_have_text(other)
    expect(page.get_by_role("button", name="Accept the invitation")).to_be_hidden()
    page.get_by_role("button", name="Log out").last.click()
    expect(page).to_have_url(f"{site.api}/?next=/invitation")

    # Logging in as the invited address comes back to the invitation, the token kept meanwhile.
    register(site, invitee)
    page.get_by_label("Email or username").fill(invitee)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site.api}/invitation")
    page.get_by_role("button", name="Accept the invitation").click()
    expect(page.locator("#notice")).to_have_text("You joined Switch team as member.")
    context.close()


def test_the_account_page_revokes_a_pending_invitation(browser: Browser, site: Site) -> None:
    owner, invitee = unique_email("owner"), unique_email("revoked")
    register(site, owner)
    access = bearer(script_token(site, owner))
    tenant = site.server.post("/api/tenants", json={"name": "Revokers"}, headers=access).json()
    tenant_id = tenant["tenant"]["id"]
    invited = site.server.post(
        f"/api/tenants/{tenant_id}/invitations",
        json={"email": invitee, "role": "viewer"},
        headers=access,
    )
    assert invited.status_code == 201, invited.text

    context, page = new_page(browser)
    log_in(page, site, owner)
    page.get_by_role("button", name=f"Revoke the invitation of {invitee} to Revokers").click()
    expect(page.locator("#notice")).to_contain_text("was revoked")
    expect(page.locator("#invitations")).not_to_contain_text(invitee)
    context.close()
    listed = site.server.get(f"/api/tenants/{tenant_id}/invitations", headers=access)
    assert listed.json()["invitations"] == []


def test_a_login_refused_as_unverified_offers_a_new_verification_mail(
    browser: Browser, site: Site, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A deployment with AUTHGATE_EMAIL_VERIFICATION=required (its own server and database,
    the same SMTP server)."""
    with server_group("sqlite", tmp_path_factory) as group:
        (strict,) = group.start(
            email_verification="required",
            smtp_url=site.mail.url,
            mail_from="authgate <noreply@example.com>",
        )
        base = strict.env["AUTHGATE_PUBLIC_URL"]
        address = unique_email("unverified")
        created = strict.post("/api/auth/register", json={"email": address, "password": PASSWORD})
        assert created.status_code == 201, created.text
        wait_for_mail(site, address, "/verify-email", base=base)
        context, page = new_page(browser)
        page.goto(f"{base}/")
        page.get_by_label("Email or username").fill(address)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#unverified")).to_contain_text("not verified yet")
        expect(page.locator("#unverified")).to_be_focused()
        expect(page).to_have_url(f"{base}/")
        assert axe_violations(page) == []
        page.get_by_role("button", name="Send a new verification mail").click()
        expect(page.locator("#notice")).to_contain_text("We sent a new verification mail")
        expect(page.get_by_role("button", name="Send a new verification mail")).to_be_disabled()
        token = wait_for_mail(site, address, "/verify-email", base=base, after=1)

        page.goto(f"{base}/verify-email#token={token}")
        expect(page.locator("#notice")).to_contain_text("is verified")
        page.goto(f"{base}/?next=/account")
        page.get_by_label("Email or username").fill(address)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{base}/account")
        context.close()

        # Registering through an invitation link: the link proves the address, so the login
        # after registering works and the invitee accepts, with no verification mail.
        access = strict.post("/api/auth/login", json={"login": address, "password": PASSWORD})
        owner = bearer(access.json()["access_token"])
        team = f"Strict team {uuid.uuid4().hex[:6]}"
        tenant = strict.post("/api/tenants", json={"name": team}, headers=owner).json()["tenant"]
        invitee = unique_email("strict-invitee")
        invited = strict.post(
            f"/api/tenants/{tenant['id']}/invitations",
            json={"email": invitee, "role": "member"},
            headers=owner,
        )
        assert invited.status_code == 201, invited.text
        invitation = wait_for_mail(site, invitee, "/invitation", base=base)
        register_through_the_invitation_and_accept(
            browser, site, strict, invitation, team, "member"
        )
        verifications = [
            m for m in site.mail.messages() if invitee in m.to and "/verify-email" in m.text
        ]
        assert verifications == []

        # Registering on the page: the account exists, the login after it is refused.
        context, page = new_page(browser)
        other = unique_email("registers")
        page.goto(f"{base}/register")
        page.get_by_label("Email").fill(other)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        expect(page.locator("#registered")).to_contain_text(
            f"Your account was created. We sent a mail to {other}"
        )
        wait_for_mail(site, other, "/verify-email", base=base)
        context.close()


# A frontend on another origin ------------------------------------------------------------------

FRONTEND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Verify — the app</title>
<script type="module" src="/verify.js"></script></head>
<body><main><h1>The app</h1><p id="result" role="status">…</p></main></body></html>
"""

# What docs/email.md tells a frontend to do, with the API's URL filled in.
FRONTEND_SCRIPT = """
import { createClient, tokenFromFragment } from 'API/authgate.js';
const auth = createClient({ baseUrl: 'API' });
const token = tokenFromFragment();
const result = document.querySelector('#result');
try {
  const user = await auth.verifyEmail(token);
  result.textContent = `verified ${user.email}: ${user.email_verified}`;
} catch (error) {
  result.textContent = `refused: ${error.code}`;
}
"""


def test_a_frontend_on_another_origin_takes_the_token_from_its_own_link(
    browser: Browser, site: Site, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """AUTHGATE_LINK_BASE_URL names the frontend: the mailed link lands there, and the page
    verifies the address with authgate.js imported from the API's origin."""
    folder = tmp_path_factory.mktemp("frontend")
    frontend_port = free_port()
    frontend = f"http://localhost:{frontend_port}"
    with server_group("sqlite", tmp_path_factory) as group:
        (api_server,) = group.start(
            origins=frontend,
            link_base_url=frontend,
            smtp_url=site.mail.url,
            mail_from="authgate <noreply@example.com>",
        )
        api = api_server.env["AUTHGATE_PUBLIC_URL"]
        (folder / "verify-email").mkdir()
        (folder / "verify-email" / "index.html").write_text(FRONTEND_PAGE)
        (folder / "verify.js").write_text(FRONTEND_SCRIPT.replace("API", api))
        address = unique_email("frontend")
        created = api_server.post(
            "/api/auth/register", json={"email": address, "password": PASSWORD}
        )
        assert created.status_code == 201, created.text
        token = wait_for_mail(site, address, "/verify-email", base=frontend)

        with static_site(folder, frontend_port):
            context, page = new_page(browser)
            page.goto(f"{frontend}/verify-email#token={token}")
            expect(page.locator("#result")).to_have_text(f"verified {address}: true")
            assert token not in page.url and page.url.startswith(f"{frontend}/verify-email")

            page.goto("about:blank")
            page.goto(f"{frontend}/verify-email#token={token}")
            expect(page.locator("#result")).to_have_text("refused: invalid_or_expired_token")
            context.close()


# Every new page: the token leaves the address bar, axe, phone width, CSP -----------------------


@pytest.mark.parametrize("path", LINK_PAGES)
def test_the_token_leaves_the_address_bar_as_the_page_loads(
    browser: Browser, site: Site, path: str
) -> None:
    context, page = new_page(browser)
    page.goto(f"{site.api}{path}#token=agl_secret-test-value")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert page.url == f"{site.api}{path}"
    # Replaced, not pushed: no entry with the token is left behind, Back leaves the page.
    assert page.evaluate("history.length") == 2  # the new tab's about:blank, then this page
    page.go_back()
    assert page.url == "about:blank"
    context.close()


@pytest.mark.parametrize("token", ["agl_never-issued", "x" * 300], ids=["unknown", "mangled"])
def test_a_dead_or_mangled_link_gets_the_same_plain_answer(
    browser: Browser, site: Site, token: str
) -> None:
    """Unknown (400 invalid_or_expired_token) or no token at all (a 422 about the token field):
    the same words, not the API's field message."""
    context, page = new_page(browser)
    page.goto(f"{site.api}/confirm-email-change#token={token}")
    expect(page.locator("#page-error")).to_have_text("This link has expired or was already used.")
    expect(page.locator("#again")).to_be_visible()
    context.close()


@dataclass(frozen=True)
class Shown:
    """A page in one of its states: the URL opened (logged in as ``user``, if any) and what is
    visible once it has loaded."""

    path: str
    visible: str
    user: str | None = None


def states(site: Site) -> list[Shown]:
    """Each new page with what it shows filled in: a real invitation's preview, the account
    page's invitations, the dead-link answers."""
    owner, invitee = unique_email("axe-owner"), unique_email("axe-invitee")
    register(site, owner)
    access = bearer(script_token(site, owner))
    tenant = site.server.post("/api/tenants", json={"name": "Axe team"}, headers=access).json()
    invited = site.server.post(
        f"/api/tenants/{tenant['tenant']['id']}/invitations",
        json={"email": invitee, "role": "member"},
        headers=access,
    )
    assert invited.status_code == 201, invited.text
    token = wait_for_mail(site, invitee, "/invitation")
    return [
        Shown("/forgot-password", "#forgot-form"),
        Shown("/reset-password#token=agl_fake", "#reset-form"),
        Shown("/reset-password", "#dead-link"),
        Shown("/verify-email#token=agl_fake", "#log-in-to-resend"),
        Shown("/verify-email#token=agl_fake", "#resend", user=owner),
        Shown("/confirm-email-change#token=agl_fake", "#again"),
        Shown(f"/invitation#token={token}", "#anonymous"),
        Shown("/invitation#token=agl_fake", "#page-error"),
        Shown("/account", "#invitations tr", user=owner),
    ]


def show(browser: Browser, site: Site, viewport: ViewportSize, state: Shown) -> tuple[Any, Page]:
    context, page = new_page(browser, viewport=viewport)
    if state.user:
        log_in(page, site, state.user)
    page.goto(f"{site.api}{state.path}")
    expect(page.locator(state.visible).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    return context, page


@BOTH_SIZES
def test_axe_finds_no_violation_and_nothing_scrolls_sideways_on_the_new_pages(
    browser: Browser, site: Site, viewport: ViewportSize
) -> None:
    assert AXE.exists(), f"{AXE} is missing: run scripts/bootstrap (npm ci in tests/peers/axe)"
    label = "phone" if viewport == PHONE else "desktop"
    found: dict[str, list[str]] = {}
    for state in states(site):
        context, page = show(browser, site, viewport, state)
        name = f"{state.path.split('#')[0]} ({state.visible}{', logged in' if state.user else ''})"
        violations = axe_violations(page)
        if violations:
            found[name] = violations
        widths = page.evaluate(_WIDTHS)
        assert widths["scrollWidth"] <= widths["innerWidth"], (name, widths)
        slug = state.path.split("#")[0].strip("/") + "-" + state.visible.strip("#").split()[0]
        screenshot(page, f"account-pages-{label}-{slug}")
        context.close()
    assert found == {}, "\n".join(
        f"{path}:\n  " + "\n  ".join(violations) for path, violations in found.items()
    )


def test_the_login_page_with_its_notice_passes_axe(browser: Browser, site: Site) -> None:
    """The login page's new parts: the "Forgot password?" link and the notice after a reset
    (its box for an unverified address: in the test of that login, above)."""
    context, page = new_page(browser, viewport=DESKTOP)
    page.goto(f"{site.api}/?notice=password-reset")
    expect(page.locator("#notice")).to_be_visible()
    expect(page.get_by_role("link", name="Forgot password?")).to_be_visible()
    assert axe_violations(page) == []
    context.close()


@pytest.mark.parametrize("path", ["/forgot-password", *LINK_PAGES])
def test_the_new_pages_have_the_strict_content_security_policy(site: Site, path: str) -> None:
    response = site.server.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert response.headers["Referrer-Policy"] == "same-origin"
    scripts = re.findall(r"<script\b[^>]*>", response.text, flags=re.IGNORECASE)
    assert scripts and all(re.search(r"\ssrc=", tag) for tag in scripts), scripts
    assert not re.search(r"\son[a-z]+\s*=", response.text)


@pytest.mark.parametrize(
    ("path", "form"),
    [("/forgot-password", "forgot-form"), ("/reset-password#token=x", "reset-form")],
)
def test_a_new_form_cannot_go_out_before_its_script_runs(
    browser: Browser, site: Site, path: str, form: str
) -> None:
    """As on the login page: the button waits for the script, so Enter cannot send the form
    as a GET with its fields in the URL."""
    context, page = new_page(browser)
    script = path.split("#")[0].strip("/") + ".js"
    page.route(f"**/static/authgate/{script}", lambda route: route.abort())
    page.goto(site.api + path)
    expect(page.locator(f"#{form} button[type=submit]")).to_be_disabled()
    field = page.locator(f"#{form} input").first
    field.fill("ada@example.com")
    field.press("Enter")
    page.wait_for_load_state()
    assert "?" not in page.url
    context.close()
