"""``GET /metrics`` through the Flask app: who may scrape, and that each series counts what the
app did. (Under two real gunicorn workers: tests/e2e/test_operations.py.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from authgate.bootstrap import build_service
from authgate.config import Settings, load_settings
from authgate.errors import ConfigError
from authgate.integrations.flask.metrics import MetricsMiddleware
from authgate.service import AuthService
from tests.helpers import (
    KEY_ENCRYPTION_KEY,
    PASSWORD,
    PROVIDERS,
    ScriptedProvider,
    StepClock,
    bearer,
    free_port,
    make_app,
    make_settings,
    register,
)

TOKEN = "metrics-token-0123456789abcdefghijklmnop"
LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def scrape(client: FlaskClient, **kwargs: Any) -> str:
    response = client.get("/metrics", environ_base=LOCAL, **kwargs)
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return response.get_data(as_text=True)


def _app(tmp_path: Path, clock: StepClock, **overrides: Any) -> tuple[AuthService, Flask]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", **overrides)
    service = build_service(settings, clock=clock)
    return service, make_app(service)


@pytest.fixture
def loopback(tmp_path: Path, clock: StepClock) -> Iterator[tuple[AuthService, FlaskClient]]:
    service, app = _app(
        tmp_path, clock, metrics="loopback", oauth_providers=PROVIDERS,
        login_rate_limit_per_account="3 per 5 minutes",
    )  # fmt: skip
    service.oauth_logins.clients = {"corp": ScriptedProvider("corp")}  # type: ignore[assignment]
    yield service, app.test_client()
    service.close()


@pytest.fixture
def token_client(tmp_path: Path, clock: StepClock) -> Iterator[FlaskClient]:
    service, app = _app(tmp_path, clock, metrics=TOKEN, trusted_proxies=1)
    yield app.test_client()
    service.close()


# Who may scrape ------------------------------------------------------------------------------


def test_loopback_serves_a_direct_scrape_from_this_host_only(
    loopback: tuple[AuthService, FlaskClient],
) -> None:
    _, client = loopback
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert remote.status_code == 403
    assert remote.json["error"]["code"] == "forbidden"
    # Through a proxy on this host: the peer is local, the client is not.
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        proxied = client.get("/metrics", environ_base=LOCAL, headers={header: "192.0.2.7"})
        assert proxied.status_code == 403, header


def test_loopback_is_judged_on_the_connection_not_a_trusted_forwarded_address(
    tmp_path: Path, clock: StepClock
) -> None:
    service, app = _app(tmp_path, clock, metrics="loopback", trusted_proxies=1)
    try:
        client = app.test_client()
        # ProxyFix would make this request's remote_addr 127.0.0.1.
        spoofed = client.get(
            "/metrics",
            environ_base={"REMOTE_ADDR": "192.0.2.7"},
            headers={"X-Forwarded-For": "127.0.0.1"},
        )
        assert spoofed.status_code == 403
    finally:
        service.close()


def test_a_token_is_required_and_checked(token_client: FlaskClient) -> None:
    missing = token_client.get("/metrics", environ_base=LOCAL)
    assert missing.status_code == 401
    assert missing.json["error"]["code"] == "authentication_required"
    for wrong in (TOKEN[:-1], TOKEN + "x", "", "x" * len(TOKEN)):
        response = token_client.get("/metrics", headers=bearer(wrong), environ_base=LOCAL)
        assert response.status_code == 401, wrong
    basic = token_client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    # From anywhere, through a proxy too, with the token.
    remote = token_client.get(
        "/metrics",
        headers={**bearer(TOKEN), "X-Forwarded-For": "192.0.2.7"},
        environ_base={"REMOTE_ADDR": "192.0.2.8"},
    )
    assert remote.status_code == 200
    assert "authgate_http_request_duration_seconds" in remote.get_data(as_text=True)


def test_production_refuses_a_weak_metrics_token(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    base = {
        "AUTHGATE_ENV": "production",
        "AUTHGATE_PUBLIC_URL": "https://auth.example.test",
        "AUTHGATE_DATABASE_URL": "sqlite:///x.db",
        "AUTHGATE_KEYS_DIR": str(keys),
        "AUTHGATE_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
    }
    for weak in ("short-token", "a" * 64, "0101010101010101010101010101010101"):
        with pytest.raises(ConfigError, match="AUTHGATE_METRICS is a weak token"):
            load_settings(environ={**base, "AUTHGATE_METRICS": weak})
    for fine in (TOKEN, "loopback", "off"):
        settings = Settings(env="production", metrics=fine)
        assert not [p for p in settings.production_problems() if "AUTHGATE_METRICS" in p]
    with pytest.raises(ConfigError, match="AUTHGATE_METRICS"):
        load_settings(environ={"AUTHGATE_METRICS": "two words"})


def test_metrics_off_serves_no_metrics_installs_no_hook_and_imports_no_prometheus_client(
    tmp_path: Path,
) -> None:
    """In a fresh interpreter: the default app answers 404 and never loads prometheus_client."""
    script = textwrap.dedent(
        f"""
        import sys
        from authgate.config import Settings, load_settings
        from authgate.integrations.flask.response_headers import ResponseHeaders
        from authgate.server import create_app
        app = create_app(load_settings(environ={{"AUTHGATE_INSTANCE_PATH": {str(tmp_path)!r}}}))
        client = app.test_client()
        assert client.get("/metrics").status_code == 404
        login = client.post("/api/auth/login", json={{"login": "a@b.c", "password": "x"}})
        assert login.status_code == 401
        assert type(app.wsgi_app) is ResponseHeaders, type(app.wsgi_app)
        assert "authgate.metrics" not in app.extensions
        assert not [m for m in sys.modules if m.startswith("prometheus_client")]
        assert "authgate.integrations.flask.metrics" not in sys.modules
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_metrics_on_wraps_the_app_once(loopback: tuple[AuthService, FlaskClient]) -> None:
    _, client = loopback
    assert client.application.wsgi_app.__class__ is MetricsMiddleware
    doc = client.get("/api/openapi.json").json
    assert "/metrics" in doc["paths"]


# What is counted -----------------------------------------------------------------------------


def test_logins_refreshes_and_throttling_are_counted_by_outcome(
    loopback: tuple[AuthService, FlaskClient],
) -> None:
    _, client = loopback
    register(client, "ada@example.com")
    good = {"login": "ada@example.com", "password": PASSWORD}
    bad = {"login": "bob@example.com", "password": "not the password"}
    for _ in range(2):
        assert client.post("/api/auth/login", json=good).status_code == 200
    for _ in range(3):
        assert client.post("/api/auth/login", json=bad).status_code == 401
    # The per-account limit (3 per 5 minutes) refuses the fourth wrong password for bob.
    assert client.post("/api/auth/login", json=bad).status_code == 429
    refresh_token = client.post("/api/auth/login", json=good).json["refresh_token"]
    rotated = client.post("/api/auth/refresh", json={"refresh_token": refresh_token})
    assert rotated.status_code == 200
    # Its successor used, the first token presented again is a reuse (no grace window).
    successor = {"refresh_token": rotated.json["refresh_token"]}
    assert client.post("/api/auth/refresh", json=successor).status_code == 200
    reused = client.post("/api/auth/refresh", json={"refresh_token": refresh_token})
    assert reused.status_code == 401
    assert client.post("/api/auth/refresh", json={"refresh_token": "junk"}).status_code in (
        400,
        401,
        422,
    )

    text = scrape(client)
    assert value(text, "authgate_logins_total", outcome="success") == 3
    assert value(text, "authgate_logins_total", outcome="invalid_credentials") == 3
    assert value(text, "authgate_logins_total", outcome="throttled") == 1
    assert value(text, "authgate_refreshes_total", outcome="success") == 2
    assert value(text, "authgate_refreshes_total", outcome=reused.json["error"]["code"]) >= 1
    assert value(text, "authgate_throttled_requests_total", route="/api/auth/login") == 1
    assert (
        value(
            text,
            "authgate_http_request_duration_seconds_count",
            route="/api/auth/login",
            method="POST",
            status="2xx",
        )
        == 3
    )
    assert (
        value(
            text,
            "authgate_http_request_duration_seconds_count",
            route="/api/auth/login",
            method="POST",
            status="4xx",
        )
        == 4
    )


def test_request_latency_is_labelled_by_url_rule_not_by_path(
    loopback: tuple[AuthService, FlaskClient],
) -> None:
    _, client = loopback
    client.delete("/api/notes/one")
    client.delete("/api/notes/two")
    client.get("/no/such/page/3f9a")
    client.open("/api/notes", method="BREW")
    text = scrape(client)
    assert (
        value(
            text,
            "authgate_http_request_duration_seconds_count",
            route="/api/notes/<note_id>",
            method="DELETE",
            status="4xx",
        )
        == 2
    )
    assert (
        value(
            text,
            "authgate_http_request_duration_seconds_count",
            route="unmatched",
            method="GET",
            status="4xx",
        )
        == 1
    )
    routes = {dict(labels).get("route") for (_, labels) in samples(text)}
    assert not any(route and ("one" in route or "3f9a" in route) for route in routes)
    methods = {dict(labels).get("method") for (_, labels) in samples(text)}
    assert "BREW" not in methods and "other" in methods


def test_revocations_announced_are_counted_by_kind(
    loopback: tuple[AuthService, FlaskClient],
) -> None:
    _, client = loopback
    register(client, "ada@example.com")
    good = {"login": "ada@example.com", "password": PASSWORD}
    tokens = [client.post("/api/auth/login", json=good).json["access_token"] for _ in range(3)]
    assert client.post("/api/auth/logout", headers=bearer(tokens[0])).status_code == 204
    assert client.post("/api/auth/logout-all", headers=bearer(tokens[1])).status_code == 204
    text = scrape(client)
    counted = {
        dict(labels)["kind"]: v
        for (name, labels), v in samples(text).items()
        if name == "authgate_revocations_total"
    }
    assert sum(counted.values()) >= 2, counted
    assert counted.get("session", 0) >= 1, counted


def test_oauth_callbacks_are_counted_by_provider_and_outcome(
    loopback: tuple[AuthService, FlaskClient],
) -> None:
    _, client = loopback
    login = client.get("/api/oauth/corp/login")
    state = parse_qs(urlsplit(login.headers["Location"]).query)["state"][0]
    done = client.get("/api/oauth/corp/callback", query_string={"state": state, "code": "c1"})
    assert "error=" not in done.headers["Location"]
    client.get("/api/oauth/corp/login")
    forged = client.get("/api/oauth/corp/callback", query_string={"state": "forged"})
    assert "error=oauth_state_mismatch" in forged.headers["Location"]
    client.get("/api/oauth/nosuch/callback", query_string={"state": "x"})
    # A page's own ``next`` may carry anything: it never becomes a label value.
    client.get("/api/oauth/corp/login", query_string={"next": "/?error=made_up"})
    client.get("/api/oauth/corp/callback", query_string={"state": "forged"})
    text = scrape(client)
    assert value(text, "authgate_oauth_logins_total", provider="corp", outcome="success") == 1
    assert (
        value(text, "authgate_oauth_logins_total", provider="corp", outcome="oauth_state_mismatch")
        == 2
    )
    unknown = [
        count
        for (name, labels), count in samples(text).items()
        if name == "authgate_oauth_logins_total" and dict(labels)["provider"] == "unknown"
    ]
    assert unknown == [1]
    assert "made_up" not in text and "nosuch" not in text


def _forgot_and_deliver(tmp_path: Path, clock: StepClock, **overrides: Any) -> str:
    """A password reset asked for and its mail delivered (or tried) now: the scrape after."""
    service, app = _app(tmp_path, clock, metrics="loopback", **overrides)
    try:
        client = app.test_client()
        register(client, "ada@example.com")
        forgot = client.post("/api/auth/password/forgot", json={"email": "ada@example.com"})
        assert forgot.status_code == 202, forgot.json
        assert service.tasks.wait_idle()  # the mail is queued after the answer
        service.mail_sender.deliver_due()
        return scrape(client)
    finally:
        service.close()


def _mail_outcomes(text: str) -> dict[str, float]:
    outcomes: dict[str, float] = {}
    for (name, labels), count in samples(text).items():
        if name == "authgate_mail_deliveries_total":
            outcome = dict(labels)["outcome"]
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    return outcomes


def test_mail_deliveries_are_counted_sent(tmp_path: Path, clock: StepClock) -> None:
    outcomes = _mail_outcomes(_forgot_and_deliver(tmp_path, clock))
    assert outcomes.get("sent", 0) >= 1, outcomes
    assert outcomes.get("failed", 0) == 0


def test_mail_deliveries_are_counted_failed(tmp_path: Path, clock: StepClock) -> None:
    closed = free_port()  # nothing listens: every attempt fails, to be tried again later
    text = _forgot_and_deliver(
        tmp_path,
        clock,
        smtp_url=f"smtp://127.0.0.1:{closed}",
        mail_from="no-reply@example.com",
    )
    outcomes = _mail_outcomes(text)
    assert outcomes.get("failed", 0) >= 1, outcomes
    assert outcomes.get("sent", 0) == 0


def test_a_login_that_needs_a_second_factor_is_counted_as_such(
    tmp_path: Path, clock: StepClock
) -> None:
    service, app = _app(tmp_path, clock, metrics="loopback", mfa_required_roles=("user",))
    try:
        client = app.test_client()
        register(client, "ada@example.com")
        login = client.post(
            "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
        )
        assert login.status_code == 401
        code = login.json["error"]["code"]
        assert code.startswith("mfa_"), code
        assert value(scrape(client), "authgate_logins_total", outcome=code) == 1
    finally:
        service.close()


def test_second_factor_steps_and_passkey_logins_are_counted(
    loopback: tuple[AuthService, FlaskClient],
) -> None:
    _, client = loopback
    verify = client.post("/api/auth/mfa/verify", json={"mfa_token": "junk", "code": "123456"})
    passkey = client.post("/api/auth/passkeys/login", json={"credential": {}})
    assert verify.status_code >= 400 and passkey.status_code >= 400
    found = samples(scrape(client))

    def total(name: str) -> float:
        return sum(v for (n, _), v in found.items() if n == name)

    assert total("authgate_mfa_verifications_total") == 1
    assert total("authgate_passkey_logins_total") == 1
    outcomes = {dict(labels)["outcome"] for (n, labels) in found if n.endswith("logins_total")}
    assert "success" not in outcomes
