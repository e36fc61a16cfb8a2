"""TOTP codes (checked against pyotp, as an authenticator app computes them) and recovery codes."""

from __future__ import annotations

import pyotp

from authgate.core.second_factors import (
    hash_recovery_code,
    matching_step,
    new_recovery_codes,
    new_totp_secret,
    otpauth_uri,
    qr_svg,
)

NOW = 1_800_000_000.0


def test_a_code_matches_its_step_and_the_neighbours_only() -> None:
    secret = new_totp_secret()
    totp = pyotp.TOTP(secret)
    step = int(NOW) // 30
    for offset in (-1, 0, 1):
        assert matching_step(secret, totp.at(NOW + 30 * offset), now=NOW) == step + offset
    for offset in (-3, -2, 2, 3):
        code = totp.at(NOW + 30 * offset)
        if all(code != totp.at(NOW + 30 * o) for o in (-1, 0, 1)):
            assert matching_step(secret, code, now=NOW) is None
    assert matching_step(secret, " " + totp.at(NOW)[:3] + " " + totp.at(NOW)[3:], now=NOW) == step
    for junk in ("", "12345", "1234567", "12345a", "١٢٣٤٥٦"):
        assert matching_step(secret, junk, now=NOW) is None


def test_recovery_codes_are_distinct_readable_and_forgiving() -> None:
    codes = new_recovery_codes()
    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        assert not set(code) & set("01ilo") - {"0"}
        assert hash_recovery_code(code.upper().replace("-", " ")) == hash_recovery_code(code)
    assert hash_recovery_code("not a code") is None
    assert hash_recovery_code("iiii-iiii-iiii-iiii") is None


def test_the_otpauth_uri_and_its_qr_code() -> None:
    secret = new_totp_secret()
    uri = otpauth_uri(secret, account="ada@example.com", issuer="Acme Corp")
    assert uri.startswith(f"otpauth://totp/Acme%20Corp:ada@example.com?secret={secret}")
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == secret and parsed.issuer == "Acme Corp"
    svg = qr_svg(uri)
    assert svg.startswith("<svg") and "<script" not in svg
