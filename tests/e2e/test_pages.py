"""authgate's own pages in Chromium at a desktop (1280x900) and a phone (390x844) size: nothing
scrolls sideways, axe-core finds no accessibility violation, no page logs a console error; and
the details of their tables and forms.

axe-core is a test peer (``tests/peers/axe``, installed by ``scripts/bootstrap``). The pages'
Content-Security-Policy (``script-src 'self'``) refuses an injected ``<script>`` tag
(``page.add_script_tag``), so axe's source is run with ``page.evaluate`` — over the DevTools
protocol, which the CSP does not govern — and the CSP stays on: the ``page_problems`` fixture
still fails a test on any violation of it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, ViewportSize, expect

from tests.e2e.browser import REPO, new_page, screenshot
from tests.e2e.helpers import Server, ServerGroup, server_group
from tests.helpers import PASSWORD, bearer, free_port

AXE = REPO / "tests" / "peers" / "axe" / "node_modules" / "axe-core" / "axe.min.js"

DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)
BOTH_SIZES = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])

# A real phone's user agent; the sessions table shows it in words.
LONG_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro Build/AP2A.240805.005) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/127.0.6533.103 Mobile Safari/537.36"
)
LONG_USER_AGENT_DEVICE = "Chrome Mobile 127 on Android 14"

PAGES = ("/", "/register", "/account", "/admin/users")

pytestmark = pytest.mark.usefixtures("page_problems")


@dataclass(frozen=True)
class Site:
    group: ServerGroup
    server: Server
    api: str
    admin: str  # an admin with a session on a phone and an API token
    other: str  # another user, with two roles


def unique_email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


def register_and_log_in(server: Server, address: str, device: str) -> str:
    """Register as a script would; an access token of a session on ``device``."""
    created = server.post("/api/auth/register", json={"email": address, "password": PASSWORD})
    assert created.status_code == 201, created.text
    response = server.post(
        "/api/auth/login",
        json={"login": address, "password": PASSWORD},
        headers={"User-Agent": device},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with server_group("sqlite", tmp_path_factory) as group:
        port = free_port()
        (server,) = group.start(port=port)
        admin, other = unique_email("admin"), unique_email("other")
        token = register_and_log_in(server, admin, LONG_USER_AGENT)
        register_and_log_in(server, other, "other/1")
        group.cli("users", "set-roles", admin, "user", "admin")
        group.cli("users", "set-roles", other, "user", "auditor", "support")
        created = server.post(
            "/api/tokens",
            json={"name": "deploys from the ci pipeline", "scopes": ["read"]},
            headers=bearer(token),
        )
        assert created.status_code == 201, created.text
        yield Site(group, server, f"http://localhost:{port}", admin, other)


def log_in(page: Page, site: Site, address: str) -> None:
    page.goto(f"{site.api}/?next=/account")
    page.get_by_label("Email or username").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site.api}/account")


def wait_until_shown(page: Page, path: str) -> None:
    """Until the page has loaded what it shows (its tables filled) and the network is quiet."""
    # (Not ``page.wait_for_function``: its string predicates are eval'd, which the CSP refuses.)
    if path == "/account":
        for table in ("#sessions", "#tokens", "#tenants"):
            expect(page.locator(f"{table} tr").first).to_be_attached()
    elif path == "/admin/users":
        expect(page.locator("#users tr").nth(1)).to_be_attached()
    else:
        expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.wait_for_load_state("networkidle")


def tour(
    browser: Browser, site: Site, viewport: ViewportSize, check: Callable[[Page, str], None]
) -> list[str]:
    """Visit every page — the login and register pages logged out, then the account and the
    users page as the admin — calling ``check(page, path)`` on each; the console errors seen."""
    context, page = new_page(browser, viewport=viewport)
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    for path in PAGES:
        if path == "/account":
            log_in(page, site, site.admin)
        else:
            page.goto(f"{site.api}{path}")
        wait_until_shown(page, path)
        check(page, path)
    context.close()
    return errors


# Widths ----------------------------------------------------------------------------------------

_WIDTHS = """() => ({
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth,
  sticking_out: [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5)
    .slice(0, 8)
    .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}`
      + `${e.className ? '.' + String(e.className).replace(/ /g, '.') : ''}`
      + ` (right edge ${Math.round(e.getBoundingClientRect().right)})`),
})"""


@BOTH_SIZES
def test_no_page_scrolls_sideways(browser: Browser, site: Site, viewport: ViewportSize) -> None:
    """``document.documentElement.scrollWidth <= innerWidth`` on every page; the failure names
    the elements that stick out."""
    label = "desktop" if viewport == DESKTOP else "phone"

    def check(page: Page, path: str) -> None:
        widths = page.evaluate(_WIDTHS)
        assert widths["scrollWidth"] <= widths["innerWidth"], (path, widths)
        screenshot(page, f"pages-{label}-{path.strip('/').replace('/', '-') or 'login'}")

    tour(browser, site, viewport, check)


@BOTH_SIZES
def test_the_users_list_shows_roles_as_text_and_links_each_user_page(
    browser: Browser, site: Site, viewport: ViewportSize
) -> None:
    """Roles are no free text to edit in the list (the user's page offers the deployment's as a
    choice): the list shows them, whole, and links each user's page."""
    context, page = new_page(browser, viewport=viewport)
    log_in(page, site, site.admin)
    page.goto(f"{site.api}/admin/users")
    wait_until_shown(page, "/admin/users")
    expect(page.locator("#users input")).to_have_count(0)
    for address, value in ((site.admin, "user, admin"), (site.other, "user, auditor, support")):
        user_row = page.locator("#users tr", has=page.get_by_role("link", name=address, exact=True))
        expect(user_row.locator("td").nth(2)).to_have_text(value)
        manage = page.get_by_role("link", name=f"Manage {address}")
        href = manage.get_attribute("href") or ""
        assert href.startswith("/admin/users/") and len(href) > len("/admin/users/"), href
    context.close()


# Accessibility ---------------------------------------------------------------------------------

# axe's default rules (WCAG 2.x A and AA, best practices) and its experimental ones, which
# include label-content-name-mismatch (WCAG 2.5.3); not the AAA ones (enhanced contrast).
_AXE_RUN = """
;axe.run(document, {
  resultTypes: ['violations'],
  rules: Object.fromEntries(
    axe.getRules(['experimental']).map((rule) => [rule.ruleId, { enabled: true }])),
}).then((results) => results.violations.map(
  (v) => `${v.id} (${v.impact}): ${v.help}\\n` + v.nodes.map(
    (node) => `    ${node.target.join(' ')}: ${node.failureSummary.replace(/\\n\\s*/g, ' ')}`
  ).join('\\n')))
"""


def axe_violations(page: Page) -> list[str]:
    """axe-core's violations on ``page``, one readable paragraph each."""
    violations: list[str] = page.evaluate(AXE.read_text(encoding="utf-8") + _AXE_RUN)
    return violations


@BOTH_SIZES
def test_axe_finds_no_violation_on_any_page(
    browser: Browser, site: Site, viewport: ViewportSize
) -> None:
    """Every page, with its tables filled: the sessions table holds another device's row with
    its "Log out" button, the users table an admin's and another user's row."""
    assert AXE.exists(), f"{AXE} is missing: run scripts/bootstrap (npm ci in tests/peers/axe)"
    found: dict[str, list[str]] = {}

    def check(page: Page, path: str) -> None:
        violations = axe_violations(page)
        if violations:
            found[path] = violations

    tour(browser, site, viewport, check)
    assert found == {}, "\n".join(
        f"{path}:\n  " + "\n  ".join(violations) for path, violations in found.items()
    )


def test_axe_is_heard_when_a_page_breaks_a_rule(browser: Browser, site: Site) -> None:
    """The check itself can fail: an image without a text alternative is reported."""
    context, page = new_page(browser)
    page.goto(f"{site.api}/register")
    wait_until_shown(page, "/register")
    page.evaluate("document.querySelector('main').append(document.createElement('img'))")
    assert any(v.startswith("image-alt ") for v in axe_violations(page))
    context.close()


# Polish ----------------------------------------------------------------------------------------


def test_no_page_logs_a_console_error(browser: Browser, site: Site) -> None:
    """No 404 for a favicon (each page links the package's own), and no 401 when the login
    page checks whether the visitor is logged in — which it still is, and goes on then."""
    favicons: list[str] = []

    def check(page: Page, path: str) -> None:
        favicons.append(page.locator("link[rel=icon]").get_attribute("href") or "")

    errors = tour(browser, site, DESKTOP, check)
    assert errors == []
    assert len(set(favicons)) == 1 and favicons[0].endswith(".svg"), favicons
    icon = site.server.get(favicons[0])
    assert icon.status_code == 200
    assert icon.headers["Content-Type"].startswith("image/svg+xml")

    context, page = new_page(browser)
    log_in(page, site, site.admin)
    messages: list[str] = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.goto(f"{site.api}/")
    expect(page).to_have_url(f"{site.api}/account")
    wait_until_shown(page, "/account")
    assert [m for m in messages if m.startswith("error")] == []
    context.close()


def test_an_account_without_tokens_says_so(browser: Browser, site: Site) -> None:
    address = unique_email("notokens")
    register_and_log_in(site.server, address, "script/1")
    context, page = new_page(browser)
    log_in(page, site, address)
    empty = page.locator("#tokens td")
    expect(empty).to_have_text("No API tokens yet.")
    expect(empty).to_have_attribute("colspan", "5")

    page.get_by_label("Token name").fill("first")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("button", name="Revoke token first")).to_be_visible()
    expect(page.locator("#tokens")).not_to_contain_text("No API tokens yet.")
    context.close()


_ONE_LINE = """(button) => {
  const style = getComputedStyle(button);
  const chrome = ['paddingTop', 'paddingBottom', 'borderTopWidth', 'borderBottomWidth']
    .reduce((sum, name) => sum + parseFloat(style[name]), 0);
  return button.getBoundingClientRect().height <= parseFloat(style.lineHeight) + chrome + 1;
}"""


@BOTH_SIZES
def test_row_buttons_keep_their_label_on_one_line(
    browser: Browser, site: Site, viewport: ViewportSize
) -> None:
    context, page = new_page(browser, viewport=viewport)
    log_in(page, site, site.admin)
    wait_until_shown(page, "/account")
    other_device = page.get_by_role("button", name=f"Log out {LONG_USER_AGENT_DEVICE}", exact=True)
    expect(other_device).to_have_text("Log out")
    buttons = page.locator("#sessions button, #tokens button")
    expect(buttons.first).to_be_visible()
    assert buttons.count() >= 3
    for button in buttons.all():
        assert button.evaluate(_ONE_LINE), button.text_content()
    page.goto(f"{site.api}/admin/users")
    wait_until_shown(page, "/admin/users")
    for button in page.locator("#users button, #users a.button").all():
        assert button.evaluate(_ONE_LINE), button.text_content()
    context.close()


def test_the_admin_row_buttons_line_up_with_its_text_and_spare_your_own_row(
    browser: Browser, site: Site
) -> None:
    context, page = new_page(browser, viewport=DESKTOP)
    log_in(page, site, site.admin)
    page.goto(f"{site.api}/admin/users")
    wait_until_shown(page, "/admin/users")

    expect(page.get_by_role("button", name=f"Disable {site.other}")).to_be_visible()
    expect(page.get_by_role("button", name=f"Disable {site.admin}")).to_have_count(0)
    expect(page.get_by_role("link", name=f"Manage {site.admin}")).to_be_visible()

    middles: dict[str, Any] = page.evaluate("""() => [...document.querySelectorAll('#users tr')]
      .map((tr) => {
        const range = document.createRange();
        range.selectNodeContents(tr.cells[0]);
        const text = range.getBoundingClientRect();
        const button = tr.querySelector('button, a.button').getBoundingClientRect();
        return [tr.cells[0].textContent, (text.top + text.bottom) / 2,
                (button.top + button.bottom) / 2];
      })""")
    for email, text_middle, button_middle in middles:
        assert abs(text_middle - button_middle) <= 2, (email, text_middle, button_middle)
    context.close()


def test_the_register_form_reports_every_invalid_field_at_once(
    browser: Browser, site: Site
) -> None:
    context, page = new_page(browser)
    page.goto(f"{site.api}/register")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()

    expect(page.locator("#email-error")).not_to_be_empty()
    expect(page.locator("#password-error")).to_contain_text("8")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Email")).to_be_focused()
    context.close()


def test_a_search_made_while_the_users_page_loads_is_the_one_shown(
    browser: Browser, site: Site
) -> None:
    """The first list is held back until the search has answered: the search is handled by the
    page (not sent as a plain form, which reloads the page), and the late first list does not
    replace its answer."""
    context, page = new_page(browser)
    log_in(page, site, site.admin)
    held: list[Route] = []

    def users(route: Route) -> None:
        if "q=" in route.request.url:
            route.continue_()
        else:
            held.append(route)

    page.route(re.compile(rf"^{re.escape(site.api)}/api/users\?"), users)
    with page.expect_request(lambda request: "/api/users?" in request.url):
        page.goto(f"{site.api}/admin/users")
    page.get_by_label("Search by email, username or name").fill(site.other)
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#users tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(site.other)

    with page.expect_response(lambda response: "/api/users?" in response.url) as late:
        held.pop().continue_()
    assert late.value.ok
    late.value.finished()
    # The page has had its turn to handle the late answer: a frame, then a task.
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => setTimeout(done)))")
    expect(page.locator("#page-label")).to_have_text("Page 1 of 1 (1 users)")
    expect(rows).to_have_count(1)
    assert page.url == f"{site.api}/admin/users"
    context.close()


@pytest.mark.parametrize(("path", "form"), [("/", "login-form"), ("/register", "register-form")])
def test_a_form_cannot_go_out_before_its_script_runs(
    browser: Browser, site: Site, path: str, form: str
) -> None:
    """Until the page's script has taken the form over, its button is disabled: Enter in the
    password field must not submit the form natively (a GET with the password in the URL)."""
    context, page = new_page(browser)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    script = "login.js" if path == "/" else "register.js"
    page.route(f"**/static/authgate/{script}", lambda route: route.abort())
    page.goto(site.api + path)
    submit = page.locator(f"#{form} button[type=submit]")
    expect(submit).to_be_disabled()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state()
    assert page.url == site.api + path
    assert not [url for url in requested if "password" in url.lower()]
    context.close()
