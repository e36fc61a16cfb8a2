"""Attacks on access tokens that keep a genuine signature somewhere in the picture: edited payloads,
edited or missing headers, keys named by the token instead of chosen by us."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authgate.core.keys import KeyRing, SigningKey
from authgate.core.tokens import UnknownKeyError, decode_access_token, issue_access_token
from authgate.errors import InvalidTokenError
from tests.helpers import b64url as _b64
from tests.helpers import b64url_decode as _unb64

NOW = 1_900_000_000.0
ISS = "https://auth.example.test"
AUD = "https://api.example.test"


def _key(kid: str = "k1", *, days_ago: int = 0) -> SigningKey:
    return SigningKey(
        kid=kid,
        private_key=Ed25519PrivateKey.generate(),
        created_at=datetime(2030, 1, 1, tzinfo=UTC) - timedelta(days=days_ago),
        dev=False,
    )


def _genuine(key: SigningKey, roles: list[str] | None = None) -> str:
    return issue_access_token(
        key=key,
        issuer=ISS,
        audience=AUD,
        subject="user-1",
        session_id="sess-1",
        roles=roles if roles is not None else ["user"],
        ttl_seconds=300,
        now=NOW,
    )


def _decode(token: str, ring: KeyRing) -> object:
    return decode_access_token(token, keyring=ring, issuer=ISS, audience=AUD, now=NOW)


def _sign(key: SigningKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{_b64(key.private_key.sign(signing_input.encode()))}"


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload)), signature


# --- payload ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit",
    [
        {"roles": ["user", "admin"]},
        {"sub": "user-2"},
        {"exp": int(NOW) + 10**6},
        {"sid": "sess-2"},
    ],
    ids=repr,
)
def test_tampered_payload_is_rejected(edit: dict[str, Any]) -> None:
    key = _key()
    ring = KeyRing([key])
    genuine = _genuine(key)
    _decode(genuine, ring)  # control
    header_segment, _, signature = genuine.split(".")
    _, payload, _ = _parts(genuine)

    payload.update(edit)
    tampered = f"{header_segment}.{_b64(json.dumps(payload).encode())}.{signature}"

    with pytest.raises(InvalidTokenError):
        _decode(tampered, ring)


def test_flipped_signature_bit_is_rejected() -> None:
    key = _key()
    header, payload, signature = _genuine(key).split(".")
    raw = bytearray(_unb64(signature))
    raw[0] ^= 1

    with pytest.raises(InvalidTokenError):
        _decode(f"{header}.{payload}.{_b64(bytes(raw))}", KeyRing([key]))


# --- kid --------------------------------------------------------------------------------------


def test_missing_kid_is_rejected() -> None:
    key = _key()
    _, payload, _ = _parts(_genuine(key))
    token = _sign(key, {"alg": "EdDSA", "typ": "at+jwt"}, payload)

    with pytest.raises(InvalidTokenError) as excinfo:
        _decode(token, KeyRing([key]))

    assert not isinstance(excinfo.value, UnknownKeyError)  # nothing to reload for


@pytest.mark.parametrize("kid", ["", 1, None, ["k1"], {"kid": "k1"}], ids=repr)
def test_kid_that_is_not_a_nonempty_string_is_rejected(kid: Any) -> None:
    key = _key()
    _, payload, _ = _parts(_genuine(key))
    token = _sign(key, {"alg": "EdDSA", "typ": "at+jwt", "kid": kid}, payload)

    with pytest.raises(InvalidTokenError) as excinfo:
        _decode(token, KeyRing([key]))

    assert not isinstance(excinfo.value, UnknownKeyError)


def test_unknown_kid_raises_unknown_key_error() -> None:
    stranger = _key("someone-else")

    with pytest.raises(UnknownKeyError):
        _decode(_genuine(stranger), KeyRing([_key("k1")]))


def test_kid_pointing_at_another_of_our_keys_is_rejected() -> None:
    """A token signed by key A but claiming kid B fails: the kid picks the key, never the token."""
    old, new = _key("old", days_ago=30), _key("new")
    _, payload, _ = _parts(_genuine(new))
    token = _sign(new, {"alg": "EdDSA", "typ": "at+jwt", "kid": "old"}, payload)

    with pytest.raises(InvalidTokenError):
        _decode(token, KeyRing([old, new]))


def test_token_signed_by_a_stranger_with_our_kid_is_rejected() -> None:
    ours = _key("k1")
    impostor = _key("k1")  # same kid, different private key

    with pytest.raises(InvalidTokenError) as excinfo:
        _decode(_genuine(impostor), KeyRing([ours]))

    assert not isinstance(excinfo.value, UnknownKeyError)


# --- typ and other headers --------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["application/at+jwt", "AT+JWT"])
def test_equivalent_typ_spellings_are_accepted(typ: str) -> None:
    key = _key()
    _, payload, _ = _parts(_genuine(key))

    _decode(_sign(key, {"alg": "EdDSA", "typ": typ, "kid": key.kid}, payload), KeyRing([key]))


@pytest.mark.parametrize("typ", ["JWT", "jwt", "", None, 1, "at+jwt ", "rt+jwt", "dpop+jwt"])
def test_wrong_typ_is_rejected(typ: Any) -> None:
    key = _key()
    _, payload, _ = _parts(_genuine(key))
    token = _sign(key, {"alg": "EdDSA", "typ": typ, "kid": key.kid}, payload)

    with pytest.raises(InvalidTokenError):
        _decode(token, KeyRing([key]))


def test_missing_typ_is_rejected() -> None:
    """An ID token or any other JWT signed by the same key must not pass as an access token."""
    key = _key()
    _, payload, _ = _parts(_genuine(key))
    token = _sign(key, {"alg": "EdDSA", "kid": key.kid}, payload)

    with pytest.raises(InvalidTokenError):
        _decode(token, KeyRing([key]))


@pytest.mark.parametrize(
    "extra",
    [
        {"jku": "https://evil.example.test/jwks.json"},
        {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}},
        {"x5u": "https://evil.example.test/cert.pem"},
        {"crit": ["exp"], "exp": 1},
        {"b64": False, "crit": ["b64"]},
    ],
    ids=lambda extra: next(iter(extra)),
)
def test_unexpected_header_parameters_are_rejected(extra: dict[str, Any]) -> None:
    key = _key()
    _, payload, _ = _parts(_genuine(key))
    token = _sign(key, {"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid, **extra}, payload)

    with pytest.raises(InvalidTokenError):
        _decode(token, KeyRing([key]))


# --- encoding ---------------------------------------------------------------------------------
# The compact form is read by authgate itself (``core/tokens.py``), not by PyJWT: these hold it to
# RFC 7515's strict base64url and to JSON objects, whatever a lenient decoder would repair.


def test_signature_with_other_trailing_bits_is_rejected() -> None:
    """86 base64url characters carry 516 bits for a 64-byte signature: a lenient decoder drops
    the last 4, so the same signature has 16 spellings. Only the canonical one passes."""
    key = _key()
    token = _genuine(key)
    head, _, signature = token.rpartition(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    respelled = f"{head}.{signature[:-1]}{alphabet[last ^ 1]}"
    assert _unb64(respelled.rpartition(".")[2]) == _unb64(signature)  # the same 64 bytes
    assert _decode(token, KeyRing([key]))  # control

    with pytest.raises(InvalidTokenError):
        _decode(respelled, KeyRing([key]))


@pytest.mark.parametrize(
    "respell",
    [
        lambda token: token.replace("-", "+").replace("_", "/"),  # base64, not base64url
        lambda token: token.replace(".", "=.", 1),  # padding
        lambda token: token + ".AAAA.AAAA",  # five segments (the JWE form)
        lambda token: token.rpartition(".")[0] + ".",  # no signature
        lambda token: " " + token,
    ],
    ids=["base64", "padding", "five-segments", "no-signature", "leading-space"],
)
def test_respelled_tokens_are_rejected(respell: Any) -> None:
    key = _key()
    token = _genuine(key)
    while respell(token) == token:  # a token without - or _ would not be respelled
        token = _genuine(key)

    with pytest.raises(InvalidTokenError):
        _decode(respell(token), KeyRing([key]))


@pytest.mark.parametrize("segment", ["header", "payload"])
def test_deeply_nested_json_is_an_invalid_token_not_a_crash(segment: str) -> None:
    """A parser's recursion limit is an input error like any other, not a 500."""
    key = _key()
    header, payload, _ = _parts(_genuine(key))
    nested = "[" * 2000 + "]" * 2000  # deeper than the interpreter allows, within 8 KB
    if segment == "header":
        token = f"{_b64(nested.encode())}.{_b64(json.dumps(payload).encode())}.AAAA"
    else:
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(nested.encode())}"
        token = f"{signing_input}.{_b64(key.private_key.sign(signing_input.encode()))}"

    with pytest.raises(InvalidTokenError):
        _decode(token, KeyRing([key]))


@pytest.mark.parametrize("value", ["[]", '"x"', "1", "null"])
def test_header_and_payload_must_be_json_objects(value: str) -> None:
    key = _key()
    header, _, _ = _parts(_genuine(key))
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(value.encode())}"
    token = f"{signing_input}.{_b64(key.private_key.sign(signing_input.encode()))}"
    with pytest.raises(InvalidTokenError):
        _decode(token, KeyRing([key]))

    token = f"{_b64(value.encode())}.{signing_input.partition('.')[2]}.AAAA"
    with pytest.raises(InvalidTokenError):
        _decode(token, KeyRing([key]))
