"""The origin allowlist (group ``origins``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from authgate.doctor import check_origins, load_doctor_settings
from tests.doctor.helpers import (
    PUBLIC,
    SAME_SITE,
    dev_settings,
    json_findings,
    only,
    production_settings,
    run_cli,
)


@pytest.mark.parametrize(
    ("entry", "check", "hint"),
    [
        ("*", "origins.wildcard", "List each frontend exactly"),
        ("https://*.example.com", "origins.wildcard", "List each frontend exactly"),
        ("https://.*\\.example\\.com", "origins.regex", "example.com.evil.test"),
        ("^https://app\\.example\\.com$", "origins.regex", "never as patterns"),
        ("https://app.example.com/", "origins.invalid", "without a path"),
    ],
)
def test_bad_origin_entries_are_reported_with_their_fix(
    runner: CliRunner, tmp_path: Path, entry: str, check: str, hint: str
) -> None:
    env = {
        "AUTHGATE_INSTANCE_PATH": str(tmp_path),
        "AUTHGATE_ORIGINS": f"http://localhost:4100,{entry}",
    }

    result = run_cli(runner, ["--json"], env)

    assert result.exit_code == 1
    found = json_findings(result)
    assert found[check].level == "error"
    assert repr(entry) in found[check].message
    assert hint in found[check].fix
    # The good entry and everything else were still checked.
    assert "http://localhost:4100" in found["cookies.same_site"].message
    assert "database.sqlite_missing" in found


def test_bad_origins_in_the_toml_file_are_reported(tmp_path: Path) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text(
        '[authgate]\norigins = ["https://app.example.com", "https://*.example.com"]\n'
    )

    settings, findings = load_doctor_settings(
        {"AUTHGATE_INSTANCE_PATH": str(tmp_path), "AUTHGATE_CONFIG": str(config)}
    )

    assert only(findings, "origins.wildcard").level == "error"
    assert settings is not None
    assert settings.origins == ("https://app.example.com",)


def test_http_origins_are_errors_in_production(tmp_path: Path) -> None:
    findings = check_origins(production_settings(tmp_path, origins=("http://app.example.com",)))

    finding = only(findings, "origins.http_in_production")
    assert finding.level == "error"
    assert "https://app.example.com" in finding.fix
    assert check_origins(dev_settings(tmp_path, origins=("http://app.example.com",)))[0].level == (
        "ok"
    )


def test_an_origin_equal_to_the_public_url_is_pointed_out(tmp_path: Path) -> None:
    findings = check_origins(dev_settings(tmp_path, public_url=PUBLIC, origins=(PUBLIC, SAME_SITE)))

    finding = only(findings, "origins.own_origin")
    assert finding.level == "warning"
    assert PUBLIC in finding.message


def test_no_origins_is_fine(tmp_path: Path) -> None:
    assert only(check_origins(dev_settings(tmp_path)), "origins.none").level == "ok"
