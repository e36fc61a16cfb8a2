"""A protected request costs no SQL in steady state, yet revocation is immediate."""

from __future__ import annotations

from flask.testing import FlaskClient

from authgate.service import AuthService
from tests.helpers import BROWSER, PASSWORD, StepClock, bearer, count_sql, login, register


def test_bearer_requests_run_no_sql_in_steady_state(
    client: FlaskClient, service: AuthService
) -> None:
    register(client)
    token = login(client)
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    with count_sql(service) as statements:
        for _ in range(20):
            assert client.get("/api/notes", headers=bearer(token)).status_code == 200
            assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    assert statements == []


def test_cookie_requests_run_no_sql_in_steady_state(
    client: FlaskClient, service: AuthService
) -> None:
    register(client)
    client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}, headers=BROWSER
    )
    with count_sql(service) as statements:
        for _ in range(20):
            assert client.get("/api/auth/me").status_code == 200
    assert statements == []


def test_a_cold_process_loads_session_and_user_once(
    client: FlaskClient, service: AuthService
) -> None:
    register(client)
    token = login(client)
    service.cache.clear()
    with count_sql(service) as statements:
        for _ in range(5):
            assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, statements  # the session with its user; cached afterwards


def test_a_cold_process_loads_an_api_token_with_its_user_and_membership_once(
    client: FlaskClient, service: AuthService
) -> None:
    register(client)
    created = client.post(
        "/api/tokens", json={"name": "ci", "scopes": ["read"]}, headers=bearer(login(client))
    )
    assert created.status_code == 201, created.json
    service.cache.clear()
    with count_sql(service) as statements:
        for _ in range(5):
            response = client.get("/api/auth/me", headers=bearer(created.json["token"]))
            assert response.status_code == 200
    assert len(statements) == 1, statements  # the token, its user, its membership; cached after


def test_expired_access_token_is_401_token_expired(
    client: FlaskClient, service: AuthService, clock: StepClock
) -> None:
    register(client)
    token = login(client)
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    clock.advance(service.settings.access_token_ttl_seconds + 1)
    response = client.get("/api/auth/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_expired"


def test_revocation_from_the_log_reaches_a_process_that_cached_the_token(
    client: FlaskClient, service: AuthService
) -> None:
    """Another process revoked the session: this one learns it from the log, not the request."""
    register(client)
    token = login(client)
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    user = service.store.find_user_by_login("ada@example.com")
    assert user is not None
    service.store.revoke_user_sessions(user.id, now=service.clock.now())  # no announce
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200  # still cached
    assert service.feed.poll_once() >= 1
    response = client.get("/api/auth/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_revoked"


def test_last_seen_is_recorded_in_batches(client: FlaskClient, service: AuthService) -> None:
    register(client)
    token = login(client)
    before = client.get("/api/auth/sessions", headers=bearer(token)).json["sessions"][0]
    service.clock.advance(30)  # type: ignore[attr-defined]
    client.get("/api/auth/me", headers=bearer(token))
    service.feed.flush_last_seen()
    after = client.get("/api/auth/sessions", headers=bearer(token)).json["sessions"][0]
    assert after["last_seen_at"] > before["last_seen_at"]
