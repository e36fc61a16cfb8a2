"""The test peers themselves, driven with plain httpx: the real OpenID Provider (node
``oidc-provider``) with its tamper switch, and the GitHub fake.

Nothing here touches authgate: these tests prove that what the OAuth login tests stand on
behaves as a real OP / as GitHub does, so that a failing login test points at authgate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.e2e.peers.github_fake import GitHubFake
from tests.e2e.peers.oidc_provider import (
    TAMPER_MODES,
    TOKEN_TAMPER_MODES,
    OidcProvider,
    OidcProviderError,
)
from tests.helpers import b64url_decode as b64decode
from tests.helpers import free_port

CLIENT_ID = "authgate-app"
CLIENT_SECRET = "app-secret-0123456789"
OTHER_CLIENT_ID = "other-app"
OTHER_SECRET = "other-secret-9876543210"
NO_CHECKS = {
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "verify_aud": False,
    "verify_iss": False,
}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def new_client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10)


# The OpenID Provider ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redirect_uri() -> str:
    """The relying party's callback: never requested, so nothing needs to listen there."""
    return f"http://127.0.0.1:{free_port()}/api/auth/oauth/oidc/callback"


@pytest.fixture(scope="module")
def op(redirect_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    clients = [
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect_uri]},
        {
            "client_id": OTHER_CLIENT_ID,
            "client_secret": OTHER_SECRET,
            "redirect_uris": ["http://127.0.0.1:1/elsewhere"],
        },
    ]
    log_path = tmp_path_factory.mktemp("oidc-provider") / "node.log"
    provider = OidcProvider(clients=clients, log_path=log_path)
    try:
        yield provider
    finally:
        provider.stop()
    assert provider.process.returncode == 0, provider.log()


class Flow:
    """One authorization-code + PKCE login at the OP, by hand."""

    def __init__(self, op: OidcProvider, redirect_uri: str, **extra: str) -> None:
        self.op = op
        self.redirect_uri = redirect_uri
        self.verifier, challenge = pkce_pair()
        self.state = secrets.token_urlsafe(16)
        self.nonce = secrets.token_urlsafe(16)
        params = {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": "openid email profile",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        self.authorization_url = str(httpx.URL(op.authorization_endpoint, params=params))

    def login(self, browser: httpx.Client, account: str = "alice@example.test") -> str:
        location = self.op.complete_login(browser, self.authorization_url, account=account)
        assert location.startswith(self.redirect_uri + "?"), location
        return location

    def code(self, browser: httpx.Client, account: str = "alice@example.test") -> str:
        params = query(self.login(browser, account))
        assert params["state"] == self.state, params
        assert params["iss"] == self.op.issuer, params
        return params["code"]

    def exchange(self, code: str, *, post: bool = False, verifier: str | None = None) -> Any:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier or self.verifier,
        }
        with new_client() as http:
            if post:
                data |= {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
                return http.post(self.op.token_endpoint, data=data)
            return http.post(self.op.token_endpoint, data=data, auth=(CLIENT_ID, CLIENT_SECRET))

    def tokens(self, account: str = "alice@example.test", **kwargs: Any) -> dict[str, Any]:
        with new_client() as browser:
            code = self.code(browser, account)
        response = self.exchange(code, **kwargs)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def signing_key(op: OidcProvider, id_token: str) -> Any:
    kid = jwt.get_unverified_header(id_token)["kid"]
    keys = {key["kid"]: key for key in op.jwks()["keys"]}
    assert kid in keys, (kid, list(keys))
    return jwt.PyJWK.from_dict(keys[kid]).key


def verified_claims(op: OidcProvider, id_token: str, **options: bool) -> dict[str, Any]:
    """Claims of an id_token whose RS256 signature verifies with the OP's JWKS."""
    checks: Any = {"require": ["exp", "iat", "iss", "aud", "sub"], **options}
    claims: dict[str, Any] = jwt.decode(
        id_token,
        signing_key(op, id_token),
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer=op.issuer,
        options=checks,
    )
    return claims


def unverified_claims(id_token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(id_token, options={"verify_signature": False})
    return claims


def test_discovery_document(op: OidcProvider) -> None:
    with new_client() as http:
        response = http.get(op.issuer + "/.well-known/openid-configuration")
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == op.issuer == f"http://127.0.0.1:{op.port}"
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert document[name].startswith(op.issuer + "/"), (name, document[name])
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert set(document["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"openid", "email", "profile"} <= set(document["scopes_supported"])
    assert {"email", "email_verified", "name", "picture", "preferred_username"} <= set(
        document["claims_supported"]
    )
    assert document["authorization_response_iss_parameter_supported"] is True
    (key,) = op.jwks()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
    assert "d" not in key


def test_health(op: OidcProvider) -> None:
    with new_client() as http:
        response = http.get(op.issuer + "/__test/health")
    assert (response.status_code, response.text) == (200, "ok")


def test_requests_to_the_token_and_userinfo_endpoints_are_counted(
    op: OidcProvider, redirect_uri: str
) -> None:
    before = op.request_counts()
    with new_client() as browser:
        code = Flow(op, redirect_uri).code(browser)
    assert op.request_counts() == before  # logging in at the OP is neither

    tokens = Flow(op, redirect_uri).tokens()
    with new_client() as http:
        http.get(op.userinfo_endpoint, headers=bearer(tokens["access_token"]))
        http.get(op.userinfo_endpoint)  # refused (no token): counted all the same
    Flow(op, redirect_uri).exchange(code)  # the code of another flow: refused, counted

    assert op.request_counts() == {
        "token": before["token"] + 2,
        "userinfo": before["userinfo"] + 2,
    }


def test_error_responses_carry_iss_too(op: OidcProvider, redirect_uri: str) -> None:
    flow = Flow(op, redirect_uri, prompt="none")  # a new browser has no session at the OP
    with new_client() as browser:
        params = query(flow.login(browser))
    assert params["error"] == "login_required"
    assert params["iss"] == op.issuer and params["state"] == flow.state


def test_an_op_from_before_rfc_9207_neither_sends_nor_advertises_iss(
    redirect_uri: str, tmp_path: Path
) -> None:
    clients = [
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect_uri]}
    ]
    with OidcProvider(
        clients=clients, log_path=tmp_path / "node.log", iss_parameter=False
    ) as legacy:
        assert "authorization_response_iss_parameter_supported" not in legacy.discovery
        assert legacy.discovery["issuer"] == legacy.issuer  # the rest as before
        flow = Flow(legacy, redirect_uri)
        with new_client() as browser, new_client() as stranger:
            params = query(flow.login(browser))
            denied = query(Flow(legacy, redirect_uri, prompt="none").login(stranger))
        assert "iss" not in params and params["state"] == flow.state
        assert "iss" not in denied and denied["error"] == "login_required"
        tokens = flow.exchange(params["code"])
        assert tokens.status_code == 200, tokens.text
        assert verified_claims(legacy, tokens.json()["id_token"])["sub"] == "alice@example.test"


def test_code_flow_with_pkce_and_client_secret_basic(op: OidcProvider, redirect_uri: str) -> None:
    flow = Flow(op, redirect_uri)
    tokens = flow.tokens()
    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == "openid email profile"
    claims = verified_claims(op, tokens["id_token"])
    assert claims["sub"] == "alice@example.test"
    assert claims["email"] == "alice@example.test"
    assert claims["email_verified"] is True
    assert claims["name"] == "User alice"
    assert claims["preferred_username"] == "alice"
    assert claims["picture"] == "https://avatars.example.test/alice@example.test.png"
    assert claims["nonce"] == flow.nonce
    assert claims["aud"] == CLIENT_ID
    assert claims["exp"] > claims["iat"]
    with new_client() as http:
        response = http.get(op.userinfo_endpoint, headers=bearer(tokens["access_token"]))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "sub": "alice@example.test",
        "email": "alice@example.test",
        "email_verified": True,
        "name": "User alice",
        "picture": "https://avatars.example.test/alice@example.test.png",
        "preferred_username": "alice",
    }


def test_client_secret_post_and_an_unverified_account(op: OidcProvider, redirect_uri: str) -> None:
    tokens = Flow(op, redirect_uri).tokens("unverified-bob", post=True)
    claims = verified_claims(op, tokens["id_token"])
    assert claims["sub"] == "unverified-bob"
    assert claims["email"] == "unverified-bob@example.test"
    assert claims["email_verified"] is False
    assert claims["name"] == "User unverified-bob"
    assert claims["preferred_username"] == "unverified-bob"


def test_only_requested_scopes_reach_the_id_token(op: OidcProvider, redirect_uri: str) -> None:
    tokens = Flow(op, redirect_uri, scope="openid email").tokens("carol@example.test")
    claims = verified_claims(op, tokens["id_token"])
    assert claims["email"] == "carol@example.test"
    assert "name" not in claims and "picture" not in claims


def test_a_second_login_in_the_same_browser_reuses_the_session(
    op: OidcProvider, redirect_uri: str
) -> None:
    with new_client() as browser:
        first = Flow(op, redirect_uri)
        first.exchange(first.code(browser, "dave@example.test"))
        again = Flow(op, redirect_uri)
        code = again.code(browser, "ignored@example.test")
        assert unverified_claims(again.exchange(code).json()["id_token"])["sub"] == (
            "dave@example.test"
        )
        other = Flow(op, redirect_uri, prompt="login")
        code = other.code(browser, "erin@example.test")
        assert unverified_claims(other.exchange(code).json()["id_token"])["sub"] == (
            "erin@example.test"
        )


def test_pkce_is_required(op: OidcProvider, redirect_uri: str) -> None:
    flow = Flow(op, redirect_uri)
    url = httpx.URL(flow.authorization_url)
    params = {k: v for k, v in url.params.items() if not k.startswith("code_challenge")}
    with new_client() as browser:
        location = op.complete_login(browser, str(url.copy_with(params=params)))
    assert location.startswith(redirect_uri + "?")
    result = query(location)
    assert result["error"] == "invalid_request", result
    assert "PKCE" in result["error_description"]
    assert result["state"] == flow.state
    plain = Flow(op, redirect_uri, code_challenge="x" * 43, code_challenge_method="plain")
    with new_client() as browser:
        result = query(op.complete_login(browser, plain.authorization_url))
    assert result["error"] == "invalid_request", result
    assert "code_challenge_method" in result["error_description"]


def test_a_wrong_code_verifier_is_rejected(op: OidcProvider, redirect_uri: str) -> None:
    flow = Flow(op, redirect_uri)
    with new_client() as browser:
        code = flow.code(browser)
    response = flow.exchange(code, verifier=pkce_pair()[0])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_a_wrong_client_secret_is_rejected(op: OidcProvider, redirect_uri: str) -> None:
    flow = Flow(op, redirect_uri)
    with new_client() as browser:
        code = flow.code(browser)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": flow.verifier,
    }
    with new_client() as http:
        response = http.post(op.token_endpoint, data=data, auth=(CLIENT_ID, "not-the-secret"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_an_unregistered_redirect_uri_is_not_redirected_to(op: OidcProvider) -> None:
    flow = Flow(op, "http://127.0.0.1:1/not-registered")
    with new_client() as browser, pytest.raises(OidcProviderError, match="400"):
        op.complete_login(browser, flow.authorization_url)


# Tampering -------------------------------------------------------------------------------------

RESIGNED: dict[str, Any] = {
    "wrong_iss": lambda c: c["iss"] == "https://evil.example",
    "wrong_aud": lambda c: c["aud"] == "someone-else",
    "multiple_aud_without_azp": lambda c: c["aud"] == [CLIENT_ID, "other"] and "azp" not in c,
    "wrong_azp": lambda c: c["azp"] == "other" and c["aud"] == CLIENT_ID,
    "expired": lambda c: c["exp"] < c["now"] - 3000 and c["iat"] < c["now"] - 7000,
    "expired_exp_only": lambda c: (
        c["now"] - 140 <= c["exp"] <= c["now"] - 110
        and c["now"] - 320 <= c["iat"] <= c["now"] - 290
    ),
    "issued_in_future": lambda c: c["iat"] > c["now"] + 3000 and c["exp"] > c["now"] + 7000,
    "wrong_nonce": lambda c: c["nonce"] == "not-the-nonce",
    "missing_nonce": lambda c: "nonce" not in c,
}
CHANGED_CLAIMS = {
    "wrong_iss": {"iss"},
    "wrong_aud": {"aud"},
    "multiple_aud_without_azp": {"aud", "azp"},
    "wrong_azp": {"azp"},
    "expired": {"exp", "iat"},
    "expired_exp_only": {"exp", "iat"},
    "issued_in_future": {"exp", "iat"},
    "wrong_nonce": {"nonce"},
    "missing_nonce": {"nonce"},
}


def test_every_mode_is_covered() -> None:
    assert set(RESIGNED) | {"unknown_key", "alg_none", "hs256_with_public_key"} == set(
        TOKEN_TAMPER_MODES
    )
    assert set(TAMPER_MODES) == set(TOKEN_TAMPER_MODES) | {"userinfo_sub_mismatch"}


@pytest.mark.parametrize("mode", sorted(RESIGNED))
def test_resigned_tamper_modes_change_only_their_claim(
    op: OidcProvider, redirect_uri: str, mode: str
) -> None:
    flow = Flow(op, redirect_uri)
    op.tamper(mode)
    assert op.armed_tamper_mode() == mode
    id_token = flow.tokens("frank@example.test")["id_token"]
    assert op.armed_tamper_mode() == "none"
    claims = verified_claims(op, id_token, **NO_CHECKS)  # the OP's real key still verifies it
    header = jwt.get_unverified_header(id_token)
    assert header["alg"] == "RS256"
    assert header["kid"] == op.jwks()["keys"][0]["kid"]
    assert RESIGNED[mode]({**claims, "now": _now()}), claims
    # Everything else is as the OP issued it.
    clean = verified_claims(op, Flow(op, redirect_uri).tokens("frank@example.test")["id_token"])
    same = set(clean) - CHANGED_CLAIMS[mode] - {"exp", "iat", "nonce"}
    assert {k: claims.get(k) for k in same} == {k: clean[k] for k in same}
    if mode not in ("wrong_nonce", "missing_nonce"):
        assert claims["nonce"] == flow.nonce
    # The clean token does pass every check the tampered one fails.
    assert clean["iss"] == op.issuer and clean["aud"] == CLIENT_ID and "azp" not in clean


def _now() -> int:
    return int(time.time())


def test_unknown_key(op: OidcProvider, redirect_uri: str) -> None:
    op.tamper("unknown_key")
    id_token = Flow(op, redirect_uri).tokens()["id_token"]
    header = jwt.get_unverified_header(id_token)
    assert header["alg"] == "RS256"
    assert header["kid"] not in {key["kid"] for key in op.jwks()["keys"]}
    assert unverified_claims(id_token)["iss"] == op.issuer
    real_key = jwt.PyJWK.from_dict(op.jwks()["keys"][0]).key
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(id_token, real_key, algorithms=["RS256"], audience=CLIENT_ID)


def test_alg_none(op: OidcProvider, redirect_uri: str) -> None:
    op.tamper("alg_none")
    id_token = Flow(op, redirect_uri).tokens()["id_token"]
    header, payload, signature = id_token.split(".")
    assert json.loads(b64decode(header)) == {"alg": "none"}
    assert signature == ""
    claims = json.loads(b64decode(payload))
    assert claims["sub"] == "alice@example.test" and claims["iss"] == op.issuer


def test_hs256_with_public_key(op: OidcProvider, redirect_uri: str) -> None:
    op.tamper("hs256_with_public_key")
    id_token = Flow(op, redirect_uri).tokens()["id_token"]
    header = jwt.get_unverified_header(id_token)
    (jwk,) = op.jwks()["keys"]
    assert header["alg"] == "HS256" and header["kid"] == jwk["kid"]
    # The HMAC secret is the public key as a PEM SPKI, byte for byte what a relying party that
    # turns the JWK into PEM would get.
    pem = jwt.PyJWK.from_dict(jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert op.public_key_pem() == pem
    signing_input, _, signature = id_token.rpartition(".")
    expected = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert b64decode(signature) == expected
    assert unverified_claims(id_token)["aud"] == CLIENT_ID


def test_userinfo_sub_mismatch(op: OidcProvider, redirect_uri: str) -> None:
    op.tamper("userinfo_sub_mismatch")
    tokens = Flow(op, redirect_uri).tokens()
    assert verified_claims(op, tokens["id_token"])["sub"] == "alice@example.test"  # untouched
    with new_client() as http:
        first = http.get(op.userinfo_endpoint, headers=bearer(tokens["access_token"]))
        second = http.get(op.userinfo_endpoint, headers=bearer(tokens["access_token"]))
    assert first.json()["sub"] == "someone-else"
    assert first.json()["email"] == "alice@example.test"
    assert second.json()["sub"] == "alice@example.test"


def test_tampering_is_one_shot_and_survives_failed_requests(
    op: OidcProvider, redirect_uri: str
) -> None:
    op.tamper("wrong_aud")
    flow = Flow(op, redirect_uri)
    with new_client() as browser:
        code = flow.code(browser)
    assert flow.exchange(code, verifier=pkce_pair()[0]).status_code == 400  # not applied
    assert op.armed_tamper_mode() == "wrong_aud"
    assert unverified_claims(Flow(op, redirect_uri).tokens()["id_token"])["aud"] == "someone-else"
    assert verified_claims(op, Flow(op, redirect_uri).tokens()["id_token"])["aud"] == CLIENT_ID


@pytest.fixture
def lone_op(redirect_uri: str) -> Iterator[OidcProvider]:
    """An OP of its own, for tests that change it for good (a rotated key)."""
    clients = [
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect_uri]}
    ]
    with OidcProvider(clients=clients) as provider:
        yield provider


def test_a_rotated_key_signs_later_tokens_and_is_listed_first(
    lone_op: OidcProvider, redirect_uri: str
) -> None:
    (old,) = lone_op.jwks()["keys"]

    kid = lone_op.rotate_signing_key()

    assert kid != old["kid"]
    assert [k["kid"] for k in lone_op.jwks()["keys"]] == [kid, old["kid"]]
    id_token = Flow(lone_op, redirect_uri).tokens()["id_token"]
    assert jwt.get_unverified_header(id_token)["kid"] == kid
    assert verified_claims(lone_op, id_token)["sub"] == "alice@example.test"
    # A tampered token after the rotation is signed with the new key too.
    lone_op.tamper("wrong_nonce")
    tampered = Flow(lone_op, redirect_uri).tokens()["id_token"]
    assert jwt.get_unverified_header(tampered)["kid"] == kid
    assert verified_claims(lone_op, tampered)["nonce"] == "not-the-nonce"


@pytest.mark.parametrize("endpoint", ["discovery", "jwks", "userinfo"])
def test_a_hanging_endpoint_never_answers_once(op: OidcProvider, endpoint: str) -> None:
    url = {
        "discovery": op.issuer + "/.well-known/openid-configuration",
        "jwks": op.jwks_uri,
        "userinfo": op.userinfo_endpoint,
    }[endpoint]
    op.fault(endpoint, "hang")
    with new_client() as http:
        with pytest.raises(httpx.ReadTimeout):
            http.get(url, timeout=0.5)
        assert http.get(url).status_code in (200, 401)  # one-shot: answered again


@pytest.mark.parametrize(
    ("fault", "status", "type_"), [("503", 503, "text/html"), ("429", 429, "application/json")]
)
def test_a_failing_token_endpoint_once(
    op: OidcProvider, redirect_uri: str, fault: str, status: int, type_: str
) -> None:
    flow = Flow(op, redirect_uri)
    with new_client() as browser:
        code = flow.code(browser)
    op.fault("token", fault)

    failed = flow.exchange(code)

    assert failed.status_code == status
    assert failed.headers["content-type"].startswith(type_)
    if fault == "429":
        assert failed.json()["error"] == "slow_down" and failed.headers["retry-after"] == "30"
    assert flow.exchange(code).status_code == 200  # the code was never spent


def test_faults_reject_unknown_names(op: OidcProvider) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        op.fault("token", "explode")
    with new_client() as http:
        response = http.post(op.issuer + "/__test/fault", json={"endpoint": "x", "fault": "hang"})
    assert response.status_code == 400


def test_tamper_rejects_unknown_modes_and_can_disarm(op: OidcProvider) -> None:
    with pytest.raises(ValueError, match="unknown tamper mode"):
        op.tamper("bogus")
    with new_client() as http:
        response = http.post(op.issuer + "/__test/tamper", json={"mode": "bogus"})
    assert response.status_code == 400
    op.tamper("expired")
    op.tamper("none")
    assert op.armed_tamper_mode() == "none"


def test_a_missing_node_modules_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.e2e.peers import oidc_provider

    monkeypatch.setattr(oidc_provider, "PEER_DIR", Path("/nonexistent/oidc-provider"))
    with pytest.raises(OidcProviderError, match="npm ci --prefix tests/peers/oidc-provider"):
        OidcProvider(clients=[])


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


# The GitHub fake -------------------------------------------------------------------------------

GH_CLIENT = "Iv1.0123456789abcdef"
GH_SECRET = "0123456789abcdef0123456789abcdef01234567"
GH_CALLBACK = "http://127.0.0.1:5999/api/auth/oauth/github/callback"


@pytest.fixture(scope="module")
def github() -> Iterator[GitHubFake]:
    fake = GitHubFake()
    try:
        fake.add_client(GH_CLIENT, GH_SECRET, GH_CALLBACK)
        fake.add_user(
            "octocat",
            id=583231,
            name="The Octocat",
            emails=[
                {
                    "email": "octocat@github.test",
                    "primary": True,
                    "verified": True,
                    "visibility": "public",
                },
                {"email": "octo@old.test", "primary": False, "verified": False, "visibility": None},
            ],
        )
        fake.add_user(
            "private-pat",
            id=99,
            emails=[
                {
                    "email": "pat@pat.test",
                    "primary": True,
                    "verified": True,
                    "visibility": "private",
                }
            ],
            avatar_url="https://avatars.example.test/pat.png",
        )
        fake.select_user("octocat")
        yield fake
    finally:
        fake.stop()


def gh_authorize(
    github: GitHubFake, *, scope: str = "read:user user:email", **extra: str
) -> tuple[dict[str, str], str, str]:
    """Authorize (PKCE S256); the redirect's query, the Location, and the code_verifier."""
    verifier, challenge = pkce_pair()
    params = {
        "client_id": GH_CLIENT,
        "redirect_uri": GH_CALLBACK,
        "scope": scope,
        "state": "st-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    with new_client() as http:
        response = http.get(github.authorize_url, params=params)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    return query(location), location, verifier


def gh_exchange(
    github: GitHubFake, code: str, verifier: str | None, *, as_json: bool = False, **extra: Any
) -> httpx.Response:
    data = {
        "client_id": GH_CLIENT,
        "client_secret": GH_SECRET,
        "code": code,
        "redirect_uri": GH_CALLBACK,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(extra.pop("data", {}))
    headers = {"Accept": "application/json"} if as_json else {}
    with new_client() as http:
        return http.post(github.token_url, data=data, headers=headers, **extra)


def form(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    return query("?" + response.text)


def test_github_authorize_redirects_with_code_and_state(github: GitHubFake) -> None:
    params, location, _ = gh_authorize(github)
    assert location.startswith(GH_CALLBACK + "?")
    assert set(params) == {"code", "state"}
    assert params["state"] == "st-123" and len(params["code"]) == 20


def test_github_token_response_is_form_encoded_by_default(github: GitHubFake) -> None:
    params, _, verifier = gh_authorize(github)
    body = form(gh_exchange(github, params["code"], verifier))
    assert set(body) == {"access_token", "scope", "token_type"}
    assert body["access_token"].startswith("gho_") and len(body["access_token"]) == 40
    assert body["scope"] == "read:user,user:email"  # comma-separated, like GitHub
    assert body["token_type"] == "bearer"


def test_github_token_response_in_json_on_request(github: GitHubFake) -> None:
    params, _, verifier = gh_authorize(github, scope="user")
    response = gh_exchange(github, params["code"], verifier, as_json=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"access_token", "scope", "token_type"}
    assert body["scope"] == "user" and body["token_type"] == "bearer"


def test_github_client_auth_by_http_basic(github: GitHubFake) -> None:
    params, _, verifier = gh_authorize(github)
    data = {"code": params["code"], "code_verifier": verifier}
    with new_client() as http:
        response = http.post(github.token_url, data=data, auth=(GH_CLIENT, GH_SECRET))
    assert form(response)["access_token"].startswith("gho_")


def test_github_codes_are_single_use(github: GitHubFake) -> None:
    params, _, verifier = gh_authorize(github)
    assert "access_token" in form(gh_exchange(github, params["code"], verifier))
    again = gh_exchange(github, params["code"], verifier, as_json=True)
    assert again.status_code == 200  # GitHub answers errors with 200
    assert again.json()["error"] == "bad_verification_code"
    assert again.json()["error_description"] == "The code passed is incorrect or expired."


@pytest.mark.parametrize("verifier", ["wrong", None])
def test_github_checks_the_pkce_verifier(github: GitHubFake, verifier: str | None) -> None:
    params, _, _ = gh_authorize(github)
    wrong = pkce_pair()[0] if verifier == "wrong" else None
    body = form(gh_exchange(github, params["code"], wrong))
    assert body["error"] == "bad_verification_code"
    assert "access_token" not in body


def test_github_codes_expire_after_ten_minutes(github: GitHubFake) -> None:
    params, _, verifier = gh_authorize(github)
    fresh, _, fresh_verifier = gh_authorize(github)
    github.advance_clock(599)
    assert "access_token" in form(gh_exchange(github, fresh["code"], fresh_verifier))
    github.advance_clock(2)
    assert form(gh_exchange(github, params["code"], verifier))["error"] == "bad_verification_code"


def test_github_rejects_a_wrong_client_secret(github: GitHubFake) -> None:
    params, _, verifier = gh_authorize(github)
    body = form(gh_exchange(github, params["code"], verifier, data={"client_secret": "nope"}))
    assert body["error"] == "incorrect_client_credentials"


def test_github_redirect_uri_rules(github: GitHubFake) -> None:
    params, location, _ = gh_authorize(github, redirect_uri="http://127.0.0.1:5999/elsewhere")
    assert location.startswith(GH_CALLBACK + "?")  # to the registered callback, with the error
    assert params["error"] == "redirect_uri_mismatch" and params["state"] == "st-123"
    assert "code" not in params
    below = GH_CALLBACK + "/deeper"
    params, location, verifier = gh_authorize(github, redirect_uri=below)
    assert location.startswith(below + "?") and "code" in params
    body = form(gh_exchange(github, params["code"], verifier))  # exchanged with GH_CALLBACK
    assert body["error"] == "redirect_uri_mismatch"


def test_github_unknown_client_is_a_404_page(github: GitHubFake) -> None:
    with new_client() as http:
        response = http.get(github.authorize_url, params={"client_id": "nope", "state": "x"})
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Location" not in response.headers


def test_github_deny_next(github: GitHubFake) -> None:
    github.deny_next()
    params, location, _ = gh_authorize(github)
    assert location.startswith(GH_CALLBACK + "?")
    assert params["error"] == "access_denied" and params["state"] == "st-123"
    assert "code" not in params
    assert "code" in gh_authorize(github)[0]  # only the next one


def login_github(github: GitHubFake, scope: str) -> str:
    params, _, verifier = gh_authorize(github, scope=scope)
    return form(gh_exchange(github, params["code"], verifier))["access_token"]


def test_github_user(github: GitHubFake) -> None:
    token = login_github(github, "read:user")
    with new_client() as http:
        response = http.get(github.api_url + "/user", headers=bearer(token))
        by_token_scheme = http.get(github.api_url + "/user", headers=bearer(token, "token"))
    assert response.status_code == 200
    assert response.headers["X-OAuth-Scopes"] == "read:user"
    user = response.json()
    assert user["id"] == 583231 and isinstance(user["id"], int)
    assert user["login"] == "octocat"
    assert user["name"] == "The Octocat"
    assert user["email"] == "octocat@github.test"
    assert user["avatar_url"] == "https://avatars.githubusercontent.com/u/583231?v=4"
    assert user["html_url"] == "https://github.com/octocat"
    assert user["type"] == "User"
    assert by_token_scheme.json() == user


def test_github_user_without_a_public_email(github: GitHubFake) -> None:
    github.select_user("private-pat")
    try:
        token = login_github(github, "user:email")
    finally:
        github.select_user("octocat")
    with new_client() as http:
        user = http.get(github.api_url + "/user", headers=bearer(token)).json()
        emails = http.get(github.api_url + "/user/emails", headers=bearer(token)).json()
    assert (user["login"], user["id"], user["name"], user["email"]) == (
        "private-pat",
        99,
        None,
        None,
    )
    assert user["avatar_url"] == "https://avatars.example.test/pat.png"
    assert emails == [
        {"email": "pat@pat.test", "primary": True, "verified": True, "visibility": "private"}
    ]


def test_github_bad_credentials(github: GitHubFake) -> None:
    with new_client() as http:
        bad = http.get(github.api_url + "/user", headers=bearer("gho_" + "x" * 36))
        missing = http.get(github.api_url + "/user")
    assert bad.status_code == 401
    assert bad.json() == {
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401",
    }
    assert missing.status_code == 401
    assert missing.json()["message"] == "Requires authentication"


@pytest.mark.parametrize("scope", ["user:email", "user", "read:user user:email"])
def test_github_emails_with_the_email_scope(github: GitHubFake, scope: str) -> None:
    token = login_github(github, scope)
    with new_client() as http:
        response = http.get(github.api_url + "/user/emails", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == [
        {"email": "octocat@github.test", "primary": True, "verified": True, "visibility": "public"},
        {"email": "octo@old.test", "primary": False, "verified": False, "visibility": None},
    ]


@pytest.mark.parametrize("scope", ["read:user", ""])
def test_github_emails_without_the_email_scope_are_not_found(
    github: GitHubFake, scope: str
) -> None:
    token = login_github(github, scope)
    with new_client() as http:
        response = http.get(github.api_url + "/user/emails", headers=bearer(token))
    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"


def test_github_records_calls(github: GitHubFake) -> None:
    before = len(github.calls)
    token = github.issue_token("octocat", ["user:email"])
    with new_client() as http:
        http.get(github.api_url + "/user/emails", headers=bearer(token))
    assert github.calls[before:] == ["GET /user/emails"]
