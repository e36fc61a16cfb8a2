"""Secrets encrypted at rest under the key-encryption key (``AUTHGATE_KEY_ENCRYPTION_KEY``).

A ``SecretBox`` seals a small secret (a TOTP seed; later: signing keys) with AES-256-GCM: a fresh
96-bit nonce per sealing, and *associated data* naming what the secret belongs to (the user's id),
so that a ciphertext copied onto another user's row does not open there. The stored form is
``v1.<base64url(nonce || ciphertext+tag)>``; the version names the key's format for a later
rotation. The key itself is 32 random bytes, written base64url (``new_key_encryption_key``).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authgate.errors import ConfigError

__all__ = [
    "SecretBox",
    "SecretBoxError",
    "generate_key_file",
    "new_key_encryption_key",
    "parse_key_encryption_key",
]

KEY_BYTES = 32
_NONCE_BYTES = 12
_PREFIX = "v1."


class SecretBoxError(Exception):
    """A sealed value did not open: another key, other associated data, or damaged."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key_encryption_key() -> str:
    """32 random bytes, base64url without padding: a value for ``AUTHGATE_KEY_ENCRYPTION_KEY``."""
    return _b64(secrets.token_bytes(KEY_BYTES))


def parse_key_encryption_key(text: str) -> bytes:
    """The key's bytes; ``ConfigError`` (with how to make one) unless it is 32 bytes base64url."""
    value = text.strip()
    try:
        key = _unb64(value) if value.isascii() else b""
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(
            "The key-encryption key must be 32 random bytes, base64url-encoded: create one with "
            '`python -c "import secrets, base64; '
            'print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"`.'
        )
    return key


def generate_key_file(path: Path) -> str:
    """Write a new key to ``path`` (mode 0600 from its creation; never overwrites) and return
    it; ``FileExistsError`` when another process wrote one first.

    The key is written whole to a private temporary file first, then linked at ``path``: a
    process starting at the same moment sees no file or the complete key, never an empty one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = new_key_encryption_key()
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(temporary, path)  # FileExistsError when another process linked one first
    finally:
        temporary.unlink(missing_ok=True)
    return key


class SecretBox:
    """Seals and opens secrets with one key-encryption key."""

    def __init__(self, key: bytes):
        if len(key) != KEY_BYTES:
            raise ValueError("the key-encryption key must be 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, plaintext: bytes, *, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode())
        return _PREFIX + _b64(nonce + sealed)

    def open(self, sealed: str, *, context: str) -> bytes:
        if not sealed.startswith(_PREFIX):
            raise SecretBoxError("unknown sealed format")
        try:
            raw = _unb64(sealed[len(_PREFIX) :])
        except (binascii.Error, ValueError) as e:
            raise SecretBoxError("damaged sealed value") from e
        if len(raw) <= _NONCE_BYTES:
            raise SecretBoxError("damaged sealed value")
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except InvalidTag as e:
            raise SecretBoxError("the sealed value does not open with this key") from e
