"""Secrets sealed at rest under the key-encryption key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from authgate.core.secret_boxes import (
    SecretBox,
    SecretBoxError,
    generate_key_file,
    new_key_encryption_key,
    parse_key_encryption_key,
)
from authgate.errors import ConfigError


def box() -> SecretBox:
    return SecretBox(parse_key_encryption_key(new_key_encryption_key()))


def test_sealing_round_trips_with_a_fresh_nonce() -> None:
    sealer = box()
    one = sealer.seal(b"secret", context="totp:u1")
    two = sealer.seal(b"secret", context="totp:u1")
    assert one != two and b"secret" not in one.encode()
    assert sealer.open(one, context="totp:u1") == b"secret"


@pytest.mark.parametrize("damage", ["context", "key", "bit", "prefix", "short"])
def test_anything_else_does_not_open(damage: str) -> None:
    sealer = box()
    sealed = sealer.seal(b"secret", context="totp:u1")
    opener, context = sealer, "totp:u1"
    if damage == "context":
        context = "totp:u2"
    elif damage == "key":
        opener = box()
    elif damage == "bit":
        sealed = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    elif damage == "prefix":
        sealed = "v2." + sealed[3:]
    else:
        sealed = "v1.AAAA"
    with pytest.raises(SecretBoxError):
        opener.open(sealed, context=context)


@pytest.mark.parametrize("text", ["", "short", "A" * 44, "é" * 43, new_key_encryption_key() + "AA"])
def test_a_key_must_be_32_bytes_base64url(text: str) -> None:
    with pytest.raises(ConfigError, match="32 random bytes"):
        parse_key_encryption_key(text)
    assert len(parse_key_encryption_key(new_key_encryption_key() + "\n")) == 32
    assert repr(box()) == "SecretBox(<key hidden>)"


def test_a_key_file_appears_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process starting meanwhile must never read an empty or partial key file."""
    path = tmp_path / "instance" / "key-encryption-key"
    seen: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        seen.append(path.exists())  # while the key is being written
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    key = generate_key_file(path)
    assert seen == [False]
    assert path.read_text() == key + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    with pytest.raises(FileExistsError):
        generate_key_file(path)
    assert path.read_text() == key + "\n"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
