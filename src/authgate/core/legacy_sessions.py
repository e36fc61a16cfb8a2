"""Session tokens of the app authgate replaces: HMAC-signed JWTs such as the seed tutorial's
``jwt`` cookie (``jwt.encode({"_uid": uid}, SECRET_KEY, algorithm="HS256")``), checked during a
dual run so that they can be exchanged for authgate sessions instead of logging everyone out.

The algorithm list is always explicit (``HS256`` and its siblings only, never ``none``), as the
settings enforce; an ``exp`` claim is checked when the token has one (the seed's has none: its
cookie's ``max_age`` was its only limit, and the dual run's cut-off is the limit here)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import jwt

from authgate.errors import InvalidTokenError, TokenExpiredError

__all__ = ["decode_legacy_session_token", "legacy_token_fingerprint"]

_INVALID = "The previous app's session token is not valid: log in again."


def decode_legacy_session_token(
    token: str, *, secret: bytes, algorithms: Sequence[str], claim: str
) -> str:
    """The value of ``claim`` (a string or an integer, as text) in a token signed with
    ``secret`` by one of ``algorithms``; ``TokenExpiredError`` past its ``exp``,
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
    return str(value)


def legacy_token_fingerprint(token: str) -> str:
    """A short, one-way name of a token for logs (never the token itself)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:16]
