"""Logging in with providers, end to end over sockets: authgate under gunicorn, a real OpenID
Provider (node's oidc-provider, with a switch that makes it misbehave once) and a fake of GitHub
speaking GitHub's wire format. The tests play the browser, redirect by redirect."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from tests.e2e.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    Server,
    error_code,
    register,
    server_group,
    set_cookies,
    wait_for_mailed_token,
)
from tests.e2e.oauth_browser import (
    FLOW_COOKIE,
    SESSION_COOKIE,
    Browser,
    path_and_query,
    query_of,
)
from tests.e2e.peers.github_fake import GitHubFake
from tests.e2e.peers.hanging import HangingServer
from tests.e2e.peers.oidc_provider import OidcProvider
from tests.helpers import BROWSER, FRONTEND, PASSWORD, free_port

GITHUB_ID = "Iv1.e2eclient"
GITHUB_SECRET = "github-e2e-secret"
_github_ids = itertools.count(1000)
# Every call to a provider may take this long here (AUTHGATE_OAUTH_HTTP_TIMEOUT_SECONDS).
HTTP_TIMEOUT_SECONDS = 2.0


@dataclass
class OAuthDeployment:
    server: Server
    op: OidcProvider
    legacy_op: OidcProvider  # from before RFC 9207: no iss in its answers, none advertised
    github: GitHubFake
    hanging: HangingServer
    browsers: list[Browser] = field(default_factory=list)

    @property
    def public_url(self) -> str:
        return self.server.env["AUTHGATE_PUBLIC_URL"]

    def browser(self) -> Browser:
        browser = Browser(self.server)
        self.browsers.append(browser)
        return browser


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthDeployment]:
    port = free_port()
    public_url = f"http://localhost:{port}"
    with (
        OidcProvider(
            clients=[
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [f"{public_url}/api/oauth/corp/callback"],
                }
            ]
        ) as op,
        OidcProvider(
            clients=[
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [f"{public_url}/api/oauth/legacy/callback"],
                }
            ],
            iss_parameter=False,
        ) as legacy_op,
        GitHubFake() as github,
        HangingServer() as hanging,
        server_group("sqlite", tmp_path_factory) as group,
    ):
        github.add_client(GITHUB_ID, GITHUB_SECRET, f"{public_url}/api/oauth/github/callback")
        (server,) = group.start(
            port=port,
            oauth_corp_issuer=op.issuer,
            oauth_corp_client_id=CLIENT_ID,
            oauth_corp_client_secret=CLIENT_SECRET,
            oauth_corp_display_name="Corp SSO",
            oauth_corp_allow_http="true",
            oauth_corp_trust_email="true",  # its email_verified may join existing accounts
            oauth_legacy_issuer=legacy_op.issuer,
            oauth_legacy_client_id=CLIENT_ID,
            oauth_legacy_client_secret=CLIENT_SECRET,
            oauth_legacy_allow_http="true",
            oauth_github_client_id=GITHUB_ID,
            oauth_github_client_secret=GITHUB_SECRET,
            oauth_github_authorization_url=github.authorize_url,
            oauth_github_token_url=github.token_url,
            oauth_github_api_url=github.api_url,
            oauth_github_allow_http="true",
            # A provider that is down: nothing listens on this port.
            oauth_down_issuer=f"http://127.0.0.1:{free_port()}",
            oauth_down_client_id="x",
            oauth_down_client_secret="y",
            oauth_down_allow_http="true",
            # A provider that hangs: it accepts connections and never answers.
            oauth_hang_issuer=hanging.url,
            oauth_hang_client_id="x",
            oauth_hang_client_secret="y",
            oauth_hang_allow_http="true",
            oauth_http_timeout_seconds=str(HTTP_TIMEOUT_SECONDS),
        )
        deployment = OAuthDeployment(server, op, legacy_op, github, hanging)
        try:
            yield deployment
        finally:
            for browser in deployment.browsers:
                browser.close()


def account(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


def assert_no_token_in(url: str) -> None:
    assert "token" not in url.lower() and "eyJ" not in url, url


def redirected_error(response_location: str) -> str | None:
    return query_of(response_location).get("error")


# Discovery of providers and the start of a login -----------------------------------------------


def test_providers_are_listed_for_login_buttons(deployment: OAuthDeployment) -> None:
    response = deployment.server.get("/api/oauth/providers")

    assert response.status_code == 200
    assert response.json() == [
        {"name": "corp", "display_name": "Corp SSO"},
        {"name": "legacy", "display_name": "Legacy"},
        {"name": "github", "display_name": "GitHub"},
        {"name": "down", "display_name": "Down"},
        {"name": "hang", "display_name": "Hang"},
    ]


def test_login_redirects_with_state_nonce_and_pkce_bound_to_a_lax_cookie(
    deployment: OAuthDeployment,
) -> None:
    browser = deployment.browser()
    response = browser.get("/api/oauth/corp/login")

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(deployment.op.authorization_endpoint)
    query = query_of(location)
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{deployment.public_url}/api/oauth/corp/callback"
    assert set(query["scope"].split()) == {"openid", "email", "profile"}
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43 and len(query["nonce"]) >= 43
    assert query["state"] != query["nonce"]
    cookie = set_cookies(response)[FLOW_COOKIE]
    assert cookie.value not in (query["state"], query["nonce"])
    assert cookie.attributes["samesite"] == "Lax"
    assert cookie.attributes["path"] == "/api/oauth"
    assert cookie.attributes["max-age"] == "600"
    assert "httponly" in cookie.attributes and "secure" in cookie.attributes
    assert response.headers["Cache-Control"] == "no-store"


def test_unknown_provider_is_a_404(deployment: OAuthDeployment) -> None:
    response = deployment.server.get("/api/oauth/nope/login")

    assert response.status_code == 404
    assert error_code(response) == "oauth_unknown_provider"


def test_unreachable_provider_redirects_with_a_clear_error(deployment: OAuthDeployment) -> None:
    response = deployment.browser().get("/api/oauth/down/login", params={"next": "/account"})

    assert response.status_code == 302
    assert response.headers["Location"] == (
        f"{deployment.public_url}/account?error=oauth_provider_unavailable"
    )


def test_a_hanging_provider_times_out_at_login_as_configured(deployment: OAuthDeployment) -> None:
    started = time.monotonic()

    response = deployment.browser().get("/api/oauth/hang/login", params={"next": "/account"})

    elapsed = time.monotonic() - started
    assert response.headers["Location"] == (
        f"{deployment.public_url}/account?error=oauth_provider_unavailable"
    )
    # It waited for the timeout, and not for ever (loosely bounded: a loaded 2-core machine).
    assert HTTP_TIMEOUT_SECONDS - 0.1 <= elapsed < HTTP_TIMEOUT_SECONDS + 15, elapsed
    assert deployment.hanging.accepted >= 1
    assert "OAuth with hang failed: oauth_provider_unavailable" in deployment.server.log()


def provider_fails_at_callback(
    deployment: OAuthDeployment, endpoint: str, fault: str
) -> tuple[str, float, Browser]:
    """A login through the OP whose ``endpoint`` fails once (``fault``) during the callback:
    the callback's redirect and how long it took."""
    browser = deployment.browser()
    authorization_url = browser.start_login("corp", "/account")
    callback_url = deployment.op.complete_login(
        browser.provider_http, authorization_url, account=account(f"{endpoint}-{fault}")
    )
    deployment.op.fault(endpoint, fault)
    started = time.monotonic()
    response = browser.finish(callback_url)
    return response.headers["Location"], time.monotonic() - started, browser


@pytest.mark.parametrize("endpoint", ["token", "userinfo"])
def test_a_provider_hanging_at_the_callback_times_out_as_configured(
    deployment: OAuthDeployment, endpoint: str
) -> None:
    location, elapsed, browser = provider_fails_at_callback(deployment, endpoint, "hang")

    assert location == f"{deployment.public_url}/account?error=oauth_provider_unavailable"
    # It waited for the timeout, and not for ever (loosely bounded: a loaded 2-core machine).
    assert HTTP_TIMEOUT_SECONDS - 0.1 <= elapsed < HTTP_TIMEOUT_SECONDS + 15, elapsed
    assert SESSION_COOKIE not in browser.cookies


@pytest.mark.parametrize("fault", ["503", "429"])
def test_a_token_endpoint_answering_5xx_or_429_is_unavailable(
    deployment: OAuthDeployment, fault: str
) -> None:
    location, _, browser = provider_fails_at_callback(deployment, "token", fault)

    assert location == f"{deployment.public_url}/account?error=oauth_provider_unavailable"
    assert SESSION_COOKIE not in browser.cookies
    log = deployment.server.log()
    assert f"corp answered HTTP {fault} at {deployment.op.token_endpoint}" in log
    assert "OAuth with corp failed: oauth_provider_unavailable" in log


# The happy path --------------------------------------------------------------------------------


def test_first_login_creates_the_user_and_the_next_login_reuses_it(
    deployment: OAuthDeployment,
) -> None:
    email = account("alice")
    first = deployment.browser()

    response = first.login_with(deployment.op, email, next_url=f"{FRONTEND}/welcome?tab=1")

    assert response.headers["Location"] == f"{FRONTEND}/welcome?tab=1"
    assert_no_token_in(response.headers["Location"])
    cookies = set_cookies(response)
    session = cookies[SESSION_COOKIE]
    assert "httponly" in session.attributes and "secure" in session.attributes
    assert session.attributes["samesite"] == "Lax" and session.attributes["path"] == "/"
    assert cookies[FLOW_COOKIE].value == ""  # the one-time flow cookie is cleared
    user = first.me().json()["user"]
    assert user["email"] == email
    assert user["email_verified"] is True
    assert user["name"] == "User " + email.split("@")[0]
    assert user["avatar_url"] == f"https://avatars.example.test/{email}.png"
    identities = first.get("/api/auth/identities").json()["identities"]
    assert [(i["provider"], i["email"]) for i in identities] == [("corp", email)]

    second = deployment.browser()  # another browser, another login at the provider
    second.login_with(deployment.op, email)

    assert second.me().json()["user"]["id"] == user["id"]


def test_oauth_session_is_a_normal_session(deployment: OAuthDeployment) -> None:
    browser = deployment.browser()
    browser.login_with(deployment.op, account("sessions"))

    sessions = browser.get("/api/auth/sessions").json()["sessions"]
    assert len(sessions) == 1 and sessions[0]["current"] is True
    logout = browser.request("POST", "/api/auth/logout", headers=BROWSER)
    assert logout.status_code == 204
    assert browser.me().status_code == 401


# Flow integrity --------------------------------------------------------------------------------


def test_callback_without_state_is_refused(deployment: OAuthDeployment) -> None:
    browser = deployment.browser()
    browser.start_login("corp")

    response = browser.get("/api/oauth/corp/callback", params={"code": "whatever"})

    assert redirected_error(response.headers["Location"]) == "oauth_state_mismatch"
    assert SESSION_COOKIE not in browser.cookies


def test_callback_in_another_browser_is_refused(deployment: OAuthDeployment) -> None:
    victim = deployment.browser()
    authorization_url = victim.start_login("corp")
    callback_url = deployment.op.complete_login(
        victim.provider_http, authorization_url, account=account("victim")
    )
    attacker = deployment.browser()  # no flow cookie, or its own
    attacker.start_login("corp")

    response = attacker.get(path_and_query(callback_url))

    assert redirected_error(response.headers["Location"]) == "oauth_state_mismatch"
    assert SESSION_COOKIE not in attacker.cookies


def test_replayed_callback_is_refused(deployment: OAuthDeployment) -> None:
    browser = deployment.browser()
    authorization_url = browser.start_login("corp")
    callback_url = deployment.op.complete_login(
        browser.provider_http, authorization_url, account=account("replay")
    )
    flow_cookie = browser.cookies[FLOW_COOKIE]
    first = browser.finish(callback_url)
    assert redirected_error(first.headers["Location"]) is None
    browser.cookies[FLOW_COOKIE] = flow_cookie  # even with the original cookie put back

    replay = browser.get(path_and_query(callback_url))

    assert redirected_error(replay.headers["Location"]) == "oauth_state_mismatch"
    assert SESSION_COOKIE not in set_cookies(replay)


def test_a_code_from_another_flow_fails_its_pkce_check(deployment: OAuthDeployment) -> None:
    """A code injected into another flow (with that flow's state and cookie) is exchanged with
    that flow's PKCE verifier, which the provider refuses."""
    browser = deployment.browser()
    first = browser.start_login("corp")
    stolen_code = query_of(
        deployment.op.complete_login(browser.provider_http, first, account=account("pkce"))
    )["code"]
    state = query_of(browser.start_login("corp"))["state"]

    response = browser.get(
        "/api/oauth/corp/callback",
        params={"state": state, "code": stolen_code, "iss": deployment.op.issuer},
    )

    assert redirected_error(response.headers["Location"]) == "oauth_failed"
    assert SESSION_COOKIE not in browser.cookies


def test_denied_consent_returns_to_next_with_the_error(deployment: OAuthDeployment) -> None:
    browser = deployment.browser()
    state = query_of(browser.start_login("corp", f"{FRONTEND}/login"))["state"]

    response = browser.get(
        "/api/oauth/corp/callback",
        params={"state": state, "error": "access_denied", "iss": deployment.op.issuer},
    )

    assert response.headers["Location"] == f"{FRONTEND}/login?error=oauth_denied"


OPEN_REDIRECTS = [
    "//evil.test/",
    "///evil.test",
    "/\\evil.test",
    "https:evil.test",
    "https://evil.test/",
    "javascript:alert(1)",
    "http://localhost:4100.evil.test/",
    "http://localhost:4100@evil.test/",
    "http://localhost:41000/",
    "https://localhost:4100/",
]


@pytest.mark.parametrize("next_url", OPEN_REDIRECTS)
def test_next_outside_the_allowlist_is_ignored(deployment: OAuthDeployment, next_url: str) -> None:
    browser = deployment.browser()
    state = query_of(browser.start_login("corp", next_url))["state"]

    response = browser.get(
        "/api/oauth/corp/callback",
        params={"state": state, "error": "access_denied", "iss": deployment.op.issuer},
    )

    assert response.headers["Location"] == f"{deployment.public_url}/?error=oauth_denied"


# The issuer of the answer (RFC 9207) ------------------------------------------------------------


def with_iss(callback_url: str, iss: str | None) -> str:
    """The provider's redirect back with its ``iss`` replaced (``None``: removed), as if another
    provider had answered (a mix-up) or the parameter had been dropped on the way."""
    parts = urlsplit(callback_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"]
    if iss is not None:
        query.append(("iss", iss))
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_the_ops_own_iss_is_accepted(deployment: OAuthDeployment) -> None:
    op = deployment.op
    assert op.discovery["authorization_response_iss_parameter_supported"] is True
    browser = deployment.browser()
    authorization_url = browser.start_login("corp", "/account")
    callback_url = op.complete_login(
        browser.provider_http, authorization_url, account=account("iss-ok")
    )
    assert query_of(callback_url)["iss"] == op.issuer  # the OP did send it
    tokens_before = op.request_counts()["token"]

    response = browser.finish(callback_url)

    assert response.headers["Location"] == f"{deployment.public_url}/account"
    assert op.request_counts()["token"] == tokens_before + 1
    assert browser.me().status_code == 200


@pytest.mark.parametrize(
    "iss",
    ["https://evil.example.test", None, "{issuer}/", ""],
    ids=["another-issuer", "missing", "trailing-slash", "empty"],
)
def test_an_answer_not_naming_the_op_is_refused_before_the_code_is_exchanged(
    deployment: OAuthDeployment, iss: str | None
) -> None:
    """The OP advertises ``authorization_response_iss_parameter_supported``: its answer must
    carry its issuer, exactly; anything else fails before a token request is sent."""
    op = deployment.op
    email = account("iss-bad")
    browser = deployment.browser()
    authorization_url = browser.start_login("corp", "/account")
    callback_url = op.complete_login(browser.provider_http, authorization_url, account=email)
    tampered = with_iss(callback_url, iss if iss is None else iss.format(issuer=op.issuer))
    tokens_before = op.request_counts()["token"]

    response = browser.finish(tampered)

    assert response.headers["Location"] == (
        f"{deployment.public_url}/account?error=oauth_issuer_mismatch"
    )
    assert op.request_counts()["token"] == tokens_before  # the code was never exchanged
    assert SESSION_COOKIE not in browser.cookies
    assert "OAuth with corp failed: oauth_issuer_mismatch" in deployment.server.log()
    register(deployment.server, email)  # 201: no account was created for this email


def test_an_op_that_does_not_advertise_iss_logs_in_without_it(
    deployment: OAuthDeployment,
) -> None:
    legacy = deployment.legacy_op
    assert "authorization_response_iss_parameter_supported" not in legacy.discovery
    browser = deployment.browser()
    authorization_url = browser.start_login("legacy", "/account")
    callback_url = legacy.complete_login(
        browser.provider_http, authorization_url, account=account("legacy")
    )
    assert "iss" not in query_of(callback_url)

    response = browser.finish(callback_url)

    assert response.headers["Location"] == f"{deployment.public_url}/account"
    assert browser.me().status_code == 200


def test_an_op_that_does_not_advertise_iss_is_still_not_impersonated_by_one(
    deployment: OAuthDeployment,
) -> None:
    """Its issuer is known from its configuration: an ``iss`` it did not send, naming another
    issuer, is refused all the same."""
    legacy = deployment.legacy_op
    browser = deployment.browser()
    authorization_url = browser.start_login("legacy")
    callback_url = legacy.complete_login(
        browser.provider_http, authorization_url, account=account("legacy-evil")
    )
    tokens_before = legacy.request_counts()["token"]

    response = browser.finish(with_iss(callback_url, "https://evil.example.test"))

    assert redirected_error(response.headers["Location"]) == "oauth_issuer_mismatch"
    assert legacy.request_counts()["token"] == tokens_before
    assert SESSION_COOKIE not in browser.cookies


# A provider that misbehaves ---------------------------------------------------------------------

BAD_ID_TOKENS = [
    "wrong_iss",
    "wrong_aud",
    "multiple_aud_without_azp",
    "wrong_azp",
    "expired",
    "expired_exp_only",  # iat recent: the exp check alone refuses it
    "issued_in_future",
    "wrong_nonce",
    "missing_nonce",
    "unknown_key",
    "alg_none",
    "hs256_with_public_key",
]


@pytest.mark.parametrize("mode", BAD_ID_TOKENS)
def test_a_bad_id_token_logs_nobody_in(deployment: OAuthDeployment, mode: str) -> None:
    email = account(mode.replace("_", "-"))
    browser = deployment.browser()
    authorization_url = browser.start_login("corp")
    callback_url = deployment.op.complete_login(
        browser.provider_http, authorization_url, account=email
    )
    deployment.op.tamper(mode)

    response = browser.finish(callback_url)

    assert deployment.op.armed_tamper_mode() == "none", "the tampered token was never fetched"
    assert redirected_error(response.headers["Location"]) == "oauth_invalid_id_token"
    assert SESSION_COOKIE not in browser.cookies
    register(deployment.server, email)  # 201: no account was created for this email


def test_login_goes_on_after_the_provider_rotates_its_signing_key(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A provider of its own (its key rotation is for good) and one worker (whose JWKS cache
    this is): the first login caches the JWKS; after the rotation the id_token names a kid not
    in it, so the JWKS is fetched again, and the login succeeds."""
    port = free_port()
    public_url = f"http://localhost:{port}"
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"{public_url}/api/oauth/corp/callback"],
    }
    with (
        OidcProvider(clients=[client]) as op,
        server_group("sqlite", tmp_path_factory) as group,
    ):
        (server,) = group.start(
            port=port,
            workers=1,
            oauth_corp_issuer=op.issuer,
            oauth_corp_client_id=CLIENT_ID,
            oauth_corp_client_secret=CLIENT_SECRET,
            oauth_corp_allow_http="true",
        )
        email = account("rotation")
        first, second = Browser(server), Browser(server)
        try:
            assert redirected_error(first.login_with(op, email).headers["Location"]) is None
            new_kid = op.rotate_signing_key()
            assert op.jwks()["keys"][0]["kid"] == new_kid

            response = second.login_with(op, email)

            assert redirected_error(response.headers["Location"]) is None, server.log()
            assert second.me().json()["user"]["id"] == first.me().json()["user"]["id"]
        finally:
            first.close()
            second.close()


def test_userinfo_about_someone_else_is_refused(deployment: OAuthDeployment) -> None:
    browser = deployment.browser()
    authorization_url = browser.start_login("corp")
    callback_url = deployment.op.complete_login(
        browser.provider_http, authorization_url, account=account("userinfo")
    )
    deployment.op.tamper("userinfo_sub_mismatch")

    response = browser.finish(callback_url)

    assert redirected_error(response.headers["Location"]) == "oauth_provider_error"
    assert SESSION_COOKIE not in browser.cookies


# Accounts that already exist -------------------------------------------------------------------


def test_unverified_provider_email_never_joins_an_existing_account(
    deployment: OAuthDeployment,
) -> None:
    email = account("unverified-carol")  # the OP says: email_verified false
    register(deployment.server, email)
    browser = deployment.browser()

    response = browser.login_with(deployment.op, email)

    assert redirected_error(response.headers["Location"]) == "oauth_email_unverified"
    assert SESSION_COOKIE not in browser.cookies
    owner = deployment.browser()
    owner.password_login(email)
    assert owner.get("/api/auth/identities").json()["identities"] == []


def test_unverified_provider_email_never_joins_a_verified_account(
    deployment: OAuthDeployment,
) -> None:
    """The existing account's email is verified (it came from GitHub, which verified it); the
    OP's id_token says email_verified false for the same address: refused, nothing linked."""
    email = account("unverified-nina")  # the OP says: email_verified false
    github_user(deployment, email)
    owner = deployment.browser()
    assert redirected_error(github_login(deployment, owner)) is None
    assert owner.me().json()["user"]["email_verified"] is True

    response = deployment.browser().login_with(deployment.op, email)

    assert redirected_error(response.headers["Location"]) == "oauth_email_unverified"
    identities = owner.get("/api/auth/identities").json()["identities"]
    assert [i["provider"] for i in identities] == ["github"]


def test_verified_provider_email_does_not_join_an_unverified_account(
    deployment: OAuthDeployment,
) -> None:
    email = account("dave")
    register(deployment.server, email)  # a password account: its email is not verified

    response = deployment.browser().login_with(deployment.op, email)

    assert redirected_error(response.headers["Location"]) == "oauth_account_exists"


def github_user(deployment: OAuthDeployment, email: str, *, verified: bool = True) -> str:
    login = f"gh-{uuid.uuid4().hex[:8]}"
    deployment.github.add_user(
        login,
        id=next(_github_ids),
        name=f"GitHub {login}",
        emails=[
            {"email": f"{login}@users.noreply.github.com", "primary": False, "verified": True},
            {"email": email, "primary": True, "verified": verified, "visibility": "private"},
        ],
    )
    deployment.github.select_user(login)
    return login


def github_login(deployment: OAuthDeployment, browser: Browser) -> str:
    """Log in through the GitHub fake as its selected user; the final redirect."""
    authorize = browser.start_login("github")
    approved = browser.provider_http.get(authorize)
    assert approved.status_code == 302, approved.text
    return browser.finish(approved.headers["Location"]).headers["Location"]


def test_verified_emails_on_both_sides_link_the_accounts(deployment: OAuthDeployment) -> None:
    email = account("erin")
    github_user(deployment, email)
    via_github = deployment.browser()
    assert redirected_error(github_login(deployment, via_github)) is None
    user = via_github.me().json()["user"]
    assert user["email"] == email and user["email_verified"] is True

    via_corp = deployment.browser()
    via_corp.login_with(deployment.op, email)

    assert via_corp.me().json()["user"]["id"] == user["id"]
    providers = {i["provider"] for i in via_corp.get("/api/auth/identities").json()["identities"]}
    assert providers == {"github", "corp"}


def verification_token(server: Server, email: str) -> str:
    """The token of the verification link registration mailed to ``email`` (the deployment has
    no SMTP: its mail folder)."""
    return wait_for_mailed_token(server, "verify_email", email)


def test_an_address_verified_by_its_mail_joins_a_verified_github_login(
    deployment: OAuthDeployment,
) -> None:
    """Both sides verified, the local side by the link its registration mailed: one account."""
    email = account("ivy")
    local = register(deployment.server, email)
    github_user(deployment, email)
    assert redirected_error(github_login(deployment, deployment.browser())) == (
        "oauth_account_exists"  # not verified yet: no link
    )
    verified = deployment.server.post(
        "/api/auth/email/verify",
        json={"token": verification_token(deployment.server, email)},
        headers=BROWSER,
    )
    assert verified.status_code == 200 and verified.json()["user"]["email_verified"] is True

    browser = deployment.browser()
    assert redirected_error(github_login(deployment, browser)) is None

    assert browser.me().json()["user"]["id"] == local["id"]
    identities = browser.get("/api/auth/identities").json()["identities"]
    assert [i["provider"] for i in identities] == ["github"]


def test_an_unverified_provider_email_leaves_the_address_to_its_owner(
    deployment: OAuthDeployment,
) -> None:
    email = account("jude")
    github_user(deployment, email, verified=False)
    intruder = deployment.browser()
    assert redirected_error(github_login(deployment, intruder)) == "oauth_email_unverified"
    assert SESSION_COOKIE not in intruder.cookies
    register(deployment.server, email)  # the real owner registers the address


# GitHub -----------------------------------------------------------------------------------------


def test_github_login_uses_the_primary_verified_email(deployment: OAuthDeployment) -> None:
    email = account("frank")
    login = github_user(deployment, email)
    browser = deployment.browser()

    location = github_login(deployment, browser)

    assert location == f"{deployment.public_url}/"
    user = browser.me().json()["user"]
    assert user["email"] == email and user["email_verified"] is True
    assert user["name"] == f"GitHub {login}"
    assert user["avatar_url"].startswith("https://avatars.githubusercontent.com/")
    again = deployment.browser()
    github_login(deployment, again)
    assert again.me().json()["user"]["id"] == user["id"]


def test_github_unverified_primary_email_does_not_join_an_existing_account(
    deployment: OAuthDeployment,
) -> None:
    email = account("grace")
    register(deployment.server, email)
    github_user(deployment, email, verified=False)

    location = github_login(deployment, deployment.browser())

    assert redirected_error(location) == "oauth_email_unverified"


def test_github_unverified_primary_email_does_not_join_a_verified_account(
    deployment: OAuthDeployment,
) -> None:
    email = account("olga")
    owner = deployment.browser()
    owner.login_with(deployment.op, email)  # the OP verified this email
    assert owner.me().json()["user"]["email_verified"] is True
    github_user(deployment, email, verified=False)
    intruder = deployment.browser()

    location = github_login(deployment, intruder)

    assert redirected_error(location) == "oauth_email_unverified"
    assert SESSION_COOKIE not in intruder.cookies
    identities = owner.get("/api/auth/identities").json()["identities"]
    assert [i["provider"] for i in identities] == ["corp"]


def test_github_ignores_an_iss_it_cannot_check(deployment: OAuthDeployment) -> None:
    """GitHub publishes no issuer identifier: authgate has nothing to compare an ``iss`` with
    (docs/oauth.md); its own callback path is what keeps other providers' answers out."""
    email = account("iss-github")
    github_user(deployment, email)
    browser = deployment.browser()
    authorize = browser.start_login("github")
    approved = browser.provider_http.get(authorize)
    assert approved.status_code == 302, approved.text
    assert "iss" not in query_of(approved.headers["Location"])  # GitHub sends none

    response = browser.finish(with_iss(approved.headers["Location"], "https://evil.example.test"))

    assert response.headers["Location"] == f"{deployment.public_url}/"
    assert browser.me().json()["user"]["email"] == email


def test_github_denied_consent(deployment: OAuthDeployment) -> None:
    github_user(deployment, account("heidi"))
    deployment.github.deny_next()

    location = github_login(deployment, deployment.browser())

    assert redirected_error(location) == "oauth_denied"


# Linking and unlinking --------------------------------------------------------------------------


def start_link(browser: Browser, provider: str = "corp") -> str:
    response = browser.request("POST", f"/api/oauth/{provider}/link", headers=BROWSER)
    assert response.status_code == 200, response.text
    assert FLOW_COOKIE in browser.cookies
    url: str = response.json()["authorization_url"]
    return url


def test_link_then_log_in_with_the_provider_then_unlink(deployment: OAuthDeployment) -> None:
    email = account("ivan")
    register(deployment.server, email)
    owner = deployment.browser()
    owner.password_login(email)
    provider_account = account("ivan-at-corp")
    callback_url = deployment.op.complete_login(
        owner.provider_http, start_link(owner), account=provider_account
    )

    linked = owner.finish(callback_url)

    assert redirected_error(linked.headers["Location"]) is None
    identities = owner.get("/api/auth/identities").json()["identities"]
    assert [(i["provider"], i["email"]) for i in identities] == [("corp", provider_account)]
    via_corp = deployment.browser()
    via_corp.login_with(deployment.op, provider_account)
    assert via_corp.me().json()["user"]["email"] == email

    unlink = owner.request("DELETE", f"/api/auth/identities/{identities[0]['id']}", headers=BROWSER)

    assert unlink.status_code == 204
    assert owner.get("/api/auth/identities").json()["identities"] == []


def test_linking_needs_a_login_session(deployment: OAuthDeployment) -> None:
    response = deployment.server.post("/api/oauth/corp/link", headers=BROWSER)

    assert response.status_code == 401


def test_linking_an_identity_of_another_user_is_refused(deployment: OAuthDeployment) -> None:
    taken = account("judy-at-corp")
    deployment.browser().login_with(deployment.op, taken)  # judy's own account
    email = account("mallory")
    register(deployment.server, email)
    mallory = deployment.browser()
    mallory.password_login(email)
    callback_url = deployment.op.complete_login(
        mallory.provider_http, start_link(mallory), account=taken
    )

    response = mallory.finish(callback_url)

    assert redirected_error(response.headers["Location"]) == "oauth_identity_taken"
    assert mallory.get("/api/auth/identities").json()["identities"] == []


def test_the_last_way_to_log_in_cannot_be_unlinked(deployment: OAuthDeployment) -> None:
    browser = deployment.browser()
    browser.login_with(deployment.op, account("kim"))
    (identity,) = browser.get("/api/auth/identities").json()["identities"]

    response = browser.request("DELETE", f"/api/auth/identities/{identity['id']}", headers=BROWSER)

    assert response.status_code == 409
    assert error_code(response) == "last_login_method"
    assert len(browser.get("/api/auth/identities").json()["identities"]) == 1


def test_password_login_does_not_work_for_a_provider_only_account(
    deployment: OAuthDeployment,
) -> None:
    email = account("leo")
    deployment.browser().login_with(deployment.op, email)

    response = deployment.server.post(
        "/api/auth/login", json={"login": email, "password": PASSWORD}
    )

    assert response.status_code == 401
    assert error_code(response) == "invalid_credentials"


# Handing a login to a page on another site -----------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def handed_off_login(deployment: OAuthDeployment, browser: Browser, challenge: str) -> str:
    """A provider login started by a page on another site; the handoff code it came back with."""
    authorization_url = browser.start_login(
        "corp", f"{FRONTEND}/app?x=1#old", handoff_challenge=challenge
    )
    callback_url = deployment.op.complete_login(
        browser.provider_http, authorization_url, account=account("handoff")
    )
    response = browser.finish(callback_url)
    location = response.headers["Location"]
    assert location.startswith(f"{FRONTEND}/app?x=1#authgate_handoff="), location
    assert "?error" not in location and "&error" not in location
    assert SESSION_COOKIE not in set_cookies(response)  # nothing set during the redirect
    return location.split("#authgate_handoff=", 1)[1]


def exchange(
    deployment: OAuthDeployment, code: str, verifier: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = deployment.server.post(
        "/api/oauth/exchange", json={"code": code, "code_verifier": verifier}, headers=BROWSER
    )
    cookies = {name: c.value for name, c in set_cookies(response).items()}
    return response.status_code, response.json(), cookies


def test_a_login_handed_to_another_page_is_collected_once_with_its_verifier(
    deployment: OAuthDeployment,
) -> None:
    verifier, challenge = pkce_pair()
    code = handed_off_login(deployment, deployment.browser(), challenge)
    other_verifier, _ = pkce_pair()

    wrong_status, wrong, _ = exchange(deployment, code, other_verifier)
    assert wrong_status == 400 and wrong["error"]["code"] == "oauth_handoff_invalid"
    # A wrong verifier spends the code: a stolen code is worth one guess.
    status, _, _ = exchange(deployment, code, verifier)
    assert status == 400

    verifier, challenge = pkce_pair()
    code = handed_off_login(deployment, deployment.browser(), challenge)
    status, body, cookies = exchange(deployment, code, verifier)
    assert status == 200, body
    assert body["user"]["email"].startswith("handoff-")
    assert "refresh_token" not in body  # a browser: the refresh token stays in its cookie
    me = deployment.server.get(
        "/api/auth/me", headers={"Cookie": f"{SESSION_COOKIE}={cookies[SESSION_COOKIE]}"}
    )
    assert me.json()["user"]["email"] == body["user"]["email"]
    replay_status, _, _ = exchange(deployment, code, verifier)
    assert replay_status == 400


def test_a_handoff_challenge_must_be_s256(deployment: OAuthDeployment) -> None:
    response = deployment.browser().get(
        "/api/oauth/corp/login", params={"handoff_challenge": "plain-text"}
    )

    assert response.status_code == 422
    assert error_code(response) == "validation_failed"
