"""``authgate audit tail`` / ``export`` / ``purge`` and the events commands record as the CLI
(``users create``, ``users disable``, ``keys rotate``), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from authgate.bootstrap import build_service
from authgate.cli import main
from authgate.config import load_settings
from authgate.core.audit import AuditQuery
from authgate.service import ClientInfo
from tests.helpers import PASSWORD, clear_authgate_environment, command_environment


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_authgate_environment(monkeypatch)


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return command_environment(tmp_path, database_url)


def run(args: list[str], env: dict[str, str], **kwargs: Any) -> Result:
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False, **kwargs)
    assert result.exit_code == 0, result.output
    return result


def create_user(env: dict[str, str], email: str) -> None:
    run(["users", "create", email, "--password-stdin"], env, input=PASSWORD + "\n")


def lines_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_commands_are_recorded_as_the_cli_and_exported_as_jsonl(
    env: dict[str, str], tmp_path: Path
) -> None:
    create_user(env, "ada@example.com")
    run(["users", "disable", "ada@example.com"], env)
    run(["keys", "rotate", "--keys-dir", str(tmp_path / "keys")], env)

    exported = run(["audit", "export", "--since", "2000-01-01"], env)
    events = lines_of(exported.stdout)
    assert [e["type"] for e in events] == ["user.created", "user.disabled", "key.rotated"]
    assert all(e["actor"] == {"type": "cli", "id": None} for e in events)
    assert events[2]["details"]["kid"]
    assert events[0]["user_id"] == events[1]["user_id"]
    assert "Exported 3 event(s)." in exported.stderr
    # A range that holds none; a filter by type; to a file.
    assert lines_of(run(["audit", "export", "--since", "2100-01-01"], env).stdout) == []
    only = run(["audit", "export", "--since", "2000-01-01", "--type", "key.rotated"], env)
    assert [e["type"] for e in lines_of(only.stdout)] == ["key.rotated"]
    out = tmp_path / "trail.jsonl"
    run(["audit", "export", "--since", "2000-01-01", "-o", str(out)], env)
    assert len(lines_of(out.read_text())) == 3


def test_export_streams_in_pages(env: dict[str, str]) -> None:
    """More events than one page (1000): each once, oldest first."""
    settings = load_settings(env)
    service = build_service(settings)
    try:
        now = service.clock.now()
        from authgate.core.audit import new_event

        for i in range(2345):
            service.store.record_audit(
                new_event(
                    "login.failed",
                    time=now,
                    context=service.audit.context(),
                    outcome="failure",
                    details={"n": i},
                )
            )
    finally:
        service.close()
    events = lines_of(run(["audit", "export", "--since", "2000-01-01"], env).stdout)
    assert [e["details"]["n"] for e in events] == list(range(2345))


def test_export_refuses_a_time_it_cannot_read(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["audit", "export", "--since", "last week"], env=env)
    assert result.exit_code == 2 and "ISO 8601" in result.output
    # A time with no UTC equivalent: refused as a bad option, not a database error.
    since = ["--since", "9999-12-31T23:59:59-14:00"]
    result = CliRunner().invoke(main, ["audit", "export", *since], env=env)
    assert result.exit_code == 2 and "ISO 8601" in result.output


def _read_line(process: subprocess.Popen[str], timeout: float = 20.0) -> dict[str, Any]:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "tail printed nothing"
    return json.loads(process.stdout.readline())  # type: ignore[no-any-return]


def test_tail_prints_the_latest_then_follows_new_events(env: dict[str, str]) -> None:
    create_user(env, "ada@example.com")
    create_user(env, "bob@example.com")
    service = build_service(load_settings(env))
    try:
        service.sessions.login("ada@example.com", PASSWORD, ClientInfo(ip="192.0.2.9"))
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "authgate",
                "audit",
                "tail",
                "-n",
                "1",
                "--format",
                "jsonl",
                "--interval",
                "0.1",
                "--type",
                "login.succeeded",
            ],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            first = _read_line(process)  # the newest before it started: it now follows
            service.sessions.login("bob@example.com", PASSWORD, ClientInfo(ip="192.0.2.10"))
            second = _read_line(process)
        finally:
            process.terminate()
            process.wait(timeout=10)
            assert process.stdout is not None
            process.stdout.close()
    finally:
        service.close()
    assert first["type"] == "login.succeeded" and first["ip"] == "192.0.2.9"
    assert second["type"] == "login.succeeded" and second["ip"] == "192.0.2.10"
    assert first["id"] < second["id"]


def test_tail_without_follow_shows_the_last_lines_as_text(env: dict[str, str]) -> None:
    create_user(env, "ada@example.com")
    create_user(env, "bob@example.com")
    shown = run(["audit", "tail", "-n", "1", "--no-follow"], env).stdout.splitlines()
    assert len(shown) == 1
    assert "\tuser.created\tsuccess\tactor=cli\t" in shown[0]


def test_purge_deletes_what_retention_lets_go(env: dict[str, str]) -> None:
    create_user(env, "ada@example.com")
    kept = run(["audit", "purge"], {**env, "AUTHGATE_AUDIT_RETENTION_DAYS": "1"})
    assert "Deleted 0 event(s) older than 1 days." in kept.stderr
    settings = load_settings(env)
    service = build_service(settings)
    try:
        assert len(service.store.list_audit_events(AuditQuery(limit=10))) == 1
    finally:
        service.close()
    forever = run(["audit", "purge"], {**env, "AUTHGATE_AUDIT_RETENTION_DAYS": "0"})
    assert "kept for ever" in forever.stderr


def test_keys_rotate_without_a_database_records_nothing_and_creates_none(
    tmp_path: Path,
) -> None:
    result = run(
        ["keys", "rotate", "--keys-dir", str(tmp_path / "keys")],
        {"AUTHGATE_INSTANCE_PATH": str(tmp_path / "instance")},
    )
    assert "Not recorded in the audit trail: no database yet" in result.stderr
    assert not (tmp_path / "instance" / "authgate.db").exists()
