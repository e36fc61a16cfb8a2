"""The dual run of the previous app's sessions (group ``legacy``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from authgate.doctor import check_legacy
from authgate.store.sqlalchemy.engines import create_database_engine
from tests.doctor.helpers import NOW, dev_settings, migrated_sqlite, only, sqlite_url

SECRET = "the previous app's SECRET_KEY, " + "s" * 40


def legacy_settings(tmp_path: Path, **values: object):  # type: ignore[no-untyped-def]
    defaults: dict[str, object] = {
        "database_url": values.get("database_url") or migrated_sqlite(tmp_path),
        "legacy_jwt_secret": SECRET,
        "legacy_jwt_cutoff": NOW + timedelta(days=30),
        "legacy_jwt_user_column": "legacy_id",
    }
    return dev_settings(tmp_path, **{**defaults, **values})


def add_user(url: str, legacy_id: str | None) -> None:
    engine = create_database_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO authgate_users (id, email, email_key, roles, status, "
                    "email_verified, created_at, session_epoch, legacy_id) VALUES ('u1', "
                    "'a@example.com', 'a@example.com', '[\"user\"]', 'active', 1, "
                    "'2029-01-01 00:00:00', 0, :legacy_id)"
                ),
                {"legacy_id": legacy_id},
            )
    finally:
        engine.dispose()


def test_nothing_is_said_without_a_dual_run(tmp_path: Path) -> None:
    assert check_legacy(dev_settings(tmp_path), now=lambda: NOW) == []


def test_a_sound_dual_run_is_ok(tmp_path: Path) -> None:
    settings = legacy_settings(tmp_path)
    add_user(settings.resolved_database_url, "17")
    findings = check_legacy(settings, now=lambda: NOW)
    assert {f.level for f in findings} == {"ok"}, findings
    assert "until 2030-01-31 (30 days from now)" in only(findings, "legacy.cutoff").message
    assert "(1 users have one)" in only(findings, "legacy.user_column").message
    assert only(findings, "legacy.algorithms").message.endswith("signed with HS256.")


def test_a_passed_cut_off_says_the_settings_can_go(tmp_path: Path) -> None:
    settings = legacy_settings(tmp_path, legacy_jwt_cutoff=NOW - timedelta(days=1))
    finding = only(check_legacy(settings, now=lambda: NOW), "legacy.cutoff_passed")
    assert finding.level == "warning"
    assert "ended on 2029-12-31" in finding.message and "refused now" in finding.message
    assert "Remove the AUTHGATE_LEGACY_JWT_* settings" in finding.fix


def test_a_cut_off_years_away_is_a_warning(tmp_path: Path) -> None:
    settings = legacy_settings(tmp_path, legacy_jwt_cutoff=NOW + timedelta(days=800))
    assert only(check_legacy(settings, now=lambda: NOW), "legacy.cutoff_far").level == "warning"


def test_the_secret_file_readable_private_and_not_empty(tmp_path: Path) -> None:
    secret = tmp_path / "legacy-secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o644)
    settings = legacy_settings(tmp_path, legacy_jwt_secret=None, legacy_jwt_secret_file=secret)
    findings = check_legacy(settings, now=lambda: NOW)
    opened = only(findings, "legacy.secret_file_permissions")
    assert opened.level == "warning" and opened.fix == f"chmod 600 {secret}"
    secret.write_text("\n")
    secret.chmod(0o600)
    assert only(check_legacy(settings, now=lambda: NOW), "legacy.secret_empty").level == "error"
    secret.unlink()  # gone since the settings were read
    gone = only(check_legacy(settings, now=lambda: NOW), "legacy.secret_unreadable")
    assert gone.level == "error" and str(secret) in gone.message


def test_several_algorithms_are_a_warning(tmp_path: Path) -> None:
    settings = legacy_settings(tmp_path, legacy_jwt_algorithms=("HS256", "HS512"))
    finding = only(check_legacy(settings, now=lambda: NOW), "legacy.algorithms")
    assert finding.level == "warning" and "HS256, HS512" in finding.message


def test_the_mapping_column_must_hold_something(tmp_path: Path) -> None:
    settings = legacy_settings(tmp_path)
    add_user(settings.resolved_database_url, None)
    finding = only(check_legacy(settings, now=lambda: NOW), "legacy.no_mapped_users")
    assert finding.level == "warning" and "--map legacy_id=COLUMN" in finding.fix


def test_a_database_without_the_column_is_an_error(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    settings = legacy_settings(tmp_path, database_url=migrated_sqlite(old, "0001"))
    finding = only(check_legacy(settings, now=lambda: NOW), "legacy.column_missing")
    assert finding.level == "error" and "authgate db upgrade" in finding.fix


def test_a_missing_sqlite_file_is_left_to_the_database_check(tmp_path: Path) -> None:
    settings = legacy_settings(tmp_path, database_url=sqlite_url(tmp_path, "none.db"))
    findings = check_legacy(settings, now=lambda: NOW)
    assert not any(f.check.startswith("legacy.user") or "column" in f.check for f in findings)
    assert not (tmp_path / "none.db").exists()
