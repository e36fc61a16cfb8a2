"""Opaque refresh tokens: random secrets handed to the client once and stored only as a hash.

Why a fast, unsalted SHA-256 and not argon2/bcrypt like passwords: a refresh token carries 256 bits
from ``secrets`` (``token_urlsafe(32)``), so there is nothing to guess and nothing to precompute —
slow hashing and salts exist to protect low-entropy human secrets. A deterministic hash also lets
the store find the row by an indexed lookup on the hash, so no comparison loop over candidate rows
(and no timing signal on the secret) is needed, and a leaked table yields no usable token.

The ``agr_`` prefix makes the tokens recognisable to secret scanners and in logs.
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["REFRESH_TOKEN_PREFIX", "hash_refresh_token", "new_refresh_token"]

REFRESH_TOKEN_PREFIX = "agr_"  # noqa: S105 -- a public marker, not a secret
_SECRET_BYTES = 32


def hash_refresh_token(plaintext: str) -> str:
    """The SHA-256 hex digest of the whole token, prefix included: what the store keeps.

    Any string hashes, even one with lone surrogates (possible from JSON ``"\\ud800"``), so junk
    from a client simply matches no row instead of raising.
    """
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()


def new_refresh_token() -> tuple[str, str]:
    """A fresh ``(plaintext, hash)``: give the plaintext to the client, store only the hash."""
    plaintext = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    return plaintext, hash_refresh_token(plaintext)
