"""authgate's path parameters (ids) never contain control characters: such a path is a 404 from
the router, before authentication, any view or the database; the app's own routes are not
affected."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authgate.service import AuthService
from tests.helpers import bearer, count_sql, error_code, login, make_admin, register


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/users/%00abc"),
        ("PATCH", "/api/users/a%01b"),
        ("DELETE", "/api/users/abc/tokens/x%1fy"),
        ("DELETE", "/api/tokens/%0bABCDEFGHIJKLMNO"),
        ("DELETE", "/api/auth/sessions/s%7f%00"),
        ("GET", "/api/tenants/%1b"),
        ("GET", "/avatars/a%00.png"),
    ],
)
def test_an_id_with_a_control_character_is_not_found(
    client: FlaskClient, service: AuthService, method: str, path: str
) -> None:
    user = register(client)
    make_admin(service, user["id"])
    headers = bearer(login(client))
    assert client.get("/api/users", headers=headers).status_code == 200  # an admin: control

    with count_sql(service) as statements:
        response = client.open(
            path, method=method, headers={**headers, "Accept": "application/json"}
        )

    assert response.status_code == 404, response.data
    assert error_code(response) == "not_found"
    assert statements == []


def test_tab_and_newline_are_no_control_characters_here(
    client: FlaskClient, service: AuthService
) -> None:
    """As in every input field: they reach the service, which knows no such user."""
    user = register(client)
    make_admin(service, user["id"])
    headers = bearer(login(client))

    response = client.get("/api/users/a%09b", headers=headers)

    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_the_apps_own_routes_keep_their_converters(app: Flask, client: FlaskClient) -> None:
    @app.get("/echo/<value>")
    def echo(value: str) -> dict[str, str]:
        return {"value": value}

    response = client.get("/echo/a%00b")

    assert response.status_code == 200
    assert response.json == {"value": "a\x00b"}
