"""``authgate doctor``: each check seeded with the misconfiguration it must find.

The checks are called directly (with settings built here) and through the command line
(``CliRunner`` with ``AUTHGATE_*`` variables). Databases are real: SQLite files and the PostgreSQL
test server; Redis is the one on 127.0.0.1:6379. Clocks are injected, never slept on. Probes of a
running server live in ``tests/e2e/test_doctor_probes.py``; the small fake HTTP servers here
answer what a misconfigured proxy would.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from sqlalchemy import text

from authgate.cli import main
from authgate.config import Environment, Settings
from authgate.core.keys import generate_key
from authgate.core.origins import OriginAllowlist, parse_origin
from authgate.doctor import (
    Finding,
    check_clock_skew,
    check_cookies,
    check_database,
    check_deployment,
    check_hsts,
    check_http_redirect,
    check_keys,
    check_oauth,
    check_origins,
    check_preflight,
    check_production_refusals,
    check_public_url,
    check_redis,
    check_redis_url,
    explain_origin,
    load_doctor_settings,
    lookalike_origins,
    probe_origin,
    run_doctor,
)
from authgate.doctor import runner as doctor_runner
from authgate.doctor.redirects import default_http_url
from authgate.doctor.reports import render_findings
from authgate.doctor.server_reports import check_server_report
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import head_revision, upgrade_database
from tests.conftest import pg_base_url

PUBLIC = "https://auth.example.com"
SAME_SITE = "https://app.example.com"
CROSS_SITE = "https://app.other-example.org"
REDIS_URL = "redis://127.0.0.1:6379/0"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test passes configures authgate."""
    for name in list(os.environ):
        if name.startswith("AUTHGATE_") and not name.startswith("AUTHGATE_TEST_"):
            monkeypatch.delenv(name)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def only(findings: list[Finding], check: str) -> Finding:
    found = [f for f in findings if f.check == check]
    assert len(found) == 1, (check, findings)
    return found[0]


def checks(findings: list[Finding]) -> set[str]:
    return {f.check for f in findings}


def errors(findings: list[Finding]) -> set[str]:
    return {f.check for f in findings if f.level == "error"}


def sqlite_url(tmp_path: Path, name: str = "authgate.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def migrated_sqlite(tmp_path: Path, revision: str = "head") -> str:
    url = sqlite_url(tmp_path)
    engine = create_database_engine(url)
    try:
        upgrade_database(engine, revision)
    finally:
        engine.dispose()
    return url


def production_keys(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    generate_key(directory, dev=False, now=NOW)
    return directory


def dev_settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(instance_path=tmp_path, **values)


def production_settings(tmp_path: Path, **values: Any) -> Settings:
    defaults: dict[str, Any] = {
        "env": Environment.PRODUCTION,
        "instance_path": tmp_path,
        "public_url": PUBLIC,
        "database_url": sqlite_url(tmp_path),
        "keys_dir": tmp_path / "keys",
        "origins": (SAME_SITE,),
    }
    return Settings(**{**defaults, **values})


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run_cli(runner: CliRunner, args: list[str], env: Mapping[str, str]) -> Result:
    return runner.invoke(main, ["doctor", *args], env=dict(env), catch_exceptions=False)


def json_findings(result: Result) -> dict[str, Finding]:
    document = json.loads(result.stdout)
    return {
        f["check"]: Finding(f["level"], f["check"], f["message"], f["fix"])
        for f in document["findings"]
    }


@pytest.fixture
def healthy_env(tmp_path: Path) -> dict[str, str]:
    """A production deployment with nothing wrong."""
    keys = production_keys(tmp_path)
    return {
        "AUTHGATE_ENV": "production",
        "AUTHGATE_INSTANCE_PATH": str(tmp_path),
        "AUTHGATE_PUBLIC_URL": PUBLIC,
        "AUTHGATE_ORIGINS": SAME_SITE,
        "AUTHGATE_DATABASE_URL": migrated_sqlite(tmp_path),
        "AUTHGATE_KEYS_DIR": str(keys),
        "AUTHGATE_REDIS_URL": REDIS_URL,
    }


# A correct setup -----------------------------------------------------------------------------


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


# Settings that do not load -------------------------------------------------------------------


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
    assert len(settings.production_problems()) == 5

    findings = run_doctor(environ)

    assert errors(findings) == {
        "public_url.http_in_production",
        "database.url_not_set",
        "secrets.keys_dir_not_set",
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


# Origins -------------------------------------------------------------------------------------


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


# Cookies versus topology ---------------------------------------------------------------------


def test_a_same_site_frontend_gets_first_party_cookies(tmp_path: Path) -> None:
    findings = check_cookies(dev_settings(tmp_path, public_url=PUBLIC, origins=(SAME_SITE,)))

    finding = only(findings, "cookies.same_site")
    assert finding.level == "ok"
    assert "first-party" in finding.message
    assert "https://example.com" in finding.message


def test_a_cross_site_frontend_is_warned_about_third_party_cookie_blocking(
    tmp_path: Path,
) -> None:
    settings = dev_settings(tmp_path, public_url=PUBLIC, origins=(SAME_SITE, CROSS_SITE))

    findings = check_cookies(settings)

    cross = only(findings, "cookies.cross_site")
    assert cross.level == "warning"
    assert CROSS_SITE in cross.message
    assert "SameSite=None; Secure; Partitioned" in cross.message
    assert "block third-party cookies" in cross.message
    assert "https://api.other-example.org" in cross.fix
    # The same-site frontend is told why its cookies are SameSite=None too.
    assert (
        f"because of the cross-site origin(s) {CROSS_SITE}"
        in only(findings, "cookies.same_site").message
    )


def test_secure_cookies_over_plain_http_outside_localhost_are_an_error(tmp_path: Path) -> None:
    findings = check_cookies(dev_settings(tmp_path, public_url="http://192.168.1.20:8086"))

    finding = only(findings, "cookies.secure_over_http")
    assert finding.level == "error"
    assert "192.168.1.20" in finding.message
    local = check_cookies(dev_settings(tmp_path, public_url="http://localhost:8086"))
    assert "cookies.secure_over_http" not in checks(local)


# Public URL and OAuth ------------------------------------------------------------------------


def test_a_plain_http_public_url_is_an_error_in_production(tmp_path: Path) -> None:
    findings = check_public_url(production_settings(tmp_path, public_url="http://auth.example.com"))

    finding = only(findings, "public_url.http_in_production")
    assert finding.level == "error"
    assert "AUTHGATE_PUBLIC_URL=https://auth.example.com" in finding.fix
    assert check_public_url(production_settings(tmp_path))[0].check == "public_url.https"


GITHUB = {"github": {"client_id": "client", "client_secret": "secret"}}


def test_each_provider_is_told_its_redirect_uri(tmp_path: Path) -> None:
    corp = {"issuer": "https://sso.example.com", "client_id": "c", "client_secret": "s"}
    settings = production_settings(tmp_path, oauth_providers={**GITHUB, "corp": corp})

    findings = check_oauth(settings)

    uris = [f.message for f in findings if f.check == "oauth.redirect_uri"]
    assert len(uris) == 2
    assert f"exactly {PUBLIC}/api/oauth/github/callback registered" in uris[1]
    assert f"exactly {PUBLIC}/api/oauth/corp/callback registered" in uris[0]
    assert not errors(findings)


def test_a_provider_allowing_http_is_an_error_in_production(tmp_path: Path) -> None:
    corp = {"issuer": "http://127.0.0.1:9", "client_id": "c", "client_secret": "s"}
    settings = production_settings(tmp_path, oauth_providers={"corp": {**corp, "allow_http": True}})

    finding = only(check_oauth(settings), "oauth.allow_http_in_production")

    assert finding.level == "error"
    assert "AUTHGATE_OAUTH_CORP_ALLOW_HTTP" in finding.fix


def test_a_plain_http_redirect_uri_in_production_is_an_error(tmp_path: Path) -> None:
    settings = production_settings(
        tmp_path, public_url="http://auth.example.com", oauth_providers=GITHUB
    )

    finding = only(check_oauth(settings), "oauth.redirect_uri_http")

    assert finding.level == "error"
    assert "http://auth.example.com/api/oauth/github/callback is plain http in production" in (
        finding.message
    )


def test_a_plain_http_redirect_uri_outside_localhost_is_warned_about(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, public_url="http://192.168.1.20:8086", oauth_providers=GITHUB)

    finding = only(check_oauth(settings), "oauth.redirect_uri_http")

    assert finding.level == "warning"
    assert "http://192.168.1.20:8086/api/oauth/github/callback" in finding.message


# Secrets -------------------------------------------------------------------------------------


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


# Database ------------------------------------------------------------------------------------


def test_a_migrated_sqlite_database_is_current(tmp_path: Path) -> None:
    findings = check_database(production_settings(tmp_path, database_url=migrated_sqlite(tmp_path)))

    assert only(findings, "database.current").level == "ok"
    assert only(findings, "clock.same_host").level == "ok"


def test_an_empty_sqlite_database_is_not_migrated(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "authgate.db").close()

    finding = only(check_database(production_settings(tmp_path)), "database.not_migrated")

    # `authgate serve` migrates SQLite itself: a warning, not an error.
    assert finding.level == "warning"
    assert "authgate db upgrade" in finding.fix


def test_a_sqlite_database_behind_head_is_reported(tmp_path: Path) -> None:
    url = migrated_sqlite(tmp_path, "0001")

    finding = only(
        check_database(production_settings(tmp_path, database_url=url)), "database.behind"
    )

    assert finding.level == "warning"
    assert f"revision 0001, behind {head_revision()}" in finding.message


def test_a_database_from_a_newer_authgate_is_an_error(tmp_path: Path) -> None:
    url = migrated_sqlite(tmp_path)
    engine = create_database_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE authgate_alembic_version SET version_num = '9999'"))
    engine.dispose()

    finding = only(
        check_database(production_settings(tmp_path, database_url=url)), "database.unknown_revision"
    )

    assert finding.level == "error"


def test_a_missing_sqlite_file_is_not_created_by_the_doctor(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path / "instance")

    finding = only(check_database(settings), "database.sqlite_missing")

    assert finding.level == "ok"
    assert not (tmp_path / "instance").exists()


def test_no_database_url_is_an_error_in_production(tmp_path: Path) -> None:
    findings = check_database(production_settings(tmp_path, database_url=None))

    assert only(findings, "database.url_not_set").level == "error"


def test_an_unusable_database_url_is_reported(tmp_path: Path) -> None:
    findings = check_database(production_settings(tmp_path, database_url="nosuchdb://host/x"))

    assert only(findings, "database.invalid_url").level == "error"


def test_an_unreachable_postgresql_is_an_error(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://authgate:hunter2@127.0.0.1:{free_port()}/authgate"

    finding = only(
        check_database(production_settings(tmp_path, database_url=url)), "database.unreachable"
    )

    assert finding.level == "error"
    assert "hunter2" not in finding.message
    assert "***" in finding.message


@contextmanager
def empty_pg_schema() -> Iterator[str]:
    schema = f"doctor_{uuid.uuid4().hex[:10]}"
    admin = create_database_engine(pg_base_url())
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in pg_base_url() else "?"
    try:
        yield f"{pg_base_url()}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_an_unmigrated_postgresql_is_an_error(tmp_path: Path) -> None:
    with empty_pg_schema() as url:
        findings = check_database(production_settings(tmp_path, database_url=url))

    finding = only(findings, "database.not_migrated")
    assert finding.level == "error"
    assert "refuses to start" in finding.message


def test_a_migrated_postgresql_is_current_and_its_clock_compared(
    tmp_path: Path, pg_schema_url: str
) -> None:
    def late_host_clock() -> datetime:
        return datetime.now(UTC) - timedelta(seconds=120)

    findings = check_database(
        production_settings(tmp_path, database_url=pg_schema_url), now=late_host_clock
    )

    assert only(findings, "database.current").level == "ok"
    skew = only(findings, "clock.skew")
    assert skew.level == "error"
    assert "ahead of this host's" in skew.message


@pytest.mark.parametrize(
    ("seconds", "level"),
    [(0.4, "ok"), (-3, "ok"), (10, "warning"), (-59, "warning"), (61, "error"), (-3600, "error")],
)
def test_clock_skew_thresholds(seconds: float, level: str) -> None:
    finding = check_clock_skew(NOW, NOW + timedelta(seconds=seconds))

    assert finding.level == level
    assert finding.check == "clock.skew"
    assert ("behind" if seconds < 0 else "ahead of") in finding.message


def test_a_naive_database_time_is_read_as_utc() -> None:
    assert check_clock_skew(NOW, NOW.replace(tzinfo=None) + timedelta(seconds=90)).level == "error"


# Redis ---------------------------------------------------------------------------------------


def test_a_reachable_redis_is_ok(tmp_path: Path) -> None:
    findings = check_redis(dev_settings(tmp_path, redis_url=REDIS_URL))

    assert only(findings, "redis.reachable").level == "ok"


def test_an_unreachable_redis_is_an_error() -> None:
    finding = check_redis_url(f"redis://:hunter2@127.0.0.1:{free_port()}/0", timeout=1)

    assert finding.level == "error"
    assert finding.check == "redis.unreachable"
    assert "hunter2" not in finding.message


def test_an_invalid_redis_url_is_an_error() -> None:
    assert check_redis_url("http://127.0.0.1:6379").check == "redis.invalid_url"


def test_redis_is_optional(tmp_path: Path) -> None:
    assert only(check_redis(dev_settings(tmp_path)), "redis.not_configured").level == "ok"


# Probes that need no authgate server ----------------------------------------------------------

Responder = Callable[[str, str, Mapping[str, str]], tuple[int, list[tuple[str, str]]]]


@contextmanager
def fake_server(respond: Responder, *, body: bytes | None = None) -> Iterator[str]:
    """A tiny HTTP server on 127.0.0.1 answering every request with ``respond(method, path,
    headers) -> (status, headers)``; headers may repeat. The body is ``body`` when given, else
    a JSON status for a 200 and nothing otherwise. Yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status, headers = respond(self.command, self.path, dict(self.headers.items()))
            content = body if body is not None else b'{"status": "ok"}' if status == 200 else b""
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_OPTIONS = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


HTTPS_ORIGIN = parse_origin("https://127.0.0.1:8443")


def redirect_finding(
    status: int, location: str | None, body: bytes | None = None, *, named: bool = False
) -> Finding:
    headers = [("Location", location)] if location else []
    with (
        fake_server(lambda method, path, h: (status, headers), body=body) as base,
        requests.Session() as s,
    ):
        return check_http_redirect(s, base + "/", HTTPS_ORIGIN, timeout=2, named=named)


def test_a_permanent_redirect_to_https_is_ok() -> None:
    finding = redirect_finding(301, "https://127.0.0.1:8443/")

    assert (finding.level, finding.check) == ("ok", "url.redirect.permanent")


def test_a_temporary_redirect_is_a_warning() -> None:
    finding = redirect_finding(302, "https://127.0.0.1:8443/")

    assert (finding.level, finding.check) == ("warning", "url.redirect.temporary")


def test_a_redirect_elsewhere_is_a_warning() -> None:
    finding = redirect_finding(308, "http://127.0.0.1:8443/")

    assert (finding.level, finding.check) == ("warning", "url.redirect.wrong_target")


def test_serving_plain_http_instead_of_redirecting_is_an_error() -> None:
    finding = redirect_finding(200, None)

    assert (finding.level, finding.check) == ("error", "url.redirect.serves_http")


def test_nothing_on_plain_http_is_a_missing_redirect() -> None:
    with requests.Session() as session:
        finding = check_http_redirect(
            session, f"http://127.0.0.1:{free_port()}/", HTTPS_ORIGIN, timeout=2
        )

    assert (finding.level, finding.check) == ("warning", "url.redirect.missing")
    assert "Connection refused" in finding.message
    assert "no redirect for users typing http://" in finding.message
    assert "--http-url" in finding.fix


# nginx's answer to plain http on its TLS port (a 400, not a site served over http).
NGINX_400 = (
    b"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>"
    b"\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP "
    b"request was sent to HTTPS port</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>"
)


def test_plain_http_refused_by_a_tls_port_named_with_http_url_is_not_serving_http() -> None:
    finding = redirect_finding(400, None, body=NGINX_400, named=True)

    assert (finding.level, finding.check) == ("ok", "url.redirect.tls_port")
    assert "--http-url" in finding.fix


def test_a_tls_port_on_the_default_port_80_is_a_missing_redirect() -> None:
    """`listen 80 ssl;` by mistake: whoever types http:// gets nginx's 400."""
    finding = redirect_finding(400, None, body=NGINX_400)

    assert (finding.level, finding.check) == ("warning", "url.redirect.not_redirected")
    assert "speaks TLS: it answers plain http with a 400" in finding.message
    assert "`listen 80;`, not `listen 80 ssl;`" in finding.fix


@pytest.mark.parametrize("status", [400, 404, 502])
def test_an_error_over_plain_http_is_a_missing_redirect_not_http_served(status: int) -> None:
    finding = redirect_finding(status, None, body=b"nope")

    assert (finding.level, finding.check) == ("warning", "url.redirect.not_redirected")
    assert f"answers {status}" in finding.message


def test_the_redirect_is_probed_on_port_80_by_default() -> None:
    assert default_http_url(parse_origin("https://auth.example.com:8443")) == (
        "http://auth.example.com/"
    )
    assert default_http_url(parse_origin("https://[::1]:8443")) == "http://[::1]/"


def test_a_port_serving_plain_http_fails_the_tls_handshake() -> None:
    with fake_server(lambda method, path, h: (200, [])) as base:
        findings = check_deployment(base.replace("http://", "https://"), None, timeout=2)

    (finding,) = findings  # a browser gets no further
    assert (finding.check, finding.level) == ("url.tls.handshake_failed", "error")
    assert "No TLS handshake with 127.0.0.1:" in finding.message


def test_a_bad_http_url_is_reported() -> None:
    (finding,) = check_deployment("https://127.0.0.1:8443", None, http_url="https://x.test/")

    assert (finding.check, finding.level) == ("url.invalid", "error")
    assert "--http-url" in finding.message


@pytest.mark.parametrize(
    ("header", "check", "level"),
    [
        (None, "url.hsts.missing", "warning"),
        ("max-age=300", "url.hsts.short", "warning"),
        ("includeSubDomains", "url.hsts.short", "warning"),
        ("max-age=31536000; includeSubDomains", "url.hsts.present", "ok"),
        ('max-age="63072000"', "url.hsts.present", "ok"),
    ],
)
def test_hsts(header: str | None, check: str, level: str) -> None:
    finding = check_hsts(header)

    assert (finding.check, finding.level) == (check, level)


def test_an_unreachable_url_is_an_error() -> None:
    findings = check_deployment(f"http://127.0.0.1:{free_port()}", None, timeout=2)

    assert only(findings, "url.unreachable").level == "error"
    assert only(findings, "url.tls.plain_http_local").level == "ok"


def test_a_url_that_is_not_one_is_reported(runner: CliRunner, tmp_path: Path) -> None:
    result = run_cli(
        runner, ["--json", "--url", "auth.example.com"], {"AUTHGATE_INSTANCE_PATH": str(tmp_path)}
    )

    assert result.exit_code == 1
    assert json_findings(result)["url.invalid"].level == "error"


def test_lookalike_origins() -> None:
    origin = parse_origin("http://localhost:4100")

    assert lookalike_origins(origin, OriginAllowlist([str(origin)])) == [
        "http://localhost.evil.test:4100",
        "https://localhost:4100",
    ]
    both = OriginAllowlist([str(origin), "https://localhost:4100"])
    assert lookalike_origins(origin, both) == ["http://localhost.evil.test:4100"]
    assert lookalike_origins(parse_origin("https://[::1]:3000"), OriginAllowlist([])) == [
        "http://[::1]:3000"
    ]


def test_a_plain_http_url_in_production_is_an_error(tmp_path: Path) -> None:
    findings = check_deployment(
        f"http://127.0.0.1:{free_port()}", production_settings(tmp_path), timeout=2
    )

    assert only(findings, "url.tls.not_https").level == "error"


# doctor cors ---------------------------------------------------------------------------------


def cors_cli(runner: CliRunner, tmp_path: Path, origin: str, **settings: str) -> Result:
    env = {"AUTHGATE_INSTANCE_PATH": str(tmp_path)}
    env.update({f"AUTHGATE_{name.upper()}": value for name, value in settings.items()})
    return run_cli(runner, ["cors", "--origin", origin], env)


def test_cors_same_site_allowed_origin_gets_first_party_cookies(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = cors_cli(runner, tmp_path, SAME_SITE, public_url=PUBLIC, origins=SAME_SITE)

    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert f"authgate answers Access-Control-Allow-Origin: {SAME_SITE}" in out
    assert "SameSite=Lax; Secure" in out
    assert "is first-party" in out
    assert "Blocking third-party cookies does not affect it" in out


def test_cors_cross_site_origin_explains_partitioned_and_third_party_blocking(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = cors_cli(runner, tmp_path, CROSS_SITE, public_url=PUBLIC, origins=CROSS_SITE)

    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "third-party cookie, set SameSite=None; Secure; Partitioned" in out
    assert "Safari" in out
    assert "https://api.other-example.org" in out


def test_cors_origin_not_allowed_explains_failed_to_fetch_and_the_fix(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = cors_cli(runner, tmp_path, CROSS_SITE, public_url=PUBLIC, origins=SAME_SITE)

    assert result.exit_code == 1
    out = " ".join(result.stdout.split())
    assert "TypeError: Failed to fetch" in out
    assert f"fix: AUTHGATE_ORIGINS={SAME_SITE},{CROSS_SITE} and restart authgate." in out
    assert "cookie" in out  # what happens to cookies is said too


def test_cors_near_miss_is_pointed_out(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, origins=("http://localhost:4100",))

    finding = only(explain_origin(settings, "http://127.0.0.1:4100"), "cors.not_allowed")

    assert "Did you mean http://localhost:4100?" in finding.message


def test_cors_http_origin_with_an_https_api(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, public_url=PUBLIC, origins=("http://app.example.com",))

    findings = explain_origin(settings, "http://app.example.com")

    third_party = only(findings, "cors.cookie_third_party")
    assert "http and https are different sites" in third_party.message
    assert not errors(findings)


def test_cors_https_origin_with_a_plain_http_api_is_mixed_content(tmp_path: Path) -> None:
    settings = dev_settings(
        tmp_path, public_url="http://192.168.1.20:8086", origins=("https://app.example.com",)
    )

    findings = explain_origin(settings, "https://app.example.com")

    assert only(findings, "cors.mixed_content").level == "error"
    assert only(findings, "cors.cookie_insecure").level == "error"


def test_cors_invalid_origin(tmp_path: Path) -> None:
    finding = only(explain_origin(dev_settings(tmp_path), "localhost:4100"), "cors.origin_invalid")

    assert "address bar" in finding.fix


def test_cors_own_origin_is_same_origin(tmp_path: Path) -> None:
    findings = explain_origin(dev_settings(tmp_path, public_url=PUBLIC), PUBLIC + ":443")

    assert [f.check for f in findings] == ["cors.same_origin"]


def test_cors_http_origin_not_allowed_in_production_says_so(tmp_path: Path) -> None:
    finding = only(
        explain_origin(production_settings(tmp_path), "http://app.example.com"), "cors.not_allowed"
    )

    assert "Production refuses http origins" in finding.fix


# CORS probes of a misconfigured deployment ---------------------------------------------------

FRONTEND_ORIGIN = "http://localhost:4100"


def cors_answer(status: int, allow_origin: list[str], allow_credentials: list[str]) -> Responder:
    """A server answering preflights from :data:`FRONTEND_ORIGIN` with these values (the
    look-alikes get nothing), and 200 to anything else."""

    def respond(
        method: str, path: str, headers: Mapping[str, str]
    ) -> tuple[int, list[tuple[str, str]]]:
        if method == "OPTIONS" and headers.get("Origin") == FRONTEND_ORIGIN:
            return status, [
                *(("Access-Control-Allow-Origin", value) for value in allow_origin),
                *(("Access-Control-Allow-Credentials", value) for value in allow_credentials),
            ]
        return (204 if method == "OPTIONS" else 200), []

    return respond


def probe_cors(tmp_path: Path, respond: Responder) -> list[Finding]:
    settings = Settings(instance_path=tmp_path, origins=(FRONTEND_ORIGIN,))
    with fake_server(respond) as base:
        return check_deployment(base, settings, timeout=2)


def test_a_wildcard_allow_origin_is_an_error(tmp_path: Path) -> None:
    # nginx `add_header Access-Control-Allow-Origin *` with authgate's headers hidden
    findings = probe_cors(tmp_path, cors_answer(204, ["*"], ["true"]))

    finding = only(findings, "url.cors.wrong_allow_origin")
    assert finding.level == "error"
    assert "Access-Control-Allow-Origin is '*', not http://localhost:4100" in finding.message
    assert "url.cors.preflight" not in checks(findings)


def test_a_preflight_without_credentials_is_an_error(tmp_path: Path) -> None:
    findings = probe_cors(tmp_path, cors_answer(204, [FRONTEND_ORIGIN], []))

    finding = only(findings, "url.cors.no_credentials")
    assert finding.level == "error"
    assert "Access-Control-Allow-Credentials: true is missing" in finding.message


def test_repeated_credentials_headers_are_an_error(tmp_path: Path) -> None:
    findings = probe_cors(tmp_path, cors_answer(204, [FRONTEND_ORIGIN], ["true", "true"]))

    assert only(findings, "url.cors.no_credentials").level == "error"


def test_a_preflight_404_through_a_proxy_is_an_error(tmp_path: Path) -> None:
    # A proxy adding CORS headers (`always`) to a 404 from a location that does not forward
    # OPTIONS: the headers are right, the status is not.
    findings = probe_cors(tmp_path, cors_answer(404, [FRONTEND_ORIGIN], ["true"]))

    finding = only(findings, "url.cors.preflight_status")
    assert finding.level == "error"
    assert "answered HTTP 404" in finding.message
    assert "OPTIONS" in finding.fix


def test_a_preflight_without_an_answer_is_an_error() -> None:
    with requests.Session() as session:
        finding = check_preflight(
            session, f"http://127.0.0.1:{free_port()}", FRONTEND_ORIGIN, timeout=2
        )

    assert (finding.check, finding.level) == ("url.cors.unreachable", "error")
    assert f"The preflight from {FRONTEND_ORIGIN} got no answer" in finding.message
    assert "Connection refused" in finding.message


def test_doctor_cors_url_says_when_the_server_allows_what_the_settings_do_not(
    tmp_path: Path,
) -> None:
    def reflect(
        method: str, path: str, headers: Mapping[str, str]
    ) -> tuple[int, list[tuple[str, str]]]:
        origin = headers.get("Origin", "")
        return 204, [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
        ]

    settings = Settings(instance_path=tmp_path, origins=(FRONTEND_ORIGIN,))
    with fake_server(reflect) as base:
        findings = probe_origin(base, "https://other.test", settings, timeout=2)

    finding = only(findings, "cors.server_disagrees")
    assert finding.level == "warning"
    assert "it allows this origin although your settings do not" in finding.message
    assert "Restart authgate with the current settings" in finding.fix


# What the server sees through its proxy --------------------------------------------------------


def answer_json(
    method: str, path: str, headers: Mapping[str, str]
) -> tuple[int, list[tuple[str, str]]]:
    return 200, [("Content-Type", "application/json")]


def server_findings(
    tmp_path: Path, report: dict[str, Any], public_url: str, *, public_url_probed: bool = True
) -> list[Finding]:
    """check_server_report against a server whose every answer (/api/auth/diagnose included) is
    ``report``, with settings whose public URL is ``public_url``."""
    settings = Settings(instance_path=tmp_path, public_url=public_url)
    body = json.dumps(report).encode()
    with fake_server(answer_json, body=body) as base, requests.Session() as session:
        return check_server_report(
            session, base, settings, timeout=2, public_url_probed=public_url_probed
        )


def deployment_findings(tmp_path: Path, report: dict[str, Any], public_url: str) -> list[Finding]:
    """check_deployment of that server (at http://127.0.0.1:<port>, not ``public_url``)."""
    settings = Settings(instance_path=tmp_path, public_url=public_url)
    with fake_server(answer_json, body=json.dumps(report).encode()) as base:
        return check_deployment(base, settings, timeout=2)


def report_of(base_port_url: str, **values: Any) -> dict[str, Any]:
    return {"scheme": "https", "host": "", "public_url": base_port_url, "findings": [], **values}


# What authgate behind a proxy with AUTHGATE_TRUSTED_PROXIES=0 says about itself.
SCHEME_PROBLEM = (
    f"The server sees http:// but its public URL is {PUBLIC}: behind a reverse proxy, set "
    "AUTHGATE_TRUSTED_PROXIES to the number of proxies so that X-Forwarded-Proto/-For/-Host "
    "are trusted."
)
COOKIE_PROBLEM = (
    "No session cookie arrived: not logged in yet, or the request was made without "
    "credentials: 'include'."
)


def test_the_servers_own_problems_are_reported(tmp_path: Path) -> None:
    report = report_of(
        PUBLIC,
        scheme="http",
        host="auth.example.com",
        findings=[{"kind": "scheme", "message": SCHEME_PROBLEM}],
    )

    findings = server_findings(tmp_path, report, PUBLIC)

    finding = only(findings, "url.server.problem")
    assert finding.level == "warning"
    assert finding.message == f"The server says: {SCHEME_PROBLEM}"
    assert finding.fix.startswith("Set AUTHGATE_TRUSTED_PROXIES to the number of proxies")
    assert "url.server.view" not in checks(findings)


@pytest.mark.parametrize(
    ("kind", "fix"),
    [
        ("origin", "Send the requests from a page on an origin in AUTHGATE_ORIGINS"),
        ("cookie", "Log in first and send requests with credentials: 'include'"),
    ],
)
def test_each_server_problem_gets_the_fix_of_its_kind(tmp_path: Path, kind: str, fix: str) -> None:
    report = report_of(
        PUBLIC, host="auth.example.com", findings=[{"kind": kind, "message": "what it says"}]
    )

    finding = only(server_findings(tmp_path, report, PUBLIC), "url.server.problem")

    assert finding.message == "The server says: what it says"
    assert finding.fix.startswith(fix)
    assert "AUTHGATE_TRUSTED_PROXIES" not in finding.fix


def test_a_server_problem_of_an_unknown_kind_gets_no_borrowed_fix(tmp_path: Path) -> None:
    report = report_of(
        PUBLIC, host="auth.example.com", findings=[{"kind": "later", "message": "news"}]
    )

    finding = only(server_findings(tmp_path, report, PUBLIC), "url.server.problem")

    assert (finding.message, finding.fix) == ("The server says: news", "")


def test_a_server_seeing_another_host_is_reported(tmp_path: Path) -> None:
    report = report_of(PUBLIC, host="127.0.0.1:8086")  # the proxy's own Host, not the public one

    finding = only(server_findings(tmp_path, report, PUBLIC), "url.server.wrong_host")

    assert finding.level == "warning"
    assert "'127.0.0.1:8086', not 'auth.example.com'" in finding.message


def test_the_public_host_with_its_port_is_the_right_host(tmp_path: Path) -> None:
    public = "https://[::1]:8443"

    findings = server_findings(tmp_path, report_of(public, host="[::1]:8443"), public)

    assert only(findings, "url.server.view").level == "ok"


def test_what_the_server_sees_is_not_judged_off_the_public_url(tmp_path: Path) -> None:
    """Probing gunicorn directly: it sees http and its own address, rightly; the cookie problem
    does not depend on the address and is still reported."""
    report = report_of(
        PUBLIC,
        scheme="http",
        host="localhost:8086",
        findings=[
            {"kind": "cookie", "message": COOKIE_PROBLEM},
            {"kind": "scheme", "message": SCHEME_PROBLEM},
        ],
    )

    findings = server_findings(tmp_path, report, PUBLIC, public_url_probed=False)

    assert [(f.check, f.level) for f in findings] == [
        ("url.server.problem", "warning"),
        ("url.server.not_judged", "ok"),
    ]
    assert findings[0].message == f"The server says: {COOKIE_PROBLEM}"
    assert "sees http://localhost:8086: not judged, as --url is not the public URL" in (
        findings[1].message
    )


def test_a_url_other_than_the_public_url_skips_the_servers_host_and_scheme(
    tmp_path: Path,
) -> None:
    """One cause, one finding: --url is not the public URL (url.public_url.differs), not also a
    proxy to trust and a proxy passing the wrong host."""
    report = report_of(
        PUBLIC,
        scheme="http",
        host="127.0.0.1:8086",
        findings=[{"kind": "scheme", "message": SCHEME_PROBLEM}],
    )
    findings = deployment_findings(tmp_path, report, PUBLIC)

    server = [(f.check, f.level) for f in findings if f.group in ("url.public_url", "url.server")]
    assert server == [("url.public_url.differs", "warning"), ("url.server.not_judged", "ok")]


def test_a_server_running_with_another_public_url_is_reported(tmp_path: Path) -> None:
    report = report_of("https://old.example.com", host="old.example.com")

    findings = server_findings(tmp_path, report, "https://auth.example.com")

    finding = only(findings, "url.server.other_settings")
    assert finding.level == "warning"
    assert "https://old.example.com" in finding.message


def test_a_url_other_than_the_public_url_is_pointed_out(tmp_path: Path) -> None:
    findings = deployment_findings(tmp_path, report_of(PUBLIC), PUBLIC)

    finding = only(findings, "url.public_url.differs")
    assert finding.level == "warning"
    assert f"is not AUTHGATE_PUBLIC_URL ({PUBLIC})" in finding.message
    assert f"--url {PUBLIC}" in finding.fix


def test_a_server_without_a_diagnose_report_is_pointed_out(tmp_path: Path) -> None:
    with fake_server(lambda method, path, h: (200, [])) as base:
        findings = check_deployment(base, Settings(instance_path=tmp_path), timeout=2)

    finding = only(findings, "url.server.no_report")
    assert finding.level == "warning"
    assert "/api/auth/diagnose gave no report" in finding.message
