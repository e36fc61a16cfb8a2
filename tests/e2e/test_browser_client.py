"""``authgate.js`` in Debian's Chromium against the real server under gunicorn: the one-time
refresh of an expired access token (shared by concurrent calls, and across tabs through a Web
Lock), a server that is down, a cookie that does not come back, 401/403 messages, and the base
URL chosen by the page's hostname. Expired tokens are real ones, issued by the service with a
clock set in the past (no waiting for a TTL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from authgate.bootstrap import build_service
from authgate.core.clocks import FrozenClock
from authgate.integrations.flask.transport import REFRESH_COOKIE_PATH
from authgate.service import ClientInfo
from tests.e2e.browser import EXAMPLE_FRONTEND, new_page, static_site
from tests.e2e.helpers import Server, ServerGroup, authgate_settings, server_group, unique_email
from tests.helpers import PASSWORD, bearer, free_port

# Run in a page: a client for the API at `api` (a module imported from the server itself).
CLIENT = "const { createClient } = await import(`${api}/authgate.js`);"


# Every test here fails on an uncaught error or a CSP violation on any of its pages.
pytestmark = pytest.mark.usefixtures("page_problems")


@pytest.fixture(scope="module")
def frontend() -> Iterator[str]:
    """The example frontend on http://localhost:<port>."""
    port = free_port()
    with static_site(EXAMPLE_FRONTEND, port):
        yield f"http://localhost:{port}"


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, frontend: str
) -> Iterator[tuple[ServerGroup, Server, str]]:
    with server_group("sqlite", tmp_path_factory) as group:
        port = free_port()
        (server,) = group.start(port=port, origins=frontend, public_url=f"http://localhost:{port}")
        yield group, server, f"http://localhost:{port}"


def registered(server: Server) -> str:
    address = unique_email("client")
    response = server.post("/api/auth/register", json={"email": address, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return address


def expired_session(context: BrowserContext, server: Server, api: str, address: str) -> None:
    """Give the browser the cookies of a login made an hour ago: the access token (a 15-minute
    one) has expired, the refresh token has not."""
    service = build_service(
        authgate_settings(server.env), clock=FrozenClock(datetime.now(UTC) - timedelta(hours=1))
    )
    try:
        issued = service.sessions.login(address, PASSWORD, ClientInfo(user_agent="an hour ago"))
    finally:
        service.close()
    cookie: dict[str, Any] = {
        "domain": "localhost",
        "secure": True,
        "httpOnly": True,
        "sameSite": "Lax",
    }
    context.add_cookies(
        [
            {**cookie, "name": "authgate_session", "value": issued.access_token, "path": "/"},
            {
                **cookie,
                "name": "authgate_refresh",
                "value": issued.refresh_token,
                "path": REFRESH_COOKIE_PATH,
            },
        ]
    )


def blank_frontend_page(page: Page, frontend: str) -> None:
    """A page on the frontend's origin that runs no client of its own."""
    page.goto(f"{frontend}/README.md")


def is_refresh(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith("/api/auth/refresh")


def test_an_expired_access_token_is_refreshed_once_for_several_concurrent_calls(
    browser: Browser, api: tuple[ServerGroup, Server, str], frontend: str
) -> None:
    _, server, base = api
    address = registered(server)
    context, page = new_page(browser)
    expired_session(context, server, base, address)
    refreshes: list[Request] = []
    me: list[int] = []
    page.on("request", lambda r: refreshes.append(r) if is_refresh(r) else None)
    page.on("response", lambda r: me.append(r.status) if r.url.endswith("/api/auth/me") else None)
    blank_frontend_page(page, frontend)

    statuses = page.evaluate(
        f"""async (api) => {{ {CLIENT}
        const auth = createClient({{ baseUrl: api }});
        const calls = [1, 2, 3, 4].map(() => auth.fetch('/api/auth/me'));
        return Promise.all(calls.map(async (call) => {{
          const response = await call;
          return [response.status, (await response.json()).user?.email ?? null];
        }}));
        }}""",
        base,
    )

    assert statuses == [[200, address]] * 4
    assert len(refreshes) == 1, [r.url for r in refreshes]
    # Each call that went out with the expired token got 401 and was retried once, with the new
    # one. On a loaded machine a call may go out only after the refresh finished: then its first
    # answer is the 200.
    assert me.count(200) == 4, me
    assert 1 <= me.count(401) <= 4, me
    assert len(me) == 4 + me.count(401), me
    context.close()


def test_tabs_wait_for_each_others_refresh_through_a_web_lock(
    browser: Browser, api: tuple[ServerGroup, Server, str], frontend: str
) -> None:
    """Two refreshes with one refresh token look like a replay (and revoke the session): while
    another tab holds the refresh lock (and refreshes), this tab's client waits, then refreshes
    with the rotated token the other tab left in the cookie jar."""
    _, server, base = api
    address = registered(server)
    context, other_tab = new_page(browser)
    expired_session(context, server, base, address)
    this_tab = context.new_page()
    order: list[str] = []
    for name, tab in (("other", other_tab), ("this", this_tab)):
        tab.on("request", lambda r, name=name: order.append(name) if is_refresh(r) else None)
        blank_frontend_page(tab, frontend)
    other_tab.evaluate(
        """() => new Promise((held) => navigator.locks.request('authgate-refresh', () => {
          held();
          return new Promise((release) => { window.releaseRefreshLock = release; });
        }))"""
    )

    expired = this_tab.expect_response(lambda r: r.url.endswith("/api/auth/me") and r.status == 401)
    with expired:
        this_tab.evaluate(
            f"""(api) => {{ window.called = (async () => {{ {CLIENT}
              const response = await createClient({{ baseUrl: api }}).fetch('/api/auth/me');
              return response.status;
            }})(); }}""",
            base,
        )
    refreshed = other_tab.evaluate(
        """async (api) => {
          const response = await fetch(`${api}/api/auth/refresh`, {
            method: 'POST', credentials: 'include', headers: { 'X-Requested-With': 'fetch' } });
          window.releaseRefreshLock();
          return response.status;
        }""",
        base,
    )

    assert refreshed == 200
    assert this_tab.evaluate("window.called") == 200
    assert order == ["other", "this"]
    still = other_tab.evaluate(
        "(api) => fetch(`${api}/api/auth/me`, { credentials: 'include' }).then((r) => r.status)",
        base,
    )
    assert still == 200  # no replay: the session lives on
    context.close()


def test_a_server_that_went_down_is_explained_on_the_page(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, frontend: str
) -> None:
    with server_group("sqlite", tmp_path_factory) as group:
        port = free_port()
        (server,) = group.start(port=port, origins=frontend, public_url=f"http://localhost:{port}")
        base = f"http://localhost:{port}"
        address = registered(server)
        context, page = new_page(browser)
        page.goto(f"{frontend}/?api={base}")
        page.get_by_label("Email or username").fill(address)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#who")).to_have_text(address)

        server.stop()
        page.get_by_role("button", name="Call a protected endpoint").click()

        problem = page.locator("#problem")
        expect(problem).to_contain_text(
            f"Cannot reach the authentication server at {base}: it may be down"
        )
        context.close()


def test_a_session_cookie_that_does_not_come_back_is_explained_on_the_page(
    browser: Browser, api: tuple[ServerGroup, Server, str], frontend: str
) -> None:
    """The frontend (localhost) addresses the API as 127.0.0.1 — another site than its public
    URL — so the SameSite=Lax session cookie is third-party and refused: the login answers 200,
    and the page says the cookie does not come back instead of "nothing happens", naming the
    other host name (the browser said Sec-Fetch-Site: cross-site) and the fix."""
    _, server, base = api
    address = registered(server)
    other_name = base.replace("localhost", "127.0.0.1")
    context, page = new_page(browser)
    page.goto(f"{frontend}/?api={other_name}")
    page.get_by_label("Email or username").fill(address)
    page.get_by_label("Password").fill(PASSWORD)

    with page.expect_response(f"{other_name}/api/auth/login") as login:
        page.get_by_role("button", name="Log in").click()

    assert login.value.status == 200
    problem = page.locator("#problem")
    expect(problem).to_contain_text("Logged in, but the session cookie does not come back")
    expect(problem).to_contain_text("No session cookie arrived")
    expect(problem).to_contain_text(
        f"the API was called as {other_name.removeprefix('http://')} but its public URL is {base}"
    )
    expect(problem).to_contain_text("Sec-Fetch-Site: cross-site")
    expect(problem).to_contain_text(f"createClient({{ baseUrl: '{base}' }})")
    expect(problem).not_to_contain_text("credentials: 'include'")
    expect(page.locator("#signed-in")).to_be_hidden()
    context.close()


def test_401_and_403_carry_the_servers_message_and_the_base_url_follows_the_hostname(
    browser: Browser, api: tuple[ServerGroup, Server, str], frontend: str
) -> None:
    _, server, base = api
    address = registered(server)
    token = server.post("/api/auth/login", json={"login": address, "password": PASSWORD}).json()[
        "access_token"
    ]
    forbidden = server.get("/api/users", headers=bearer(token)).json()["error"]
    anonymous = server.get("/api/tokens").json()["error"]
    assert forbidden["code"] == "insufficient_role"
    context, page = new_page(browser)
    blank_frontend_page(page, frontend)

    outcome = page.evaluate(
        f"""async ([api, login, password]) => {{ {CLIENT}
        const auth = createClient({{ local: api, deployed: 'https://auth.example.com' }});
        const failure = (e) => ({{
          kind: e.kind, status: e.status, code: e.code, message: e.message }});
        const before = await auth.json('/api/tokens').catch(failure);
        await auth.login(login, password);
        const after = await auth.json('/api/users').catch(failure);
        return {{ baseUrl: auth.baseUrl, before, after }};
        }}""",
        [base, address, PASSWORD],
    )

    assert outcome["baseUrl"] == base  # localhost page → the local server
    assert outcome["before"] == {"kind": "http", "status": 401, **anonymous}
    assert outcome["after"] == {"kind": "http", "status": 403, **forbidden}
    context.close()
