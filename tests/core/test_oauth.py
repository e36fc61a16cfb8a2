"""The pure parts of "Log in with ...": redirect targets, flow secrets, provider metadata, JWKS
and ID token verification (OpenID Connect Core §3.1.3.7)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from authgate.core.oauth import (
    ProviderKey,
    ResponseIssuer,
    UnknownIdTokenKeyError,
    add_query_parameter,
    check_authorization_response_issuer,
    hash_flow_secret,
    new_flow_secrets,
    parse_discovery_document,
    parse_jwks,
    safe_redirect_target,
    verify_id_token,
)
from authgate.core.origins import OriginAllowlist, parse_origin
from authgate.errors import (
    OAuthInvalidIdTokenError,
    OAuthIssuerMismatchError,
    OAuthProviderResponseError,
)
from tests.helpers import b64url as _b64

# Redirect targets ---------------------------------------------------------------------------

OWN = parse_origin("http://localhost:8086")
ALLOWLIST = OriginAllowlist(["http://localhost:4100", "https://app.example.com"])


def _target(value: str | None) -> str | None:
    return safe_redirect_target(value, own_origin=OWN, allowlist=ALLOWLIST)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/account", "http://localhost:8086/account"),
        ("/a?b=c#d", "http://localhost:8086/a?b=c#d"),
        ("/", "http://localhost:8086/"),
        ("http://localhost:4100/x", "http://localhost:4100/x"),
        ("http://localhost:4100/x?y=1#z", "http://localhost:4100/x?y=1#z"),
        ("https://app.example.com", "https://app.example.com/"),
        ("https://app.example.com:443/home", "https://app.example.com/home"),
        ("http://localhost:8086/account", "http://localhost:8086/account"),
        # Hosts and schemes compare case-insensitively, as browsers compare origins.
        ("https://APP.example.com/", "https://app.example.com/"),
        ("HTTPS://app.example.com/x", "https://app.example.com/x"),
    ],
)
def test_safe_redirect_target_accepts_own_and_allowed_origins(target: str, expected: str) -> None:
    assert _target(target) == expected


@pytest.mark.parametrize(
    "target",
    [
        "//evil.test",
        "//evil.test/account",
        "///evil.test",
        "/\\evil.test",
        "\\\\evil.test",
        "\\/evil.test",
        "https:evil.test",
        "https:/evil.test",
        "https:///evil.test",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,x",
        "evil.test",
        "account",
        "https://app.example.com.evil.test/",
        "https://evil.test/?https://app.example.com",
        "https://evil.test/https://app.example.com",
        "https://app.example.com@evil.test/",
        "https://user@app.example.com/",
        "https://user:pass@app.example.com/",
        "https://app.example.com\\@evil.test/",
        "http://app.example.com/",
        "https://app.example.com:8443/",
        "https://app.example.com./",
        "http://localhost:41000/",
        "http://localhost:410/",
        "https://localhost:8086/",
        "/\r\nLocation: https://evil.test",
        "/a\tb",
        "/a\nb",
        "/a b",
        "/a\x00b",
        "/" + "a" * 2999,
        "https://\u0430pp.example.com/",  # Cyrillic U+0430 for "a": a look-alike host
        "/\u0430ccount",
        "",
        None,
    ],
)
def test_safe_redirect_target_refuses_open_redirects(target: str | None) -> None:
    assert _target(target) is None


def test_safe_redirect_target_percent_encoded_crlf_stays_on_own_origin() -> None:
    # "%0d%0a" is not a line break in the Location header: it stays three literal characters
    # of a path on our own origin, so it cannot inject a header or leave the origin.
    result = _target("/%0d%0aLocation:evil")
    assert result is None or (
        result.startswith("http://localhost:8086/") and "\r" not in result and "\n" not in result
    )


def test_safe_redirect_target_length_limit() -> None:
    longest = "/" + "a" * 2047
    assert _target(longest) == "http://localhost:8086" + longest
    assert _target(longest + "a") is None


# Query parameters ---------------------------------------------------------------------------


def test_add_query_parameter_keeps_existing_parameters_and_fragment() -> None:
    url = add_query_parameter("https://app.example.com/cb?x=1&empty=#section", "error", "denied")
    assert url == "https://app.example.com/cb?x=1&empty=&error=denied#section"


def test_add_query_parameter_replaces_a_parameter_of_the_same_name() -> None:
    url = add_query_parameter("http://localhost:4100/p?error=old&x=1&error=older", "error", "new")
    assert url == "http://localhost:4100/p?x=1&error=new"
    assert parse_qsl(urlsplit(url).query) == [("x", "1"), ("error", "new")]


def test_add_query_parameter_encodes_the_value() -> None:
    value = "a b&c=d/é#frag"
    url = add_query_parameter("https://app.example.com/", "v", value)
    assert url == "https://app.example.com/?v=a+b%26c%3Dd%2F%C3%A9%23frag"
    parts = urlsplit(url)
    assert parts.fragment == ""
    assert parse_qsl(parts.query) == [("v", value)]


# Flow secrets -------------------------------------------------------------------------------

_URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
# RFC 7636 §4.1: code_verifier = 43*128unreserved
_PKCE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def test_new_flow_secrets_are_distinct_url_safe_and_long() -> None:
    first, second = new_flow_secrets(), new_flow_secrets()
    values = [first.state, first.nonce, first.code_verifier, first.binding]
    values += [second.state, second.nonce, second.code_verifier, second.binding]
    assert len(set(values)) == 8
    for value in values:
        assert _URL_SAFE.fullmatch(value), value
        assert len(value) >= 43  # at least 256 bits of randomness
    assert _PKCE_VERIFIER.fullmatch(first.code_verifier)


def test_hash_flow_secret_is_deterministic_hex_sha256() -> None:
    # FIPS 180-2 test vector for SHA-256("abc").
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_flow_secret("abc") == expected
    assert hash_flow_secret("abc") == hash_flow_secret("abc")
    assert hash_flow_secret("abd") != expected
    secret = new_flow_secrets().state
    hashed = hash_flow_secret(secret)
    assert re.fullmatch(r"[0-9a-f]{64}", hashed)
    assert secret not in hashed


# Discovery documents ------------------------------------------------------------------------

ISSUER = "https://idp.example.test"


def _discovery(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
        "userinfo_endpoint": f"{ISSUER}/userinfo",
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
    }
    for name, value in overrides.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    return document


def test_parse_discovery_document_keeps_the_endpoints() -> None:
    metadata = parse_discovery_document(_discovery(), expected_issuer=ISSUER, allow_http=False)
    assert metadata.issuer == ISSUER
    assert metadata.authorization_endpoint == f"{ISSUER}/authorize"
    assert metadata.token_endpoint == f"{ISSUER}/token"
    assert metadata.jwks_uri == f"{ISSUER}/jwks"
    assert metadata.userinfo_endpoint == f"{ISSUER}/userinfo"
    assert metadata.id_token_algorithms == frozenset({"RS256", "ES256"})
    assert metadata.token_auth_methods == ("client_secret_post", "client_secret_basic")


def test_parse_discovery_document_defaults() -> None:
    document = _discovery(
        userinfo_endpoint=None,
        id_token_signing_alg_values_supported=None,
        token_endpoint_auth_methods_supported=None,
    )
    metadata = parse_discovery_document(document, expected_issuer=ISSUER, allow_http=False)
    assert metadata.userinfo_endpoint is None
    assert metadata.id_token_algorithms == frozenset({"RS256"})
    assert metadata.token_auth_methods == ("client_secret_basic",)


@pytest.mark.parametrize(
    ("advertised", "expected"),
    [
        (["HS256", "RS256", "none"], {"RS256"}),
        (["HS256", "HS384", "HS512", "none"], {"RS256"}),
        (["ES256", "EdDSA", "PS256", 5, None, ["RS256"]], {"ES256", "EdDSA", "PS256"}),
        (["rs256", "RS256 "], {"RS256"}),
        ("RS256 HS256", {"RS256"}),
    ],
)
def test_parse_discovery_document_keeps_asymmetric_algorithms_only(
    advertised: object, expected: set[str]
) -> None:
    document = _discovery(id_token_signing_alg_values_supported=advertised)
    metadata = parse_discovery_document(document, expected_issuer=ISSUER, allow_http=False)
    assert metadata.id_token_algorithms == frozenset(expected)


@pytest.mark.parametrize(
    "issuer",
    [f"{ISSUER}/", "https://IDP.example.test", "https://evil.test", "", None, [ISSUER]],
)
def test_parse_discovery_document_refuses_another_issuer(issuer: object) -> None:
    document = _discovery()
    document["issuer"] = issuer
    with pytest.raises(OAuthProviderResponseError) as info:
        parse_discovery_document(document, expected_issuer=ISSUER, allow_http=False)
    assert info.value.code == "oauth_provider_error"
    assert "issuer" in info.value.message


def test_parse_discovery_document_refuses_an_issuer_without_the_configured_slash() -> None:
    with pytest.raises(OAuthProviderResponseError, match="issuer"):
        parse_discovery_document(_discovery(), expected_issuer=f"{ISSUER}/", allow_http=False)


@pytest.mark.parametrize(
    "name", ["authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"]
)
def test_parse_discovery_document_refuses_http_endpoints_unless_allowed(name: str) -> None:
    document = _discovery(**{name: "http://idp.example.test/endpoint"})
    with pytest.raises(OAuthProviderResponseError) as info:
        parse_discovery_document(document, expected_issuer=ISSUER, allow_http=False)
    assert name in info.value.message
    metadata = parse_discovery_document(document, expected_issuer=ISSUER, allow_http=True)
    assert getattr(metadata, name) == "http://idp.example.test/endpoint"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jwks_uri", None),
        ("authorization_endpoint", None),
        ("token_endpoint", None),
        ("jwks_uri", ""),
        ("jwks_uri", 42),
        ("jwks_uri", "/jwks"),
        ("jwks_uri", "javascript:alert(1)"),
        ("jwks_uri", "ftp://idp.example.test/jwks"),
        ("jwks_uri", "https:///jwks"),
        ("token_endpoint", "https://idp.example.test/to ken"),
        ("token_endpoint", "https://idp.example.test/\u0442oken"),
        ("userinfo_endpoint", 42),
    ],
)
def test_parse_discovery_document_refuses_missing_or_unusable_endpoints(
    name: str, value: object
) -> None:
    document = _discovery()
    if value is None:
        del document[name]
    else:
        document[name] = value
    with pytest.raises(OAuthProviderResponseError) as info:
        parse_discovery_document(document, expected_issuer=ISSUER, allow_http=True)
    assert name in info.value.message


def test_parse_discovery_document_refuses_an_unparsable_url() -> None:
    document = _discovery(authorization_endpoint="https://[oops/authorize")
    with pytest.raises(OAuthProviderResponseError):
        parse_discovery_document(document, expected_issuer=ISSUER, allow_http=False)


@pytest.mark.parametrize("document", [None, [], "{}", 42, [_discovery()]])
def test_parse_discovery_document_refuses_what_is_not_an_object(document: object) -> None:
    with pytest.raises(OAuthProviderResponseError) as info:
        parse_discovery_document(document, expected_issuer=ISSUER, allow_http=False)
    assert info.value.code == "oauth_provider_error"


@pytest.mark.parametrize(
    ("advertised", "supported"),
    [(True, True), (None, False), (False, False), ("true", False), (1, False)],
)
def test_parse_discovery_document_reads_iss_parameter_support(
    advertised: object, supported: bool
) -> None:
    """Only a JSON true says the provider always sends ``iss`` (RFC 9207 §3)."""
    document = _discovery(authorization_response_iss_parameter_supported=advertised)
    metadata = parse_discovery_document(document, expected_issuer=ISSUER, allow_http=False)
    assert metadata.iss_parameter_supported is supported


# The issuer of an authorization response (RFC 9207) -----------------------------------------


@pytest.mark.parametrize("required", [True, False])
def test_an_authorization_response_naming_the_issuer_is_accepted(required: bool) -> None:
    check_authorization_response_issuer(ISSUER, ResponseIssuer(ISSUER, required=required))


def test_an_authorization_response_without_iss_is_accepted_unless_required() -> None:
    check_authorization_response_issuer(None, ResponseIssuer(ISSUER, required=False))
    with pytest.raises(OAuthIssuerMismatchError) as info:
        check_authorization_response_issuer(None, ResponseIssuer(ISSUER, required=True))
    assert info.value.code == "oauth_issuer_mismatch"
    assert "iss" in info.value.message


@pytest.mark.parametrize("required", [True, False])
@pytest.mark.parametrize(
    "iss",
    [
        "https://evil.example.test",
        f"{ISSUER}/",  # simple string comparison: no normalisation of any kind
        "https://IDP.example.test",
        "HTTPS://idp.example.test",
        "https://idp.example.test:443",
        ISSUER.removeprefix("https://"),
        f" {ISSUER}",
        f"{ISSUER}\n",
        "",
    ],
)
def test_an_authorization_response_naming_another_issuer_is_refused(
    iss: str, required: bool
) -> None:
    with pytest.raises(OAuthIssuerMismatchError) as info:
        check_authorization_response_issuer(iss, ResponseIssuer(ISSUER, required=required))
    assert info.value.code == "oauth_issuer_mismatch"
    assert info.value.status == 400
    assert info.value.message == OAuthIssuerMismatchError.default_message  # never echoes iss


@pytest.mark.parametrize("iss", [None, "https://evil.example.test", ISSUER])
def test_without_a_known_issuer_any_iss_is_ignored(iss: str | None) -> None:
    """GitHub publishes no issuer: there is nothing to compare an ``iss`` with."""
    check_authorization_response_issuer(iss, ResponseIssuer(None))


# Keys and ID tokens -------------------------------------------------------------------------

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
CLIENT = "client-123"
NONCE = "nonce-Zq3v"
NOW = 1_900_000_000.0


def _rsa_jwk(kid: str, **extra: Any) -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True), "kid": kid, **extra}


def _ec_jwk(kid: str, **extra: Any) -> dict[str, Any]:
    return {**ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True), "kid": kid, **extra}


JWKS = {"keys": [_rsa_jwk("rsa-1", use="sig"), _ec_jwk("ec-1")]}
KEYS = parse_jwks(JWKS)
ALGORITHMS = frozenset({"RS256", "ES256"})


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "user-42",
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "nonce": NONCE,
        "email": "ada@example.com",
        "email_verified": True,
    }
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def _sign(
    claims: dict[str, Any],
    *,
    key: Any = RSA_KEY,
    algorithm: str = "RS256",
    kid: str | None = "rsa-1",
) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def _verify(token: object, **overrides: Any) -> Any:
    args: dict[str, Any] = {
        "keys": KEYS,
        "algorithms": ALGORITHMS,
        "issuer": ISSUER,
        "client_id": CLIENT,
        "nonce": NONCE,
        "now": NOW,
        "leeway_seconds": 60,
    }
    args.update(overrides)
    return verify_id_token(token, **args)


def _refused(token: object, **overrides: Any) -> OAuthInvalidIdTokenError:
    """Verification fails with the ID token error, whose text shows nothing of the token."""
    with pytest.raises(OAuthInvalidIdTokenError) as info:
        _verify(token, **overrides)
    error = info.value
    assert error.code == "oauth_invalid_id_token"
    text = f"{error} {error.message} {error.to_dict()}"
    if isinstance(token, str) and token:
        assert token[:40] not in text
        for segment in token.split("."):
            if len(segment) >= 16:
                assert segment[:16] not in text
    return error


def _forge(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    """A token with any header: ``sign`` gets the signing input and returns the signature."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign is not None else b""
    return f"{signing_input}.{_b64(signature)}"


def test_a_valid_id_token_gives_its_subject_and_claims() -> None:
    result = _verify(_sign(_claims()))
    assert result.subject == "user-42"
    assert result.claims["email"] == "ada@example.com"
    assert result.claims["email_verified"] is True
    assert result.claims["nonce"] == NONCE


def test_an_es256_id_token_verifies_with_the_ec_key() -> None:
    token = _sign(_claims(sub="ec-user"), key=EC_KEY, algorithm="ES256", kid="ec-1")
    assert _verify(token).subject == "ec-user"


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"aud": [CLIENT, "other-client"], "azp": CLIENT}, id="aud-list-azp-client"),
        pytest.param({"aud": [CLIENT]}, id="aud-list-of-one"),
        pytest.param({"azp": CLIENT}, id="azp-client"),
        pytest.param({"exp": int(NOW) - 30}, id="expired-within-leeway"),
        pytest.param({"iat": int(NOW) + 30}, id="iat-ahead-within-leeway"),
        pytest.param({"iat": int(NOW) - 650}, id="iat-old-within-leeway"),
    ],
)
def test_id_tokens_within_the_rules_are_accepted(claims: dict[str, Any]) -> None:
    assert _verify(_sign(_claims(**claims))).subject == "user-42"


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"iss": "https://evil.test"}, id="wrong-iss"),
        pytest.param({"iss": f"{ISSUER}/"}, id="iss-trailing-slash"),
        pytest.param({"iss": "https://idp.example"}, id="iss-substring"),
        pytest.param({"iss": None}, id="no-iss"),
        pytest.param({"aud": "other-client"}, id="wrong-aud"),
        pytest.param({"aud": "client-12"}, id="aud-substring"),
        pytest.param({"aud": ["other-client"]}, id="aud-list-without-client"),
        pytest.param({"aud": None}, id="no-aud"),
        pytest.param({"aud": [CLIENT, "other-client"]}, id="aud-list-without-azp"),
        pytest.param({"aud": [CLIENT, "other-client"], "azp": "other-client"}, id="azp-other"),
        pytest.param({"azp": "other-client"}, id="azp-other-single-aud"),
        pytest.param({"exp": int(NOW) - 61}, id="expired"),
        pytest.param({"exp": int(NOW) - 3600}, id="long-expired"),
        pytest.param({"exp": None}, id="no-exp"),
        pytest.param({"exp": True}, id="exp-boolean"),
        pytest.param({"exp": "2100-01-01"}, id="exp-string"),
        pytest.param({"iat": int(NOW) + 61}, id="iat-in-future"),
        pytest.param({"iat": int(NOW) - 661}, id="iat-too-old"),
        pytest.param({"iat": None}, id="no-iat"),
        pytest.param({"iat": "now"}, id="iat-string"),
        pytest.param({"nonce": None}, id="no-nonce"),
        pytest.param({"nonce": "nonce-other"}, id="wrong-nonce"),
        pytest.param({"nonce": NONCE + "x"}, id="nonce-longer"),
        pytest.param({"nonce": ["nonce-Zq3v"]}, id="nonce-list"),
        pytest.param({"sub": None}, id="no-sub"),
        pytest.param({"sub": ""}, id="empty-sub"),
        pytest.param({"sub": "x" * 256}, id="long-sub"),
    ],
)
def test_id_tokens_breaking_a_rule_are_refused(claims: dict[str, Any]) -> None:
    _refused(_sign(_claims(**claims)))


def test_the_leeway_decides_about_a_just_expired_token() -> None:
    token = _sign(_claims(exp=int(NOW) - 30))
    assert _verify(token, leeway_seconds=60).subject == "user-42"
    _refused(token, leeway_seconds=0)


def test_alg_none_is_refused_even_if_listed() -> None:
    token = _forge({"alg": "none", "kid": "rsa-1"}, _claims())
    _refused(token)
    _refused(token, algorithms=frozenset({"RS256", "none"}))
    _refused(_forge({"alg": "None", "kid": "rsa-1"}, _claims()))
    _refused(_forge({"alg": "none"}, _claims()), keys={"rsa-1": KEYS["rsa-1"]})


def test_hs256_signed_with_the_public_key_is_refused() -> None:
    """Key confusion: the HMAC secret is the provider's public key, which anyone has."""
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def sign(data: bytes) -> bytes:
        return hmac.new(pem, data, hashlib.sha256).digest()

    token = _forge({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}, _claims(), sign)
    error = _refused(token, algorithms=frozenset({"RS256", "HS256"}))
    assert "HS256" in error.message
    _refused(_forge({"alg": "HS256", "typ": "JWT"}, _claims(), sign), keys={"rsa-1": KEYS["rsa-1"]})


def test_a_token_signed_with_another_key_is_refused() -> None:
    error = _refused(_sign(_claims(), key=OTHER_RSA_KEY))
    assert "signature" in error.message


def test_a_tampered_token_is_refused() -> None:
    header, _, signature = _sign(_claims()).split(".")
    forged_claims = _b64(json.dumps(_claims(sub="admin")).encode())
    _refused(f"{header}.{forged_claims}.{signature}")


def test_an_unknown_kid_asks_for_a_fresh_jwks() -> None:
    token = _sign(_claims(), kid="rotated-2")
    error = _refused(token)
    assert isinstance(error, UnknownIdTokenKeyError)


def test_a_token_without_kid_needs_a_key_set_of_exactly_one_key() -> None:
    token = _sign(_claims(), kid=None)
    only_rsa = {"rsa-1": KEYS["rsa-1"]}
    assert _verify(token, keys=only_rsa).subject == "user-42"
    error = _refused(token)  # two keys: which one?
    assert not isinstance(error, UnknownIdTokenKeyError)
    _refused(token, keys={})


def test_an_algorithm_the_provider_does_not_advertise_is_refused() -> None:
    token = _sign(_claims(), key=EC_KEY, algorithm="ES256", kid="ec-1")
    assert _verify(token).subject == "user-42"
    error = _refused(token, algorithms=frozenset({"RS256"}))
    assert "ES256" in error.message


def test_an_algorithm_that_does_not_fit_the_key_is_refused() -> None:
    # RS256 in the header but the kid of the EC key.
    _refused(_sign(_claims(), kid="ec-1"))
    # ES256 in the header but the kid of the RSA key.
    _refused(_sign(_claims(), key=EC_KEY, algorithm="ES256", kid="rsa-1"))


def test_a_key_declaring_its_algorithm_signs_with_that_one_only() -> None:
    algorithms = frozenset({"RS256", "PS256"})
    token = _sign(_claims(), algorithm="PS256", kid="rsa-declared")
    declared = parse_jwks({"keys": [_rsa_jwk("rsa-declared", alg="RS256")]})
    assert declared["rsa-declared"].algorithm == "RS256"
    _refused(token, keys=declared, algorithms=algorithms)
    undeclared = parse_jwks({"keys": [_rsa_jwk("rsa-declared")]})
    assert _verify(token, keys=undeclared, algorithms=algorithms).subject == "user-42"


@pytest.mark.parametrize(
    "token",
    [
        None,
        42,
        b"a.b.c",
        "",
        "not-a-jwt",
        "a.b",
        "a.b.c",
        "a" * (16 * 1024 + 1),
    ],
)
def test_what_is_not_a_usable_token_is_refused(token: object) -> None:
    _refused(token)


def test_an_oversized_token_is_refused_even_when_correctly_signed() -> None:
    token = _sign(_claims(padding="x" * (16 * 1024)))
    assert len(token) > 16 * 1024
    _refused(token)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "RS256", "kid": 5},
        {"alg": "RS256", "kid": ["rsa-1"]},
        {"alg": None, "kid": "rsa-1"},
        {"kid": "rsa-1"},
        {"alg": 256, "kid": "rsa-1"},
    ],
)
def test_malformed_headers_are_refused(header: dict[str, Any]) -> None:
    _refused(_forge(header, _claims(), lambda data: b"signature"))


@pytest.mark.parametrize("alg", [["RS256"], {"RS256": True}])
def test_an_unhashable_alg_header_is_refused(alg: object) -> None:
    _refused(_forge({"alg": alg, "kid": "rsa-1"}, _claims(), lambda data: b"signature"))


def test_a_private_key_in_the_jwks_never_crashes_verification() -> None:
    private_jwk = {**RSAAlgorithm.to_jwk(RSA_KEY, as_dict=True), "kid": "leaked"}
    keys = parse_jwks({"keys": [private_jwk]})
    token = _sign(_claims(), kid="leaked")
    try:
        result = _verify(token, keys=keys)
    except OAuthInvalidIdTokenError:
        return
    assert result.subject == "user-42"


def test_error_messages_never_contain_the_token() -> None:
    secret_sub = "sub-" + "S3CRETxyz" * 4
    token = _sign(_claims(sub=secret_sub, nonce="nonce-other"))
    error = _refused(token)
    assert secret_sub not in str(error)
    assert "nonce-other" not in str(error)


# JWKS ---------------------------------------------------------------------------------------


def test_parse_jwks_indexes_signing_keys_by_kid() -> None:
    keys = parse_jwks(
        {"keys": [_rsa_jwk("rsa-1", alg="RS256", use="sig"), _ec_jwk("ec-1"), _rsa_jwk("rsa-2")]}
    )
    assert sorted(keys) == ["ec-1", "rsa-1", "rsa-2"]
    assert all(isinstance(key, ProviderKey) for key in keys.values())
    assert keys["rsa-1"].algorithm == "RS256"
    assert keys["rsa-2"].algorithm is None
    assert keys["ec-1"].fits("ES256")
    assert not keys["ec-1"].fits("RS256")
    assert keys["rsa-2"].fits("PS256")
    assert not keys["rsa-2"].fits("ES256")
    assert keys["rsa-1"].fits("RS256")
    assert not keys["rsa-1"].fits("PS256")


def test_parse_jwks_skips_encryption_keys_and_garbage() -> None:
    document = {
        "keys": [
            _rsa_jwk("enc-1", use="enc"),
            _ec_jwk("enc-2", use="enc"),
            "not a key",
            42,
            None,
            ["kty", "RSA"],
            {"kty": "RSA", "kid": "no-modulus"},
            {"kty": "RSA", "n": 5, "e": "AQAB", "kid": "bad-n"},
            {"kty": "EC", "crv": "P-999", "x": "a", "y": "b", "kid": "bad-curve"},
            {"kty": "XYZ", "kid": "bad-kty"},
            _rsa_jwk("rsa-1"),
        ]
    }
    assert list(parse_jwks(document)) == ["rsa-1"]


def test_an_encryption_key_cannot_verify_an_id_token() -> None:
    keys = parse_jwks({"keys": [_rsa_jwk("enc-1", use="enc")]})
    assert keys == {}
    with pytest.raises(UnknownIdTokenKeyError):
        _verify(_sign(_claims(), kid="enc-1"), keys=keys)


@pytest.mark.parametrize(
    "document", [None, [], "keys", {}, {"keys": {}}, {"keys": "x"}, {"keys": None}, [JWKS]]
)
def test_parse_jwks_refuses_what_is_not_a_key_set(document: object) -> None:
    with pytest.raises(OAuthProviderResponseError) as info:
        parse_jwks(document)
    assert info.value.code == "oauth_provider_error"
