from __future__ import annotations

import hashlib
import re

from authgate.core.refresh_tokens import (
    REFRESH_TOKEN_PREFIX,
    hash_refresh_token,
    new_refresh_token,
)


def test_prefix() -> None:
    assert REFRESH_TOKEN_PREFIX == "agr_"


def test_new_refresh_token_is_prefixed_urlsafe_and_256_bits() -> None:
    plaintext, _ = new_refresh_token()

    assert plaintext.startswith("agr_")
    # token_urlsafe(32): 32 bytes -> 43 base64url characters without padding.
    assert re.fullmatch(r"agr_[A-Za-z0-9_-]{43}", plaintext)


def test_new_refresh_token_returns_the_hash_of_the_plaintext() -> None:
    plaintext, digest = new_refresh_token()

    assert digest == hash_refresh_token(plaintext)
    assert digest == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in digest


def test_new_refresh_tokens_are_unique() -> None:
    tokens = {new_refresh_token()[0] for _ in range(200)}

    assert len(tokens) == 200


def test_hash_is_sha256_hex_of_the_whole_string() -> None:
    # printf 'agr_abc' | sha256sum
    expected = "c5e8072eec20264aa609a9ffb68f6dfea874ccaf43e18d0dd23fd16ad0a93d98"
    assert hash_refresh_token("agr_abc") == expected
    # The prefix is part of what is hashed.
    assert hash_refresh_token("agr_abc") != hash_refresh_token("abc")
    assert re.fullmatch(r"[0-9a-f]{64}", hash_refresh_token("agr_abc"))


def test_hash_is_deterministic_and_distinguishes_tokens() -> None:
    assert hash_refresh_token("agr_x") == hash_refresh_token("agr_x")
    assert hash_refresh_token("agr_x") != hash_refresh_token("agr_y")


def test_hash_accepts_any_string_from_a_client() -> None:
    # A lone surrogate can arrive through JSON ("\ud800"); it must hash, not raise.
    assert re.fullmatch(r"[0-9a-f]{64}", hash_refresh_token("agr_\ud800"))
