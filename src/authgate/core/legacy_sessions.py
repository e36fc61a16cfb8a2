"""Session tokens of the app authgate replaces: HMAC-signed JWTs such as the seed tutorial's
``jwt`` cookie (``jwt.encode({"_uid": uid}, SECRET_KEY, algorithm="HS256")``), checked during a
dual run so that they can be exchanged for authgate sessions instead of logging everyone out.

The algorithm list is always explicit (``HS256`` and its siblings only, never ``none``), as the
settings enforce; an ``exp`` claim is checked when the token has one (the seed's has none: its
cookie's ``max_age`` was its only limit, and the dual run's cut-off is the limit here)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

from authgate.errors import InvalidTokenError, TokenExpiredError

__all__ = [
    "LegacySessionClaims",
    "decode_legacy_session_token",
    "legacy_token_fingerprint",
    "legacy_token_hash",
]


@dataclass(frozen=True, slots=True)
class LegacySessionClaims:
    """What a valid legacy token says: the user (the configured claim, as text) and its
    ``exp`` when it has one."""

    user: str
    expires_at: datetime | None = None


_INVALID = "The previous app's session token is not valid: log in again."


def decode_legacy_session_token(
    token: str, *, secret: bytes, algorithms: Sequence[str], claim: str
) -> LegacySessionClaims:
    """The value of ``claim`` (a string or an integer, as text) in a token signed with
    ``secret`` by one of ``algorithms``, and its expiry; ``TokenExpiredError`` past its ``exp``,
    ``InvalidTokenError`` for anything else."""
    if not algorithms or any(not name.startswith("HS") for name in algorithms):
        raise ValueError("legacy session tokens are HMAC-signed: give HS256, HS384 or HS512")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=list(algorithms),
            options={"verify_aud": False, "verify_iss": False},
        )
    except jwt.ExpiredSignatureError as e:
        raise TokenExpiredError("The previous app's session has expired: log in again.") from e
    except jwt.InvalidTokenError as e:
        raise InvalidTokenError(_INVALID) from e
    value = claims.get(claim)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise InvalidTokenError(_INVALID)
    exp = claims.get("exp")  # PyJWT checked it is a number when present
    expires_at = None
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        try:
            expires_at = datetime.fromtimestamp(exp, UTC)
        except (OverflowError, OSError, ValueError):  # far beyond any cut-off
            expires_at = None
    return LegacySessionClaims(str(value), expires_at)


def legacy_token_fingerprint(token: str) -> str:
    """A short, one-way name of a token for logs (never the token itself)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def legacy_token_hash(token: str) -> str:
    """The SHA-256 of a token (hex), by which an exchanged one is remembered: a token signed
    with a secret of the old app is high-entropy, so a fast hash is enough (as for API tokens)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
