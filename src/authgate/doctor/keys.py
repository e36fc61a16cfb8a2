"""Signing keys: present, not for development in production, private, rotatable (group
``secrets``); in the database (``AUTHGATE_SIGNING_KEYS=database``): sealed with the configured
key-encryption key, published long enough before they sign."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from authgate.config import Settings
from authgate.core.keys import insecure_key_files, load_keyring
from authgate.doctor.findings import Finding, error_finding, ok_finding, warning_finding
from authgate.errors import ConfigError, StoreUnavailableError

if TYPE_CHECKING:
    from authgate.core.secret_boxes import SecretBox
    from authgate.store.records import SigningKeyRecord

__all__ = ["check_database_keys", "check_key_encryption_key", "check_keys"]


def _is_writable_directory(directory: Path) -> bool:
    """Whether this user can create files in ``directory`` (or create it)."""
    path = directory
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def check_keys(
    settings: Settings, *, writable: Callable[[Path], bool] = _is_writable_directory
) -> list[Finding]:
    """Signing keys: present, not for development in production, private, rotatable."""
    if settings.signing_keys == "database":
        return check_database_keys(settings)
    if settings.is_production and settings.keys_dir is None:
        return [
            error_finding(
                "secrets.keys_dir_not_set",
                "AUTHGATE_KEYS_DIR is not set: production needs signing keys in a directory of "
                "their own (it refuses the instance folder's development keys).",
                "Create one with `authgate keys rotate --keys-dir /etc/authgate/keys` and set "
                "AUTHGATE_KEYS_DIR=/etc/authgate/keys.",
            )
        ]
    directory = settings.resolved_keys_dir
    rotate = f"authgate keys rotate --keys-dir {directory}"
    try:
        ring = load_keyring(directory)
        exposed = insecure_key_files(directory)
    except (ConfigError, OSError) as e:
        return [error_finding("secrets.unreadable_key", str(e), f"Then check with `{rotate}`.")]
    findings: list[Finding] = []
    if ring is None:
        if settings.is_production:
            findings.append(
                error_finding(
                    "secrets.no_key",
                    f"No signing key in {directory}: the server refuses to start.",
                    f"Create one: `{rotate}`.",
                )
            )
        else:
            findings.append(
                ok_finding(
                    "secrets.no_key",
                    f"No signing key in {directory} yet: development generates one at the first "
                    "start (production refuses it).",
                )
            )
    elif settings.is_production and ring.active.dev:
        findings.append(
            error_finding(
                "secrets.dev_key_in_production",
                f"The active signing key {ring.active.kid} in {directory} was generated for "
                "development: production refuses to sign with it.",
                f"Create a production key: `{rotate}`; remove the dev-*.pem file once the access "
                "tokens it signed have expired.",
            )
        )
    elif settings.is_production and any(key.dev for key in ring.keys):
        old = ", ".join(key.kid for key in ring.keys if key.dev)
        findings.append(
            warning_finding(
                "secrets.old_dev_key",
                f"Development key(s) {old} in {directory} still verify tokens.",
                f"Delete their files in {directory} once the tokens they signed have expired "
                f"(access tokens live {settings.access_token_ttl_seconds} s).",
            )
        )
    if exposed:
        names = " ".join(str(path) for path in exposed)
        findings.append(
            error_finding(
                "secrets.key_file_permissions",
                f"Signing key files readable or writable by other users: {names}. Anyone who "
                "can read one can forge any user's tokens (production refuses to start).",
                f"chmod 600 {names}",
            )
        )
    findings += _key_directory_findings(directory, ring is not None, writable)
    if ring is not None and not any(f.level != "ok" for f in findings):
        findings.append(_keys_ok(directory, len(ring.keys), ring.active.kid, rotate))
    return findings


def _key_directory_findings(
    directory: Path, has_keys: bool, writable: Callable[[Path], bool]
) -> list[Finding]:
    findings: list[Finding] = []
    if directory.is_dir() and stat.S_IMODE(directory.stat().st_mode) & 0o077:
        findings.append(
            warning_finding(
                "secrets.keys_dir_permissions",
                f"The key directory {directory} is open to other users "
                f"(mode {stat.S_IMODE(directory.stat().st_mode):o}).",
                f"chmod 700 {directory}",
            )
        )
    if not writable(directory):
        findings.append(
            warning_finding(
                "secrets.rotation_impossible",
                f"{directory} cannot be written (or created) by this user, so "
                "`authgate keys rotate` cannot add a key here"
                + ("." if has_keys else ", and no key can be created."),
                f"Run rotations as the user that owns the key directory (e.g. `sudo -u authgate "
                f"authgate keys rotate --keys-dir {directory}`), or point AUTHGATE_KEYS_DIR at a "
                "directory that user can write.",
            )
        )
    return findings


def _keys_ok(directory: Path, count: int, active: str, rotate: str) -> Finding:
    if count == 1:
        return ok_finding(
            "secrets.rotation",
            f"One signing key ({active}) in {directory}.",
            f"To rotate: `{rotate}`; the old key keeps verifying until you delete its file.",
        )
    return ok_finding(
        "secrets.rotation",
        f"{count} signing keys in {directory}; the newest, {active}, signs.",
        f"Delete an old key's file once the tokens it signed have expired; rotate with `{rotate}`.",
    )


def check_key_encryption_key(settings: Settings) -> list[Finding]:
    """The key-encryption key (second factors' secrets): set in production, private, valid."""
    from authgate.core.secret_boxes import parse_key_encryption_key

    fix = (
        "Create one with `authgate keys encryption-key /etc/authgate/key-encryption-key` and set "
        "AUTHGATE_KEY_ENCRYPTION_KEY_FILE=/etc/authgate/key-encryption-key."
    )
    if settings.key_encryption_key is not None:
        try:
            parse_key_encryption_key(settings.key_encryption_key.get_secret_value())
        except ConfigError as e:
            return [error_finding("secrets.bad_key_encryption_key", str(e), fix)]
        return [ok_finding("secrets.key_encryption_key", "AUTHGATE_KEY_ENCRYPTION_KEY is set.")]
    if settings.key_encryption_key_file is None:
        if settings.is_production:
            return [
                error_finding(
                    "secrets.key_encryption_key_not_set",
                    "AUTHGATE_KEY_ENCRYPTION_KEY is not set: production refuses to start (it "
                    "seals second-factor secrets with it).",
                    fix,
                )
            ]
        return [
            ok_finding(
                "secrets.key_encryption_key",
                "No key-encryption key set: development generates one in the instance folder.",
            )
        ]
    path = settings.key_encryption_key_file
    try:
        parse_key_encryption_key(path.read_text("ascii"))
        mode = path.stat().st_mode
    except (ConfigError, OSError, UnicodeDecodeError) as e:
        return [error_finding("secrets.bad_key_encryption_key", f"{path}: {e}", fix)]
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return [
            error_finding(
                "secrets.key_encryption_key_exposed",
                f"The key-encryption key file {path} is readable by other users.",
                f"Run `chmod 600 {path}`.",
            )
        ]
    return [
        ok_finding("secrets.key_encryption_key", f"The key-encryption key in {path} is private.")
    ]


def _stored_keys(settings: Settings) -> list[SigningKeyRecord]:
    """The database's signing keys (``StoreUnavailableError`` or a SQLAlchemy error when it
    cannot be read: not reachable, not migrated)."""
    from authgate.store.sqlalchemy.engines import create_database_engine
    from authgate.store.sqlalchemy.stores import SqlAlchemyStore

    engine = create_database_engine(settings.resolved_database_url)
    try:
        return SqlAlchemyStore(engine).list_signing_keys()
    finally:
        engine.dispose()


def _configured_box(settings: Settings) -> SecretBox | None:
    """The configured key-encryption key's box; None when none is configured (development
    generates one at the first start) or it is unusable (``check_key_encryption_key`` says)."""
    from authgate.core.secret_boxes import SecretBox, parse_key_encryption_key

    try:
        if settings.key_encryption_key is not None:
            text = settings.key_encryption_key.get_secret_value()
        elif settings.resolved_key_encryption_key_file.exists():
            text = settings.resolved_key_encryption_key_file.read_text("ascii")
        else:
            return None
        return SecretBox(parse_key_encryption_key(text))
    except (ConfigError, OSError, UnicodeDecodeError):
        return None


def check_database_keys(
    settings: Settings, *, read: Callable[[Settings], list[SigningKeyRecord]] = _stored_keys
) -> list[Finding]:
    """Keys in the database: there, openable with the key-encryption key, not for development
    in production, published long enough before they sign, rotated."""
    from datetime import UTC, datetime, timedelta

    from authgate.core.keys import JWKS_MAX_AGE_SECONDS, ScheduledKey, schedule_keys
    from authgate.core.secret_boxes import SecretBoxError
    from authgate.store.records import signing_key_context

    rotate = "authgate keys rotate"
    try:
        records = read(settings)
    except (StoreUnavailableError, SQLAlchemyError, OSError) as e:  # unreachable, not migrated
        # (the database group says which)
        return [
            warning_finding(
                "secrets.database_keys_unreadable",
                f"Cannot read the signing keys in the database ({type(e).__name__}).",
                "See the database checks; then `authgate keys list`.",
            )
        ]
    findings: list[Finding] = []
    if settings.key_publish_delay_seconds < JWKS_MAX_AGE_SECONDS:
        findings.append(
            warning_finding(
                "secrets.key_publish_delay",
                f"AUTHGATE_KEY_PUBLISH_DELAY_SECONDS is {settings.key_publish_delay_seconds}: a "
                f"rotated key signs before clients caching the JWKS (max-age "
                f"{JWKS_MAX_AGE_SECONDS} s) can have fetched it, so they meet an unknown kid.",
                f"Unset it (360 s), or set at least {JWKS_MAX_AGE_SECONDS + 60}.",
            )
        )
    if not records:
        if settings.is_production:
            findings.append(
                error_finding(
                    "secrets.no_key",
                    "No signing key in the database: the server refuses to start.",
                    "Import the key directory (`authgate keys import-dir --keys-dir DIR`) or "
                    f"create a key: `{rotate}`.",
                )
            )
        else:
            findings.append(
                ok_finding(
                    "secrets.no_key",
                    "No signing key in the database yet: development generates one at the first "
                    "start (production refuses it).",
                )
            )
        return findings
    now = datetime.now(UTC)
    retain = timedelta(seconds=settings.access_token_ttl_seconds + 60)
    schedule = schedule_keys(
        [ScheduledKey(r.kid, r.created_at, r.activates_at) for r in records],
        now=now,
        retain=retain,
    )
    assert schedule is not None
    active = next(r for r in records if r.kid == schedule.active)
    box = _configured_box(settings)
    if box is not None:
        try:
            box.open(active.sealed_private_key, context=signing_key_context(active.kid))
        except SecretBoxError:
            findings.append(
                error_finding(
                    "secrets.keys_sealed_with_another_key",
                    f"The active signing key {active.kid} does not open with the configured "
                    "key-encryption key: the server refuses to start.",
                    "Set AUTHGATE_KEY_ENCRYPTION_KEY (or its _FILE) to the key the signing keys "
                    "were sealed with, the same on every instance.",
                )
            )
    if settings.is_production and active.dev:
        findings.append(
            error_finding(
                "secrets.dev_key_in_production",
                f"The active signing key {active.kid} was generated for development: "
                "production refuses to sign with it.",
                f"Create a production key at once: `{rotate} --immediate`.",
            )
        )
    if not any(f.level == "error" for f in findings):
        every = (
            f"a new key every {settings.key_rotation_days} days (AUTHGATE_KEY_ROTATION_DAYS)"
            if settings.key_rotation_days
            else f"rotation by hand (`{rotate}`), or set AUTHGATE_KEY_ROTATION_DAYS"
        )
        findings.append(
            ok_finding(
                "secrets.rotation",
                f"{len(schedule.published)} signing key(s) published from the database; "
                f"{active.kid} signs; {every}.",
            )
        )
    return findings
