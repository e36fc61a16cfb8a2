from __future__ import annotations

import hashlib
import re
import string
import zlib
from typing import Any

import pytest

from authgate.core.api_tokens import (
    API_TOKEN_LENGTH,
    API_TOKEN_PREFIX,
    ApiTokenParts,
    api_token_secret_matches,
    generate_api_token,
    hash_api_token_secret,
    looks_like_api_token,
    parse_api_token,
)
from authgate.errors import InvalidTokenError

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
TOKEN_RE = re.compile(r"ag_([0-9A-Za-z]{16})_([0-9A-Za-z]{43})([0-9A-Za-z]{6})")
MESSAGE = "The API token is malformed or mistyped."

# Known-answer vector: locks the format (alphabet order, padding, what the CRC covers).
ZERO_BODY = "ag_" + "0" * 16 + "_" + "0" * 43
ZERO_TOKEN = ZERO_BODY + "1iXuwC"


def _independent_checksum(body: str) -> str:
    """A second implementation of the checksum, so the tests do not trust the module's."""
    number = zlib.crc32(body.encode())
    out = ""
    for _ in range(6):
        number, digit = divmod(number, 62)
        out = BASE62[digit] + out
    assert number == 0
    return out


def _assert_rejected(value: Any) -> None:
    with pytest.raises(InvalidTokenError) as info:
        parse_api_token(value)
    assert info.value.message == MESSAGE
    assert info.value.code == "invalid_token"


# --- constants and generation -------------------------------------------------------------------


def test_constants() -> None:
    assert API_TOKEN_PREFIX == "ag_"
    assert API_TOKEN_LENGTH == 69


def test_generated_token_has_the_exact_shape() -> None:
    plaintext, parts = generate_api_token()

    match = TOKEN_RE.fullmatch(plaintext)
    assert match is not None
    assert len(plaintext) == 69
    assert match.group(1) == parts.token_id
    assert match.group(2) == parts.secret
    assert match.group(3) == _independent_checksum(plaintext[:63])


def test_generated_ids_and_secrets_use_only_base62() -> None:
    for _ in range(200):
        _, parts = generate_api_token()
        assert len(parts.token_id) == 16
        assert len(parts.secret) == 43
        assert set(parts.token_id) <= set(BASE62)
        assert set(parts.secret) <= set(BASE62)


def test_secret_encodes_256_bits() -> None:
    # Decoding the base62 secret gives a number below 2**256 (32 bytes), and over many draws the
    # top bits get used (not, say, 16 bytes padded with zeros).
    values = []
    for _ in range(200):
        _, parts = generate_api_token()
        value = 0
        for char in parts.secret:
            value = value * 62 + BASE62.index(char)
        assert value < 2**256
        values.append(value)
    assert max(values) >= 2**255


def test_generated_tokens_are_unique() -> None:
    drawn = [generate_api_token() for _ in range(1000)]

    assert len({plaintext for plaintext, _ in drawn}) == 1000
    assert len({parts.token_id for _, parts in drawn}) == 1000
    assert len({parts.secret for _, parts in drawn}) == 1000


def test_generated_tokens_round_trip_through_parse() -> None:
    for _ in range(200):
        plaintext, parts = generate_api_token()
        assert parse_api_token(plaintext) == parts


# --- known answer -------------------------------------------------------------------------------


def test_known_answer_vector() -> None:
    assert _independent_checksum(ZERO_BODY) == "1iXuwC"
    assert parse_api_token(ZERO_TOKEN) == ApiTokenParts(token_id="0" * 16, secret="0" * 43)


# --- rejection ----------------------------------------------------------------------------------


def test_every_single_character_change_is_rejected() -> None:
    plaintext, _ = generate_api_token()
    tried = 0
    for position in range(len(plaintext)):
        for replacement in BASE62:
            if replacement == plaintext[position]:
                continue
            _assert_rejected(plaintext[:position] + replacement + plaintext[position + 1 :])
            tried += 1
    # 67 positions hold a base62 character (61 others each); the two "_" have 62 others each.
    assert tried == 67 * 61 + 2 * 62


def test_changes_in_id_and_secret_fail_the_checksum_specifically() -> None:
    # The changed token keeps a valid shape, so only the checksum can catch it.
    plaintext, _ = generate_api_token()
    positions = [*range(3, 19), *range(20, 63)]
    assert len(positions) == 16 + 43
    for position in positions:
        replacement = "A" if plaintext[position] != "A" else "B"
        changed = plaintext[:position] + replacement + plaintext[position + 1 :]
        assert TOKEN_RE.fullmatch(changed)
        assert changed[63:] != _independent_checksum(changed[:63])
        _assert_rejected(changed)


def test_swapped_adjacent_characters_are_rejected() -> None:
    plaintext, _ = generate_api_token()
    for position in [*range(3, 18), *range(20, 62)]:
        a, b = plaintext[position], plaintext[position + 1]
        if a == b:
            continue
        _assert_rejected(plaintext[:position] + b + a + plaintext[position + 2 :])


def test_every_truncation_is_rejected() -> None:
    plaintext, _ = generate_api_token()
    for length in range(69):
        _assert_rejected(plaintext[:length])
        _assert_rejected(plaintext[69 - length :])


@pytest.mark.parametrize("suffix", ["0", "a", "_", " ", "\n", "=", "0" * 69])
def test_extended_tokens_are_rejected(suffix: str) -> None:
    plaintext, _ = generate_api_token()
    _assert_rejected(plaintext + suffix)


@pytest.mark.parametrize("prefix", ["gh_", "AG_", "Ag_", "aG_", "ag-", "ag.", "agr"])
def test_wrong_prefix_is_rejected(prefix: str) -> None:
    plaintext, _ = generate_api_token()
    _assert_rejected(prefix + plaintext[3:])


def test_wrong_prefix_is_rejected_even_with_a_matching_checksum() -> None:
    body = "AG_" + ZERO_BODY[3:]
    _assert_rejected(body + _independent_checksum(body))


def test_missing_separator_is_rejected_even_with_a_matching_checksum() -> None:
    body = "ag_" + "0" * 16 + "0" + "0" * 43
    assert len(body) == 63
    _assert_rejected(body + _independent_checksum(body))
    # The separator moved one place left: same length, still not the format.
    body = "ag_" + "0" * 15 + "_" + "0" * 44
    _assert_rejected(body + _independent_checksum(body))


def test_non_base62_characters_are_rejected_even_with_a_matching_checksum() -> None:
    for bad in ["-", "_", "+", "/", "=", ".", " "]:
        body = "ag_" + bad + "0" * 15 + "_" + "0" * 43
        _assert_rejected(body + _independent_checksum(body))
        body = "ag_" + "0" * 16 + "_" + "0" * 42 + bad
        _assert_rejected(body + _independent_checksum(body))
    _assert_rejected(ZERO_BODY + "1iXuw-")


@pytest.mark.parametrize(
    "transform",
    [
        lambda t: " " + t,
        lambda t: t + " ",
        lambda t: " " + t[:-1],
        lambda t: t[:-1] + " ",
        lambda t: t[:-1] + "\n",
        lambda t: "\t" + t[1:],
        lambda t: t[:30] + " " + t[31:],
        lambda t: t[:30] + "\u00a0" + t[31:],
        lambda t: t.strip() + "\r\n",
    ],
)
def test_whitespace_is_rejected(transform: Any) -> None:
    _assert_rejected(transform(ZERO_TOKEN))


@pytest.mark.parametrize(
    "replacement",
    ["é", "\uff10", "\u0660", "\u00b2", "\u0410", "\ud800", "\U0001f600", "\x00"],
)
def test_non_ascii_and_control_characters_are_rejected(replacement: str) -> None:
    # Full-width and Arabic-Indic digits, superscripts and Cyrillic letters pass str.isalnum().
    for position in (5, 40, 66):
        _assert_rejected(ZERO_TOKEN[:position] + replacement + ZERO_TOKEN[position + 1 :])


@pytest.mark.parametrize("replacement", ["é", "\uff10", "\u0660", "\u00b2", "\u0410"])
def test_non_ascii_is_rejected_even_with_a_matching_checksum(replacement: str) -> None:
    # All of these pass str.isalnum(); only an explicit ASCII alphabet keeps them out.
    for body in (
        "ag_" + replacement + "0" * 15 + "_" + "0" * 43,
        "ag_" + "0" * 16 + "_" + "0" * 42 + replacement,
    ):
        _assert_rejected(body + _independent_checksum(body))


@pytest.mark.parametrize(
    "value",
    [None, ZERO_TOKEN.encode(), bytearray(ZERO_TOKEN.encode()), 69, ["ag_"], object()],
)
def test_non_str_input_is_rejected(value: Any) -> None:
    _assert_rejected(value)


def test_empty_string_is_rejected() -> None:
    _assert_rejected("")


# --- routing ------------------------------------------------------------------------------------


def test_looks_like_api_token_routes_on_the_prefix_only() -> None:
    plaintext, _ = generate_api_token()
    assert looks_like_api_token(plaintext)
    assert looks_like_api_token("ag_anything")  # cheap: validity is parse_api_token's job
    assert not looks_like_api_token("eyJhbGciOiJFZERTQSJ9.e30.sig")
    assert not looks_like_api_token("agr_" + "x" * 43)
    assert not looks_like_api_token("AG_" + plaintext[3:])
    assert not looks_like_api_token("")


# --- hashing and comparison ---------------------------------------------------------------------


def test_hash_is_sha256_hex_of_the_secret() -> None:
    _, parts = generate_api_token()
    digest = hash_api_token_secret(parts.secret)

    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == hashlib.sha256(parts.secret.encode()).hexdigest()
    assert parts.secret not in digest
    assert hash_api_token_secret(parts.secret) == digest


def test_hash_accepts_any_string() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", hash_api_token_secret("\ud800"))
    assert re.fullmatch(r"[0-9a-f]{64}", hash_api_token_secret(""))


def test_secret_matches_only_its_own_hash() -> None:
    _, parts = generate_api_token()
    _, other = generate_api_token()
    stored = hash_api_token_secret(parts.secret)

    assert api_token_secret_matches(parts.secret, stored)
    assert not api_token_secret_matches(other.secret, stored)
    assert not api_token_secret_matches(parts.secret[:-1], stored)
    assert not api_token_secret_matches(parts.secret + "0", stored)
    assert not api_token_secret_matches(parts.secret.swapcase(), stored)
    assert not api_token_secret_matches("", stored)
    # The hash itself is not a credential.
    assert not api_token_secret_matches(stored, stored)


def test_secret_is_compared_through_hmac_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from authgate.core import api_tokens

    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api_tokens.hmac, "compare_digest", spy)
    _, parts = generate_api_token()
    stored = hash_api_token_secret(parts.secret)

    assert api_token_secret_matches(parts.secret, stored)
    assert calls == [(stored.encode(), stored.encode())]


@pytest.mark.parametrize(
    "stored_hash", ["", "not-a-hash", "é" * 64, "\ud800", "0" * 64, "0" * 63, "A" * 64]
)
def test_malformed_stored_hash_is_false_not_an_error(stored_hash: str) -> None:
    _, parts = generate_api_token()
    assert api_token_secret_matches(parts.secret, stored_hash) is False


def test_stored_hash_is_case_sensitive() -> None:
    # hexdigest() is lowercase; an uppercased copy is a different (corrupted) value.
    _, parts = generate_api_token()
    stored = hash_api_token_secret(parts.secret)
    assert not api_token_secret_matches(parts.secret, stored.upper())


@pytest.mark.parametrize("value", [None, b"secret", 1])
def test_non_str_arguments_do_not_match(value: Any) -> None:
    _, parts = generate_api_token()
    stored = hash_api_token_secret(parts.secret)
    assert api_token_secret_matches(value, stored) is False
    assert api_token_secret_matches(parts.secret, value) is False


# --- parts --------------------------------------------------------------------------------------


def test_display_prefix() -> None:
    plaintext, parts = generate_api_token()

    assert parts.display_prefix == "ag_" + parts.token_id
    assert plaintext.startswith(parts.display_prefix + "_")
    assert parts.secret not in parts.display_prefix


def test_secret_never_appears_in_repr_or_str() -> None:
    _, parts = generate_api_token()

    assert parts.secret not in repr(parts)
    assert parts.secret not in str(parts)
    assert parts.token_id in repr(parts)
    assert "secret" not in repr(parts)


def test_parts_are_frozen() -> None:
    _, parts = generate_api_token()
    with pytest.raises(AttributeError):
        parts.secret = "x"  # type: ignore[misc]
