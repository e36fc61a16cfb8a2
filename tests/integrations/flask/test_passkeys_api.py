"""The passkey endpoints through Flask: register, list, rename, delete (step-up), the
usernameless login as a browser (challenge bound by cookie) and as a script, and
``/.well-known/webauthn``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from authgate.bootstrap import build_service
from authgate.service import AuthService
from tests.helpers import (
    BROWSER,
    FRONTEND,
    PASSWORD,
    PUBLIC_URL,
    StepClock,
    bearer,
    error_code,
    login,
    make_app,
    make_settings,
    register,
)
from tests.webauthn_authenticator import SoftAuthenticator

CHALLENGE_COOKIE = "authgate_webauthn"


def _browser_login(client: FlaskClient) -> None:
    response = client.post(
        "/api/auth/login",
        json={"login": "ada@example.com", "password": "correct horse battery staple"},
        headers=BROWSER,
    )
    assert response.status_code == 200, response.json


def _enroll_as_browser(client: FlaskClient, key: SoftAuthenticator) -> dict[str, Any]:
    options = client.post("/api/auth/passkeys/register/options", headers=BROWSER)
    assert options.status_code == 200, options.json
    assert options.headers["Cache-Control"].startswith("no-store")
    cookie = client.get_cookie(CHALLENGE_COOKIE, path="/api/auth")
    assert cookie is not None and cookie.http_only
    created = client.post(
        "/api/auth/passkeys/register",
        json={"credential": key.create(options.json), "name": "Laptop"},  # type: ignore[arg-type]
        headers=BROWSER,
    )
    assert created.status_code == 201, created.json
    return created.json["passkey"]  # type: ignore[no-any-return,index]


def _passkey_login(client: FlaskClient, key: SoftAuthenticator, **kw: Any) -> Any:
    options = client.post("/api/auth/passkeys/login/options", headers=BROWSER)
    assert options.status_code == 200, options.json
    assert options.json["allowCredentials"] == []  # type: ignore[index]
    return client.post(
        "/api/auth/passkeys/login",
        json={"credential": key.get(options.json, **kw)},  # type: ignore[arg-type]
        headers=BROWSER,
    )


def test_a_browser_registers_a_passkey_and_logs_in_with_it(client: FlaskClient) -> None:
    register(client)
    _browser_login(client)
    key = SoftAuthenticator(rp_id="localhost", origin=FRONTEND)
    passkey = _enroll_as_browser(client, key)
    assert passkey["name"] == "Laptop"
    listed = client.get("/api/auth/passkeys", headers=BROWSER)
    assert [p["id"] for p in listed.json["passkeys"]] == [passkey["id"]]  # type: ignore[index]
    assert client.post("/api/auth/logout", headers=BROWSER).status_code == 204
    assert client.get("/api/auth/me", headers=BROWSER).status_code == 401

    answer = _passkey_login(client, key)
    assert answer.status_code == 200, answer.json
    assert answer.json["user"]["email"] == "ada@example.com"
    assert "refresh_token" not in answer.json  # a browser keeps it in its cookie
    me = client.get("/api/auth/me", headers=BROWSER)
    assert me.status_code == 200


def test_a_browser_challenge_is_refused_without_its_cookie(client: FlaskClient) -> None:
    register(client)
    _browser_login(client)
    key = SoftAuthenticator(rp_id="localhost", origin=FRONTEND)
    _enroll_as_browser(client, key)
    options = client.post("/api/auth/passkeys/login/options", headers=BROWSER)
    credential = key.get(options.json)  # type: ignore[arg-type]
    client.delete_cookie(CHALLENGE_COOKIE, path="/api/auth")
    refused = client.post(
        "/api/auth/passkeys/login", json={"credential": credential}, headers=BROWSER
    )
    assert refused.status_code == 401
    assert error_code(refused) == "invalid_credentials"


def test_a_script_logs_in_with_a_passkey_and_gets_a_refresh_token(client: FlaskClient) -> None:
    register(client)
    token = login(client)
    key = SoftAuthenticator(rp_id="localhost", origin=PUBLIC_URL)
    options = client.post("/api/auth/passkeys/register/options", headers=bearer(token))
    assert client.get_cookie(CHALLENGE_COOKIE, path="/api/auth") is None
    created = client.post(
        "/api/auth/passkeys/register",
        json={"credential": key.create(options.json)},  # type: ignore[arg-type]
        headers=bearer(token),
    )
    assert created.status_code == 201, created.json
    assert created.json["passkey"]["name"] == "Passkey"  # type: ignore[index]
    options = client.post("/api/auth/passkeys/login/options")
    answer = client.post(
        "/api/auth/passkeys/login",
        json={"credential": key.get(options.json)},  # type: ignore[arg-type]
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["refresh_token"]  # type: ignore[index]
    me = client.get("/api/auth/me", headers=bearer(answer.json["access_token"]))  # type: ignore[index]
    assert me.json["user"]["email"] == "ada@example.com"  # type: ignore[index]


def test_rename_and_delete_with_step_up(
    client: FlaskClient, service: AuthService, clock: StepClock
) -> None:
    register(client)
    token = login(client)
    key = SoftAuthenticator(rp_id="localhost", origin=PUBLIC_URL)
    options = client.post("/api/auth/passkeys/register/options", headers=bearer(token))
    created = client.post(
        "/api/auth/passkeys/register",
        json={"credential": key.create(options.json)},  # type: ignore[arg-type]
        headers=bearer(token),
    )
    passkey_id = created.json["passkey"]["id"]  # type: ignore[index]
    renamed = client.patch(
        f"/api/auth/passkeys/{passkey_id}", json={"name": " Phone "}, headers=bearer(token)
    )
    assert renamed.json["passkey"]["name"] == "Phone"  # type: ignore[index]
    assert (
        client.patch(
            f"/api/auth/passkeys/{passkey_id}", json={"name": None}, headers=bearer(token)
        ).status_code
        == 422
    )

    clock.advance(service.settings.reauth_seconds + 1)  # the access token still lives
    stale = client.delete(f"/api/auth/passkeys/{passkey_id}", headers=bearer(token))
    assert stale.status_code == 403
    assert error_code(stale) == "reauthentication_required"
    options = client.post("/api/auth/passkeys/register/options", headers=bearer(token))
    assert error_code(options) == "reauthentication_required"
    # Step-up with the passkey: a new access token, fresh again.
    options = client.post("/api/auth/passkeys/reauthenticate/options", headers=bearer(token))
    assert [c["id"] for c in options.json["allowCredentials"]] == [key.credential_id_b64]  # type: ignore[index]
    wrong = client.post(
        "/api/auth/passkeys/reauthenticate",
        json={"credential": key.get(options.json, origin="https://evil.example")},  # type: ignore[arg-type]
        headers=bearer(token),
    )
    assert error_code(wrong) == "passkey_invalid"
    options = client.post("/api/auth/passkeys/reauthenticate/options", headers=bearer(token))
    stepped_up = client.post(
        "/api/auth/passkeys/reauthenticate",
        json={"credential": key.get(options.json)},  # type: ignore[arg-type]
        headers=bearer(token),
    )
    assert stepped_up.status_code == 200, stepped_up.json
    token = stepped_up.json["access_token"]  # type: ignore[index]
    assert (
        client.delete(f"/api/auth/passkeys/{passkey_id}", headers=bearer(token)).status_code == 204
    )
    assert client.get("/api/auth/passkeys", headers=bearer(token)).json == {"passkeys": []}
    missing = client.delete(f"/api/auth/passkeys/{passkey_id}", headers=bearer(token))
    assert missing.status_code == 404


def test_api_tokens_cannot_manage_passkeys(client: FlaskClient) -> None:
    register(client)
    token = login(client)
    created = client.post(
        "/api/tokens", json={"name": "ci", "scopes": ["read"]}, headers=bearer(token)
    )
    assert created.status_code == 201, created.json
    api_token = created.json["token"]  # type: ignore[index]
    listed = client.get("/api/auth/passkeys", headers=bearer(api_token))
    assert listed.status_code == 403


def test_login_options_refuse_a_foreign_browser_origin(client: FlaskClient) -> None:
    refused = client.post(
        "/api/auth/passkeys/login/options",
        headers={"Origin": "https://evil.example", "X-Requested-With": "fetch"},
    )
    assert refused.status_code == 403


def test_bad_credentials_are_json_errors_never_500(client: FlaskClient) -> None:
    bodies: list[dict[str, Any]] = [
        {"credential": {}},
        {"credential": {"response": "x"}},
        {"credential": {"id": 5}},
        {"credential": {"response": {"clientDataJSON": "not base64 !"}}},
    ]
    for body in bodies:
        answer = client.post("/api/auth/passkeys/login", json=body)
        assert answer.status_code == 401, answer.json
    assert client.post("/api/auth/passkeys/login", json={"credential": "x"}).status_code == 422
    register(client)
    token = login(client)
    bad = client.post(
        "/api/auth/passkeys/register", json={"credential": {"a": 1}}, headers=bearer(token)
    )
    assert bad.status_code == 400
    assert error_code(bad) == "passkey_invalid"


def test_related_origins_document(client: FlaskClient) -> None:
    answer = client.get("/.well-known/webauthn")
    assert answer.status_code == 200
    assert answer.json == {"origins": [PUBLIC_URL]}
    assert answer.headers["Content-Type"] == "application/json"


def test_a_passkey_is_the_second_step_of_a_password_login(client: FlaskClient) -> None:
    register(client)
    token = login(client)
    key = SoftAuthenticator(rp_id="localhost", origin=PUBLIC_URL)
    options = client.post("/api/auth/passkeys/register/options", headers=bearer(token))
    client.post(
        "/api/auth/passkeys/register",
        json={"credential": key.create(options.json)},  # type: ignore[arg-type]
        headers=bearer(token),
    )
    password_only = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    )
    assert error_code(password_only) == "mfa_required"
    mfa = password_only.json["mfa"]  # type: ignore[index]
    assert "passkey" in mfa["methods"]
    options = client.post("/api/auth/passkeys/mfa/options", json={"mfa_token": mfa["token"]})
    assert options.status_code == 200, options.json
    assert [c["id"] for c in options.json["allowCredentials"]] == [key.credential_id_b64]  # type: ignore[index]
    wrong = client.post(
        "/api/auth/passkeys/mfa",
        json={"mfa_token": mfa["token"], "credential": key.get(options.json, rp_id="evil.example")},  # type: ignore[arg-type]
    )
    assert error_code(wrong) == "invalid_code"
    options = client.post("/api/auth/passkeys/mfa/options", json={"mfa_token": mfa["token"]})
    done = client.post(
        "/api/auth/passkeys/mfa",
        json={"mfa_token": mfa["token"], "credential": key.get(options.json)},  # type: ignore[arg-type]
    )
    assert done.status_code == 200, done.json
    assert done.json["refresh_token"]  # type: ignore[index]
    again = client.post("/api/auth/passkeys/mfa/options", json={"mfa_token": mfa["token"]})
    assert error_code(again) == "invalid_mfa_token"
    unknown = client.post("/api/auth/passkeys/mfa/options", json={"mfa_token": "nope"})
    assert error_code(unknown) == "invalid_mfa_token"


def test_a_related_origin_on_another_site_is_served_and_accepted(
    tmp_path: Path, clock: StepClock
) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'related.db'}",
        public_url="https://example.com",
        origins=("https://app.example.com", "https://shop.example.org"),
    )
    service = build_service(settings, clock=clock)
    try:
        client = make_app(service).test_client()
        document = client.get("/.well-known/webauthn")
        assert document.json == {"origins": ["https://example.com", "https://shop.example.org"]}
        created = client.post(
            "/api/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert created.status_code == 201
        token = login(client)
        key = SoftAuthenticator(rp_id="example.com", origin="https://shop.example.org")
        options = client.post("/api/auth/passkeys/register/options", headers=bearer(token))
        assert options.json["rp"]["id"] == "example.com"  # type: ignore[index]
        created = client.post(
            "/api/auth/passkeys/register",
            json={"credential": key.create(options.json)},  # type: ignore[arg-type]
            headers=bearer(token),
        )
        assert created.status_code == 201, created.json
        options = client.post("/api/auth/passkeys/login/options")
        refused = client.post(
            "/api/auth/passkeys/login",
            json={"credential": key.get(options.json, origin="https://evil.example.org")},  # type: ignore[arg-type]
        )
        assert refused.status_code == 401
        options = client.post("/api/auth/passkeys/login/options")
        answer = client.post(
            "/api/auth/passkeys/login",
            json={"credential": key.get(options.json)},  # type: ignore[arg-type]
        )
        assert answer.status_code == 200, answer.json
    finally:
        service.close()


def test_passkeys_are_unavailable_at_an_ip_address(tmp_path: Path, clock: StepClock) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'ip.db'}", public_url="http://192.168.1.20:8086"
    )
    service = build_service(settings, clock=clock)
    try:
        client = make_app(service).test_client()
        assert error_code(client.get("/.well-known/webauthn")) == "passkeys_unavailable"
        options = client.post("/api/auth/passkeys/login/options")
        assert options.status_code == 404
        assert error_code(options) == "passkeys_unavailable"
    finally:
        service.close()


# The contract's paths: /api/auth/mfa/verify and /api/auth/reauthenticate take a passkey too -----


def _script_with_passkey(client: FlaskClient) -> tuple[str, SoftAuthenticator]:
    register(client)
    token = login(client)
    key = SoftAuthenticator(rp_id="localhost", origin=PUBLIC_URL)
    options = client.post("/api/auth/passkeys/register/options", headers=bearer(token))
    created = client.post(
        "/api/auth/passkeys/register",
        json={"credential": key.create(options.json)},  # type: ignore[arg-type]
        headers=bearer(token),
    )
    assert created.status_code == 201, created.json
    return token, key


def test_mfa_verify_takes_a_passkey_assertion(client: FlaskClient) -> None:
    _, key = _script_with_passkey(client)
    refused = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    )
    mfa_token = refused.json["mfa"]["token"]  # type: ignore[index]
    options = client.post("/api/auth/passkeys/mfa/options", json={"mfa_token": mfa_token})
    both = client.post(
        "/api/auth/mfa/verify",
        json={"mfa_token": mfa_token, "code": "123456", "credential": key.get(options.json)},  # type: ignore[arg-type]
    )
    assert both.status_code == 400, both.json
    options = client.post("/api/auth/passkeys/mfa/options", json={"mfa_token": mfa_token})
    wrong = client.post(
        "/api/auth/mfa/verify",
        json={"mfa_token": mfa_token, "credential": key.get(options.json, rp_id="evil.example")},  # type: ignore[arg-type]
    )
    assert error_code(wrong) == "invalid_code"
    options = client.post("/api/auth/passkeys/mfa/options", json={"mfa_token": mfa_token})

    done = client.post(
        "/api/auth/mfa/verify",
        json={"mfa_token": mfa_token, "credential": key.get(options.json)},  # type: ignore[arg-type]
    )

    assert done.status_code == 200, done.json
    assert {"user", "access_token", "refresh_token", "expires_in"} <= set(done.json)  # type: ignore[arg-type]
    me = client.get("/api/auth/me", headers=bearer(done.json["access_token"]))  # type: ignore[index]
    assert me.status_code == 200
    replay = client.post(
        "/api/auth/mfa/verify",
        json={"mfa_token": mfa_token, "credential": key.get(options.json)},  # type: ignore[arg-type]
    )
    assert error_code(replay) == "invalid_mfa_token"


def test_reauthenticate_takes_a_passkey_assertion(
    client: FlaskClient, service: AuthService, clock: StepClock
) -> None:
    _, key = _script_with_passkey(client)
    refused = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    )
    mfa_token = refused.json["mfa"]["token"]  # type: ignore[index]
    options = client.post("/api/auth/passkeys/mfa/options", json={"mfa_token": mfa_token})
    token = client.post(
        "/api/auth/mfa/verify",
        json={"mfa_token": mfa_token, "credential": key.get(options.json)},  # type: ignore[arg-type]
    ).json["access_token"]  # type: ignore[index]
    clock.advance(service.settings.reauth_seconds + 1)
    stale = client.post("/api/auth/passkeys/register/options", headers=bearer(token))
    assert error_code(stale) == "reauthentication_required"
    options = client.post("/api/auth/passkeys/reauthenticate/options", headers=bearer(token))
    both = client.post(
        "/api/auth/reauthenticate",
        json={"password": PASSWORD, "credential": key.get(options.json)},  # type: ignore[arg-type]
        headers=bearer(token),
    )
    assert both.status_code == 400, both.json
    options = client.post("/api/auth/passkeys/reauthenticate/options", headers=bearer(token))
    wrong = client.post(
        "/api/auth/reauthenticate",
        json={"credential": key.get(options.json, origin="https://evil.example")},  # type: ignore[arg-type]
        headers=bearer(token),
    )
    assert error_code(wrong) == "passkey_invalid"
    options = client.post("/api/auth/passkeys/reauthenticate/options", headers=bearer(token))

    stepped_up = client.post(
        "/api/auth/reauthenticate",
        json={"credential": key.get(options.json)},  # type: ignore[arg-type]
        headers=bearer(token),
    )

    assert stepped_up.status_code == 200, stepped_up.json
    fresh = stepped_up.json["access_token"]  # type: ignore[index]
    claims = service.authenticate(fresh, "bearer").claims
    assert claims is not None and "hwk" in claims.amr
    again = client.post("/api/auth/passkeys/register/options", headers=bearer(fresh))
    assert again.status_code == 200, again.json
