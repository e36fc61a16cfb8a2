"""Signing keys in the database (``AUTHGATE_SIGNING_KEYS=database``): a rotated key is published
before it signs, a superseded one leaves the JWKS after the longest token lifetime, rotation on
schedule adds one key however many instances try, the key directory migrates in, and the
private keys are sealed with the key-encryption key. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import text

from authgate.bootstrap import build_service
from authgate.config import Environment, Settings
from authgate.core.keys import JWKS_MAX_AGE_SECONDS, SigningKey, generate_key
from authgate.core.secret_boxes import SecretBox, SecretBoxError, new_key_encryption_key
from authgate.core.tokens import issue_access_token
from authgate.errors import ConfigError, InvalidTokenError, StoreUnavailableError
from authgate.service import AuthService, ClientInfo, IssuedTokens
from authgate.service.keys import RETIREMENT_LEEWAY_SECONDS, DatabaseKeySource
from authgate.store.records import RevocationKind, SigningKeyRecord, signing_key_context
from authgate.store.sqlalchemy.stores import SqlAlchemyStore
from tests.helpers import PASSWORD, StepClock, make_settings

KEK = new_key_encryption_key()
DELAY = 360


@pytest.fixture
def db_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        signing_keys="database",
        key_encryption_key=KEK,
        key_publish_delay_seconds=DELAY,
    )


@pytest.fixture
def service(db_settings: Settings, clock: StepClock) -> Iterator[AuthService]:
    svc = build_service(db_settings, clock=clock)
    yield svc
    svc.close()


@pytest.fixture
def other(db_settings: Settings, clock: StepClock) -> Iterator[AuthService]:
    """A second instance on the same database."""
    svc = build_service(db_settings, clock=clock)
    yield svc
    svc.close()


def _keys(service: AuthService) -> DatabaseKeySource:
    assert isinstance(service.keys, DatabaseKeySource)
    return service.keys


def _published(service: AuthService) -> set[str]:
    return {k["kid"] for k in service.keys.jwks()["keys"]}


def _signing_kid(service: AuthService, email: str) -> str:
    token = service.sessions.login(email, PASSWORD, ClientInfo()).access_token
    return str(jwt.get_unverified_header(token)["kid"])


def test_development_starts_with_one_development_key_in_the_database(
    service: AuthService, other: AuthService
) -> None:
    records = _keys(service).records()
    assert len(records) == 1 and records[0].dev
    assert service.keys.ring.active.kid == other.keys.ring.active.kid == records[0].kid


def test_a_rotated_key_is_published_before_it_signs(
    service: AuthService, other: AuthService, clock: StepClock
) -> None:
    service.accounts.register(email="r@example.com", password=PASSWORD)
    old = service.keys.ring.active.kid
    record = _keys(service).rotate()
    assert record is not None
    assert (record.activates_at - record.created_at).total_seconds() == DELAY
    assert DELAY >= JWKS_MAX_AGE_SECONDS

    other.feed.poll_once()  # what the other instance's poller does within 0.25 s
    for instance in (service, other):
        assert record.kid in _published(instance)  # published at once, everywhere
        assert _signing_kid(instance, "r@example.com") == old  # but not signing yet

    clock.advance(DELAY - 1)
    assert _signing_kid(other, "r@example.com") == old
    clock.advance(1)
    for instance in (service, other):  # each on its own clock: no message needed
        assert _signing_kid(instance, "r@example.com") == record.kid
        assert old in _published(instance)  # still verifies the tokens it signed


def test_an_immediate_rotation_signs_at_once(service: AuthService, other: AuthService) -> None:
    service.accounts.register(email="i@example.com", password=PASSWORD)
    record = _keys(service).rotate(immediate=True)
    assert record is not None
    assert _signing_kid(service, "i@example.com") == record.kid
    # Another instance that has not heard of it yet verifies its tokens (unknown kid: reload).
    token = service.sessions.login("i@example.com", PASSWORD, ClientInfo()).access_token
    assert other.authenticate(token, "bearer").claims.key_id == record.kid


def test_a_superseded_key_leaves_the_jwks_after_the_longest_token_lifetime(
    service: AuthService, clock: StepClock
) -> None:
    old = service.keys.ring.active.kid
    record = _keys(service).rotate()
    assert record is not None
    clock.advance(DELAY)
    retain = service.settings.access_token_ttl_seconds + RETIREMENT_LEEWAY_SECONDS
    clock.advance(retain - 1)
    assert old in _published(service)
    clock.advance(1)
    assert _published(service) == {record.kid}
    # Housekeeping deletes it one more retention later: an instance whose clock is behind
    # still verifies with it meanwhile, and re-reading the keys must not lose it.
    clock.advance(retain - 1)
    assert _keys(service).prune() == 0
    clock.advance(1)
    assert _keys(service).prune() == 1
    assert [r.kid for r in _keys(service).records()] == [record.kid]


def test_the_hot_path_reads_no_keys_from_the_database(
    service: AuthService, clock: StepClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signing, verifying and the JWKS use the keys in memory, across an activation too."""
    service.accounts.register(email="h@example.com", password=PASSWORD)
    _keys(service).rotate()
    reads: list[int] = []
    store = service.store
    real = store.list_signing_keys
    monkeypatch.setattr(store, "list_signing_keys", lambda: reads.append(1) or real())
    for _ in range(2):
        issued = service.sessions.login("h@example.com", PASSWORD, ClientInfo())
        for _ in range(5):
            service.authenticate(issued.access_token, "bearer")
            service.keys.jwks()
        clock.advance(DELAY)
    assert reads == []


def test_scheduled_rotation_adds_a_key_when_the_newest_is_old_enough(
    db_settings: Settings, clock: StepClock
) -> None:
    settings = db_settings.model_copy(update={"key_rotation_days": 30})
    service = build_service(settings, clock=clock)
    try:
        keys = _keys(service)
        assert keys.rotate_if_due() is None
        clock.advance(30 * 86400 - 10)
        assert keys.rotate_if_due() is None
        clock.advance(10)
        record = keys.rotate_if_due()
        assert record is not None
        assert record.kid in _published(service)
        assert keys.rotate_if_due() is None  # the newest is new now
        assert len(keys.records()) == 2
        assert keys.rotate_if_due in service.feed.housekeeping
    finally:
        service.close()


def test_instances_rotating_on_schedule_at_once_add_one_key(
    db_settings: Settings, clock: StepClock
) -> None:
    """Four instances' housekeeping finds the key due at the same moment: one key is added."""
    settings = db_settings.model_copy(update={"key_rotation_days": 1})
    instances = [build_service(settings, clock=clock) for _ in range(4)]
    try:
        clock.advance(86400)
        start = threading.Barrier(len(instances))

        def rotate(service: AuthService) -> bool:
            start.wait()
            return _keys(service).rotate_if_due() is not None

        with ThreadPoolExecutor(len(instances)) as pool:
            results = list(pool.map(rotate, instances))
        assert results.count(True) == 1
        assert len(_keys(instances[0]).records()) == 2
    finally:
        for service in instances:
            service.close()


def test_scheduled_rotation_is_off_by_default(service: AuthService, clock: StepClock) -> None:
    clock.advance(3650 * 86400)
    assert _keys(service).rotate_if_due() is None


def _cli(settings: Settings, *args: str) -> Any:
    from authgate.cli import main

    env = {
        "AUTHGATE_INSTANCE_PATH": str(settings.instance_path),
        "AUTHGATE_DATABASE_URL": settings.resolved_database_url,
        "AUTHGATE_SIGNING_KEYS": "database",
        "AUTHGATE_KEY_ENCRYPTION_KEY": KEK,
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_the_key_directory_migrates_in_with_one_command(
    tmp_path: Path, database_url: str, clock: StepClock
) -> None:
    settings = make_settings(tmp_path, database_url)  # a directory deployment
    with_directory = build_service(settings, clock=clock)
    with_directory.accounts.register(email="m@example.com", password=PASSWORD)
    before = with_directory.sessions.login("m@example.com", PASSWORD, ClientInfo()).access_token
    with_directory.close()
    newest = generate_key(settings.resolved_keys_dir, dev=False, now=clock.now())

    first = _cli(settings, "keys", "import-dir")
    again = _cli(settings, "keys", "import-dir")
    assert first.exit_code == 0 and again.exit_code == 0, first.output
    assert len(first.stdout.split()) == 2
    assert again.stdout == ""  # idempotent

    database = settings.model_copy(
        update={"signing_keys": "database", "key_encryption_key": SecretStr(KEK)}
    )
    service = build_service(database, clock=clock)
    try:
        assert service.keys.ring.active.kid == newest.kid  # the directory's newest signs
        assert service.authenticate(before, "bearer").user.email == "m@example.com"
        listed = _cli(settings, "keys", "list")
        assert f"* {newest.kid}" in listed.stdout
    finally:
        service.close()


def test_keys_rotate_in_database_mode_adds_a_pending_key(
    service: AuthService, db_settings: Settings
) -> None:
    result = _cli(db_settings, "keys", "rotate")
    assert result.exit_code == 0, result.output
    kid = result.stdout.strip()
    assert "signs from" in result.stderr
    service.feed.poll_once()
    assert kid in _published(service)
    assert service.keys.ring.active.kid != kid
    immediate = _cli(db_settings, "keys", "rotate", "--immediate")
    assert "it signs from now on" in immediate.stderr
    service.feed.poll_once()
    assert service.keys.ring.active.kid == immediate.stdout.strip()


def test_a_sealed_private_key_is_not_readable_without_the_key_encryption_key(
    service: AuthService, db_settings: Settings
) -> None:
    from cryptography.hazmat.primitives import serialization

    key = service.keys.ring.active
    raw = key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    store = service.store
    assert isinstance(store, SqlAlchemyStore)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT kid, sealed_private_key FROM authgate_signing_keys")).all()
    assert [row.kid for row in rows] == [key.kid]
    sealed = rows[0].sealed_private_key
    assert sealed.startswith("v1.")
    import base64

    for encoded in (raw.hex(), base64.urlsafe_b64encode(raw).decode().rstrip("=")[:20]):
        assert encoded not in sealed
    assert "PRIVATE KEY" not in sealed
    # Only the key-encryption key opens it, and only as this kid's key.
    from authgate.core.secret_boxes import parse_key_encryption_key

    ours = SecretBox(parse_key_encryption_key(KEK))
    assert ours.open(sealed, context=signing_key_context(key.kid)) == raw
    with pytest.raises(SecretBoxError):
        ours.open(sealed, context=signing_key_context("another-kid"))
    with pytest.raises(SecretBoxError):
        SecretBox(SecretBox_key()).open(sealed, context=signing_key_context(key.kid))

    wrong = db_settings.model_copy(
        update={"key_encryption_key": SecretStr(new_key_encryption_key())}
    )
    with pytest.raises(ConfigError, match="does not open with this key-encryption key"):
        build_service(wrong)


def SecretBox_key() -> bytes:
    from authgate.core.secret_boxes import parse_key_encryption_key

    return parse_key_encryption_key(new_key_encryption_key())


def test_production_refuses_a_database_without_keys_or_with_a_development_key(
    service: AuthService, db_settings: Settings, tmp_path: Path, database_url: str
) -> None:
    from authgate.service.keys import load_secret_box

    production = db_settings.model_copy(update={"env": Environment.PRODUCTION})
    box = load_secret_box(production)
    with pytest.raises(ConfigError, match="generated for development"):
        DatabaseKeySource(production, service.store, box, service.clock)
    _keys(service).rotate(immediate=True)
    assert not DatabaseKeySource(production, service.store, box, service.clock).ring.active.dev

    empty = make_settings(
        tmp_path / "empty",
        f"sqlite:///{tmp_path / 'empty.db'}",
        signing_keys="database",
        key_encryption_key=KEK,
        env=Environment.PRODUCTION,
    )
    from authgate.store.sqlalchemy.engines import create_database_engine
    from authgate.store.sqlalchemy.migrate import upgrade_database

    engine = create_database_engine(empty.resolved_database_url)
    upgrade_database(engine)
    try:
        with pytest.raises(ConfigError, match="No signing key in the database"):
            DatabaseKeySource(empty, SqlAlchemyStore(engine), box, service.clock)
    finally:
        engine.dispose()


def test_a_rotation_with_another_key_encryption_key_is_refused(
    service: AuthService, db_settings: Settings
) -> None:
    """A key sealed with another key-encryption key would open on no instance: refused."""
    from authgate.core.secret_boxes import parse_key_encryption_key

    box = SecretBox(parse_key_encryption_key(new_key_encryption_key()))
    stray = DatabaseKeySource(db_settings, service.store, box, service.clock, load=False)
    with pytest.raises(ConfigError, match="does not open"):
        stray.rotate(immediate=True)
    assert len(_keys(service).records()) == 1


def _forge(service: AuthService, key: SigningKey, issued: IssuedTokens) -> str:
    """A new token signed with ``key`` (one an attacker holding it could mint)."""
    s = service.settings
    return issue_access_token(
        key=key,
        issuer=s.resolved_issuer,
        audience=s.audience,
        subject=issued.user.id,
        session_id=issued.session.id,
        roles=("user",),
        ttl_seconds=s.access_token_ttl_seconds,
        now=service.clock.timestamp(),
    )


def test_a_retired_key_stops_verifying_in_a_process_that_only_verifies(
    service: AuthService, other: AuthService, clock: StepClock
) -> None:
    """``other`` never signs nor serves the JWKS: verifying applies the schedule itself."""
    service.accounts.register(email="c@example.com", password=PASSWORD)
    issued = service.sessions.login("c@example.com", PASSWORD, ClientInfo())
    compromised = service.keys.ring.active
    assert other.authenticate(_forge(service, compromised, issued), "bearer")
    _keys(service).rotate(immediate=True)
    other.feed.poll_once()
    clock.advance(service.settings.access_token_ttl_seconds + RETIREMENT_LEEWAY_SECONDS)
    with pytest.raises(InvalidTokenError):
        other.authenticate(_forge(service, compromised, issued), "bearer")


def test_an_immediate_rotation_deletes_the_pending_keys(
    service: AuthService, other: AuthService, clock: StepClock
) -> None:
    """A key rotated in normally moments before (pending) would otherwise take over from the
    emergency key at its ``activates_at``."""
    service.accounts.register(email="e@example.com", password=PASSWORD)
    first = service.keys.ring.active.kid
    pending = _keys(service).rotate()
    emergency = _keys(service).rotate(immediate=True)
    assert pending is not None and emergency is not None
    assert [r.kid for r in _keys(service).records()] == [first, emergency.kid]
    other.feed.poll_once()
    clock.advance(DELAY)
    for instance in (service, other):
        assert _signing_kid(instance, "e@example.com") == emergency.kid
        assert pending.kid not in _published(instance)


def test_concurrent_loads_never_install_an_older_read(
    service: AuthService, other: AuthService
) -> None:
    """The feed's two threads (poll, Redis) load at once: the read that started first but
    installs last must not replace the newer one (forgetting the newest key)."""
    keys = _keys(other)
    store = other.store
    real = store.list_signing_keys
    first_read, may_install = threading.Event(), threading.Event()

    def slow_for_a() -> list[SigningKeyRecord]:
        rows = real()
        if threading.current_thread().name == "A":
            first_read.set()
            may_install.wait(10)
        return rows

    keys._store = SimpleNamespace(list_signing_keys=slow_for_a)  # type: ignore[assignment]
    second = _keys(service).rotate()
    assert second is not None
    a = threading.Thread(target=keys.on_feed_event, args=(RevocationKind.SIGNING_KEYS, second.kid))
    a.name = "A"
    a.start()
    assert first_read.wait(10)
    third = _keys(service).rotate()
    assert third is not None
    keys.on_feed_event(RevocationKind.SIGNING_KEYS, third.kid)
    may_install.set()
    a.join(10)
    assert third.kid in _published(other)


def test_an_unknown_kid_during_a_database_outage_is_an_invalid_token(
    service: AuthService, other: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``other`` cannot re-read the keys: 401 (as for any unknown kid), not 503."""
    service.accounts.register(email="o@example.com", password=PASSWORD)
    _keys(service).rotate(immediate=True)  # other has not heard of it
    token = service.sessions.login("o@example.com", PASSWORD, ClientInfo()).access_token

    def down() -> list[SigningKeyRecord]:
        raise StoreUnavailableError("down")

    monkeypatch.setattr(other.store, "list_signing_keys", down)
    with pytest.raises(InvalidTokenError):
        other.authenticate(token, "bearer")


def test_an_immediate_rotation_deletes_a_development_key_sealed_with_another_kek(
    service: AuthService, db_settings: Settings
) -> None:
    """Production got its own key-encryption key; the development key generated with the old
    one opens no more and blocked every start and rotation."""
    from authgate.core.secret_boxes import parse_key_encryption_key

    dev = _keys(service).records()
    assert len(dev) == 1 and dev[0].dev
    settings = db_settings.model_copy(update={"env": Environment.PRODUCTION})
    box = SecretBox(parse_key_encryption_key(new_key_encryption_key()))
    production = DatabaseKeySource(settings, service.store, box, service.clock, load=False)
    with pytest.raises(ConfigError, match="keys rotate --immediate"):
        production._install(production.records())
    with pytest.raises(ConfigError, match="does not open"):
        production.rotate()  # a key published after it: refused as before
    record = production.rotate(immediate=True)
    assert record is not None
    assert [r.kid for r in production.records()] == [record.kid]
    assert production.ring.active.kid == record.kid
