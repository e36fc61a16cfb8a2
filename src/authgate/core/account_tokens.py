"""Account tokens: the single-use secrets that mailed links carry (verify an address, reset a
password, confirm an email change, accept an invitation).

Like refresh tokens they are 256 random bits from ``secrets``, handed out once (in the link's
``#token=`` fragment) and stored only as their SHA-256: nothing to guess, nothing to precompute,
and the row is found by an indexed lookup on the hash (no comparison loop, no timing signal).

A token is *bound* to the account as it was when the token was issued: its email address and a
fingerprint of its password hash. Once either changes, the token is dead (``is_bound_to``):
a reset link mailed before a password change, or a verification link mailed to a previous
address, opens nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from enum import StrEnum

__all__ = [
    "ACCOUNT_TOKEN_PREFIX",
    "TOKEN_LIFETIMES",
    "TokenPurpose",
    "hash_account_token",
    "is_bound_to",
    "new_account_token",
    "password_fingerprint",
]

ACCOUNT_TOKEN_PREFIX = "agl_"  # noqa: S105 -- a public marker ("authgate link"), not a secret
_SECRET_BYTES = 32


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    PASSWORD_RESET = "password_reset"  # noqa: S105 -- a purpose name, not a secret
    EMAIL_CHANGE = "email_change"
    INVITATION = "invitation"


TOKEN_LIFETIMES: dict[TokenPurpose, timedelta] = {
    TokenPurpose.VERIFY_EMAIL: timedelta(hours=24),
    TokenPurpose.PASSWORD_RESET: timedelta(minutes=30),
    TokenPurpose.EMAIL_CHANGE: timedelta(hours=24),
    TokenPurpose.INVITATION: timedelta(days=7),
}


def hash_account_token(plaintext: str) -> str:
    """The SHA-256 hex digest of the whole token: what the store keeps. Any string hashes
    (junk from a client simply matches no row)."""
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()


def new_account_token() -> tuple[str, str]:
    """A fresh ``(plaintext, hash)``: mail the plaintext, store only the hash."""
    plaintext = ACCOUNT_TOKEN_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    return plaintext, hash_account_token(plaintext)


def password_fingerprint(password_hash: str | None) -> str:
    """What a token remembers of the password it was issued under: the SHA-256 of its hash
    (of ``""`` for an account without a password). A new password changes it."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()


def is_bound_to(
    *, email: str, fingerprint: str, current_email: str, current_password_hash: str | None
) -> bool:
    """Whether a token issued for ``email`` under ``fingerprint`` still belongs to the account
    as it is now (same address, ignoring case; same password)."""
    same_email = email.casefold() == current_email.casefold()
    same_password = hmac.compare_digest(fingerprint, password_fingerprint(current_password_hash))
    return same_email and same_password
