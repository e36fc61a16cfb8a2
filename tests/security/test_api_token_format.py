"""API tokens are findable by secret scanners, and a bad checksum is rejected before any I/O.

A scanner (GitHub secret scanning, gitleaks, trufflehog) matches a fixed regex and can then check
the CRC32 offline to drop lookalike strings; the service rejects typos and truncations the same way,
without a database round trip that an attacker could use to load the store.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import zlib

import pytest

from authgate.core.api_tokens import generate_api_token, parse_api_token
from authgate.errors import InvalidTokenError

SCANNER_RE = re.compile(r"ag_[0-9A-Za-z]{16}_[0-9A-Za-z]{49}")
# A boundary-aware version, as a scanner would use it on free text.
SCANNER_IN_TEXT_RE = re.compile(
    r"(?<![0-9A-Za-z_])ag_[0-9A-Za-z]{16}_[0-9A-Za-z]{49}(?![0-9A-Za-z_])"
)
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _scanner_checksum_ok(candidate: str) -> bool:
    """What a scanner's offline validator does: recompute the CRC32 from the published format."""
    number = 0
    for char in candidate[-6:]:
        number = number * 62 + BASE62.index(char)
    return zlib.crc32(candidate[:-6].encode()) == number


def test_scanner_regex_matches_generated_tokens() -> None:
    for _ in range(500):
        plaintext, _ = generate_api_token()
        assert SCANNER_RE.fullmatch(plaintext)
        assert _scanner_checksum_ok(plaintext)


def test_scanner_finds_a_token_leaked_in_text() -> None:
    plaintext, parts = generate_api_token()
    leaked = (
        f'export AUTHGATE_TOKEN="{plaintext}"\n'
        f"curl -H 'Authorization: Bearer {plaintext}' https://api.example.test\n"
        f"https://example.test/?token={plaintext}&x=1\n"
    )

    found = SCANNER_IN_TEXT_RE.findall(leaked)

    assert found == [plaintext] * 3
    assert parse_api_token(found[0]) == parts


def test_scanner_checksum_drops_lookalikes() -> None:
    plaintext, _ = generate_api_token()
    lookalike = plaintext[:30] + ("A" if plaintext[30] != "A" else "B") + plaintext[31:]

    assert SCANNER_RE.fullmatch(lookalike)  # the regex alone would flag it
    assert not _scanner_checksum_ok(lookalike)


def test_parse_is_a_pure_function_of_the_string() -> None:
    # No store, settings, clock or key is involved: the only parameter is the presented value.
    assert list(inspect.signature(parse_api_token).parameters) == ["value"]


def test_checksum_mismatch_is_rejected_without_any_store() -> None:
    plaintext, _ = generate_api_token()
    tampered = plaintext[:-1] + ("0" if plaintext[-1] != "0" else "1")

    with pytest.raises(InvalidTokenError):
        parse_api_token(tampered)


def test_checksum_rejection_runs_with_no_store_or_framework_loaded() -> None:
    # In a fresh interpreter: parsing works and rejects, and neither the store layer, an ORM,
    # a network client nor a framework was imported to do it.
    plaintext, _ = generate_api_token()
    tampered = plaintext[:40] + ("x" if plaintext[40] != "x" else "y") + plaintext[41:]
    code = f"""
import sys
from authgate.core.api_tokens import parse_api_token
from authgate.errors import InvalidTokenError
parse_api_token({plaintext!r})
try:
    parse_api_token({tampered!r})
except InvalidTokenError:
    print("rejected")
print("\\n".join(sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.split()

    assert lines[0] == "rejected"
    loaded = set(lines[1:])
    for forbidden in ("authgate.store", "authgate.service", "sqlalchemy", "flask", "redis"):
        assert forbidden not in loaded, forbidden
    assert not any(name.startswith("authgate.store") for name in loaded)
