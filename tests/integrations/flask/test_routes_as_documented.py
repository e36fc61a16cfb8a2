"""Routes that behave as the OpenAPI document says: what schemathesis found
(tests/http/test_openapi_schemathesis.py), held here one by one."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.helpers import bearer, create_token, error_code, login, register


def test_tokens_scopes_is_no_token_id_its_allow_names_get_only(client: FlaskClient) -> None:
    register(client)
    session = login(client)

    options = client.options("/api/tokens/scopes", headers=bearer(session))
    delete = client.delete("/api/tokens/scopes", headers=bearer(session))

    assert set(options.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert delete.status_code == 405
    assert set(delete.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_the_route_of_a_token_still_takes_every_token_id(client: FlaskClient) -> None:
    register(client)
    session = login(client)
    tokens = [create_token(client, session, name=f"t{i}") for i in range(5)]

    for token in tokens:
        revoke = client.delete(f"/api/tokens/{token['id']}", headers=bearer(session))
        assert revoke.status_code == 204, token["id"]
    not_an_id = client.delete(f"/api/tokens/{tokens[0]['id']}x", headers=bearer(session))
    assert not_an_id.status_code == 404


def test_logout_refuses_a_body_that_is_not_what_it_takes_even_with_a_valid_token(
    client: FlaskClient,
) -> None:
    register(client)
    session = login(client)

    not_an_object = client.post("/api/auth/logout", json=[None, None], headers=bearer(session))
    unknown_field = client.post("/api/auth/logout", json={"token": "x"}, headers=bearer(session))

    assert (not_an_object.status_code, error_code(not_an_object)) == (400, "bad_request")
    assert (unknown_field.status_code, error_code(unknown_field)) == (422, "validation_failed")
    # Refused before anything was done: the session is still open, and a proper logout ends it.
    assert client.get("/api/auth/me", headers=bearer(session)).status_code == 200
    assert client.post("/api/auth/logout", json={}, headers=bearer(session)).status_code == 204
    assert client.get("/api/auth/me", headers=bearer(session)).status_code == 401
