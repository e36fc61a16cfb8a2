"""Regression for algorithm confusion, CVE-2022-29217 (GHSA-ffqj-6fqr-9h24) style.

The attacker knows our public key (we publish it as JWKS). If a verifier let the token's header pick
the algorithm, an HS256 token whose HMAC secret is the public key's bytes (PEM, OpenSSH, raw, or the
JWK's ``x``) would verify with the very key object meant for EdDSA. We pin ``algorithms=["EdDSA"]``
and choose the key by ``kid`` ourselves; every such forgery must be rejected.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from authgate.core.keys import KeyRing, SigningKey
from authgate.core.tokens import decode_access_token
from authgate.errors import InvalidTokenError
from tests.helpers import b64url as _b64

NOW = 1_900_000_000
ISS = "https://auth.example.test"
AUD = "https://api.example.test"
PAYLOAD = {
    "iss": ISS,
    "aud": AUD,
    "sub": "attacker",
    "sid": "sess-x",
    "roles": ["admin"],
    "iat": NOW,
    "exp": NOW + 300,
    "jti": "jti-x",
}


def _public_secrets(key: SigningKey) -> dict[str, bytes]:
    public = key.private_key.public_key()
    jwk = key.public_jwk()
    return {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "openssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "raw": public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        "jwk-x": jwk["x"].encode(),
        "jwk-json": json.dumps(jwk).encode(),
    }


def _hmac_token(alg: str, secret: bytes, kid: str) -> str:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    header = {"alg": alg, "typ": "at+jwt", "kid": kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(PAYLOAD).encode())}"
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize("secret_form", ["pem", "openssh", "der", "raw", "jwk-x", "jwk-json"])
def test_hmac_token_signed_with_public_key_is_rejected(
    key: SigningKey, alg: str, secret_form: str
) -> None:
    forged = _hmac_token(alg, _public_secrets(key)[secret_form], key.kid)

    with pytest.raises(InvalidTokenError):
        decode_access_token(forged, keyring=KeyRing([key]), issuer=ISS, audience=AUD, now=NOW)


def test_the_forgery_is_real(key: SigningKey) -> None:
    """Control: a verifier that trusted the header's HS256 would accept the forged token."""
    raw = _public_secrets(key)["raw"]
    forged = _hmac_token("HS256", raw, key.kid)

    claims = jwt.decode(
        forged,
        raw,
        algorithms=["HS256"],
        audience=AUD,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == "attacker"


def test_eddsa_header_with_hmac_signature_is_rejected(key: SigningKey) -> None:
    raw = _public_secrets(key)["raw"]
    header = {"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(PAYLOAD).encode())}"
    signature = hmac.new(raw, signing_input.encode(), hashlib.sha256).digest()

    with pytest.raises(InvalidTokenError):
        decode_access_token(
            f"{signing_input}.{_b64(signature)}",
            keyring=KeyRing([key]),
            issuer=ISS,
            audience=AUD,
            now=NOW,
        )
