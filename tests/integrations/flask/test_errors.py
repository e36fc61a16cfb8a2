"""Every error is JSON with a stable code; nothing leaks exception text."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from authgate.integrations.flask.context import EXTENSION_KEY
from authgate.integrations.flask.web_views import PAGE_CSP
from authgate.server import create_app
from authgate.service import AuthService
from tests.helpers import BROWSER, make_app, make_settings


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/api/auth/login", data="{not json", content_type="application/json", headers=BROWSER
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"


@pytest.mark.parametrize("body", ["[]", '"text"', "null", "42"])
def test_json_that_is_not_an_object_is_400(client: FlaskClient, body: str) -> None:
    response = client.post(
        "/api/auth/login", data=body, content_type="application/json", headers=BROWSER
    )
    assert response.status_code == 400


def test_wrong_types_are_422(client: FlaskClient) -> None:
    response = client.post("/api/auth/login", json={"login": 5, "password": ["x"]}, headers=BROWSER)
    assert response.status_code == 422
    assert set(response.json["error"]["details"]["fields"]) == {"login", "password"}


def test_not_json_content_type_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/api/auth/login",
        data="login=a&password=b",
        headers=BROWSER,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert "application/json" in response.json["error"]["message"]


def test_oversize_body_is_413_json(client: FlaskClient) -> None:
    big = '{"login": "' + "a" * (1024 * 1024 + 10) + '", "password": "x"}'
    response = client.post("/api/auth/login", data=big, content_type="application/json")
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"


def test_unknown_api_route_is_404_json(client: FlaskClient) -> None:
    response = client.get("/api/does-not-exist")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_wrong_method_is_405_json(client: FlaskClient) -> None:
    response = client.get("/api/auth/login")
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"


def test_unexpected_exception_is_a_generic_500_logged_with_request_id(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="authgate"):
        response = client.get("/api/boom", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert "req-123" in response.json["error"]["message"]
    assert response.headers["X-Request-ID"] == "req-123"
    assert any("req-123" in r.getMessage() for r in caplog.records)


def test_request_id_is_generated_when_missing_or_unsafe(client: FlaskClient) -> None:
    for headers in ({}, {"X-Request-ID": "bad id <script>"}, {"X-Request-ID": "x" * 65}):
        response = client.get("/healthz", headers=headers)
        assert len(response.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize("depth", [33, 350, 980, 200_000])
def test_deeply_nested_json_is_400_and_logs_nothing(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, depth: int
) -> None:
    # 350-980 levels got through the JSON parser and broke the recursive control-character
    # check (500, 120 KB of traceback); 200,000 break the parser itself.
    body = '{"login": ' + "[" * (depth - 1) + "]" * (depth - 1) + ', "password": "x"}'

    with caplog.at_level(logging.DEBUG):
        response = client.post(
            "/api/auth/login", data=body, content_type="application/json", headers=BROWSER
        )

    assert response.status_code == 400
    assert response.json["error"] == {
        "code": "bad_request",
        "message": "The request body is nested too deeply: at most 32 levels.",
    }
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_fifty_thousand_unknown_keys_get_a_short_400(client: FlaskClient) -> None:
    body = json.dumps({f"k{i}": 1 for i in range(50_000)} | {"login": "a", "password": "b"})

    response = client.post(
        "/api/auth/login", data=body, content_type="application/json", headers=BROWSER
    )

    assert response.status_code == 400  # was a 422 listing 50,000 fields: 1.29 MB
    assert response.json["error"]["code"] == "bad_request"
    assert len(response.data) < 200


# Which requests get JSON, which an HTML page (docs/api.md#errors) ----------------------------

BROWSER_NAVIGATION = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
}


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[FlaskClient]:
    """``authgate serve``'s app: every path is authgate's."""
    app = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'authgate.db'}"))

    @app.get("/page-boom")
    def page_boom() -> None:
        raise RuntimeError("secret internal detail")

    yield app.test_client()
    app.extensions[EXTENSION_KEY].service.close()


@pytest.mark.parametrize("path", ["/nope", "/%ff", "/account/nope"])
@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json, text/html"])
def test_standalone_unknown_path_is_json_unless_a_browser_asks_for_html(
    standalone: FlaskClient, path: str, accept: str | None
) -> None:
    # Was Werkzeug's bare HTML 404 for curl and scripts.
    response = standalone.get(path, headers={"Accept": accept} if accept else {})
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.json["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/nope", "/%ff"])
def test_standalone_unknown_path_is_a_styled_page_for_a_browser(
    standalone: FlaskClient, path: str
) -> None:
    response = standalone.get(path, headers=BROWSER_NAVIGATION)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<title>404 Not Found — authgate</title>" in page
    assert '<link rel="stylesheet" href="/static/authgate/app.css">' in page
    assert "<h1>404 Not Found</h1>" in page
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_standalone_page_keeps_the_error_headers(standalone: FlaskClient) -> None:
    response = standalone.post("/register", headers=BROWSER_NAVIGATION)
    assert response.status_code == 405
    assert response.mimetype == "text/html"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_standalone_api_paths_stay_json_for_a_browser(standalone: FlaskClient) -> None:
    response = standalone.get("/api/nope", headers=BROWSER_NAVIGATION)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_standalone_unexpected_error_outside_the_api(
    standalone: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.CRITICAL, logger="authgate"):
        as_json = standalone.get("/page-boom", headers={"X-Request-ID": "req-json"})
        as_page = standalone.get(
            "/page-boom", headers={"X-Request-ID": "req-page", **BROWSER_NAVIGATION}
        )
    assert as_json.status_code == 500
    assert as_json.json["error"]["code"] == "internal_error"
    assert "req-json" in as_json.json["error"]["message"]
    assert as_page.status_code == 500
    assert as_page.mimetype == "text/html"
    page = as_page.get_data(as_text=True)
    assert "req-page" in page
    assert "secret internal detail" not in page + as_json.get_data(as_text=True)


def test_extension_leaves_the_apps_own_pages_alone(client: FlaskClient) -> None:
    # In an app using AuthGate(app), paths outside authgate's prefixes belong to the app.
    response = client.get("/nope", headers=BROWSER_NAVIGATION)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "authgate" not in response.get_data(as_text=True)  # Flask's page, not ours

    response = client.get("/nope", headers={"Accept": "*/*"})
    assert response.mimetype == "text/html"  # curl too: the app decides

    response = client.get("/nope", headers={"Accept": "application/json"})
    assert response.json["error"]["code"] == "not_found"


def test_extension_apps_own_error_handler_wins(service: AuthService) -> None:
    app = make_app(service)

    @app.errorhandler(404)
    def own_page(error: Exception) -> tuple[str, int]:
        return "my own 404", 404

    response = app.test_client().get("/nope", headers=BROWSER_NAVIGATION)
    assert (response.status_code, response.get_data(as_text=True)) == (404, "my own 404")
