"""Settings that do not load, and the production refusals (groups ``settings`` and
``production``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from authgate.config import Settings
from authgate.doctor import Finding, check_production_refusals, load_doctor_settings, run_doctor
from tests.doctor.helpers import checks, errors, only, production_settings, run_cli


def test_invalid_settings_are_reported_as_errors_not_a_traceback(
    runner: CliRunner, tmp_path: Path
) -> None:
    env = {"AUTHGATE_INSTANCE_PATH": str(tmp_path), "AUTHGATE_ACCESS_TOKEN_TTL_SECONDS": "1"}

    result = run_cli(runner, [], env)

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "AUTHGATE_ACCESS_TOKEN_TTL_SECONDS" in result.stdout
    assert "Invalid settings:" not in result.stdout
    assert "settings\n  error" in result.stdout


def test_an_unknown_setting_is_reported(tmp_path: Path) -> None:
    settings, findings = load_doctor_settings(
        {"AUTHGATE_INSTANCE_PATH": str(tmp_path), "AUTHGATE_COOKIE_SECURE": "false"}
    )

    assert settings is None
    assert "Unknown setting AUTHGATE_COOKIE_SECURE" in only(findings, "settings.invalid").message


def test_an_invalid_environment_is_not_mistaken_for_production(tmp_path: Path) -> None:
    # Loading again as development would hide the bad AUTHGATE_ENV: it must still be reported.
    settings, findings = load_doctor_settings(
        {"AUTHGATE_INSTANCE_PATH": str(tmp_path), "AUTHGATE_ENV": "staging"}
    )

    assert settings is None
    assert only(findings, "settings.invalid").message.startswith("AUTHGATE_ENV:")


def test_production_refusals_do_not_stop_the_other_checks(tmp_path: Path) -> None:
    settings, findings = load_doctor_settings(
        {"AUTHGATE_INSTANCE_PATH": str(tmp_path), "AUTHGATE_ENV": "production"}
    )

    assert findings == []
    assert settings is not None
    assert settings.is_production
    assert settings.production_problems()


def test_the_production_flag_checks_as_serve_production(tmp_path: Path) -> None:
    settings, _ = load_doctor_settings({"AUTHGATE_INSTANCE_PATH": str(tmp_path)}, production=True)

    assert settings is not None
    assert settings.is_production


def test_every_production_refusal_is_reported_once(tmp_path: Path) -> None:
    environ = {
        "AUTHGATE_ENV": "production",
        "AUTHGATE_INSTANCE_PATH": str(tmp_path),
        "AUTHGATE_ORIGINS": "http://app.example.com",
        "AUTHGATE_OAUTH_CORP_ISSUER": "http://127.0.0.1:9/",
        "AUTHGATE_OAUTH_CORP_CLIENT_ID": "client",
        "AUTHGATE_OAUTH_CORP_CLIENT_SECRET": "secret",
        "AUTHGATE_OAUTH_CORP_ALLOW_HTTP": "true",
    }
    settings, _ = load_doctor_settings(environ)
    assert settings is not None
    assert len(settings.production_problems()) == 6

    findings = run_doctor(environ)

    assert errors(findings) == {
        "public_url.http_in_production",
        "database.url_not_set",
        "secrets.keys_dir_not_set",
        "secrets.key_encryption_key_not_set",
        "origins.http_in_production",
        "oauth.allow_http_in_production",
        "oauth.redirect_uri_http",  # the provider would have to register an http redirect URI
    }
    assert "production.refused" not in checks(findings)


def test_a_production_refusal_without_its_own_check_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        Settings, "production_problems", lambda self: ["A new refusal (do this instead)."]
    )

    findings = check_production_refusals(production_settings(tmp_path))

    assert findings == [
        Finding(
            "error",
            "production.refused",
            "A new refusal (do this instead).",
            "Production refuses to start until this is fixed.",
        )
    ]
