"""Logging out is idempotent: a session already ended (by a concurrent logout with the same
token, in this process or another) answers 204, never 404."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from flask.testing import FlaskClient

from authgate.service import AuthService
from tests.helpers import bearer, error_code, login, register


def test_logout_of_a_session_another_process_just_revoked_is_204(
    client: FlaskClient, service: AuthService
) -> None:
    """Another worker revoked the session; its announcement has not reached this process, so
    the token still authenticates here and the store finds nothing left to revoke."""
    register(client)
    token = login(client)
    principal = service.authenticate(token, "bearer")
    assert principal.session_id is not None
    assert service.store.revoke_session(principal.session_id, user_id=None, now=service.clock.now())
    response = client.post("/api/auth/logout", headers=bearer(token))
    assert response.status_code == 204
    assert len(response.headers.getlist("Set-Cookie")) == 2  # cookies cleared all the same


def test_concurrent_logouts_with_one_token_are_204_or_401(app: Flask, client: FlaskClient) -> None:
    register(client)
    token = login(client)
    start = threading.Barrier(20)

    def logout(_: int) -> tuple[int, str | None]:
        own = app.test_client()
        start.wait()
        response = own.post("/api/auth/logout", headers=bearer(token))
        return response.status_code, error_code(response) if response.status_code >= 400 else None

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(logout, range(20)))
    assert (204, None) in outcomes
    assert set(outcomes) <= {(204, None), (401, "token_revoked")}
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401


def test_deleting_a_session_of_another_user_stays_404(client: FlaskClient) -> None:
    register(client)
    register(client, "bob@example.com")
    ada, bob = login(client), login(client, "bob@example.com")
    bob_session = client.get("/api/auth/sessions", headers=bearer(bob)).json["sessions"][0]["id"]
    response = client.delete(f"/api/auth/sessions/{bob_session}", headers=bearer(ada))
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert client.get("/api/auth/me", headers=bearer(bob)).status_code == 200
