"""``GET /api/auth/diagnose``: what the server saw, readable even from an origin not allowed."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.helpers import BROWSER, FRONTEND, PASSWORD, register

DIAGNOSE = "/api/auth/diagnose"


def test_an_origin_not_allowed_is_told_so_and_can_read_the_answer(client: FlaskClient) -> None:
    response = client.get(DIAGNOSE, headers={"Origin": "https://evil.test"})

    assert response.status_code == 200
    assert response.headers.getlist("Access-Control-Allow-Origin") == ["*"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    body = response.get_json()
    assert body["origin"] == "https://evil.test"
    assert body["origin_allowed"] is False
    assert body["session_cookie_received"] is False
    assert any("AUTHGATE_ORIGINS" in p and "https://evil.test" in p for p in body["problems"])


def test_an_allowed_origin_gets_credentialed_cors_and_learns_about_its_cookie(
    client: FlaskClient,
) -> None:
    response = client.get(DIAGNOSE, headers={"Origin": FRONTEND})

    assert response.headers.getlist("Access-Control-Allow-Origin") == [FRONTEND]
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    body = response.get_json()
    assert body["origin_allowed"] is True
    assert body["same_site"] is True
    assert body["session_cookie_received"] is False
    assert any("No session cookie arrived" in p for p in body["problems"])
    assert body["cookie_mode"] == {
        "name": "authgate_session",
        "samesite": "Lax",
        "secure": True,
        "partitioned": False,
    }


def test_a_logged_in_browser_sees_no_problem(client: FlaskClient) -> None:
    register(client, "diag@example.com")
    response = client.post(
        "/api/auth/login",
        json={"login": "diag@example.com", "password": PASSWORD},
        headers=BROWSER,
    )
    assert response.status_code == 200

    body = client.get(DIAGNOSE, headers={"Origin": FRONTEND}).get_json()

    assert body["session_cookie_received"] is True
    assert body["problems"] == []


def test_a_scheme_that_differs_from_the_public_url_is_explained(client: FlaskClient) -> None:
    body = client.get(DIAGNOSE, base_url="https://localhost").get_json()

    assert body["scheme"] == "https"
    assert body["origin"] is None and body["origin_allowed"] is None
    assert any("AUTHGATE_TRUSTED_PROXIES" in p for p in body["problems"])


def test_a_null_origin_is_told_to_serve_the_page_from_a_real_origin(client: FlaskClient) -> None:
    """A sandboxed iframe or a file:// page sends ``Origin: null``: no allowlist entry can fix
    that, so the answer must not say "add it to AUTHGATE_ORIGINS"."""
    body = client.get(DIAGNOSE, headers={"Origin": "null"}).get_json()

    assert body["origin_allowed"] is False
    (finding,) = body["findings"]
    assert finding["kind"] == "origin"
    assert finding["message"].startswith("The Origin header 'null' is not an origin")
    assert "serve the page from http(s)://host[:port]" in finding["message"]
    assert "AUTHGATE_ORIGINS" not in finding["message"]
    assert body["problems"] == [finding["message"]]


def test_findings_name_the_kind_of_each_problem_in_order(client: FlaskClient) -> None:
    body = client.get(
        DIAGNOSE, headers={"Origin": FRONTEND}, base_url="https://localhost"
    ).get_json()

    assert [f["kind"] for f in body["findings"]] == ["cookie", "scheme"]
    assert body["problems"] == [f["message"] for f in body["findings"]]
