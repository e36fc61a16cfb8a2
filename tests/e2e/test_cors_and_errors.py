"""CORS preflights and JSON error bodies, as a browser or client sees them on the wire."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.e2e.helpers import Server, error_code
from tests.helpers import FRONTEND

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,x-requested-with",
}


def header_values(response: requests.Response, name: str) -> list[str]:
    """Every occurrence of a header (``requests`` would join repeated headers with commas)."""
    return list(response.raw.headers.getlist(name))


def comma_list(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def test_preflight_from_the_allowed_origin(server: Server) -> None:
    response = server.request(
        "OPTIONS", "/api/auth/login", headers={"Origin": FRONTEND, **PREFLIGHT}
    )

    assert response.status_code in (200, 204), response.text
    assert header_values(response, "Access-Control-Allow-Origin") == [FRONTEND]
    assert header_values(response, "Access-Control-Allow-Credentials") == ["true"]
    vary = comma_list(", ".join(header_values(response, "Vary")))
    assert "origin" in vary
    allowed_headers = comma_list(response.headers["Access-Control-Allow-Headers"])
    assert {"content-type", "x-requested-with"} <= allowed_headers
    assert "*" not in allowed_headers
    methods = {m.upper() for m in comma_list(response.headers["Access-Control-Allow-Methods"])}
    assert "POST" in methods


def test_preflight_allows_every_authgate_header_and_no_other(server: Server) -> None:
    # flask-cors answers with the requested headers it allows, so ask for all of them.
    response = server.request(
        "OPTIONS",
        "/api/auth/me",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": (
                "authorization,content-type,x-requested-with,x-origin,x-evil"
            ),
        },
    )

    assert response.status_code in (200, 204), response.text
    assert header_values(response, "Access-Control-Allow-Origin") == [FRONTEND]
    allowed_headers = comma_list(response.headers["Access-Control-Allow-Headers"])
    assert {"authorization", "content-type", "x-requested-with", "x-origin"} <= allowed_headers
    assert "x-evil" not in allowed_headers
    assert "*" not in allowed_headers


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.test",
        "null",
        "http://localhost:4100.evil.test",
        "https://localhost:4100",
        "http://localhost:41000",
        "http://localhost",
    ],
)
def test_preflight_from_other_origins_gets_no_cors_headers(server: Server, origin: str) -> None:
    response = server.request("OPTIONS", "/api/auth/login", headers={"Origin": origin, **PREFLIGHT})

    assert response.status_code < 500
    assert header_values(response, "Access-Control-Allow-Origin") == []
    assert header_values(response, "Access-Control-Allow-Credentials") == []


def test_simple_request_from_the_allowed_origin_gets_exactly_one_allow_origin(
    server: Server,
) -> None:
    allowed = server.get("/healthz", headers={"Origin": FRONTEND})
    assert allowed.status_code == 200
    assert header_values(allowed, "Access-Control-Allow-Origin") == [FRONTEND]
    assert "origin" in comma_list(", ".join(header_values(allowed, "Vary")))

    foreign = server.get("/healthz", headers={"Origin": "https://evil.test"})
    assert foreign.status_code == 200
    assert header_values(foreign, "Access-Control-Allow-Origin") == []


def test_malformed_json_is_a_400_json_error(server: Server) -> None:
    response = server.post(
        "/api/auth/login",
        data=b'{"login": "a@example.com", "password": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == "bad_request"


def test_wrong_content_type_is_a_400_json_error(server: Server) -> None:
    response = server.post(
        "/api/auth/login",
        data=b"login=a@example.com&password=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == "bad_request"


def test_invalid_fields_are_a_422_json_error(server: Server) -> None:
    response = server.post("/api/auth/register", json={"email": "not an email", "password": 1})
    assert response.status_code == 422, response.text
    assert error_code(response) == "validation_failed"
    assert "email" in response.json()["error"]["details"]["fields"]


def test_unknown_api_route_is_a_404_json_error(server: Server) -> None:
    response = server.get("/api/does-not-exist")
    assert response.status_code == 404, response.text
    assert error_code(response) == "not_found"


def test_wrong_method_is_a_405_json_error(server: Server) -> None:
    response = server.request("DELETE", "/api/auth/login")
    assert response.status_code == 405, response.text
    assert error_code(response) == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_body_over_one_mebibyte_is_a_413_json_error(server: Server) -> None:
    body = b'{"login": "' + b"a" * (1024 * 1024) + b'", "password": "x"}'
    response = server.post(
        "/api/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert error_code(response) == "payload_too_large"


def test_server_still_answers_after_the_errors(server: Server) -> None:
    response = server.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_chunked_body_over_one_mebibyte_is_a_413_json_error(server: Server) -> None:
    """Without Content-Length the limit must hold too: the body may not be cut at 1 MiB and
    processed as if it ended there."""
    head = b'{"login": "nobody@example.com", "password": "not the password"}'
    body = head + b" " * (1024 * 1024 - len(head)) + b"TRAILING-GARBAGE" * 4096

    def chunks() -> Iterator[bytes]:  # a generator: requests sends Transfer-Encoding: chunked
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = server.post(
        "/api/auth/login", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert error_code(response) == "payload_too_large"
