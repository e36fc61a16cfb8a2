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


def test_the_browsers_sec_fetch_site_and_the_host_it_called_are_read(client: FlaskClient) -> None:
    """The frontend calls the API as 127.0.0.1 while its public URL is localhost: the browser
    says cross-site, and the report names the other host name and the fix."""
    response = client.get(
        DIAGNOSE,
        base_url="http://127.0.0.1:8086",
        headers={"Origin": FRONTEND, "Sec-Fetch-Site": "cross-site"},
    )

    body = response.get_json()
    assert body["same_site"] is False
    (cookie,) = [f["message"] for f in body["findings"] if f["kind"] == "cookie"]
    assert "called as 127.0.0.1:8086 but its public URL is http://localhost:8086" in cookie


def test_a_loopback_alias_of_an_allowed_origin_gets_did_you_mean_and_the_cookie_cost(
    client: FlaskClient,
) -> None:
    """``FRONTEND`` is http://localhost:4100; the same page opened at 127.0.0.1 is refused.
    Advising to allow it must say that every cookie then becomes SameSite=None; Partitioned."""
    body = client.get(DIAGNOSE, headers={"Origin": "http://127.0.0.1:4100"}).get_json()

    assert body["origin_allowed"] is False
    (finding,) = [f for f in body["findings"] if f["kind"] == "origin"]
    message = finding["message"]
    assert f"Did you mean {FRONTEND}?" in message
    assert "Add http://127.0.0.1:4100 to AUTHGATE_ORIGINS" in message
    assert "from SameSite=Lax to SameSite=None; Secure; Partitioned" in message
    assert f"Opening the page at {FRONTEND} instead keeps them first-party" in message


def test_a_lookalike_origin_is_called_one_and_never_advised(client: FlaskClient) -> None:
    body = client.get(DIAGNOSE, headers={"Origin": "http://localhost.evil.test:4100"}).get_json()

    assert body["origin_allowed"] is False
    (finding,) = [f for f in body["findings"] if f["kind"] == "origin"]
    message = finding["message"]
    assert f"Did you mean {FRONTEND}?" in message
    assert "is a look-alike of it" in message
    assert "Do not add it to AUTHGATE_ORIGINS" in message
    assert "Add http://localhost.evil.test:4100" not in message
