"""Embedding: ``AuthGate()`` + ``init_app`` from ``app.config``, and topology-derived cookies."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from authgate import AuthGate, current_user, login_required
from authgate.errors import ConfigError
from tests.helpers import PASSWORD


def _app(tmp_path: Path, database_url: str, **config: object) -> Flask:
    app = Flask("embedded")
    app.config.update(
        AUTHGATE_INSTANCE_PATH=str(tmp_path),
        AUTHGATE_DATABASE_URL=database_url,
        AUTHGATE_PUBLIC_URL="https://api.example.com",
        **config,
    )
    auth = AuthGate()
    auth.init_app(app)

    @app.get("/api/private")
    @login_required
    def private() -> dict[str, str]:
        return {"email": current_user.email}

    return app


def _login(app: Flask, origin: str) -> list[str]:
    client = app.test_client()
    headers = {"Origin": origin, "X-Requested-With": "fetch"}
    client.post(
        "/api/auth/register", json={"email": "e@example.com", "password": PASSWORD}, headers=headers
    )
    response = client.post(
        "/api/auth/login", json={"login": "e@example.com", "password": PASSWORD}, headers=headers
    )
    assert response.status_code == 200, response.json
    assert client.get("/api/private").json == {"email": "e@example.com"}
    app.extensions["authgate"].service.close()
    return response.headers.getlist("Set-Cookie")


def test_same_site_frontend_gets_lax_cookies(tmp_path: Path, database_url: str) -> None:
    app = _app(tmp_path, database_url, AUTHGATE_ORIGINS="https://app.example.com")
    for cookie in _login(app, "https://app.example.com"):
        assert "SameSite=Lax" in cookie
        assert "Partitioned" not in cookie


def test_cross_site_frontend_gets_samesite_none_partitioned(
    tmp_path: Path, database_url: str
) -> None:
    app = _app(tmp_path, database_url, AUTHGATE_ORIGINS="https://ada.github.io")
    cookies = _login(app, "https://ada.github.io")
    assert len(cookies) == 2
    for cookie in cookies:
        assert "SameSite=None" in cookie
        assert "Secure" in cookie
        assert "Partitioned" in cookie


def test_wildcard_origin_with_credentials_refuses_to_start(tmp_path: Path) -> None:
    app = Flask("embedded")
    app.config.update(AUTHGATE_INSTANCE_PATH=str(tmp_path), AUTHGATE_ORIGINS="*")
    with pytest.raises(ConfigError, match="wildcard"):
        AuthGate(app)


def test_a_resource_function_naming_a_missing_view_argument_fails_at_decoration() -> None:
    import pytest as _pytest

    from authgate import token_required as _token_required

    with _pytest.raises(TypeError, match="dialog_id"):

        @_token_required(resource=lambda dialog_id: f"dialog:{dialog_id}")
        def view(other_id: str) -> str:
            return other_id


def test_default_token_lifetime_above_the_maximum_is_a_config_error() -> None:
    from authgate.config import load_settings

    with pytest.raises(ConfigError, match="api_token_default_ttl_days"):
        load_settings(
            environ={
                "AUTHGATE_API_TOKEN_DEFAULT_TTL_DAYS": "400",
                "AUTHGATE_API_TOKEN_MAX_TTL_DAYS": "365",
            }
        )


def test_a_bare_token_required_under_a_tenant_still_requires_membership(
    tmp_path: Path, database_url: str
) -> None:
    from authgate import current_tenant, token_required
    from authgate.bootstrap import build_service
    from tests.helpers import bearer, login, make_settings, register

    service = build_service(make_settings(tmp_path, database_url))
    app = Flask("tenants")
    AuthGate(app, service=service)

    @app.get("/api/t/<tenant_id>/notes")
    @token_required()
    def notes(tenant_id: str) -> dict[str, str]:
        return {"tenant": current_tenant.tenant_id, "role": current_tenant.role.value}

    try:
        client = app.test_client()
        register(client, "owner@example.com")
        register(client, "other@example.com")
        owner, other = login(client, "owner@example.com"), login(client, "other@example.com")
        tenant = client.get("/api/tenants", headers=bearer(owner)).json["tenants"][0]["id"]
        mine = client.get(f"/api/t/{tenant}/notes", headers=bearer(owner))
        assert mine.json == {"tenant": tenant, "role": "owner"}
        assert client.get(f"/api/t/{tenant}/notes", headers=bearer(other)).status_code == 404
    finally:
        service.close()
