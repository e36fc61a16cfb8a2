"""Second factors as values: TOTP codes (RFC 6238), recovery codes and the mfa token of a login
between its password and its second factor. No I/O.

TOTP: 30-second steps, 6 digits, SHA-1 (what authenticator apps implement), a code accepted for
the step before and after the current one (clock drift). ``matching_step`` says *which* step a
code belongs to: the store keeps the last step used per user and accepts only a later one, so a
code works once.

Recovery codes: 16 symbols of a 32-letter alphabet without look-alikes (80 bits), shown as four
groups of four; stored as SHA-256 (a slow hash adds nothing to 80 random bits). Typing is
forgiving: case, spaces and dashes do not matter.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote

import pyotp

__all__ = [
    "RECOVERY_CODE_COUNT",
    "TOTP_DIGITS",
    "TOTP_STEP_SECONDS",
    "hash_recovery_code",
    "hash_secret_token",
    "matching_step",
    "new_recovery_codes",
    "new_secret_token",
    "new_totp_secret",
    "otpauth_uri",
    "qr_svg",
]

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
TOTP_WINDOW_STEPS = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz023456789"  # 32 symbols: no i, l, o or 1
_RECOVERY_GROUPS = 4
_RECOVERY_GROUP_LENGTH = 4


def new_totp_secret() -> str:
    """160 random bits in base32 (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def matching_step(secret: str, code: str, *, now: float) -> int | None:
    """The time step ``code`` is the code of (within the window around ``now``), or None.

    Every candidate is compared in constant time, and all are computed whatever matched."""
    digits = code.strip().replace(" ", "")
    if len(digits) != TOTP_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS)
    current = int(now) // TOTP_STEP_SECONDS
    found = None
    for step in range(current - TOTP_WINDOW_STEPS, current + TOTP_WINDOW_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), digits.encode()):
            found = step
    return found


def otpauth_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads from the QR code."""
    label = f"{quote(issuer, safe='')}:{quote(account, safe='@')}"
    return (
        f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer, safe='')}"
        f"&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECONDS}"
    )


def qr_svg(data: str) -> str:
    """``data`` as a QR code: an inline SVG element (no XML declaration), black on white."""
    import segno

    return str(segno.make(data, error="m").svg_inline(scale=4, dark="#000", light="#fff", border=4))


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """``count`` distinct codes such as ``k7dq-3mfa-x9pe-w2hn``."""
    codes: set[str] = set()
    while len(codes) < count:
        symbols = "".join(
            secrets.choice(_RECOVERY_ALPHABET)
            for _ in range(_RECOVERY_GROUPS * _RECOVERY_GROUP_LENGTH)
        )
        step = _RECOVERY_GROUP_LENGTH
        codes.add("-".join(symbols[i : i + step] for i in range(0, len(symbols), step)))
    return sorted(codes)


def hash_recovery_code(code: str) -> str | None:
    """The stored form of a code as typed (case, spaces and dashes ignored); None for
    something that cannot be a recovery code."""
    normal = "".join(code.split()).replace("-", "").lower()
    length = _RECOVERY_GROUPS * _RECOVERY_GROUP_LENGTH
    if len(normal) != length or any(c not in _RECOVERY_ALPHABET for c in normal):
        return None
    return hashlib.sha256(normal.encode()).hexdigest()


def new_secret_token() -> tuple[str, str]:
    """A random token (256 bits) and its SHA-256, the form stored."""
    token = secrets.token_urlsafe(32)
    return token, hash_secret_token(token)


def hash_secret_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
