from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authgate.core import tokens
from authgate.core.keys import KeyRing, PublicKeySet, SigningKey, generate_key
from authgate.core.tokens import (
    ACCESS_TOKEN_TYPE,
    AccessClaims,
    UnknownKeyError,
    decode_access_token,
    issue_access_token,
)
from authgate.errors import InvalidTokenError, TokenExpiredError
from tests.helpers import b64url as _b64
from tests.helpers import b64url_decode as _b64decode

NOW = 1_900_000_000.0
ISS = "https://auth.example.test"
AUD = "https://api.example.test"
TTL = 300


def _key(kid: str = "k1", *, days_ago: int = 0) -> SigningKey:
    created = datetime(2030, 1, 1, tzinfo=UTC) - timedelta(days=days_ago)
    return SigningKey(
        kid=kid, private_key=Ed25519PrivateKey.generate(), created_at=created, dev=False
    )


def _issue(key: SigningKey, **overrides: Any) -> str:
    args: dict[str, Any] = {
        "key": key,
        "issuer": ISS,
        "audience": AUD,
        "subject": "user-1",
        "session_id": "sess-1",
        "roles": ["admin", "editor"],
        "ttl_seconds": TTL,
        "now": NOW,
    }
    args.update(overrides)
    return issue_access_token(**args)


def _decode(token: Any, ring: KeyRing, **overrides: Any) -> AccessClaims:
    args: dict[str, Any] = {"keyring": ring, "issuer": ISS, "audience": AUD, "now": NOW}
    args.update(overrides)
    return decode_access_token(token, **args)


def _forge(key: SigningKey, payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """Sign arbitrary JSON with ``key`` (EdDSA), bypassing every check PyJWT's encode makes."""
    header = header if header is not None else {"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = key.private_key.sign(signing_input.encode())
    return f"{signing_input}.{_b64(signature)}"


def _good_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "user-1",
        "sid": "sess-1",
        "roles": ["admin"],
        "iat": int(NOW),
        "exp": int(NOW) + TTL,
        "jti": "jti-1",
    }
    payload.update(overrides)
    return payload


# --- issue + decode ---------------------------------------------------------------------------


def test_round_trip() -> None:
    key = _key()
    claims = _decode(_issue(key), KeyRing([key]))

    assert claims.subject == "user-1"
    assert claims.session_id == "sess-1"
    assert claims.roles == ("admin", "editor")
    assert claims.issued_at == int(NOW)
    assert claims.expires_at == int(NOW) + TTL
    assert claims.key_id == "k1"
    assert len(claims.token_id) >= 22  # 16 random bytes, base64url


def test_header_and_claims_on_the_wire() -> None:
    key = _key()
    token = _issue(key, now=NOW + 0.9)

    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": ACCESS_TOKEN_TYPE, "kid": "k1"}
    assert ACCESS_TOKEN_TYPE == "at+jwt"
    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(payload) == {"iss", "aud", "sub", "sid", "roles", "iat", "exp", "jti"}
    assert payload["iss"] == ISS
    assert payload["aud"] == AUD
    assert payload["roles"] == ["admin", "editor"]
    assert payload["iat"] == int(NOW)
    assert payload["exp"] == int(NOW) + TTL


def test_token_ids_are_unique() -> None:
    key = _key()
    ring = KeyRing([key])

    ids = {_decode(_issue(key), ring).token_id for _ in range(50)}

    assert len(ids) == 50


def test_empty_roles_round_trip() -> None:
    key = _key()

    assert _decode(_issue(key, roles=[]), KeyRing([key])).roles == ()


def test_issue_rejects_non_positive_ttl() -> None:
    with pytest.raises(ValueError):
        _issue(_key(), ttl_seconds=0)


def test_issue_rejects_a_string_as_roles() -> None:
    with pytest.raises(TypeError):
        _issue(_key(), roles="admin")


def test_decode_rejects_negative_leeway() -> None:
    key = _key()

    with pytest.raises(ValueError):
        _decode(_issue(key), KeyRing([key]), leeway_seconds=-1)


# --- audience, issuer -------------------------------------------------------------------------


def test_wrong_audience_is_rejected() -> None:
    key = _key()
    token = _issue(key, audience="https://other.example.test")

    with pytest.raises(InvalidTokenError) as excinfo:
        _decode(token, KeyRing([key]))

    assert excinfo.value.code == "invalid_token"
    assert str(excinfo.value) == InvalidTokenError.default_message  # no library text


def test_wrong_issuer_is_rejected() -> None:
    key = _key()
    token = _issue(key, issuer="https://evil.example.test")

    with pytest.raises(InvalidTokenError):
        _decode(token, KeyRing([key]))


# --- time -------------------------------------------------------------------------------------


def test_valid_until_the_last_second() -> None:
    key = _key()

    claims = _decode(_issue(key), KeyRing([key]), now=NOW + TTL - 1)

    assert claims.subject == "user-1"


def test_expired_at_exp() -> None:
    key = _key()

    with pytest.raises(TokenExpiredError) as excinfo:
        _decode(_issue(key), KeyRing([key]), now=NOW + TTL)

    assert excinfo.value.code == "token_expired"


def test_expired_long_ago() -> None:
    key = _key()

    with pytest.raises(TokenExpiredError):
        _decode(_issue(key), KeyRing([key]), now=NOW + 86_400)


def test_leeway_extends_expiry() -> None:
    key = _key()
    token = _issue(key)

    assert _decode(token, KeyRing([key]), now=NOW + TTL + 5, leeway_seconds=10).subject == "user-1"
    with pytest.raises(TokenExpiredError):
        _decode(token, KeyRing([key]), now=NOW + TTL + 10, leeway_seconds=10)


def test_iat_slightly_in_the_future_is_tolerated() -> None:
    key = _key()

    claims = _decode(_issue(key, now=NOW + 30), KeyRing([key]))

    assert claims.issued_at == int(NOW) + 30


def test_iat_far_in_the_future_is_rejected() -> None:
    key = _key()

    with pytest.raises(InvalidTokenError):
        _decode(_issue(key, now=NOW + 3600), KeyRing([key]))


def test_exp_not_after_iat_is_rejected() -> None:
    key = _key()
    token = _forge(key, _good_payload(iat=int(NOW), exp=int(NOW)))

    with pytest.raises(InvalidTokenError):
        _decode(token, KeyRing([key]), now=NOW - 10)


def test_nbf_in_the_future_is_rejected() -> None:
    key = _key()
    ring = KeyRing([key])

    assert _decode(_forge(key, _good_payload(nbf=int(NOW))), ring).subject == "user-1"
    with pytest.raises(InvalidTokenError):
        _decode(_forge(key, _good_payload(nbf=int(NOW) + 100)), ring)


def test_expiry_is_checked_only_after_the_signature() -> None:
    """An expired forgery is 'invalid', not 'expired': expiry says nothing about forged tokens."""
    key = _key()
    forged = _forge(_key(), _good_payload(exp=int(NOW) - 100, iat=int(NOW) - 400))

    with pytest.raises(InvalidTokenError):
        _decode(forged, KeyRing([key]))


# --- rotation ---------------------------------------------------------------------------------


def test_rotation_old_tokens_still_verify_and_newest_key_is_active(tmp_path: Path) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    old = generate_key(tmp_path, dev=False, now=start)
    old_token = _issue(old)

    new = generate_key(tmp_path, dev=False, now=start + timedelta(days=30))
    ring = KeyRing([old, new])

    assert ring.active.kid == new.kid
    new_token = _issue(ring.active)
    assert jwt.get_unverified_header(new_token)["kid"] == new.kid
    assert _decode(old_token, ring).key_id == old.kid
    assert _decode(new_token, ring).key_id == new.kid


def test_token_from_a_removed_key_is_unknown() -> None:
    old, new = _key("old", days_ago=30), _key("new")
    token = _issue(old)

    with pytest.raises(UnknownKeyError):
        _decode(token, KeyRing([new]))


def test_unknown_key_error_is_an_invalid_token_error() -> None:
    assert issubclass(UnknownKeyError, InvalidTokenError)
    assert UnknownKeyError().code == "invalid_token"


# --- claim types ------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "sid", "iat", "exp", "jti"])
def test_missing_required_claim_is_rejected(claim: str) -> None:
    key = _key()
    ring = KeyRing([key])
    payload = _good_payload()
    assert _decode(_forge(key, payload), ring).subject == "user-1"  # control

    del payload[claim]

    with pytest.raises(InvalidTokenError):
        _decode(_forge(key, payload), ring)


@pytest.mark.parametrize(
    "overrides",
    [
        {"sub": 42},
        {"sub": ""},
        {"sub": ["user-1"]},
        {"sid": 7},
        {"sid": None},
        {"jti": 1},
        {"roles": "admin"},
        {"roles": ["admin", 1]},
        {"roles": {"admin": True}},
        {"iat": float(NOW)},
        {"iat": str(int(NOW))},
        {"iat": True},
        {"exp": float(NOW + TTL)},
        {"exp": str(int(NOW + TTL))},
        {"exp": True},
        {"iss": [ISS]},
        {"aud": 5},
        {"nbf": "0"},
    ],
    ids=repr,
)
def test_claims_of_the_wrong_type_are_rejected(overrides: dict[str, Any]) -> None:
    key = _key()

    with pytest.raises(InvalidTokenError):
        _decode(_forge(key, _good_payload(**overrides)), KeyRing([key]))


def test_missing_roles_means_no_roles() -> None:
    key = _key()
    payload = _good_payload()
    del payload["roles"]

    assert _decode(_forge(key, payload), KeyRing([key])).roles == ()


def test_audience_list_containing_ours_is_accepted() -> None:
    key = _key()
    token = _forge(key, _good_payload(aud=["https://other.example.test", AUD]))

    assert _decode(token, KeyRing([key])).subject == "user-1"


@pytest.mark.parametrize(
    "aud", [["https://other.example.test"], [AUD, 5], [], {"aud": AUD}], ids=repr
)
def test_audience_list_without_ours_or_not_of_strings_is_rejected(aud: Any) -> None:
    key = _key()

    with pytest.raises(InvalidTokenError):
        _decode(_forge(key, _good_payload(aud=aud)), KeyRing([key]))


@pytest.mark.parametrize("payload", [["iss", ISS], "claims", 7, None], ids=repr)
def test_a_signed_payload_that_is_not_a_json_object_is_rejected(payload: Any) -> None:
    key = _key()

    with pytest.raises(InvalidTokenError):
        _decode(_forge(key, payload), KeyRing([key]))


def _flip(segment: str, index: int) -> str:
    replacement = "A" if segment[index] != "A" else "B"
    return segment[:index] + replacement + segment[index + 1 :]


@pytest.mark.parametrize("part", [0, 1, 2], ids=["header", "payload", "signature"])
def test_a_changed_byte_anywhere_fails_the_signature(part: int) -> None:
    key = _key()
    parts = _issue(key).split(".")
    parts[part] = _flip(parts[part], 10)

    with pytest.raises(InvalidTokenError):
        _decode(".".join(parts), KeyRing([key]))


@pytest.mark.parametrize(
    "signature",
    ["", "AAAA", _b64(bytes(63)), _b64(bytes(64)), _b64(bytes(65)), _b64(bytes(128))],
    ids=["empty", "3 bytes", "63 bytes", "64 zero bytes", "65 bytes", "128 bytes"],
)
def test_a_signature_of_any_other_bytes_is_rejected(signature: str) -> None:
    key = _key()
    header, payload, genuine = _issue(key).split(".")
    doubled = _b64(jwt.utils.base64url_decode(genuine) * 2)  # the real one, then itself again

    for forged in (signature, doubled):
        with pytest.raises(InvalidTokenError):
            _decode(f"{header}.{payload}.{forged}", KeyRing([key]))


def test_another_keys_signature_is_rejected() -> None:
    mine, theirs = _key("k1"), _key("k1")

    with pytest.raises(InvalidTokenError):
        _decode(_issue(theirs), KeyRing([mine]))


@pytest.mark.parametrize("suffix", ["=", "==", "!", " "], ids=repr)
def test_a_header_segment_outside_base64url_is_rejected(suffix: str) -> None:
    key = _key()
    header, rest = _issue(key).split(".", 1)

    with pytest.raises(InvalidTokenError):
        _decode(f"{header}{suffix}.{rest}", KeyRing([key]))


# --- junk input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        None,
        123,
        b"a.b.c",
        "",
        "not a jwt",
        "a.b.c",
        "....",
        "eyJ.eyJ.",
        "Bearer x.y.z",
        "\ud800.\ud800.\ud800",
    ],
    ids=repr,
)
def test_junk_is_invalid_token(token: Any) -> None:
    with pytest.raises(InvalidTokenError) as excinfo:
        _decode(token, KeyRing([_key()]))

    assert str(excinfo.value) == InvalidTokenError.default_message


def test_absurdly_long_token_is_rejected_before_parsing() -> None:
    key = _key()
    huge = _issue(key, roles=["r" * 100] * 100)
    assert len(huge) > 8 * 1024
    assert jwt.decode(huge, options={"verify_signature": False})  # well-formed, just too long

    with pytest.raises(InvalidTokenError):
        _decode(huge, KeyRing([key]))


# --- our own tokens' short way (_verify_own_token) ---------------------------------------------


def _own_shape(key: SigningKey, payload: dict[str, Any]) -> str:
    """``payload`` signed with ``key`` in exactly the shape ``issue_access_token`` writes (its
    header byte for byte, compact JSON), so that it takes the short way."""
    header = json.dumps({"alg": "EdDSA", "kid": key.kid, "typ": "at+jwt"}, separators=(",", ":"))
    body = json.dumps(payload, separators=(",", ":"))
    signing_input = f"{_b64(header.encode())}.{_b64(body.encode())}"
    return f"{signing_input}.{_b64(key.private_key.sign(signing_input.encode()))}"


@pytest.fixture
def no_pyjws(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyJWS out of reach: a token it would have to decide fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the token went the general way (PyJWS)")

    monkeypatch.setattr(tokens._JWS, "decode_complete", refuse)


def test_our_own_tokens_take_the_short_way(no_pyjws: None) -> None:
    key = _key()
    token = _issue(key, auth_time=int(NOW) - 5, amr=["pwd", "otp"])
    assert token.split(".")[0] == _own_shape(key, {}).split(".")[0]  # what PyJWT writes

    claims = _decode(token, KeyRing([key]))

    assert (claims.subject, claims.session_id, claims.key_id) == ("user-1", "sess-1", "k1")
    assert (claims.auth_time, claims.amr) == (int(NOW) - 5, ("pwd", "otp"))


def test_the_short_way_and_the_general_way_give_the_same_claims(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = _key()
    ring = KeyRing([key])
    token = _issue(key, auth_time=int(NOW), amr=["pwd"])
    short = _decode(token, ring)
    monkeypatch.setattr(tokens, "_verify_own_token", lambda token, keyring: None)

    assert _decode(token, ring) == short


@pytest.mark.parametrize(
    "tamper",
    [
        "payload",  # a claim changed after signing
        "signature",  # a signature byte flipped
        "signature_of_another_token",
    ],
)
def test_the_short_way_refuses_a_tampered_token(no_pyjws: None, tamper: str) -> None:
    key = _key()
    header, payload, signature = _issue(key).split(".")
    if tamper == "payload":
        claims = json.loads(_b64decode(payload))
        claims["roles"] = ["admin", "owner"]
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    elif tamper == "signature":
        raw = bytearray(_b64decode(signature))
        raw[10] ^= 1
        signature = _b64(bytes(raw))
    else:
        signature = _issue(key).split(".")[2]

    with pytest.raises(InvalidTokenError):
        _decode(f"{header}.{payload}.{signature}", KeyRing([key]))


def test_a_token_signed_by_another_key_under_our_kid_is_refused(no_pyjws: None) -> None:
    ours, impostor = _key("k1"), _key("k1")

    with pytest.raises(InvalidTokenError):
        _decode(_issue(impostor), KeyRing([ours]))


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"exp": int(NOW) - 1, "iat": int(NOW) - TTL}, TokenExpiredError),
        ({"iss": "https://evil.test"}, InvalidTokenError),
        ({"aud": "https://other-api.test"}, InvalidTokenError),
        ({"sub": ""}, InvalidTokenError),
        ({"sid": None}, InvalidTokenError),
        ({"iat": "1900000000"}, InvalidTokenError),
        ({"roles": "admin"}, InvalidTokenError),
        ({"nbf": int(NOW) + 60}, InvalidTokenError),
        ({"iat": int(NOW) + 3600, "exp": int(NOW) + 4000}, InvalidTokenError),
        ({"auth_time": int(NOW) + 1}, InvalidTokenError),
        ({"amr": "pwd"}, InvalidTokenError),
    ],
    ids=repr,
)
def test_the_short_way_checks_every_claim(
    no_pyjws: None, claims: dict[str, Any], error: type[Exception]
) -> None:
    key = _key()

    with pytest.raises(error):
        _decode(_own_shape(key, _good_payload(**claims)), KeyRing([key]))


def test_the_short_way_honours_the_leeway(no_pyjws: None) -> None:
    key = _key()
    token = _own_shape(key, _good_payload(exp=int(NOW) - 10, iat=int(NOW) - TTL))

    assert _decode(token, KeyRing([key]), leeway_seconds=30).subject == "user-1"


def test_a_key_no_longer_in_the_ring_stops_verifying_its_tokens() -> None:
    retired, active = _key("k-old", days_ago=30), _key("k-new")
    token = _issue(retired)
    assert _decode(token, KeyRing([retired, active])).key_id == "k-old"  # remembered header

    with pytest.raises(UnknownKeyError):
        _decode(token, KeyRing([active]))


@pytest.mark.parametrize(
    "reshape",
    [
        pytest.param(lambda h, p, s: f"{h}.{p}.{s}=", id="padded signature"),
        pytest.param(lambda h, p, s: f"{h}.{p}=.{s}", id="padded payload"),
        pytest.param(lambda h, p, s: f"{h}.{p}.{s}.", id="extra dot"),
        pytest.param(lambda h, p, s: f"{h}.{p}..{s}", id="extra empty segment"),
        pytest.param(lambda h, p, s: f"{h}.{p}.{s[:-1]}", id="signature cut short"),
        pytest.param(lambda h, p, s: f"{h}.{p[:-1]}{_other_last(p)}.{s}", id="payload bits"),
        pytest.param(lambda h, p, s: f"{h}.{p}.{s[:-1]}{_other_last(s)}", id="signature bits"),
        pytest.param(lambda h, p, s: f"{h}.{p}.{s.replace('-', '+').replace('_', '/')}", id="+/"),
        pytest.param(lambda h, p, s: f"{h}.{p[:5]} {p[5:]}.{s}", id="space"),
    ],
)
def test_other_shapes_go_the_general_way_and_end_as_it_says(reshape: Any) -> None:
    """Anything but our exact shape is decided by PyJWS, and the short way never accepts what
    it refuses: each reshaped token ends the same way on both (here: accepted with trailing
    ``=``, which PyJWS takes; refused otherwise)."""
    key = _key()
    ring = KeyRing([key])
    for _ in range(100):  # segments whose last characters carry unused bits, and "-" or "_"
        header, payload, signature = _issue(key).split(".")
        if len(payload) % 4 in (2, 3) and ("-" in signature or "_" in signature):
            break
    token = reshape(header, payload, signature)
    general = _general_outcome(token, ring)

    assert tokens._verify_own_token(token, ring) is None
    assert _outcome(token, ring) == general


def _other_last(segment: str) -> str:
    """Another last character that decodes to the same bytes (unused bits set)."""
    value = tokens._BASE64URL_VALUES[segment[-1]]
    flipped = value | 1
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    return alphabet[flipped]


def _outcome(token: str, ring: KeyRing) -> Any:
    try:
        return _decode(token, ring)
    except InvalidTokenError as e:
        return type(e)


def _general_outcome(token: str, ring: KeyRing) -> Any:
    own = tokens._verify_own_token
    tokens._verify_own_token = lambda token, keyring: None  # type: ignore[assignment]
    try:
        return _outcome(token, ring)
    finally:
        tokens._verify_own_token = own


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "EdDSA", "kid": "k1", "typ": "at+jwt", "crit": ["b64"]},
        {"alg": "none", "kid": "k1", "typ": "at+jwt"},
        {"alg": "HS256", "kid": "k1", "typ": "at+jwt"},
        {"alg": "EdDSA", "kid": "k1", "typ": "JWT"},
        {"kid": "k1", "alg": "EdDSA", "typ": "at+jwt"},  # our header, keys in another order
    ],
    ids=repr,
)
def test_another_header_never_takes_the_short_way(header: dict[str, Any]) -> None:
    key = _key()
    token = _forge(key, _good_payload(), header)

    assert tokens._verify_own_token(token, KeyRing([key])) is None


def test_an_empty_kid_is_refused_even_by_a_key_set_that_names_a_key_so(no_pyjws: None) -> None:
    """A JWKS may hold a key whose kid is "" (``PublicKeySet``); a token naming it is refused
    on both ways, as the general way always did."""
    key = _key("")
    keys = PublicKeySet({"": key.private_key.public_key()})

    with pytest.raises(InvalidTokenError):
        _decode(_own_shape(key, _good_payload()), keys)
