"""Signing keys (group ``secrets``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from authgate.core.keys import generate_key
from authgate.doctor import check_keys
from tests.doctor.helpers import (
    NOW,
    checks,
    dev_settings,
    errors,
    only,
    production_keys,
    production_settings,
)


def test_a_development_key_in_production_is_an_error(tmp_path: Path) -> None:
    generate_key(tmp_path / "keys", dev=True, now=NOW)

    finding = only(check_keys(production_settings(tmp_path)), "secrets.dev_key_in_production")

    assert finding.level == "error"
    assert "authgate keys rotate --keys-dir" in finding.fix


def test_an_old_development_key_still_verifying_is_a_warning(tmp_path: Path) -> None:
    old = generate_key(tmp_path / "keys", dev=True, now=NOW)
    generate_key(tmp_path / "keys", dev=False, now=NOW + timedelta(days=1))

    findings = check_keys(production_settings(tmp_path))

    assert only(findings, "secrets.old_dev_key").level == "warning"
    assert old.kid in only(findings, "secrets.old_dev_key").message
    assert not errors(findings)


def test_a_key_file_readable_by_others_is_an_error(tmp_path: Path) -> None:
    key = generate_key(tmp_path / "keys", dev=False, now=NOW)
    path = tmp_path / "keys" / f"{key.kid}.pem"
    path.chmod(0o644)

    finding = only(check_keys(production_settings(tmp_path)), "secrets.key_file_permissions")

    assert finding.level == "error"
    assert finding.fix == f"chmod 600 {path}"


def test_a_key_directory_open_to_others_is_a_warning(tmp_path: Path) -> None:
    directory = production_keys(tmp_path)
    directory.chmod(0o755)

    finding = only(check_keys(production_settings(tmp_path)), "secrets.keys_dir_permissions")

    assert finding.level == "warning"
    assert finding.fix == f"chmod 700 {directory}"


def test_no_key_is_an_error_in_production_only(tmp_path: Path) -> None:
    assert only(check_keys(production_settings(tmp_path)), "secrets.no_key").level == "error"
    assert only(check_keys(dev_settings(tmp_path)), "secrets.no_key").level == "ok"


def test_keys_dir_not_set_in_production_is_an_error(tmp_path: Path) -> None:
    finding = only(
        check_keys(production_settings(tmp_path, keys_dir=None)), "secrets.keys_dir_not_set"
    )

    assert finding.level == "error"


def test_a_corrupt_key_file_is_reported(tmp_path: Path) -> None:
    directory = production_keys(tmp_path)
    (directory / "20300102T000000000000Z-1a2b3c4d.pem").write_text("not a key")
    (directory / "20300102T000000000000Z-1a2b3c4d.pem").chmod(0o600)

    finding = only(check_keys(production_settings(tmp_path)), "secrets.unreadable_key")

    assert finding.level == "error"
    assert "not an unencrypted PKCS8 PEM" in finding.message


def test_a_key_directory_the_operator_cannot_write_makes_rotation_impossible(
    tmp_path: Path,
) -> None:
    production_keys(tmp_path)

    findings = check_keys(production_settings(tmp_path), writable=lambda directory: False)

    assert only(findings, "secrets.rotation_impossible").level == "warning"
    assert "secrets.rotation" not in checks(findings)


def test_a_key_directory_that_cannot_be_created_makes_rotation_impossible(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    findings = check_keys(production_settings(tmp_path, keys_dir=blocker / "keys"))

    assert only(findings, "secrets.rotation_impossible").level == "warning"
    assert only(findings, "secrets.no_key").level == "error"


def test_one_key_is_fine_and_the_doctor_says_how_to_rotate(tmp_path: Path) -> None:
    directory = production_keys(tmp_path)

    finding = only(check_keys(production_settings(tmp_path)), "secrets.rotation")

    assert finding.level == "ok"
    assert finding.message.startswith("One signing key")
    assert finding.fix.startswith(f"To rotate: `authgate keys rotate --keys-dir {directory}`")
    generate_key(directory, dev=False, now=NOW + timedelta(days=1))
    assert only(check_keys(production_settings(tmp_path)), "secrets.rotation").message.startswith(
        "2 signing keys"
    )


# Keys in the database (AUTHGATE_SIGNING_KEYS=database) ------------------------------------------


def _database_key(tmp_path: Path, *, dev: bool, key_encryption_key: str) -> None:
    """One key in a migrated SQLite database at ``sqlite_url(tmp_path)``."""
    from authgate.config import Settings
    from authgate.core.clocks import SystemClock
    from authgate.service.keys import DatabaseKeySource, load_secret_box
    from authgate.store.sqlalchemy.engines import create_database_engine
    from authgate.store.sqlalchemy.migrate import upgrade_database
    from authgate.store.sqlalchemy.stores import SqlAlchemyStore
    from tests.doctor.helpers import sqlite_url

    settings = Settings(
        instance_path=tmp_path,
        database_url=sqlite_url(tmp_path),
        signing_keys="database",
        key_encryption_key=key_encryption_key,
    )
    engine = create_database_engine(settings.resolved_database_url)
    upgrade_database(engine)
    try:
        source = DatabaseKeySource(
            settings, SqlAlchemyStore(engine), load_secret_box(settings), SystemClock(), load=dev
        )
        if not dev:
            source.rotate()
    finally:
        engine.dispose()


def test_database_keys_in_production_are_checked_with_the_key_encryption_key(
    tmp_path: Path,
) -> None:
    from authgate.core.secret_boxes import new_key_encryption_key
    from tests.doctor.helpers import KEY_ENCRYPTION_KEY

    production = production_settings(tmp_path, keys_dir=None, signing_keys="database")
    assert only(check_keys(production), "secrets.database_keys_unreadable").level == "warning"

    _database_key(tmp_path, dev=False, key_encryption_key=str(KEY_ENCRYPTION_KEY))
    assert only(check_keys(production), "secrets.rotation").level == "ok"
    assert not errors(check_keys(production))

    other = production_settings(
        tmp_path,
        keys_dir=None,
        signing_keys="database",
        key_encryption_key=new_key_encryption_key(),
    )
    assert only(check_keys(other), "secrets.keys_sealed_with_another_key").level == "error"

    short = production_settings(
        tmp_path, keys_dir=None, signing_keys="database", key_publish_delay_seconds=10
    )
    assert only(check_keys(short), "secrets.key_publish_delay").level == "warning"


def test_a_development_key_in_the_database_is_an_error_in_production(tmp_path: Path) -> None:
    from tests.doctor.helpers import KEY_ENCRYPTION_KEY

    _database_key(tmp_path, dev=True, key_encryption_key=str(KEY_ENCRYPTION_KEY))
    production = production_settings(tmp_path, keys_dir=None, signing_keys="database")
    finding = only(check_keys(production), "secrets.dev_key_in_production")
    assert finding.level == "error"
    assert "--immediate" in finding.fix
