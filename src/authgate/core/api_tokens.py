"""API tokens for SDKs and scripts, in the style of GitHub's ``ghp_`` tokens.

Format (69 characters)::

    ag_ <token_id: 16 base62> _ <secret: 43 base62> <checksum: 6 base62>

- ``ag_`` makes the token recognisable to secret scanners and in logs.
- ``token_id`` is public: the database primary key, so a presented token is found by one indexed
  lookup, and ``ag_<token_id>`` (:attr:`ApiTokenParts.display_prefix`) is safe to show in lists.
- ``secret`` is 32 bytes from ``secrets`` (256 bits), stored only as a hash.
- ``checksum`` is the CRC32 of everything before it, so a mistyped or truncated token is rejected
  here, without a database lookup, and a scanner can tell a real token from a lookalike string.
  It is an error-detecting code, not a MAC: anyone can compute it, so it proves nothing about
  authenticity and need not be compared in constant time. The secret is what authenticates.

Base62 (``0-9A-Za-z``) keeps the token one "word" when double-clicked and free of characters that
need escaping in URLs, headers or shells.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib
from dataclasses import dataclass, field

from authgate.errors import InvalidTokenError

__all__ = [
    "API_TOKEN_LENGTH",
    "API_TOKEN_PREFIX",
    "ApiTokenParts",
    "api_token_secret_matches",
    "generate_api_token",
    "hash_api_token_secret",
    "is_read_only_scope",
    "legacy_api_token_id",
    "looks_like_api_token",
    "looks_like_legacy_api_token",
    "parse_api_token",
]

API_TOKEN_PREFIX = "ag_"  # noqa: S105 -- a public marker, not a secret

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62_SET = frozenset(_BASE62)
_ID_LENGTH = 16  # 16 base62 characters: ~95 bits, ample for a unique, unguessable-ish key
_SECRET_BYTES = 32
_SECRET_LENGTH = 43  # 62**43 > 2**256, so 32 bytes always fit in 43 base62 characters
_CHECKSUM_LENGTH = 6  # 62**6 > 2**32, so a CRC32 always fits in 6 base62 characters
_SEPARATOR = "_"

API_TOKEN_LENGTH = (
    len(API_TOKEN_PREFIX) + _ID_LENGTH + len(_SEPARATOR) + _SECRET_LENGTH + _CHECKSUM_LENGTH
)  # 69

# Offsets into a token, derived from the lengths above.
_ID_START = len(API_TOKEN_PREFIX)
_ID_END = _ID_START + _ID_LENGTH
_SECRET_START = _ID_END + len(_SEPARATOR)
_SECRET_END = _SECRET_START + _SECRET_LENGTH

_MALFORMED = "The API token is malformed or mistyped."

# Tokens imported from another app (``authgate tokens import``): opaque strings of another shape
# (RAGFlow's 32 hex digits or ``ragflow-...``), kept valid. The whole string is the secret.
_LEGACY_MIN_LENGTH = 16
_LEGACY_MAX_LENGTH = 256
_LEGACY_ID_DOMAIN = b"authgate legacy api token id\x00"


@dataclass(frozen=True, slots=True)
class ApiTokenParts:
    """A parsed token. ``token_id`` is public; ``secret`` never appears in the repr."""

    token_id: str
    secret: str = field(repr=False)

    @property
    def display_prefix(self) -> str:
        """``ag_<token_id>``: identifies the token in lists and logs without revealing it."""
        return API_TOKEN_PREFIX + self.token_id


def _encode_base62(number: int, width: int) -> str:
    """``number`` in base62, left-padded with ``"0"`` to exactly ``width`` characters."""
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(_BASE62[remainder])
    return "".join(reversed(digits)).rjust(width, _BASE62[0])


def _checksum(body: str) -> str:
    """The CRC32 of ``ag_<id>_<secret>`` as 6 base62 characters."""
    return _encode_base62(zlib.crc32(body.encode("utf-8")), _CHECKSUM_LENGTH)


def _is_base62(value: str) -> bool:
    # An explicit alphabet: str.isalnum() would accept "é" or full-width digits.
    return all(char in _BASE62_SET for char in value)


def generate_api_token() -> tuple[str, ApiTokenParts]:
    """A fresh ``(plaintext, parts)``: show the plaintext once; store ``parts.token_id`` and
    ``hash_api_token_secret(parts.secret)``, never the secret itself."""
    token_id = "".join(secrets.choice(_BASE62) for _ in range(_ID_LENGTH))
    secret_number = int.from_bytes(secrets.token_bytes(_SECRET_BYTES), "big")
    secret = _encode_base62(secret_number, _SECRET_LENGTH)
    body = f"{API_TOKEN_PREFIX}{token_id}{_SEPARATOR}{secret}"
    return body + _checksum(body), ApiTokenParts(token_id=token_id, secret=secret)


def looks_like_api_token(value: str) -> bool:
    """Whether a bearer credential should be routed to API-token handling (prefix only, cheap).

    This says nothing about validity; :func:`parse_api_token` decides that.
    """
    return isinstance(value, str) and value.startswith(API_TOKEN_PREFIX)


def parse_api_token(value: str) -> ApiTokenParts:
    """Split a presented token into its parts, checking shape and checksum; no I/O.

    Raises :class:`~authgate.errors.InvalidTokenError` for anything that is not a well-formed
    token with a matching checksum (including non-``str`` input), and never anything else. A token
    that passes may still be unknown or wrong: its secret is checked against the store afterwards.
    """
    if (
        not isinstance(value, str)
        or len(value) != API_TOKEN_LENGTH
        or not value.isascii()
        or not value.startswith(API_TOKEN_PREFIX)
        or value[_ID_END] != _SEPARATOR
    ):
        raise InvalidTokenError(_MALFORMED)
    token_id = value[_ID_START:_ID_END]
    secret = value[_SECRET_START:_SECRET_END]
    checksum = value[_SECRET_END:]
    if not (_is_base62(token_id) and _is_base62(secret) and _is_base62(checksum)):
        raise InvalidTokenError(_MALFORMED)
    # Not secret, so a plain comparison is fine (see the module docstring).
    if _checksum(value[:_SECRET_END]) != checksum:
        raise InvalidTokenError(_MALFORMED)
    return ApiTokenParts(token_id=token_id, secret=secret)


def hash_api_token_secret(secret: str) -> str:
    """The SHA-256 hex digest of the secret: what the store keeps.

    Why a fast, unsalted SHA-256 and not argon2/bcrypt like passwords: the secret is 256 bits from
    ``secrets``, so there is nothing to guess and nothing to precompute — slow hashing and salts
    exist to protect low-entropy human secrets, and would only add latency to every API request.
    A leaked table yields no usable token.

    Any string hashes, even one with lone surrogates, so junk simply matches nothing.
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def api_token_secret_matches(secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` hashes to ``stored_hash``, compared in constant time.

    A malformed stored hash (wrong length, non-ASCII) is simply ``False``, never an exception.
    """
    if not isinstance(secret, str) or not isinstance(stored_hash, str):
        return False
    computed = hash_api_token_secret(secret).encode("ascii")
    return hmac.compare_digest(computed, stored_hash.encode("utf-8", "surrogatepass"))


def looks_like_legacy_api_token(value: str) -> bool:
    """Whether a bearer credential that is not ours (no ``ag_``) may be an imported token: an
    opaque, printable ASCII word of 16 to 256 characters without ``.`` -- never a JWT, which
    always holds two dots, so access tokens do not take this path."""
    return (
        isinstance(value, str)
        and _LEGACY_MIN_LENGTH <= len(value) <= _LEGACY_MAX_LENGTH
        and "." not in value
        and not value.startswith(API_TOKEN_PREFIX)
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


def legacy_api_token_id(value: str) -> str:
    """The id an imported token is stored under: 16 base62 characters derived from the token
    (SHA-256 with a domain of its own, so the id never equals the stored secret hash), found by
    the same one indexed lookup as our own tokens' ids; the token itself is stored only as
    :func:`hash_api_token_secret` of the whole string."""
    digest = hashlib.sha256(_LEGACY_ID_DOMAIN + value.encode("utf-8", "surrogatepass")).digest()
    return _encode_base62(int.from_bytes(digest[:11], "big"), _ID_LENGTH)


def is_read_only_scope(scope: str) -> bool:
    """A scope that only reads: ``read``, ``read:...`` or ``...:read``. Creating an API token
    with any other scope is a sensitive action (it needs a recent authentication)."""
    return scope == "read" or scope.startswith("read:") or scope.endswith(":read")
