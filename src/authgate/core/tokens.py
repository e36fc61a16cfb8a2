"""Access tokens: short-lived JWTs (RFC 9068 ``at+jwt``) signed with the key ring's active key.

Verification is deliberately narrow: one algorithm (EdDSA) given explicitly to PyJWT, the key chosen
by ``kid`` from our own key ring (never from the token), only the header parameters we emit, every
claim required and type-checked, and time checked against an injected ``now`` so tests never sleep.
Every failure is an ``AuthError``; no library message ever reaches the caller.

A token in exactly the shape we issue (our header for its kid, byte for byte) skips PyJWT's JWS
parsing: its signature is checked over the same signing input by the same libsodium check, its
claims by the same code (``_verify_own_token``). Any other token goes through PyJWT as before.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from authgate.core.keys import ALGORITHM, SigningKey
from authgate.errors import InvalidTokenError, TokenExpiredError

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "AccessClaims",
    "UnknownKeyError",
    "decode_access_token",
    "issue_access_token",
]

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 -- JWT header typ (RFC 9068), not a secret

# RFC 9068 §4: resource servers accept "at+jwt" or "application/at+jwt" (media types compare
# case-insensitively).
_ACCEPTED_TYPES = frozenset({ACCESS_TOKEN_TYPE, f"application/{ACCESS_TOKEN_TYPE}"})
# Exactly what issue_access_token writes; anything else (crit, b64, jku, jwk, x5u, ...) is refused.
_ALLOWED_HEADERS = frozenset({"alg", "typ", "kid"})
_REQUIRED_CLAIMS = ("iss", "aud", "sub", "sid", "iat", "exp", "jti")
_MAX_TOKEN_CHARS = 8 * 1024
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
# How far in the future ``iat`` may be (beyond the caller's leeway) before we call it forged:
# tolerates issuers whose clocks run a little ahead of ours.
_MAX_FUTURE_IAT_SECONDS = 60


class _SodiumEdDSA(OKPAlgorithm):
    """PyJWT's ``EdDSA``, its Ed25519 signature check made by libsodium (PyNaCl) instead of
    OpenSSL: the same RFC 8032 check (libsodium also refuses non-canonical ``R`` and small-order
    points, which no honest signer produces), in under half the instructions (0.68M against
    1.45M, callgrind): most of a token's first request."""

    def verify(self, msg: str | bytes, key: Any, sig: str | bytes) -> bool:
        if not (
            isinstance(key, Ed25519PublicKey)
            and isinstance(msg, bytes)
            and isinstance(sig, bytes)
            and len(sig) == _SIGNATURE_BYTES
        ):  # another key, or no Ed25519 signature: OpenSSL's answer (PyJWS passes bytes)
            return super().verify(msg, key, sig)
        try:
            crypto_sign_open(sig + msg, key.public_bytes_raw())
        except BadSignatureError:
            return False
        return True


_SIGNATURE_BYTES = 64
# The JWS layer that verifies access tokens not in our own exact shape: PyJWS (parsing, the
# header checks, the ``alg`` allow list), with EdDSA alone and checked by libsodium.
_JWS = jwt.PyJWS(algorithms=[ALGORITHM])
_JWS.unregister_algorithm(ALGORITHM)
_JWS.register_algorithm(ALGORITHM, _SodiumEdDSA())


class UnknownKeyError(InvalidTokenError):
    """The token's ``kid`` is not in the key ring: the caller may reload keys and retry once."""


@dataclass(frozen=True)
class AccessClaims:
    subject: str
    session_id: str
    roles: tuple[str, ...]
    issued_at: int
    expires_at: int
    token_id: str
    key_id: str
    # When the user last proved who they are in this session (OIDC ``auth_time``) and how
    # (RFC 8176 ``amr``): what ``token_required(fresh=True)`` checks. None in older tokens.
    auth_time: int | None = None
    amr: tuple[str, ...] = ()


def issue_access_token(
    *,
    key: SigningKey,
    issuer: str,
    audience: str,
    subject: str,
    session_id: str,
    roles: Sequence[str],
    ttl_seconds: int,
    now: float,
    auth_time: int | None = None,
    amr: Sequence[str] = (),
) -> str:
    """Sign an access token for ``subject``'s session ``session_id``, valid for ``ttl_seconds``."""
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    if isinstance(roles, str):  # a str is a Sequence[str]; "admin" must not become a,d,m,i,n
        raise TypeError("roles must be a sequence of role names, not a string")
    issued_at = int(now)
    payload = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "sid": session_id,
        "roles": list(roles),
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
        "jti": secrets.token_urlsafe(16),
    }
    if auth_time is not None:
        payload["auth_time"] = auth_time
        payload["amr"] = list(amr)
    headers = {"kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
    return jwt.encode(payload, key.private_key, algorithm=ALGORITHM, headers=headers)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _for_audience(claim: object, audience: str) -> bool:
    """``aud`` names ``audience``: the string itself, or a list of strings holding it
    (RFC 7519 §4.1.3)."""
    if isinstance(claim, str):
        return claim == audience
    return isinstance(claim, list) and all(isinstance(a, str) for a in claim) and audience in claim


def _nonempty_str(payload: dict[str, Any], claim: str) -> str:
    value = payload[claim]
    if not isinstance(value, str) or not value:
        raise InvalidTokenError()
    return value


class VerificationKeys(Protocol):
    """Where verification keys come from: our own ``KeyRing``, or a resource server's
    ``PublicKeySet`` read from the JWKS."""

    def public_key(self, kid: str) -> Ed25519PublicKey | None: ...


def _unverified_header(token: str) -> dict[str, Any]:
    """The header, not yet verified, parsed to choose the key; the same bytes are verified with
    the token by PyJWS (which parses them again: it has no way to choose a key by ``kid``, and
    parsing the whole token twice was a tenth of a token's first request)."""
    segment = token.partition(".")[0]
    if not _BASE64URL.fullmatch(segment):
        raise InvalidTokenError()
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError) as e:
        raise InvalidTokenError() from e
    if not isinstance(header, dict):
        raise InvalidTokenError()
    return header


def _select_key(token: str, keyring: VerificationKeys) -> tuple[str, Ed25519PublicKey]:
    """The key named by the (not yet verified) header, after checking the header's shape."""
    header = _unverified_header(token)
    if not set(header) <= _ALLOWED_HEADERS:
        raise InvalidTokenError()
    if header.get("alg") != ALGORITHM:  # PyJWS checks too; refusing early costs nothing
        raise InvalidTokenError()
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES:
        raise InvalidTokenError()
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidTokenError()
    key = keyring.public_key(kid)
    if key is None:
        raise UnknownKeyError()
    return kid, key


def _own_header_segment(kid: str) -> str:
    """The header segment ``issue_access_token`` writes for ``kid``, byte for byte (PyJWT's
    compact JSON, keys sorted)."""
    header = {"alg": ALGORITHM, "kid": kid, "typ": ACCESS_TOKEN_TYPE}
    encoded = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(encoded).rstrip(b"=").decode("ascii")


# Header segments known to be our own exact header for a kid (never another header, never a
# kid that no key ring held), so that a token's first check skips parsing its header. Which key
# verifies is still asked of the ring given each time. Bounded: a kid enters once a ring has it.
_OWN_HEADERS: dict[str, str] = {}
_MAX_OWN_HEADERS = 256


def _own_header_kid(segment: str, keyring: VerificationKeys) -> str | None:
    """The kid whose own header ``segment`` is, if ``keyring`` holds that kid's key; None for
    any other header (the general path then decides)."""
    kid = _OWN_HEADERS.get(segment)
    if kid is not None:
        return kid
    if not _BASE64URL.fullmatch(segment):
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    if not isinstance(kid, str) or not kid or _own_header_segment(kid) != segment:
        return None
    if keyring.public_key(kid) is None:
        return None
    if len(_OWN_HEADERS) < _MAX_OWN_HEADERS:
        _OWN_HEADERS[segment] = kid
    return kid


# base64url to the alphabet binascii decodes; "+", "/" and "=" (no base64url) become "!", which
# its strict mode refuses, as it refuses any other character.
_TO_BASE64 = bytes.maketrans(b"-_+/=", b"+/!!!")
# The value of each base64url character: the bits a segment's last character carries past its
# last byte must be zero (two, or four, per its length mod 4), or another string decodes the same.
_BASE64URL_VALUES = {c: i for i, c in enumerate(string.ascii_uppercase + string.ascii_lowercase)}
_BASE64URL_VALUES.update({c: 52 + i for i, c in enumerate(string.digits + "-_")})
_UNUSED_BITS = {0: 0, 2: 0b1111, 3: 0b11}


def _canonical_base64url(segment: str) -> bytes | None:
    """The bytes ``segment`` encodes if it is their one unpadded base64url form (what we
    write; PyJWS also takes trailing ``=``); None otherwise."""
    try:
        decoded = binascii.a2b_base64(
            segment.encode("ascii").translate(_TO_BASE64) + b"=" * (-len(segment) % 4),
            strict_mode=True,
        )
    except binascii.Error:  # another character, or a length of 4n + 1
        return None
    unused = _UNUSED_BITS[len(segment) % 4]
    if unused and _BASE64URL_VALUES[segment[-1]] & unused:
        return None
    return decoded


def _verify_own_token(token: str, keyring: VerificationKeys) -> tuple[str, bytes] | None:
    """``(kid, payload bytes)`` of a token in exactly the shape ``issue_access_token`` writes
    (our own header byte for byte, canonical base64url, three segments), its signature checked
    by libsodium with the key ``keyring`` holds for that kid. None for any other shape, which
    the general path (PyJWS) then decides: a token accepted here is one that path accepts
    too, with the same key, at the cost of a dict lookup instead of parsing its header and
    negotiating its ``alg`` (no confusion possible: the header is one we wrote). Raises
    ``InvalidTokenError`` for a bad signature (the general path would say the same)."""
    segments = token.split(".")
    if len(segments) != 3:
        return None
    header_segment, payload_segment, signature_segment = segments
    kid = _own_header_kid(header_segment, keyring)
    if kid is None:
        return None
    key = keyring.public_key(kid)
    payload = _canonical_base64url(payload_segment)
    signature = _canonical_base64url(signature_segment)
    if (
        not isinstance(key, Ed25519PublicKey)
        or payload is None
        or signature is None
        or len(signature) != _SIGNATURE_BYTES
    ):
        return None
    signing_input = token[: len(header_segment) + 1 + len(payload_segment)].encode("ascii")
    try:
        crypto_sign_open(signature + signing_input, key.public_bytes_raw())
    except BadSignatureError as e:
        raise InvalidTokenError() from e
    return kid, payload


def _verify_with_pyjws(token: str, keyring: VerificationKeys) -> tuple[str, bytes]:
    """``(kid, payload bytes)`` of any other token, checked by PyJWS (the general path)."""
    kid, public_key = _select_key(token, keyring)
    try:
        signed = _JWS.decode_complete(token, public_key, algorithms=[ALGORITHM])["payload"]
    except jwt.InvalidTokenError as e:
        raise InvalidTokenError() from e
    return kid, signed


def decode_access_token(
    token: str,
    *,
    keyring: VerificationKeys,
    issuer: str,
    audience: str,
    now: float,
    leeway_seconds: int = 0,
) -> AccessClaims:
    """Verify ``token`` and return its claims.

    Raises ``TokenExpiredError`` for a genuine but expired token, ``UnknownKeyError`` when its
    ``kid`` is not in ``keyring``, and ``InvalidTokenError`` for everything else.

    Our own tokens' exact shape takes a short way to the signature check
    (``_verify_own_token``); every other token, and every claim of both, is checked as before.
    """
    if leeway_seconds < 0:
        raise ValueError("leeway_seconds must not be negative")
    # A compact JWS is base64url and dots: anything non-ASCII (e.g. a lone surrogate from JSON,
    # which PyJWT would fail to encode) is junk, refused before it reaches the library.
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS or not token.isascii():
        raise InvalidTokenError()
    kid, signed = _verify_own_token(token, keyring) or _verify_with_pyjws(token, keyring)
    try:
        payload = json.loads(signed)
    except (ValueError, RecursionError) as e:
        raise InvalidTokenError() from e
    if not isinstance(payload, dict):
        raise InvalidTokenError()
    for claim in _REQUIRED_CLAIMS:
        if payload.get(claim) is None:
            raise InvalidTokenError()
    if payload["iss"] != issuer or not _for_audience(payload["aud"], audience):
        raise InvalidTokenError()

    # The signature is good from here on; still trust nothing about the claims' types.
    subject = _nonempty_str(payload, "sub")
    session_id = _nonempty_str(payload, "sid")
    token_id = _nonempty_str(payload, "jti")
    roles = payload.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidTokenError()
    issued_at, expires_at = payload["iat"], payload["exp"]
    if not _is_int(issued_at) or not _is_int(expires_at) or expires_at <= issued_at:
        raise InvalidTokenError()
    if issued_at > now + leeway_seconds + _MAX_FUTURE_IAT_SECONDS:
        raise InvalidTokenError()
    if "nbf" in payload:  # never issued by us, but honoured if present
        not_before = payload["nbf"]
        if not _is_int(not_before) or not_before > now + leeway_seconds:
            raise InvalidTokenError()
    if expires_at <= now - leeway_seconds:
        raise TokenExpiredError()
    auth_time = payload.get("auth_time")
    if auth_time is not None and (not _is_int(auth_time) or auth_time > issued_at):
        raise InvalidTokenError()
    amr = payload.get("amr", [])
    if not isinstance(amr, list) or not all(isinstance(m, str) for m in amr):
        raise InvalidTokenError()

    return AccessClaims(
        subject=subject,
        session_id=session_id,
        roles=tuple(roles),
        issued_at=issued_at,
        expires_at=expires_at,
        token_id=token_id,
        key_id=kid,
        auth_time=auth_time,
        amr=tuple(amr),
    )
