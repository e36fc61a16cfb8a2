from __future__ import annotations

import base64
import os
import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authgate.core.keys import (
    ALGORITHM,
    KeyRing,
    SigningKey,
    generate_key,
    insecure_key_files,
    load_keyring,
)
from authgate.errors import ConfigError

NOW = datetime(2030, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
KID_RE = re.compile(r"(dev-)?\d{8}T\d{12}Z-[0-9a-f]{8}")


@pytest.fixture
def no_umask() -> Iterator[None]:
    """Umask 0, so the modes we see are the ones the code asked for, not what the umask left."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )


def _key(kid: str, created_at: datetime, *, dev: bool = False) -> SigningKey:
    return SigningKey(
        kid=kid, private_key=Ed25519PrivateKey.generate(), created_at=created_at, dev=dev
    )


# --- generate_key ---------------------------------------------------------------------------


def test_algorithm_is_eddsa() -> None:
    assert ALGORITHM == "EdDSA"


def test_generate_key_writes_0600_file_in_new_0700_directory(
    tmp_path: Path, no_umask: None
) -> None:
    directory = tmp_path / "instance" / "keys"
    key = generate_key(directory, dev=False, now=NOW)

    path = directory / f"{key.kid}.pem"
    assert path.is_file()
    assert _mode(path) == 0o600
    assert _mode(directory) == 0o700


def test_a_reader_of_the_directory_never_sees_a_partly_written_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server re-reads the key directory while `keys rotate` writes: at the moment the key's
    bytes are written, the directory must still load (the new key not yet there, not half there)."""
    old = generate_key(tmp_path, dev=False, now=NOW)
    seen: list[list[str]] = []
    real_fdopen = os.fdopen

    class ReadingWhileWriting:
        def __init__(self, fd: int, mode: str) -> None:
            self.file = real_fdopen(fd, mode)

        def __enter__(self) -> ReadingWhileWriting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, data: bytes) -> int:
            ring = load_keyring(tmp_path)  # a ConfigError here is the bug
            assert ring is not None
            seen.append([key.kid for key in ring.keys])
            return self.file.write(data)

        def __getattr__(self, name: str) -> object:
            return getattr(self.file, name)

    monkeypatch.setattr(os, "fdopen", ReadingWhileWriting)
    new = generate_key(tmp_path, dev=False, now=NOW + timedelta(seconds=1))
    monkeypatch.undo()

    assert seen == [[old.kid]]
    ring = load_keyring(tmp_path)
    assert ring is not None and [key.kid for key in ring.keys] == [new.kid, old.kid]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{old.kid}.pem", f"{new.kid}.pem"]
    )  # no temporary file left behind
    assert stat.S_IMODE((tmp_path / f"{new.kid}.pem").stat().st_mode) == 0o600


def test_generate_key_file_is_unencrypted_pkcs8_pem_of_the_key(tmp_path: Path) -> None:
    key = generate_key(tmp_path, dev=False, now=NOW)
    data = (tmp_path / f"{key.kid}.pem").read_bytes()

    assert data.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, not "ENCRYPTED PRIVATE KEY"
    loaded = serialization.load_pem_private_key(data, password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    assert _raw_public(loaded) == _raw_public(key.private_key)


def test_generate_key_kid_encodes_time_and_is_random(tmp_path: Path) -> None:
    first = generate_key(tmp_path, dev=False, now=NOW)
    second = generate_key(tmp_path, dev=False, now=NOW)

    assert KID_RE.fullmatch(first.kid)
    assert first.kid.startswith("20300102T030405678000Z-")
    assert first.kid != second.kid
    assert first.created_at == NOW
    assert first.dev is False
    assert len(list(tmp_path.glob("*.pem"))) == 2


def test_generate_key_converts_now_to_utc(tmp_path: Path) -> None:
    plus_two = timezone(timedelta(hours=2))
    key = generate_key(tmp_path, dev=False, now=datetime(2030, 1, 2, 5, 4, 5, tzinfo=plus_two))

    assert key.kid.startswith("20300102T030405000000Z-")
    assert key.created_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_generate_key_refuses_naive_now(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_key(tmp_path, dev=False, now=datetime(2030, 1, 1))


def test_dev_key_kid_is_recognisable(tmp_path: Path) -> None:
    key = generate_key(tmp_path, dev=True, now=NOW)

    assert key.dev is True
    assert key.kid.startswith("dev-20300102T030405678000Z-")
    assert KID_RE.fullmatch(key.kid)


def test_signing_key_repr_hides_private_key(tmp_path: Path) -> None:
    key = generate_key(tmp_path, dev=False, now=NOW)

    assert "private_key" not in repr(key)
    assert key.kid in repr(key)


# --- load_keyring -----------------------------------------------------------------------------


def test_load_keyring_missing_or_empty_directory_is_none(tmp_path: Path) -> None:
    assert load_keyring(tmp_path / "missing") is None
    assert load_keyring(tmp_path) is None


def test_load_keyring_round_trips_kid_created_at_dev_and_key(tmp_path: Path) -> None:
    prod = generate_key(tmp_path, dev=False, now=NOW)
    dev = generate_key(tmp_path, dev=True, now=NOW + timedelta(days=1))

    ring = load_keyring(tmp_path)

    assert ring is not None
    assert [k.kid for k in ring.keys] == [dev.kid, prod.kid]
    for original in (prod, dev):
        loaded = ring.find(original.kid)
        assert loaded is not None
        assert loaded.created_at == original.created_at
        assert loaded.created_at.tzinfo is not None
        assert loaded.dev is original.dev
        assert _raw_public(loaded.private_key) == _raw_public(original.private_key)


def test_load_keyring_active_is_newest(tmp_path: Path) -> None:
    old = generate_key(tmp_path, dev=False, now=NOW)
    new = generate_key(tmp_path, dev=False, now=NOW + timedelta(days=30))

    ring = load_keyring(tmp_path)

    assert ring is not None
    assert ring.active.kid == new.kid
    assert [k.kid for k in ring.keys] == [new.kid, old.kid]


def test_load_keyring_ignores_files_that_are_not_named_by_a_kid(tmp_path: Path) -> None:
    key = generate_key(tmp_path, dev=False, now=NOW)
    junk = b"not a key at all"
    (tmp_path / "README.txt").write_bytes(junk)
    (tmp_path / "backup.pem").write_bytes(junk)
    (tmp_path / f"{key.kid}.pem.bak").write_bytes(junk)
    (tmp_path / "20301301T000000000000Z-0123abcd.pem").write_bytes(junk)  # month 13
    (tmp_path / "20300101T000000000000Z-0123ABCD.pem").write_bytes(junk)  # upper-case hex
    (tmp_path / "prod-20300101T000000000000Z-0123abcd.pem").write_bytes(junk)
    (tmp_path / "20300101T000000000000Z-0123abcd.pem").mkdir()  # a directory, not a file

    ring = load_keyring(tmp_path)

    assert ring is not None
    assert [k.kid for k in ring.keys] == [key.kid]


def test_load_keyring_corrupt_pem_is_config_error_naming_the_file(tmp_path: Path) -> None:
    generate_key(tmp_path, dev=False, now=NOW)
    bad = tmp_path / "20300101T000000000000Z-deadbeef.pem"
    bad.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64!!\n-----END PRIVATE KEY-----\n")

    with pytest.raises(ConfigError) as excinfo:
        load_keyring(tmp_path)

    message = str(excinfo.value)
    assert bad.name in message
    assert "new key" in message  # says what to do
    assert excinfo.value.__cause__ is not None
    assert str(excinfo.value.__cause__) not in message  # never the library's text


def test_load_keyring_truncated_key_file_is_config_error(tmp_path: Path) -> None:
    key = generate_key(tmp_path, dev=False, now=NOW)
    path = tmp_path / f"{key.kid}.pem"
    path.write_bytes(path.read_bytes()[:40])

    with pytest.raises(ConfigError, match=re.escape(path.name)):
        load_keyring(tmp_path)


def test_load_keyring_non_ed25519_key_is_config_error(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    path = tmp_path / "20300101T000000000000Z-0badc0de.pem"
    path.write_bytes(pem)

    with pytest.raises(ConfigError, match="Ed25519"):
        load_keyring(tmp_path)


def test_load_keyring_encrypted_key_is_config_error(tmp_path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.BestAvailableEncryption(b"passphrase"),
    )
    path = tmp_path / "20300101T000000000000Z-0badc0de.pem"
    path.write_bytes(pem)

    with pytest.raises(ConfigError, match=re.escape(path.name)):
        load_keyring(tmp_path)


def test_load_keyring_on_a_file_is_config_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "keys"
    not_a_dir.write_text("oops")

    with pytest.raises(ConfigError, match="not a directory"):
        load_keyring(not_a_dir)


# --- insecure_key_files -----------------------------------------------------------------------


def test_insecure_key_files_finds_group_or_world_accessible_keys(tmp_path: Path) -> None:
    safe = generate_key(tmp_path, dev=False, now=NOW)
    loose = generate_key(tmp_path, dev=False, now=NOW + timedelta(seconds=1))
    group = generate_key(tmp_path, dev=False, now=NOW + timedelta(seconds=2))
    assert insecure_key_files(tmp_path) == []

    (tmp_path / f"{loose.kid}.pem").chmod(0o644)
    (tmp_path / f"{group.kid}.pem").chmod(0o620)

    found = insecure_key_files(tmp_path)
    assert sorted(found) == sorted([tmp_path / f"{loose.kid}.pem", tmp_path / f"{group.kid}.pem"])
    assert tmp_path / f"{safe.kid}.pem" not in found


def test_insecure_key_files_missing_directory_is_empty(tmp_path: Path) -> None:
    assert insecure_key_files(tmp_path / "missing") == []


# --- KeyRing and JWKS -------------------------------------------------------------------------


def test_keyring_requires_a_key() -> None:
    with pytest.raises(ValueError):
        KeyRing([])


def test_keyring_rejects_duplicate_kids() -> None:
    with pytest.raises(ValueError):
        KeyRing([_key("a", NOW), _key("a", NOW)])


def test_keyring_orders_newest_first_whatever_the_input_order() -> None:
    old = _key("old", NOW - timedelta(days=2))
    mid = _key("mid", NOW - timedelta(days=1))
    new = _key("new", NOW)

    ring = KeyRing([mid, new, old])

    assert ring.keys == (new, mid, old)
    assert ring.active is new
    assert ring.find("old") is old
    assert ring.find("nope") is None


def test_jwks_has_public_parts_only_newest_first(tmp_path: Path) -> None:
    old = generate_key(tmp_path, dev=False, now=NOW)
    new = generate_key(tmp_path, dev=False, now=NOW + timedelta(days=1))
    ring = KeyRing([old, new])

    jwks = ring.jwks()

    assert list(jwks) == ["keys"]
    assert [jwk["kid"] for jwk in jwks["keys"]] == [new.kid, old.kid]
    for jwk, key in zip(jwks["keys"], [new, old], strict=True):
        assert "d" not in jwk
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert jwk["kty"] == "OKP"
        assert jwk["crv"] == "Ed25519"
        assert jwk["alg"] == "EdDSA"
        assert jwk["use"] == "sig"
        assert "=" not in jwk["x"]
        x = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
        assert x == _raw_public(key.private_key)


def test_public_jwk_is_usable_by_pyjwt(tmp_path: Path) -> None:
    import jwt

    key = generate_key(tmp_path, dev=False, now=NOW)
    token = jwt.encode({"sub": "u"}, key.private_key, algorithm="EdDSA")

    public = jwt.PyJWK(key.public_jwk())
    assert jwt.decode(token, public, algorithms=["EdDSA"]) == {"sub": "u"}
