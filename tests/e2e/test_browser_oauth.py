"""Logging in with a provider in a real browser: authgate's own pages under gunicorn, a real
OpenID Provider (node's oidc-provider with its development login and consent pages), and Debian's
Chromium going back and forth between them by clicks, form posts and redirects."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.browser import (
    EXAMPLE_FRONTEND,
    new_page,
    screenshot,
    static_site,
)
from tests.e2e.helpers import CLIENT_ID, CLIENT_SECRET, Server, server_group
from tests.e2e.peers.oidc_provider import OidcProvider
from tests.helpers import PASSWORD, free_port

SESSION_COOKIE = "authgate_session"
STATE_MISMATCH = (
    "That sign-in did not start in this browser, was already used, or took too long. "
    "Please try again."
)
CANCELLED = "The sign-in was cancelled at the provider."
# Only authgate and the OP: the OP's pages @import a web font, and the OP's pictures are made up.
NOT_LOCAL = re.compile(r"^(?!https?://(localhost|127\.0\.0\.1)[:/])")


@dataclass(frozen=True)
class Deployment:
    server: Server
    op: OidcProvider
    api: str  # http://localhost:<port>, authgate's public URL
    frontend: str  # http://127.0.0.1:<port>: another site, allowed in AUTHGATE_ORIGINS


# Every test here fails on an uncaught error or a CSP violation on any of its pages.
pytestmark = pytest.mark.usefixtures("page_problems")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    port, frontend_port = free_port(), free_port()
    api, frontend = f"http://localhost:{port}", f"http://127.0.0.1:{frontend_port}"
    with (
        OidcProvider(
            clients=[
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [f"{api}/api/oauth/corp/callback"],
                }
            ]
        ) as op,
        server_group("sqlite", tmp_path_factory) as group,
        static_site(EXAMPLE_FRONTEND, frontend_port),
    ):
        (server,) = group.start(
            port=port,
            public_url=api,
            origins=frontend,
            oauth_corp_issuer=op.issuer,
            oauth_corp_client_id=CLIENT_ID,
            oauth_corp_client_secret=CLIENT_SECRET,
            oauth_corp_display_name="Corp SSO",
            oauth_corp_allow_http="true",
        )
        yield Deployment(server, op, api, frontend)


def fresh_page(browser: Browser) -> tuple[BrowserContext, Page]:
    """A new profile (no cookies at authgate or at the OP) that only reaches 127.0.0.1."""
    context, page = new_page(browser)
    context.route(NOT_LOCAL, lambda route: route.abort())
    return context, page


def account(label: str) -> str:
    """An account id at the OP: its email is the id itself, verified."""
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


def elsewhere_than(url: str) -> Callable[[str], bool]:
    return lambda current: current != url


def complete_provider_login(page: Page, account: str) -> None:
    """On the OP's pages: log in as ``account`` (any password does), give consent if asked, and
    return once the browser has been sent back to authgate and that page has loaded."""
    page.wait_for_url("**/interaction/**")  # the OP's login page
    op_origin = re.match(r"^https?://[^/]+", page.url)
    assert op_origin is not None, page.url
    login = page.locator("form:has(input[name=login])")
    consent = page.locator("form:has(input[name=prompt][value=consent])")
    for _ in range(3):
        here = page.url
        if not here.startswith(op_origin[0] + "/"):
            return
        if login.count():
            login.locator("input[name=login]").fill(account)
            login.locator("input[name=password]").fill("anything")
            login.locator("button[type=submit]").click()
        elif consent.count():
            consent.locator("button[type=submit]").click()
        else:
            raise AssertionError(f"neither a login nor a consent form at {here}:\n{page.content()}")
        page.wait_for_url(elsewhere_than(here))  # the next page, loaded
    raise AssertionError(f"still at the OP after login and consent: {page.url}")


def log_in_with_corp(browser: Browser, deployment: Deployment, provider_account: str) -> Page:
    """From authgate's login page, "Continue with Corp SSO" through to the account page."""
    _, page = fresh_page(browser)
    page.goto(f"{deployment.api}/")
    page.get_by_role("link", name="Continue with Corp SSO").click()
    complete_provider_login(page, provider_account)
    expect(page).to_have_url(f"{deployment.api}/account")
    return page


def me(page: Page) -> dict[str, Any]:
    """``/api/auth/me`` as the page's own script would ask it."""
    user: dict[str, Any] = page.evaluate(
        "async () => (await (await fetch('/api/auth/me')).json()).user"
    )
    return user


def test_continue_with_corp_sso_creates_the_account_and_shows_it(
    browser: Browser, deployment: Deployment
) -> None:
    api = deployment.api
    provider_account = account("first")
    context, page = fresh_page(browser)
    page.goto(f"{api}/")
    link = page.get_by_role("link", name="Continue with Corp SSO")
    expect(link).to_have_attribute(
        "href", f"{api}/api/oauth/corp/login?" + urlencode({"next": f"{api}/?next=%2Faccount"})
    )

    link.click()
    page.wait_for_url(f"{deployment.op.issuer}/**")
    complete_provider_login(page, provider_account)

    expect(page).to_have_url(f"{api}/account")
    expect(page.locator("#email")).to_have_text(provider_account)
    expect(page.locator("#email-status")).to_have_text("(verified)")
    identities = page.locator("#identities tr")
    expect(identities).to_have_count(1)
    expect(identities.first.locator("td").nth(0)).to_have_text("Corp SSO")
    expect(identities.first.locator("td").nth(1)).to_have_text(provider_account)
    expect(page.locator("#notice")).to_be_empty()
    screenshot(page, "oauth-login")
    assert SESSION_COOKIE in {c["name"] for c in context.cookies(api)}
    context.close()


def test_a_second_visit_in_a_fresh_browser_logs_into_the_same_account(
    browser: Browser, deployment: Deployment
) -> None:
    provider_account = account("again")
    first_page = log_in_with_corp(browser, deployment, provider_account)
    first = me(first_page)
    first_page.context.close()

    page = log_in_with_corp(browser, deployment, provider_account)  # the OP asks again, too

    user = me(page)
    assert (user["id"], user["email"]) == (first["id"], provider_account)
    expect(page.locator("#email")).to_have_text(provider_account)
    expect(page.locator("#identities tr")).to_have_count(1)
    expect(page.locator("#identities tr").first).to_contain_text("Corp SSO")
    page.context.close()


def test_a_callback_this_browser_did_not_start_is_explained_on_the_login_page(
    browser: Browser, deployment: Deployment
) -> None:
    api = deployment.api
    context, page = fresh_page(browser)

    page.goto(f"{api}/api/oauth/corp/callback?state=bogus&code=x")

    expect(page).to_have_url(f"{api}/?error=oauth_state_mismatch")
    alert = page.locator("#oauth-error")
    expect(alert).to_have_text(STATE_MISMATCH)
    expect(alert).to_be_visible()
    expect(alert).to_be_focused()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_role("link", name="Continue with Corp SSO")).to_be_visible()
    screenshot(page, "oauth-error")
    assert SESSION_COOKIE not in {c["name"] for c in context.cookies(api)}
    context.close()


def test_cancelling_at_the_provider_is_explained_on_the_login_page(
    browser: Browser, deployment: Deployment
) -> None:
    """The dev OP's "[ Cancel ]" link answers the callback with ``error=access_denied``."""
    api = deployment.api
    context, page = fresh_page(browser)
    page.goto(f"{api}/")
    page.get_by_role("link", name="Continue with Corp SSO").click()
    page.wait_for_url("**/interaction/**")

    page.get_by_role("link", name="[ Cancel ]").click()

    page.wait_for_url(f"{api}/**")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    try:
        expect(page.locator("#oauth-error")).to_have_text(CANCELLED, timeout=3_000)
    finally:
        context.close()


def test_linking_corp_sso_from_the_account_page(browser: Browser, deployment: Deployment) -> None:
    api = deployment.api
    address = account("password")
    response = deployment.server.post(  # as a script would: no Origin
        "/api/auth/register", json={"email": address, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    provider_account = account("linked")
    context, page = fresh_page(browser)
    page.goto(f"{api}/")
    page.get_by_label("Email or username").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{api}/account")
    expect(page.locator("#identities tr")).to_have_count(0)

    page.get_by_role("button", name="Link Corp SSO").click()
    complete_provider_login(page, provider_account)

    expect(page).to_have_url(f"{api}/account")
    expect(page.locator("#email")).to_have_text(address)  # still the password account
    identities = page.locator("#identities tr")
    expect(identities).to_have_count(1)
    expect(identities.first.locator("td").nth(0)).to_have_text("Corp SSO")
    expect(identities.first.locator("td").nth(1)).to_have_text(provider_account)
    expect(page.locator("#notice")).to_be_empty()
    screenshot(page, "oauth-linked")
    context.close()


def test_a_frontend_on_another_site_logs_in_with_the_provider(
    browser: Browser, deployment: Deployment
) -> None:
    """The example frontend on 127.0.0.1 (another site than localhost, third-party cookies
    blocked): the login is handed to the page, which gets its cookies in its own partition."""
    provider_account = account("handoff")
    context, page = fresh_page(browser)
    page.goto(f"{deployment.frontend}/?api={deployment.api}")
    expect(page.locator("#status")).to_have_text("Not signed in.")

    page.get_by_role("button", name="Continue with Corp SSO").click()
    complete_provider_login(page, provider_account)

    expect(page.locator("#who")).to_have_text(provider_account)
    assert page.url.startswith(deployment.frontend + "/?api=")
    assert "#" not in page.url and "authgate_handoff" not in page.url  # the code left the URL
    page.get_by_role("button", name="Call a protected endpoint").click()
    expect(page.locator("#result")).to_contain_text("200")
    screenshot(page, "oauth-frontend-cross-site")
    session = next(c for c in context.cookies(deployment.api) if c["name"] == SESSION_COOKIE)
    assert session["sameSite"] == "None" and session.get("partitionKey"), session
    context.close()


def test_a_provider_login_of_an_account_with_an_authenticator_app_asks_for_its_code(
    browser: Browser, deployment: Deployment
) -> None:
    """The provider's login is the first step only: the login page asks for the app's code
    (the mfa token reached it in the fragment, bound to the browser by its cookie)."""
    import pyotp

    api, server = deployment.api, deployment.server
    address = account("mfa")
    response = server.post("/api/auth/register", json={"email": address, "password": PASSWORD})
    assert response.status_code == 201, response.text
    provider_account = account("mfa-linked")
    context, page = fresh_page(browser)
    page.goto(f"{api}/")
    page.get_by_label("Email or username").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{api}/account")
    page.get_by_role("button", name="Link Corp SSO").click()
    complete_provider_login(page, provider_account)
    expect(page.locator("#identities tr")).to_have_count(1)
    context.close()
    access = server.post("/api/auth/login", json={"login": address, "password": PASSWORD}).json()[
        "access_token"
    ]
    auth = {"Authorization": f"Bearer {access}"}
    secret = server.post("/api/auth/mfa/totp", json={"password": PASSWORD}, headers=auth).json()[
        "secret"
    ]
    totp = pyotp.TOTP(secret)
    confirmed = server.post("/api/auth/mfa/totp/confirm", json={"code": totp.now()}, headers=auth)
    assert confirmed.status_code == 200, confirmed.text

    context, page = fresh_page(browser)
    page.goto(f"{api}/")
    page.get_by_role("link", name="Continue with Corp SSO").click()
    complete_provider_login(page, provider_account)

    expect(page.get_by_role("heading", name="Second step")).to_be_visible()
    expect(page.get_by_role("heading", name="Second step")).to_be_focused()
    assert "authgate_mfa" not in page.url and "#" not in page.url  # the token left the URL
    assert SESSION_COOKIE not in {c["name"] for c in context.cookies(api)}
    page.locator("#mfa-code").fill(totp.at(time.time() + 30))  # the next step: not a replay
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(f"{api}/account")
    expect(page.locator("#email")).to_have_text(address)
    assert SESSION_COOKIE in {c["name"] for c in context.cookies(api)}
    context.close()
