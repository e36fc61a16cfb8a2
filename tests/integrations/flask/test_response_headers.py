"""Every response of an app with ``AuthGate(app)`` carries ``X-Request-ID`` and ``Vary: Origin``
(``integrations/flask/response_headers.py``), whichever view, handler or 404 made it; CORS headers
only for an allowed ``Origin``."""

from __future__ import annotations

from flask import Flask, Response
from flask.testing import FlaskClient

from tests.helpers import FRONTEND


def test_the_apps_own_responses_carry_the_headers(app: Flask, client: FlaskClient) -> None:
    @app.get("/own")
    def own() -> Response:
        response = Response("hello")
        response.headers["X-Request-ID"] = "set-by-the-view"
        response.headers["Vary"] = "Accept"
        return response

    response = client.get("/own", headers={"X-Request-ID": "req-42"})

    assert response.headers.getlist("X-Request-ID") == ["req-42"]  # ours, once
    assert response.headers.getlist("Vary") == ["Accept, Origin"]
    assert "Access-Control-Allow-Origin" not in response.headers  # no Origin, no CORS


def test_a_404_outside_authgate_carries_them_too(client: FlaskClient) -> None:
    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert len(response.headers["X-Request-ID"]) == 32
    assert response.headers["Vary"] == "Origin"


def test_cors_headers_only_for_an_allowed_origin(client: FlaskClient) -> None:
    allowed = client.get("/api/auth/me", headers={"Origin": FRONTEND})
    other = client.get("/api/auth/me", headers={"Origin": "https://evil.example.test"})

    assert allowed.status_code == other.status_code == 401
    assert allowed.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Origin" not in other.headers
    assert allowed.headers.getlist("Vary") == other.headers.getlist("Vary") == ["Origin"]


def test_each_request_gets_its_own_id(client: FlaskClient) -> None:
    ids = {client.get("/api/auth/me").headers["X-Request-ID"] for _ in range(3)}

    assert len(ids) == 3
