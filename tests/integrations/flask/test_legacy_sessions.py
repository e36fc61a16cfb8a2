"""The dual run: a session token made the way the seed tutorial's app makes it (PyJWT, HS256,
``{"_uid": uid}`` signed with ``SECRET_KEY``, in the ``jwt`` cookie) is exchanged once for an
authgate session; after the cut-off it is refused with a clear error."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from authgate.bootstrap import build_service
from authgate.core.user_imports import SourceRow
from authgate.errors import InvalidTokenError, LegacySessionEndedError
from authgate.service import AuthService, ClientInfo
from tests.helpers import BROWSER, PASSWORD, StepClock, error_code, make_app, make_settings

SECRET_KEY = "the seed app's SECRET_KEY: " + "x" * 40  # 64 bytes: HS512 would accept it too


def seed_token(uid: str, secret: str = SECRET_KEY, **claims: object) -> str:
    """What the seed app's /api/users/authenticate sets as its ``jwt`` cookie."""
    return jwt.encode({"_uid": uid, **claims}, secret, algorithm="HS256")


@pytest.fixture
def legacy_service(tmp_path: Path, database_url: str, clock: StepClock) -> Iterator[AuthService]:
    settings = make_settings(
        tmp_path,
        database_url,
        legacy_jwt_secret=SECRET_KEY,
        legacy_jwt_claim="_uid",
        legacy_jwt_user_column="username",
        legacy_jwt_cutoff=clock.now() + timedelta(days=30),
    )
    service = build_service(settings, clock=clock)
    service.user_imports.import_users(
        [
            SourceRow(
                "line 1",
                {
                    "email": "toby@example.com",
                    "username": "toby",
                    "password_hash": generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
                },
            )
        ]
    )
    yield service
    service.close()


@pytest.fixture
def legacy_client(legacy_service: AuthService) -> FlaskClient:
    return make_app(legacy_service).test_client()


def set_cookies(response: object) -> dict[str, str]:
    headers = response.headers.getlist("Set-Cookie")  # type: ignore[attr-defined]
    return {h.split("=", 1)[0]: h for h in headers}


def test_a_legacy_cookie_is_exchanged_once_for_an_authgate_session(
    legacy_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    legacy_client.set_cookie("jwt", seed_token("toby"))
    with caplog.at_level(logging.INFO, logger="authgate"):
        first = legacy_client.get("/api/notes")
    assert first.status_code == 200, first.json
    assert first.json == {"owner": "toby@example.com"}
    cookies = set_cookies(first)
    assert "authgate_session" in cookies and "authgate_refresh" in cookies
    assert "Max-Age=0" in cookies["jwt"]  # the legacy cookie is cleared
    assert legacy_client.get_cookie("jwt") is None
    assert [r.getMessage() for r in caplog.records if "exchanged" in r.getMessage()]
    assert SECRET_KEY not in caplog.text and seed_token("toby") not in caplog.text
    # The next request rides on the authgate session alone, and no second exchange happens.
    second = legacy_client.get("/api/notes")
    assert second.status_code == 200
    assert "Set-Cookie" not in second.headers


def test_after_the_cut_off_legacy_tokens_are_refused_clearly(
    legacy_client: FlaskClient, clock: StepClock
) -> None:
    clock.advance(31 * 86400)
    legacy_client.set_cookie("jwt", seed_token("toby"))
    response = legacy_client.get("/api/notes")
    assert response.status_code == 401
    assert error_code(response) == "legacy_session_ended"
    assert "log in again" in response.json["error"]["message"]
    assert "Max-Age=0" in set_cookies(response)["jwt"]


@pytest.mark.parametrize(
    "token",
    [
        seed_token("toby", secret="another app's secret, as long as the real one: " + "y" * 20),
        jwt.encode({"_uid": "toby"}, None, algorithm="none"),
        seed_token("nobody"),
        seed_token("toby@example.com"),  # an email is no username
        # Another user of the old app, whose uids are case-sensitive: authgate's username
        # "toby" took "TOBY" at import (usernames ignore case), and must not open its account.
        seed_token("TOBY"),
        jwt.encode({"_uid": "toby"}, SECRET_KEY, algorithm="HS512"),  # not in the allowlist
        jwt.encode({"uid": "toby"}, SECRET_KEY, algorithm="HS256"),  # no such claim
        "not-a-jwt",
    ],
)
def test_invalid_legacy_tokens_are_refused_and_left_alone(
    legacy_client: FlaskClient, token: str
) -> None:
    legacy_client.set_cookie("jwt", token)
    response = legacy_client.get("/api/notes")
    assert response.status_code == 401
    assert error_code(response) == "invalid_token"
    assert set_cookies(response) == {}


def test_an_expired_legacy_token_is_refused(legacy_client: FlaskClient, clock: StepClock) -> None:
    legacy_client.set_cookie("jwt", seed_token("toby", exp=int(clock.timestamp()) - 60))
    response = legacy_client.get("/api/notes")
    assert response.status_code == 401
    assert error_code(response) == "token_expired"


def test_a_cross_site_write_with_a_legacy_cookie_is_refused(legacy_client: FlaskClient) -> None:
    legacy_client.set_cookie("jwt", seed_token("toby"))
    response = legacy_client.delete("/api/notes/1", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert error_code(response) == "csrf_failed"
    allowed = legacy_client.delete("/api/notes/1", headers=BROWSER)
    assert allowed.status_code == 403  # exchanged, then the role check: toby is no admin
    assert error_code(allowed) == "insufficient_role"


def test_without_the_setting_a_legacy_cookie_is_ignored(client: FlaskClient) -> None:
    client.set_cookie("jwt", seed_token("toby"))
    response = client.get("/api/notes")
    assert response.status_code == 401
    assert error_code(response) == "authentication_required"


def test_an_email_claim_names_its_user_with_the_local_part_spelled_as_stored(
    tmp_path: Path, database_url: str, clock: StepClock
) -> None:
    """The old app's "ada@example.com" and "Ada@example.com" may be two people; the import
    skipped the second as the first's email. Only the domain's case may differ."""
    settings = make_settings(
        tmp_path,
        database_url,
        legacy_jwt_secret=SECRET_KEY,
        legacy_jwt_claim="email",
        legacy_jwt_user_column="email",
        legacy_jwt_cutoff=clock.now() + timedelta(days=30),
    )
    service = build_service(settings, clock=clock)
    try:
        service.user_imports.import_users([SourceRow("line 1", {"email": "Ada@example.com"})])

        def exchange(email: str) -> str:
            token = jwt.encode({"email": email}, SECRET_KEY, algorithm="HS256")
            return service.legacy_sessions.exchange(token, ClientInfo()).user.email

        assert exchange("Ada@EXAMPLE.com") == "Ada@example.com"
        with pytest.raises(InvalidTokenError):
            exchange("ada@example.com")
    finally:
        service.close()


def test_a_legacy_token_is_exchanged_only_once_even_elsewhere(
    legacy_service: AuthService, tmp_path: Path, database_url: str, clock: StepClock
) -> None:
    """A copy of the token (a stolen cookie, a replay from another browser, another instance
    of authgate on the same database) opens no second session: the exchange is remembered in
    the database until the cut-off (or the token's ``exp``)."""
    token = seed_token("toby")
    first = make_app(legacy_service).test_client()
    first.set_cookie("jwt", token)
    assert first.get("/api/notes").status_code == 200
    elsewhere = make_app(legacy_service).test_client()
    elsewhere.set_cookie("jwt", token)
    replay = elsewhere.get("/api/notes")
    assert replay.status_code == 401
    assert error_code(replay) == "legacy_session_ended"
    assert "already exchanged" in replay.json["error"]["message"]
    assert "authgate_session" not in set_cookies(replay)
    assert "Max-Age=0" in set_cookies(replay)["jwt"]  # the used cookie is cleared
    another_instance = build_service(legacy_service.settings, clock=clock)
    try:
        with pytest.raises(LegacySessionEndedError):
            another_instance.legacy_sessions.exchange(token, ClientInfo())
        # Another token of the same user (a new login to the old app) is its own.
        fresh = seed_token("toby", iat=int(clock.timestamp()))
        assert another_instance.legacy_sessions.exchange(fresh, ClientInfo()).user.username == (
            "toby"
        )
    finally:
        another_instance.close()


def test_an_unverified_address_is_refused_as_at_a_login_when_verification_is_required(
    tmp_path: Path, database_url: str, clock: StepClock
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        email_verification="required",
        legacy_jwt_secret=SECRET_KEY,
        legacy_jwt_claim="_uid",
        legacy_jwt_user_column="username",
        legacy_jwt_cutoff=clock.now() + timedelta(days=30),
    )
    service = build_service(settings, clock=clock)
    try:
        hashed = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
        fields = {"email": "toby@example.com", "username": "toby", "password_hash": hashed}
        service.user_imports.import_users([SourceRow("line 1", fields)])
        client = make_app(service).test_client()
        login = client.post("/api/auth/login", json={"login": "toby", "password": PASSWORD})
        assert login.status_code == 403 and error_code(login) == "email_not_verified"
        client.set_cookie("jwt", seed_token("toby"))
        refused = client.get("/api/notes")
        assert refused.status_code == 403
        assert error_code(refused) == "email_not_verified"
        assert refused.json["error"]["message"] == login.json["error"]["message"]
        assert set_cookies(refused) == {}  # the token stays usable once the address is verified
        service.user_imports.import_users(
            [SourceRow("line 1", {**fields, "email_verified": True})], on_conflict="update"
        )
        assert client.get("/api/notes").status_code == 200
    finally:
        service.close()


def test_a_user_with_a_second_factor_is_not_exchanged(
    legacy_client: FlaskClient, legacy_service: AuthService
) -> None:
    """The previous app's session proves a password at most: with a second factor on, the user
    logs in here with both."""
    import pyotp

    from authgate.errors import MfaRequiredError

    issued = legacy_service.sessions.login("toby", PASSWORD, ClientInfo())
    principal = legacy_service.authenticate(issued.access_token, "bearer")
    setup = legacy_service.second_factors.begin_totp(principal, PASSWORD, ip=None)
    legacy_service.second_factors.confirm_totp(principal, pyotp.TOTP(setup.secret).now())
    with pytest.raises(MfaRequiredError):
        legacy_service.sessions.login("toby", PASSWORD, ClientInfo())
    legacy_client.set_cookie("jwt", seed_token("toby"))
    refused = legacy_client.get("/api/notes")
    assert refused.status_code == 401
    assert "authgate_session" not in set_cookies(refused)
    assert refused.get_json()["error"]["message"].startswith(
        "Log in again: this account has a second factor"
    )


def test_a_user_whose_role_requires_a_second_factor_is_not_exchanged(
    tmp_path: Path, database_url: str, clock: StepClock
) -> None:
    """``AUTHGATE_MFA_REQUIRED_ROLES``: such a user gets no full session before enrolling a
    factor, so the previous app's session (a password at most) is not exchanged either."""
    from authgate.errors import MfaEnrollmentRequiredError

    settings = make_settings(
        tmp_path,
        database_url,
        legacy_jwt_secret=SECRET_KEY,
        legacy_jwt_claim="_uid",
        legacy_jwt_user_column="username",
        legacy_jwt_cutoff=clock.now() + timedelta(days=30),
        mfa_required_roles=("admin",),
    )
    service = build_service(settings, clock=clock)
    try:
        service.user_imports.import_users(
            [
                SourceRow(
                    "line 1",
                    {
                        "email": "toby@example.com",
                        "username": "toby",
                        "password_hash": generate_password_hash(
                            PASSWORD, method="pbkdf2:sha256:1000"
                        ),
                    },
                )
            ]
        )
        user = service.store.find_user_by_login("toby")
        assert user is not None
        from tests.helpers import make_admin

        make_admin(service, user.id)
        with pytest.raises(MfaEnrollmentRequiredError):
            service.sessions.login("toby", PASSWORD, ClientInfo())
        client = make_app(service).test_client()
        client.set_cookie("jwt", seed_token("toby"))
        refused = client.get("/api/notes")
        assert refused.status_code == 401
        assert "authgate_session" not in set_cookies(refused)
        # It has no factor yet: the answer says one is needed, not that it has one.
        assert refused.get_json()["error"]["message"].startswith(
            "Log in again: this account needs a second factor"
        )
    finally:
        service.close()


def test_an_exchanged_legacy_session_is_not_a_recent_authentication(
    legacy_service: AuthService,
) -> None:
    """The previous app's cookie may be weeks old: the session it is exchanged for must step up
    (password, code or passkey) before a sensitive action, and a refresh does not change that."""
    from authgate.errors import ReauthenticationRequiredError

    issued = legacy_service.legacy_sessions.exchange(seed_token("toby"), ClientInfo())
    assert issued.session.auth_time is None
    principal = legacy_service.authenticate(issued.access_token, "bearer")
    assert principal.claims is not None and principal.claims.auth_time is None
    with pytest.raises(ReauthenticationRequiredError):
        legacy_service.authorization.require_recent_authentication(principal)
    refreshed = legacy_service.sessions.refresh(issued.refresh_token)
    again = legacy_service.authenticate(refreshed.access_token, "bearer")
    with pytest.raises(ReauthenticationRequiredError):
        legacy_service.authorization.require_recent_authentication(again)
    stepped_up = legacy_service.second_factors.reauthenticate(principal, password=PASSWORD, ip=None)
    fresh = legacy_service.authenticate(stepped_up.access_token, "bearer")
    legacy_service.authorization.require_recent_authentication(fresh)
