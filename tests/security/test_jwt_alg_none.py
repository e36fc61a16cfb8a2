"""Regression: an unsigned token (``alg: none``, RFC 7519 §6) must never be accepted.

The classic JWT attack: strip the signature, set ``alg`` to ``none`` (in any capitalisation), and
hope the verifier trusts the header. Tried with an empty signature and with the original one kept.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from authgate.core.keys import KeyRing, SigningKey
from authgate.core.tokens import decode_access_token, issue_access_token
from authgate.errors import InvalidTokenError
from tests.helpers import b64url as _b64

NOW = 1_900_000_000.0
ISS = "https://auth.example.test"
AUD = "https://api.example.test"


def _genuine(key: SigningKey) -> str:
    return issue_access_token(
        key=key,
        issuer=ISS,
        audience=AUD,
        subject="user-1",
        session_id="sess-1",
        roles=["user"],
        ttl_seconds=300,
        now=NOW,
    )


def _with_header(token: str, header: dict[str, Any], signature: str) -> str:
    _, payload, _ = token.split(".")
    return f"{_b64(json.dumps(header).encode())}.{payload}.{signature}"


def _decode(token: str, key: SigningKey) -> object:
    return decode_access_token(token, keyring=KeyRing([key]), issuer=ISS, audience=AUD, now=NOW)


def test_genuine_token_is_accepted(key: SigningKey) -> None:
    """Control: the forgeries below differ from this token only in header and signature."""
    _decode(_genuine(key), key)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("keep_signature", [False, True], ids=["no-signature", "with-signature"])
def test_alg_none_is_rejected(key: SigningKey, alg: str, keep_signature: bool) -> None:
    genuine = _genuine(key)
    signature = genuine.split(".")[2] if keep_signature else ""
    forged = _with_header(genuine, {"alg": alg, "typ": "at+jwt", "kid": key.kid}, signature)

    with pytest.raises(InvalidTokenError):
        _decode(forged, key)


@pytest.mark.parametrize("keep_signature", [False, True], ids=["no-signature", "with-signature"])
def test_missing_alg_is_rejected(key: SigningKey, keep_signature: bool) -> None:
    genuine = _genuine(key)
    signature = genuine.split(".")[2] if keep_signature else ""
    forged = _with_header(genuine, {"typ": "at+jwt", "kid": key.kid}, signature)

    with pytest.raises(InvalidTokenError):
        _decode(forged, key)
