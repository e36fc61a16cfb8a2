"""/api/auth/mfa, the second step of /api/auth/login, and step-up over HTTP."""

from __future__ import annotations

from typing import Any

import pyotp
from flask import Flask
from flask.testing import FlaskClient

from authgate.integrations.flask import token_required
from authgate.service import AuthService
from tests.helpers import BROWSER, PASSWORD, StepClock, bearer, error_code, login, register


def totp_code(service: AuthService, secret: str) -> str:
    return pyotp.TOTP(secret).at(service.clock.timestamp())


def advance(service: AuthService, seconds: float) -> None:
    assert isinstance(service.clock, StepClock)
    service.clock.advance(seconds)


def enroll(client: FlaskClient, service: AuthService, token: str) -> tuple[str, list[str]]:
    response = client.post("/api/auth/mfa/totp", json={"password": PASSWORD}, headers=bearer(token))
    assert response.status_code == 200, response.json
    setup = response.json
    assert setup["qr_svg"].startswith("<svg") and setup["otpauth_uri"].startswith("otpauth://")
    confirm = client.post(
        "/api/auth/mfa/totp/confirm",
        json={"code": totp_code(service, setup["secret"])},
        headers=bearer(token),
    )
    assert confirm.status_code == 200, confirm.json
    advance(service, 30)  # the confirming code's step is used
    return setup["secret"], confirm.json["recovery_codes"]


def session_cookies(client: FlaskClient) -> set[str]:
    return {c.key for c in client._cookies.values()} & {"authgate_session", "authgate_refresh"}  # type: ignore[attr-defined]


def test_login_then_verify_with_a_script(client: FlaskClient, service: AuthService) -> None:
    register(client)
    secret, codes = enroll(client, service, login(client))
    assert len(codes) == 10
    response = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    )
    assert response.status_code == 401
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    assert body["error"]["code"] == "mfa_required"
    assert body["mfa"]["methods"] == ["totp", "recovery_code"]
    assert "access_token" not in body and "Set-Cookie" not in response.headers
    verified = client.post(
        "/api/auth/mfa/verify",
        json={"mfa_token": body["mfa"]["token"], "code": totp_code(service, secret)},
    )
    assert verified.status_code == 200, verified.json
    assert {"user", "access_token", "refresh_token", "expires_in"} <= set(verified.json)
    me = client.get("/api/auth/me", headers=bearer(verified.json["access_token"]))
    assert me.status_code == 200


def test_a_browser_s_mfa_token_is_bound_to_its_cookie(
    client: FlaskClient, app: Flask, service: AuthService
) -> None:
    register(client)
    _, codes = enroll(client, service, login(client))
    browser = app.test_client()
    response = browser.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}, headers=BROWSER
    )
    assert response.status_code == 401
    cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("authgate_mfa=")]
    assert cookie and "HttpOnly" in cookie[0] and "Path=/api/auth" in cookie[0]
    assert not session_cookies(browser)
    token = response.json["mfa"]["token"]
    # The token alone, taken from the page to another client: refused.
    thief = app.test_client()
    stolen = thief.post(
        "/api/auth/mfa/verify",
        json={"mfa_token": token, "recovery_code": codes[0]},
        headers=BROWSER,
    )
    assert stolen.status_code == 401 and error_code(stolen) == "invalid_mfa_token"
    verified = browser.post(
        "/api/auth/mfa/verify",
        json={"mfa_token": token, "recovery_code": codes[0]},
        headers=BROWSER,
    )
    assert verified.status_code == 200, verified.json
    assert "refresh_token" not in verified.json
    assert session_cookies(browser) == {"authgate_session", "authgate_refresh"}
    assert browser.get("/api/auth/mfa").json["recovery_codes_left"] == 9


def test_wrong_code_is_401_invalid_code(client: FlaskClient, service: AuthService) -> None:
    register(client)
    enroll(client, service, login(client))
    token = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    ).json["mfa"]["token"]
    wrong = client.post("/api/auth/mfa/verify", json={"mfa_token": token, "code": "12345x"})
    assert wrong.status_code == 401 and error_code(wrong) == "invalid_code"
    neither = client.post("/api/auth/mfa/verify", json={"mfa_token": token})
    assert neither.status_code == 400


def test_step_up_and_reauthenticate(client: FlaskClient, service: AuthService) -> None:
    register(client)
    token = login(client)
    advance(service, 601)
    refreshed = client.post(
        "/api/auth/refresh",
        json={
            "refresh_token": client.post(
                "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
            ).json["refresh_token"]
        },
    ).json
    advance(service, 601)
    stale = client.post(
        "/api/auth/refresh", json={"refresh_token": refreshed["refresh_token"]}
    ).json
    change = {"current_password": PASSWORD, "new_password": "a brand new passphrase 7"}
    refused = client.post("/api/auth/password", json=change, headers=bearer(stale["access_token"]))
    assert refused.status_code == 403 and error_code(refused) == "reauthentication_required"
    wrong = client.post(
        "/api/auth/reauthenticate", json={"password": "nope"}, headers=bearer(stale["access_token"])
    )
    assert wrong.status_code == 422
    again = client.post(
        "/api/auth/reauthenticate",
        json={"password": PASSWORD},
        headers=bearer(stale["access_token"]),
    )
    assert again.status_code == 200, again.json
    fresh = again.json["access_token"]
    assert client.post("/api/auth/password", json=change, headers=bearer(fresh)).status_code == 204
    del token


def test_a_browser_reauthenticates_by_its_cookie(client: FlaskClient, service: AuthService) -> None:
    register(client)
    client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}, headers=BROWSER
    )
    advance(service, 601)
    assert client.post("/api/auth/refresh", headers=BROWSER).status_code == 200
    change = {"current_password": PASSWORD, "new_password": "a brand new passphrase 7"}
    refused = client.post("/api/auth/password", json=change, headers=BROWSER)
    assert error_code(refused) == "reauthentication_required"
    again = client.post("/api/auth/reauthenticate", json={"password": PASSWORD}, headers=BROWSER)
    assert again.status_code == 200 and "access_token" not in again.json
    assert client.post("/api/auth/password", json=change, headers=BROWSER).status_code == 204


def test_token_required_fresh(client: FlaskClient, app: Flask, service: AuthService) -> None:
    @app.post("/api/danger")
    @token_required(fresh=True)
    def danger() -> dict[str, bool]:
        return {"ok": True}

    register(client)
    issued = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    ).json
    assert client.post("/api/danger", headers=bearer(issued["access_token"])).status_code == 200
    advance(service, 601)
    stale = client.post("/api/auth/refresh", json={"refresh_token": issued["refresh_token"]}).json
    refused = client.post("/api/danger", headers=bearer(stale["access_token"]))
    assert refused.status_code == 403 and error_code(refused) == "reauthentication_required"


def test_turning_totp_off_needs_step_up(client: FlaskClient, service: AuthService) -> None:
    register(client)
    secret, _ = enroll(client, service, login(client))
    token = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    ).json["mfa"]["token"]
    issued = client.post(
        "/api/auth/mfa/verify", json={"mfa_token": token, "code": totp_code(service, secret)}
    ).json
    advance(service, 601)
    stale = client.post("/api/auth/refresh", json={"refresh_token": issued["refresh_token"]}).json
    headers = bearer(stale["access_token"])
    assert error_code(client.delete("/api/auth/mfa/totp", headers=headers)) == (
        "reauthentication_required"
    )
    assert error_code(client.post("/api/auth/mfa/recovery-codes", headers=headers)) == (
        "reauthentication_required"
    )
    advance(service, 30)
    fresh = client.post(
        "/api/auth/reauthenticate", json={"code": totp_code(service, secret)}, headers=headers
    ).json["access_token"]
    codes = client.post("/api/auth/mfa/recovery-codes", headers=bearer(fresh))
    assert codes.status_code == 200 and len(codes.json["recovery_codes"]) == 10
    assert client.delete("/api/auth/mfa/totp", headers=bearer(fresh)).status_code == 204
    assert client.get("/api/auth/mfa", headers=bearer(fresh)).json["totp"] is False


def test_an_admin_removes_a_user_s_factors(client: FlaskClient, service: AuthService) -> None:
    from tests.helpers import make_admin

    admin = register(client, "root@example.com")
    make_admin(service, admin["id"])
    user = register(client, "ada@example.com")
    enroll(client, service, login(client))
    admin_token = login(client, "root@example.com")
    user_token = login_with_mfa_needed(client)
    assert user_token == "mfa_required"
    path = f"/api/users/{user['id']}/mfa"
    assert client.delete(path, headers=bearer(login(client, "root@example.com"))).status_code == 204
    assert client.get("/api/auth/me", headers=bearer(login(client))).status_code == 200
    advance(service, 601)
    stale = client.post(
        "/api/auth/refresh",
        json={
            "refresh_token": client.post(
                "/api/auth/login", json={"login": "root@example.com", "password": PASSWORD}
            ).json["refresh_token"]
        },
    )
    advance(service, 601)
    stale = client.post("/api/auth/refresh", json={"refresh_token": stale.json["refresh_token"]})
    refused = client.delete(path, headers=bearer(stale.json["access_token"]))
    assert refused.status_code == 403 and error_code(refused) == "reauthentication_required"
    forbidden = client.delete(path, headers=bearer(login(client)))
    assert forbidden.status_code == 403 and error_code(forbidden) == "insufficient_role"
    del admin_token


def login_with_mfa_needed(client: FlaskClient) -> str:
    response = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    )
    return error_code(response)


def test_a_resource_server_checks_freshness_from_the_token(
    client: FlaskClient, service: AuthService
) -> None:
    """``token_required(fresh=True)`` in an app that only verifies tokens offline: the claim
    decides, with the resource server's own ``reauth_seconds``."""
    import time

    import pytest

    from authgate.errors import ReauthenticationRequiredError
    from authgate.integrations.flask.resource_server import (
        ResourceServer,
        TokenPrincipal,
        TokenUser,
    )

    rs = ResourceServer(jwks_url="http://127.0.0.1:9/jwks", issuer="x", reauth_seconds=300)

    def caller(auth_time: int | None) -> TokenPrincipal:
        return TokenPrincipal(TokenUser("u", (), "s", 0, auth_time=auth_time))

    rs.require_fresh(caller(int(time.time()) - 10))
    for stale in (int(time.time()) - 301, None):
        with pytest.raises(ReauthenticationRequiredError):
            rs.require_fresh(caller(stale))
    # The claims a resource server reads carry auth_time and amr.
    register(client)
    issued = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}
    ).json
    claims = service.authenticate(issued["access_token"], "bearer").claims
    assert claims is not None and claims.amr == ("pwd",) and claims.auth_time is not None
