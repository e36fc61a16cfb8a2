"""A minimal browser for the OAuth end-to-end tests: one cookie jar for the authgate server (kept
by hand: ``requests`` will not send Secure cookies over http, a browser on localhost does) and a
cookie-keeping client for the provider, which it visits by top-level navigation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import requests

from tests.e2e.helpers import Server, set_cookies
from tests.e2e.peers.oidc_provider import OidcProvider
from tests.helpers import BROWSER, PASSWORD

FLOW_COOKIE = "authgate_oauth_flow"
SESSION_COOKIE = "authgate_session"


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class Browser:
    server: Server
    cookies: dict[str, str] = field(default_factory=dict)
    provider_http: httpx.Client = field(
        default_factory=lambda: httpx.Client(trust_env=False, timeout=10)
    )

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.server.request(method, path, headers=headers, **kwargs)
        for name, cookie in set_cookies(response).items():
            if cookie.value and cookie.attributes.get("max-age") != "0":
                self.cookies[name] = cookie.value
            else:
                self.cookies.pop(name, None)
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def start_login(
        self, provider: str, next_url: str | None = None, *, handoff_challenge: str | None = None
    ) -> str:
        """Open the login link; the provider URL it redirects to."""
        path = f"/api/oauth/{provider}/login"
        params = {"next": next_url, "handoff_challenge": handoff_challenge}
        response = self.get(path, params={k: v for k, v in params.items() if v})
        assert response.status_code == 302, response.text
        assert FLOW_COOKIE in self.cookies
        return response.headers["Location"]

    def finish(self, callback_url: str) -> requests.Response:
        """Follow the provider's redirect back to authgate's callback."""
        assert callback_url.startswith(self.server.env["AUTHGATE_PUBLIC_URL"]), callback_url
        response = self.get(path_and_query(callback_url))
        assert response.status_code == 302, response.text
        return response

    def login_with(
        self, op: OidcProvider, account: str, *, provider: str = "corp", next_url: str | None = None
    ) -> requests.Response:
        authorization_url = self.start_login(provider, next_url)
        callback_url = op.complete_login(self.provider_http, authorization_url, account=account)
        return self.finish(callback_url)

    def password_login(self, email: str, password: str = PASSWORD) -> None:
        response = self.request(
            "POST", "/api/auth/login", json={"login": email, "password": password}, headers=BROWSER
        )
        assert response.status_code == 200, response.text

    def me(self) -> requests.Response:
        return self.get("/api/auth/me")

    def close(self) -> None:
        self.provider_http.close()
