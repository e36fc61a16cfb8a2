"""Signing keys: rotation, by this process or another, and a key directory gone bad on reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from authgate.bootstrap import build_service
from authgate.core.keys import generate_key
from authgate.errors import InvalidTokenError
from authgate.service import AuthService, ClientInfo
from tests.helpers import PASSWORD, StepClock


def test_tokens_signed_by_the_previous_key_verify_after_rotation(service: AuthService) -> None:
    service.accounts.register(email="k@example.com", password=PASSWORD)
    old = service.sessions.login("k@example.com", PASSWORD, ClientInfo())
    new_key = generate_key(service.settings.resolved_keys_dir, dev=False, now=service.clock.now())
    service.keys._last_reload = 0.0
    assert service.keys.reload()
    assert service.keys.ring.active.kid == new_key.kid
    service.cache.clear()
    assert service.authenticate(old.access_token, "bearer").user.email == "k@example.com"
    fresh = service.sessions.login("k@example.com", PASSWORD, ClientInfo())
    assert service.authenticate(fresh.access_token, "bearer").claims.key_id == new_key.kid
    assert {k["kid"] for k in service.keys.jwks()["keys"]} >= {
        new_key.kid,
        old_kid(old.access_token),
    }


def old_kid(token: str) -> str:
    import jwt

    return str(jwt.get_unverified_header(token)["kid"])


def test_a_server_learns_a_key_rotated_by_another_process(service: AuthService) -> None:
    """A token signed with a key this process has not loaded yet: reload once, then verify."""
    from authgate.core.tokens import issue_access_token

    service.accounts.register(email="k@example.com", password=PASSWORD)
    issued = service.sessions.login("k@example.com", PASSWORD, ClientInfo())
    key = generate_key(service.settings.resolved_keys_dir, dev=False, now=service.clock.now())
    token = issue_access_token(
        key=key,
        issuer=service.settings.resolved_issuer,
        audience=service.settings.audience,
        subject=issued.user.id,
        session_id=issued.session.id,
        roles=["user"],
        ttl_seconds=60,
        now=service.clock.timestamp(),
    )
    service.keys._last_reload = 0.0
    assert service.authenticate(token, "bearer").claims.key_id == key.kid


def test_a_rotated_key_is_published_and_used_at_once_by_every_process(
    service: AuthService,
) -> None:
    """`authgate keys rotate` in another process: this one publishes the new key in its JWKS and
    signs with it on its next login, without waiting for a token that names it."""
    service.accounts.register(email="r@example.com", password=PASSWORD)
    service.sessions.login(
        "r@example.com", PASSWORD, ClientInfo()
    )  # the reload interval has started
    key = generate_key(service.settings.resolved_keys_dir, dev=False, now=service.clock.now())

    published = {k["kid"] for k in service.keys.jwks()["keys"]}
    fresh = service.sessions.login("r@example.com", PASSWORD, ClientInfo())

    assert key.kid in published
    assert old_kid(fresh.access_token) == key.kid


def test_an_unusable_key_directory_on_reload_keeps_the_current_keys(
    service: AuthService,
) -> None:
    """A corrupt key file appearing while the server runs must not turn requests into 500s."""
    from authgate.errors import InvalidTokenError

    service.accounts.register(email="k@example.com", password=PASSWORD)
    issued = service.sessions.login("k@example.com", PASSWORD, ClientInfo())
    (service.settings.resolved_keys_dir / "20991231T000000000000Z-0badc0de.pem").write_text("junk")
    service.keys._last_reload = 0.0
    assert service.keys.reload()
    service.cache.clear()
    assert service.authenticate(issued.access_token, "bearer").user.email == "k@example.com"
    import jwt

    forged_header = jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256", headers={"kid": "nope"})
    try:
        service.authenticate(forged_header, "bearer")
    except InvalidTokenError:
        pass
    else:
        raise AssertionError("an unknown kid was accepted")


def test_keys_rotated_in_quick_succession_verify_in_a_process_that_read_the_first(
    service: AuthService, clock: StepClock
) -> None:
    """Two rotations half a second apart. Another process re-reads the directory for a token of
    the first new key; a token of the second must not wait for the 10 s reload interval (it
    answered 401 before)."""
    other = build_service(service.settings, clock=clock)
    try:
        service.accounts.register(email="q@example.com", password=PASSWORD)
        rotated = []
        for _ in range(2):
            key = generate_key(service.settings.resolved_keys_dir, dev=False, now=clock.now())
            rotated.append(key.kid)
            issued = service.sessions.login("q@example.com", PASSWORD, ClientInfo())
            assert old_kid(issued.access_token) == key.kid  # the signer follows at once
            assert other.authenticate(issued.access_token, "bearer").claims.key_id == key.kid
            clock.advance(0.5)
        assert rotated[0] != rotated[1]
    finally:
        other.close()


def test_unknown_kids_with_an_unchanged_directory_re_read_it_at_most_every_10_s(
    service: AuthService, clock: StepClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A token signed with a key that is not in the directory must not make every request read
    the directory."""
    from authgate.core.tokens import issue_access_token
    from authgate.service import keys as keys_module

    reads: list[object] = []
    real_load = keys_module.load_keyring
    monkeypatch.setattr(keys_module, "load_keyring", lambda d: reads.append(d) or real_load(d))
    forged = issue_access_token(
        key=generate_key(tmp_path / "elsewhere", dev=False, now=clock.now()),
        issuer=service.settings.resolved_issuer,
        audience=service.settings.audience,
        subject="u",
        session_id="s",
        roles=["admin"],
        ttl_seconds=600,
        now=clock.timestamp(),
    )
    for _ in range(5):
        with pytest.raises(InvalidTokenError):
            service.authenticate(forged, "bearer")
        clock.advance(1.0)
    assert len(reads) == 1  # the first: the reload interval had not started
    clock.advance(10.0)
    with pytest.raises(InvalidTokenError):
        service.authenticate(forged, "bearer")
    assert len(reads) == 2


def test_a_key_added_in_the_same_mtime_tick_as_the_last_read_is_picked_up(
    service: AuthService,
) -> None:
    """A file system with a coarse clock stamps a second change within one tick with the same
    mtime: the directory looks unchanged to the one ``stat``. Within a second of the mtime the
    worker also compares the listing, and signs with the new key at its next login."""
    import os

    directory = service.settings.resolved_keys_dir
    service.accounts.register(email="t@example.com", password=PASSWORD)
    service.sessions.login("t@example.com", PASSWORD, ClientInfo())  # the directory was checked
    before = directory.stat()
    key = generate_key(directory, dev=False, now=service.clock.now())
    os.utime(directory, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same tick
    fresh = service.sessions.login("t@example.com", PASSWORD, ClientInfo())
    assert old_kid(fresh.access_token) == key.kid


# The key-encryption key ----------------------------------------------------------------------


def test_development_generates_a_private_key_encryption_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from authgate.config import Settings
    from authgate.service.keys import load_secret_box

    settings = Settings(instance_path=tmp_path)
    box = load_secret_box(settings)
    path = tmp_path / "key-encryption-key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert "Generated a development key-encryption key" in caplog.text
    sealed = box.seal(b"JBSWY3DPEHPK3PXP", context="totp:u1")
    assert load_secret_box(settings).open(sealed, context="totp:u1") == b"JBSWY3DPEHPK3PXP"


def test_production_refuses_a_missing_or_exposed_key_encryption_key(tmp_path: Path) -> None:
    from authgate.config import Environment, Settings
    from authgate.core.secret_boxes import generate_key_file
    from authgate.errors import ConfigError
    from authgate.service.keys import load_secret_box

    production = {
        "env": Environment.PRODUCTION,
        "public_url": "https://auth.example.com",
        "database_url": "postgresql+psycopg://app@db/app",
        "keys_dir": tmp_path / "keys",
    }
    problems = Settings(**production).production_problems()  # type: ignore[arg-type]
    assert [p for p in problems if "AUTHGATE_KEY_ENCRYPTION_KEY is not set" in p]
    path = tmp_path / "kek"
    generate_key_file(path)
    settings = Settings(**production, key_encryption_key_file=path)  # type: ignore[arg-type]
    assert settings.production_problems() == []
    load_secret_box(settings)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_secret_box(settings)
    with pytest.raises(ConfigError, match="32 random bytes"):
        load_secret_box(Settings(**production, key_encryption_key="too short"))  # type: ignore[arg-type]
