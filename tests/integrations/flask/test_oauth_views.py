"""The browser-navigation views of "Log in with ...": whatever goes wrong, the browser is sent
back with ``?error=<code>`` and the reason is logged — never a 500 page, never a forged log line.
(The protocol runs end to end against a real OpenID Provider in tests/e2e/test_oauth.py.)"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from authgate.bootstrap import build_service
from authgate.core.oauth import ExternalProfile, FlowSecrets, ResponseIssuer
from authgate.service import AuthService
from tests.helpers import (
    FRONTEND,
    PROVIDERS,
    PUBLIC_URL,
    ScriptedProvider,
    StepClock,
    make_app,
    make_settings,
)

FLOW_COOKIE = "authgate_oauth_flow"


class BrokenProvider(ScriptedProvider):
    """A provider client with a bug (or a library raising what nobody expected)."""

    def __init__(self, name: str, *, at: str) -> None:
        super().__init__(name)
        self.at = at

    def authorization_url(self, *, redirect_uri: str, flow: FlowSecrets) -> str:
        if self.at == "login":
            raise RuntimeError("secret internal detail")
        return super().authorization_url(redirect_uri=redirect_uri, flow=flow)

    def fetch_profile(self, *, code: str, redirect_uri: str, flow: FlowSecrets) -> ExternalProfile:
        raise KeyError("secret internal detail")


@pytest.fixture
def oauth_app(tmp_path: Path, clock: StepClock) -> Iterator[tuple[AuthService, FlaskClient]]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", oauth_providers=PROVIDERS)
    service = build_service(settings, clock=clock)
    service.oauth_logins.clients = {  # type: ignore[assignment]
        "corp": ScriptedProvider("corp"),
        "trusted": BrokenProvider("trusted", at="callback"),
    }
    yield service, make_app(service).test_client()
    service.close()


def start(client: FlaskClient, provider: str, next_url: str | None = None) -> str:
    """``/login`` as a browser; the state sent to the provider (the flow cookie is kept)."""
    params = {"next": next_url} if next_url else {}
    response = client.get(f"/api/oauth/{provider}/login", query_string=params)
    assert response.status_code == 302, response.data
    return parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]


def oauth_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "authgate.oauth"]


def test_an_unexpected_error_at_the_callback_redirects_with_oauth_failed_and_is_logged(
    oauth_app: tuple[AuthService, FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = oauth_app
    state = start(client, "trusted", f"{FRONTEND}/welcome")
    caplog.set_level(logging.WARNING, logger="authgate.oauth")

    response = client.get("/api/oauth/trusted/callback", query_string={"state": state, "code": "c"})

    assert response.status_code == 302
    assert response.headers["Location"] == f"{PUBLIC_URL}/?error=oauth_failed"
    assert b"secret" not in response.data
    assert response.headers["Cache-Control"] == "no-store"
    assert f"{FLOW_COOKIE}=;" in response.headers["Set-Cookie"]  # the flow cookie is cleared
    request_id = response.headers["X-Request-ID"]
    (failure,) = oauth_records(caplog)  # once: no WARNING line besides it
    assert failure.levelno == logging.ERROR
    assert failure.getMessage() == (
        f"OAuth callback with trusted failed unexpectedly [request {request_id}]"
    )
    assert failure.exc_info is not None and failure.exc_info[0] is KeyError


def test_an_unexpected_error_at_login_redirects_to_next_with_oauth_failed(
    oauth_app: tuple[AuthService, FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    service, client = oauth_app
    service.oauth_logins.clients["trusted"] = BrokenProvider("trusted", at="login")
    caplog.set_level(logging.WARNING, logger="authgate.oauth")

    response = client.get("/api/oauth/trusted/login", query_string={"next": "/account"})

    assert response.status_code == 302
    assert response.headers["Location"] == f"{PUBLIC_URL}/account?error=oauth_failed"
    assert FLOW_COOKIE not in response.headers.get("Set-Cookie", "")
    (failure,) = oauth_records(caplog)  # once: no WARNING line besides it
    assert failure.levelno == logging.ERROR
    request_id = response.headers["X-Request-ID"]
    assert failure.getMessage() == (
        f"OAuth login with trusted failed unexpectedly [request {request_id}]"
    )
    assert failure.exc_info is not None and failure.exc_info[0] is RuntimeError


def test_a_failed_callback_is_logged_at_warning_with_its_code(
    oauth_app: tuple[AuthService, FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = oauth_app
    start(client, "corp")
    caplog.set_level(logging.INFO, logger="authgate.oauth")

    response = client.get("/api/oauth/corp/callback", query_string={"state": "forged"})

    assert response.headers["Location"] == f"{PUBLIC_URL}/?error=oauth_state_mismatch"
    (record,) = oauth_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("OAuth with corp failed: oauth_state_mismatch (")


def test_an_unknown_provider_in_the_path_cannot_forge_a_log_line(
    oauth_app: tuple[AuthService, FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = oauth_app
    caplog.set_level(logging.INFO, logger="authgate.oauth")

    response = client.get(
        "/api/oauth/corp%0aINFO forged line/callback", query_string={"state": "x"}
    )

    assert response.status_code == 302
    assert response.headers["Location"] == f"{PUBLIC_URL}/?error=oauth_state_mismatch"
    (record,) = oauth_records(caplog)
    message = record.getMessage()
    assert "\n" not in message
    assert message.startswith("OAuth with 'corp\\nINFO forged line' failed: oauth_state_mismatch")


def test_the_callback_reads_iss_and_refuses_another_issuer(
    oauth_app: tuple[AuthService, FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    """A provider that says it always sends ``iss`` (RFC 9207): its own is what lets the login
    through; another one sends the browser back to ``next`` with the error, logged, and the
    code is never exchanged."""
    service, client = oauth_app
    corp = service.oauth_logins.clients["corp"]
    assert isinstance(corp, ScriptedProvider)
    corp.issuer = ResponseIssuer("https://idp.example", required=True)
    caplog.set_level(logging.INFO, logger="authgate.oauth")

    state = start(client, "corp", f"{FRONTEND}/welcome")
    forged = client.get(
        "/api/oauth/corp/callback",
        query_string={"state": state, "code": "c1", "iss": "https://evil.example.test"},
    )

    assert forged.headers["Location"] == f"{FRONTEND}/welcome?error=oauth_issuer_mismatch"
    assert not any(c.startswith("authgate_session=") for c in forged.headers.getlist("Set-Cookie"))
    assert corp.exchanged == []
    (record,) = oauth_records(caplog)
    assert record.getMessage().startswith("OAuth with corp failed: oauth_issuer_mismatch (")
    assert "evil" not in record.getMessage()

    state = start(client, "corp", f"{FRONTEND}/welcome")
    genuine = client.get(
        "/api/oauth/corp/callback",
        query_string={"state": state, "code": "c2", "iss": "https://idp.example"},
    )

    assert genuine.headers["Location"] == f"{FRONTEND}/welcome"
    assert any(c.startswith("authgate_session=") for c in genuine.headers.getlist("Set-Cookie"))
    assert corp.exchanged == ["c2"]


# A second factor after the provider's login ------------------------------------------------------


@pytest.fixture
def mfa_oauth_app(tmp_path: Path, clock: StepClock) -> Iterator[tuple[AuthService, FlaskClient]]:
    """The trusted provider vouches for ada@example.com, a verified password account with an
    authenticator app on (its recovery codes in ``service.test_codes``)."""
    from tests.service.test_oauth_logins import verified_password_user
    from tests.service.test_second_factors import enroll

    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", oauth_providers=PROVIDERS)
    service = build_service(settings, clock=clock)
    trusted = ScriptedProvider("trusted")
    trusted.profile = ExternalProfile("t-ada", "ada@example.com", True, "Ada", None)
    service.oauth_logins.clients = {"trusted": trusted}  # type: ignore[assignment]
    _, codes = enroll(service, verified_password_user(service, "ada@example.com"))
    service.test_codes = codes  # type: ignore[attr-defined]
    yield service, make_app(service).test_client()
    service.close()


def _cookies(response: object) -> dict[str, str]:
    headers = response.headers.getlist("Set-Cookie")  # type: ignore[attr-defined]
    return {h.split("=", 1)[0]: h for h in headers}


def test_the_callback_of_a_user_with_a_second_factor_sends_the_browser_to_its_second_step(
    mfa_oauth_app: tuple[AuthService, FlaskClient],
) -> None:
    service, client = mfa_oauth_app
    state = start(client, "trusted", "/account")

    response = client.get("/api/oauth/trusted/callback", query_string={"state": state, "code": "c"})

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.path, location.query) == ("/account", "")  # nothing in a logged URL
    fragment = parse_qs(location.fragment)
    assert fragment["authgate_mfa_step"] == ["mfa_required"]
    assert fragment["authgate_mfa_methods"] == ["totp,recovery_code"]
    cookies = _cookies(response)
    assert "authgate_session" not in cookies and "authgate_refresh" not in cookies
    assert "HttpOnly" in cookies["authgate_mfa"] and "Path=/api/auth" in cookies["authgate_mfa"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    codes: list[str] = service.test_codes  # type: ignore[attr-defined]
    verified = client.post(
        "/api/auth/mfa/verify",
        json={"mfa_token": fragment["authgate_mfa"][0], "recovery_code": codes[0]},
        headers={"Origin": PUBLIC_URL, "X-Requested-With": "fetch"},
    )
    assert verified.status_code == 200, verified.json
    assert {"authgate_session", "authgate_refresh"} <= set(_cookies(verified))
    me = client.get("/api/auth/me")
    assert me.status_code == 200 and me.json["user"]["email"] == "ada@example.com"


def test_the_exchange_of_a_handed_off_login_answers_mfa_required_like_a_password_login(
    mfa_oauth_app: tuple[AuthService, FlaskClient],
) -> None:
    import base64
    import hashlib

    service, client = mfa_oauth_app
    verifier = "w" * 64
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    login = client.get(
        "/api/oauth/trusted/login",
        query_string={"next": f"{FRONTEND}/app", "handoff_challenge": challenge},
    )
    state = parse_qs(urlsplit(login.headers["Location"]).query)["state"][0]
    back = client.get("/api/oauth/trusted/callback", query_string={"state": state, "code": "c"})
    handoff = parse_qs(urlsplit(back.headers["Location"]).fragment)["authgate_handoff"][0]
    page = {"Origin": FRONTEND, "X-Requested-With": "fetch"}

    refused = client.post(
        "/api/oauth/exchange", json={"code": handoff, "code_verifier": verifier}, headers=page
    )

    assert refused.status_code == 401, refused.json
    assert refused.json["error"]["code"] == "mfa_required"
    assert refused.json["mfa"]["methods"] == ["totp", "recovery_code"]
    cookies = _cookies(refused)
    assert "authgate_session" not in cookies and "authgate_mfa" in cookies
    codes: list[str] = service.test_codes  # type: ignore[attr-defined]
    verified = client.post(
        "/api/auth/mfa/verify",
        json={"mfa_token": refused.json["mfa"]["token"], "recovery_code": codes[1]},
        headers=page,
    )
    assert verified.status_code == 200, verified.json
    assert "authgate_session" in _cookies(verified)
