"""``authgate doctor`` as a whole: a correct setup passes, the JSON and text reports, a
check that fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from authgate.cli import main
from authgate.config import Settings
from authgate.doctor import Finding, run_doctor
from authgate.doctor import runner as doctor_runner
from authgate.doctor.reports import render_findings
from tests.doctor.helpers import (
    PUBLIC,
    SAME_SITE,
    checks,
    migrated_sqlite,
    only,
    production_keys,
    run_cli,
)
from tests.helpers import KEY_ENCRYPTION_KEY, REDIS_URL
from tests.mail_server import MailServer


@pytest.fixture
def healthy_env(tmp_path: Path, mail_server: MailServer) -> dict[str, str]:
    """A production deployment with nothing wrong (mail through a relay on loopback)."""
    keys = production_keys(tmp_path)
    return {
        "AUTHGATE_ENV": "production",
        "AUTHGATE_INSTANCE_PATH": str(tmp_path),
        "AUTHGATE_PUBLIC_URL": PUBLIC,
        "AUTHGATE_ORIGINS": SAME_SITE,
        "AUTHGATE_DATABASE_URL": migrated_sqlite(tmp_path),
        "AUTHGATE_KEYS_DIR": str(keys),
        "AUTHGATE_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
        "AUTHGATE_REDIS_URL": REDIS_URL,
        **mail_server.environment(),
    }


def test_a_correct_production_setup_passes(runner: CliRunner, healthy_env: dict[str, str]) -> None:
    result = run_cli(runner, [], healthy_env)

    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.stdout
    for group in ("secrets", "origins", "cookies", "database", "clock", "redis"):
        assert f"\n{group}\n" in "\n" + result.stdout, group
    assert "Traceback" not in result.output


def test_json_output_lists_every_finding(runner: CliRunner, healthy_env: dict[str, str]) -> None:
    result = run_cli(runner, ["--json"], healthy_env)

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert document["summary"]["errors"] == 0
    by_check = {f["check"]: f for f in document["findings"]}
    assert by_check["database.current"]["group"] == "database"
    assert by_check["redis.reachable"]["level"] == "ok"
    assert by_check["secrets.rotation"]["fix"].startswith("To rotate: `authgate keys rotate")


def test_text_output_is_grouped_with_fixes_indented() -> None:
    findings = [
        Finding("ok", "redis.reachable", "Redis answers."),
        Finding("error", "secrets.no_key", "No key.", "Create one."),
        Finding("warning", "secrets.keys_dir_permissions", "Open dir.", "chmod 700 dir"),
    ]

    text_ = render_findings(findings)

    assert text_.splitlines() == [
        "secrets",
        "  error No key.",
        "        fix: Create one.",
        "  warn  Open dir.",
        "        fix: chmod 700 dir",
        "",
        "redis",
        "  ok    Redis answers.",
        "",
        "1 error(s), 1 warning(s), 1 ok: problems found.",
    ]


def test_the_doctor_command_is_registered(runner: CliRunner) -> None:
    result = runner.invoke(main, ["doctor", "--help"])

    assert result.exit_code == 0, result.output
    for word in ("--url", "--ca-file", "--json", "cors"):
        assert word in result.stdout


def test_a_failing_check_becomes_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(settings: Settings) -> list[Finding]:
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor_runner, "check_redis", broken)

    findings = run_doctor({"AUTHGATE_INSTANCE_PATH": str(tmp_path)})

    failure = only(findings, "redis.check_failed")
    assert failure.level == "error"
    assert "RuntimeError: boom" in failure.message
    assert "database.sqlite_missing" in checks(findings)  # the others still ran
