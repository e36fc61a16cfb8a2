"""Every response that hands over a credential — a token in the body, a session cookie, a login
flow's cookie — tells caches not to keep it (``Cache-Control: no-store``, RFC 6749 §5.1)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from werkzeug.wrappers import Response

from authgate.bootstrap import build_service
from authgate.core.oauth import ExternalProfile
from authgate.service import AuthService
from tests.helpers import (
    BROWSER,
    FRONTEND,
    PASSWORD,
    PROVIDERS,
    ScriptedProvider,
    StepClock,
    bearer,
    make_app,
    make_settings,
    register,
)

CREDENTIAL_FIELDS = ("access_token", "refresh_token", "token")
CREDENTIAL_COOKIES = ("authgate_session=", "authgate_refresh=", "authgate_oauth_flow=")


@dataclass(frozen=True)
class Seen:
    endpoint: str
    cache_control: str | None
    pragma: str | None


def carries_credential(response: Response) -> bool:
    """A token in the JSON body, or a cookie set to a value (not one being cleared)."""
    body = response.get_json(silent=True) if response.is_json else None
    if isinstance(body, dict) and any(body.get(name) for name in CREDENTIAL_FIELDS):
        return True
    return any(
        cookie.startswith(CREDENTIAL_COOKIES) and not cookie.split(";")[0].endswith("=")
        for cookie in response.headers.getlist("Set-Cookie")
    )


@pytest.fixture
def recorded(
    tmp_path: Path, clock: StepClock
) -> Iterator[tuple[AuthService, FlaskClient, list[Seen]]]:
    """An app with a provider, recording every response that carries a credential."""
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", oauth_providers=PROVIDERS)
    service = build_service(settings, clock=clock)
    provider = ScriptedProvider("corp")
    provider.profile = ExternalProfile("sub-1", "grace@example.com", True, "Grace", None)
    service.oauth_logins.clients = {"corp": provider}  # type: ignore[assignment]
    app: Flask = make_app(service)
    seen: list[Seen] = []

    @app.after_request
    def record(response: Response) -> Response:
        if carries_credential(response):
            headers = response.headers
            seen.append(
                Seen(request.endpoint or "", headers.get("Cache-Control"), headers.get("Pragma"))
            )
        return response

    yield service, app.test_client(), seen
    service.close()


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def provider_login(client: FlaskClient, **params: str) -> str:
    """A login at the scripted provider; where the callback sends the browser."""
    started = client.get("/api/oauth/corp/login", query_string=params)
    assert started.status_code == 302, started.data
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    back = client.get("/api/oauth/corp/callback", query_string={"state": state, "code": "c"})
    assert back.status_code == 302
    assert "error=" not in back.headers["Location"], back.headers["Location"]
    return back.headers["Location"]


def test_every_response_carrying_a_credential_says_no_store(
    recorded: tuple[AuthService, FlaskClient, list[Seen]],
) -> None:
    _, client, seen = recorded
    register(client)
    credentials = {"login": "ada@example.com", "password": PASSWORD}

    # Passwords: a script's login and refresh (tokens in the body), a browser's (cookies).
    script = client.post("/api/auth/login", json=credentials).json
    client.post("/api/auth/refresh", json={"refresh_token": script["refresh_token"]})
    client.post("/api/auth/login", json=credentials, headers=BROWSER)
    assert client.post("/api/auth/refresh", headers=BROWSER).status_code == 200
    # An API token's secret.
    created = client.post(
        "/api/tokens",
        json={"name": "ci", "scopes": ["read"]},
        headers=bearer(script["access_token"]),
    )
    assert created.status_code == 201
    # A provider: the flow cookie (login, link), the session cookies on the callback, and a
    # login handed off to a page (the exchange).
    provider_login(client)
    linked = client.post("/api/oauth/corp/link", headers=bearer(script["access_token"]))
    assert linked.status_code == 200
    verifier = "v" * 43
    landed = provider_login(
        client, next=f"{FRONTEND}/welcome", handoff_challenge=challenge_of(verifier)
    )
    code = landed.split("#authgate_handoff=", 1)[1]
    exchanged = client.post(
        "/api/oauth/exchange", json={"code": code, "code_verifier": verifier}, headers=BROWSER
    )
    assert exchanged.status_code == 200

    assert {s.endpoint for s in seen} == {
        "authgate_auth.login",
        "authgate_auth.refresh",
        "authgate_tokens.create_token",
        "authgate_oauth.login",
        "authgate_oauth.callback",
        "authgate_oauth.link",
        "authgate_oauth.exchange",
    }
    assert [s for s in seen if s.cache_control != "no-store" or s.pragma != "no-cache"] == []


def test_responses_without_a_credential_keep_their_caching(
    recorded: tuple[AuthService, FlaskClient, list[Seen]],
) -> None:
    _, client, seen = recorded

    jwks = client.get("/.well-known/jwks.json")
    register(client)

    assert jwks.headers["Cache-Control"] == "public, max-age=300"
    assert seen == []  # registering opens no session: the body is the user alone
