"""The ``authgate`` command line, run in-process with click's ``CliRunner``.

Commands that touch the database run on SQLite and PostgreSQL (the ``database_url`` fixture).
No test starts a long-running server: ``serve`` is checked up to the point where it would run
werkzeug or gunicorn (the e2e tests run the real thing).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from authgate import cli
from authgate.bootstrap import build_service
from authgate.cli import GunicornApplication, gunicorn_options, main
from authgate.config import Environment, Settings, load_settings
from authgate.core.keys import generate_key, load_keyring
from authgate.errors import InvalidCredentialsError, TokenRevokedError
from authgate.http.schemas import format_time
from authgate.service import AuthService, ClientInfo
from authgate.store.records import UserStatus
from authgate.store.sqlalchemy.migrate import head_revision
from tests.helpers import (
    KEY_ENCRYPTION_KEY,
    PASSWORD,
    PUBLIC_URL,
    clear_authgate_environment,
    command_environment,
)

EMAIL = "ada@example.com"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test passes in ``env`` configures authgate."""
    clear_authgate_environment(monkeypatch)


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return command_environment(tmp_path, database_url)


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    """The embedded default: no database URL, everything in the instance folder."""
    return {"AUTHGATE_INSTANCE_PATH": str(tmp_path)}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, args: list[str], env: dict[str, str], **kwargs: Any) -> Result:
    return runner.invoke(main, args, env=env, catch_exceptions=False, **kwargs)


def create_user(
    runner: CliRunner,
    env: dict[str, str],
    email: str = EMAIL,
    *extra: str,
    password: str = PASSWORD,
) -> Result:
    return run(
        runner, ["users", "create", email, "--password-stdin", *extra], env, input=password + "\n"
    )


@pytest.fixture
def service_for(tmp_path: Path) -> Iterator[Any]:
    """``service_for(env)``: a service over what the CLI just wrote (closed afterwards)."""
    opened: list[AuthService] = []

    def open_service(env: dict[str, str]) -> AuthService:
        settings = Settings(
            instance_path=tmp_path,
            database_url=env.get("AUTHGATE_DATABASE_URL"),
            public_url=PUBLIC_URL,
        )
        service = build_service(settings)
        opened.append(service)
        return service

    yield open_service
    for service in opened:
        service.close()


def assert_clean_failure(result: Result, exit_code: int) -> None:
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


# users create --------------------------------------------------------------------------------


def test_create_user_from_stdin_then_login(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    result = create_user(runner, env, EMAIL, "--name", "Ada Lovelace", "--username", "ada")
    assert result.exit_code == 0, result.output
    user_id = result.stdout.strip()
    assert user_id
    assert PASSWORD not in result.output

    service = service_for(env)
    issued = service.sessions.login(EMAIL, PASSWORD, ClientInfo())
    assert issued.user.id == user_id
    assert issued.user.roles == ("user",)
    assert issued.user.name == "Ada Lovelace"
    assert service.sessions.login("ada", PASSWORD, ClientInfo()).user.id == user_id


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """CliRunner's stdin is no terminal: pretend it is, for the prompt (fed by ``input``)."""
    monkeypatch.setattr(cli, "_stdin_is_a_terminal", lambda: True)


@pytest.mark.usefixtures("terminal")
def test_create_user_prompts_hidden_and_confirmed(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    result = run(runner, ["users", "create", EMAIL], env, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Password" in result.stderr
    assert "Repeat for confirmation" in result.stderr
    assert PASSWORD not in result.output  # hidden input is not echoed
    assert (
        service_for(env).sessions.login(EMAIL, PASSWORD, ClientInfo()).user.id
        == result.stdout.strip()
    )


@pytest.mark.usefixtures("terminal")
def test_create_user_prompt_mismatch_creates_nobody(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    result = run(runner, ["users", "create", EMAIL], env, input=f"{PASSWORD}\nsomething else\n")
    assert result.exit_code == 1
    assert "do not match" in result.stderr
    assert service_for(env).store.find_user_by_login(EMAIL) is None


def test_password_is_never_accepted_on_the_command_line(
    runner: CliRunner, env: dict[str, str]
) -> None:
    command = main.get_command(None, "users").get_command(None, "create")  # type: ignore[union-attr,arg-type]
    assert command is not None
    names = {name for param in command.params for name in param.opts}
    assert not {n for n in names if "password" in n} - {"--password-stdin"}

    result = runner.invoke(main, ["users", "create", EMAIL, "--password", PASSWORD], env=env)
    assert_clean_failure(result, 2)
    assert "No such option" in result.stderr
    result = runner.invoke(main, ["users", "create", EMAIL, PASSWORD], env=env)
    assert_clean_failure(result, 2)


def test_create_user_twice_is_refused(runner: CliRunner, env: dict[str, str]) -> None:
    assert create_user(runner, env).exit_code == 0
    result = create_user(runner, env, "ADA@example.com", "--role", "admin")
    assert_clean_failure(result, 1)
    assert "already exists" in result.stderr
    assert "`authgate users set-roles ada@example.com user admin`" in result.stderr


def test_piped_password_without_password_stdin_is_refused_with_the_way(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    # CliRunner's stdin is no terminal, like a pipe: the prompt is not even tried.
    result = run(runner, ["users", "create", EMAIL], env, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert_clean_failure(result, 1)
    assert "stdin is not a terminal" in result.stderr
    assert "--password-stdin" in result.stderr
    assert "Password:" not in result.stderr
    assert service_for(env).store.find_user_by_login(EMAIL) is None


def test_existing_email_is_named_before_the_terminal_check(
    runner: CliRunner, env: dict[str, str]
) -> None:
    assert create_user(runner, env).exit_code == 0
    result = run(runner, ["users", "create", EMAIL, "--role", "admin"], env, input="")
    assert_clean_failure(result, 1)
    assert "users set-roles" in result.stderr
    assert "--password-stdin" not in result.stderr


def test_piped_password_in_a_real_process_has_no_getpass_warning(
    sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    # A new session has no controlling terminal (as in CI), and stdin is a pipe: getpass used to
    # fall back to reading the pipe with a GetPassWarning (and abort at its end).
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    completed = subprocess.run(
        [sys.executable, "-m", "authgate", "users", "create", EMAIL],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        capture_output=True,
        text=True,
        env=environment | sqlite_env,
        cwd=tmp_path,
        start_new_session=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert "GetPassWarning" not in completed.stderr
    assert "Traceback" not in completed.stderr
    assert "Error: Cannot prompt for the password: stdin is not a terminal." in completed.stderr
    assert "--password-stdin" in completed.stderr
    assert completed.stdout == ""


def test_duplicate_username_is_refused(runner: CliRunner, env: dict[str, str]) -> None:
    assert create_user(runner, env, EMAIL, "--username", "ada").exit_code == 0
    result = create_user(runner, env, "other@example.com", "--username", "ada")
    assert_clean_failure(result, 1)
    assert "already exists" in result.stderr


def test_weak_password_is_refused_with_the_policy(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    result = create_user(runner, env, password="password")
    assert_clean_failure(result, 1)
    assert "password: This password is too common" in result.stderr
    result = create_user(runner, env, password="short")
    assert_clean_failure(result, 1)
    assert "at least 8 characters" in result.stderr
    assert service_for(env).store.find_user_by_login(EMAIL) is None


def test_empty_stdin_is_refused(runner: CliRunner, env: dict[str, str]) -> None:
    result = create_user(runner, env, password="")
    assert_clean_failure(result, 1)
    assert "No password on stdin" in result.stderr


def test_invalid_email_is_refused_before_asking_for_a_password(
    runner: CliRunner, env: dict[str, str]
) -> None:
    result = run(runner, ["users", "create", "not-an-email"], env, input="")
    assert_clean_failure(result, 1)
    assert "email:" in result.stderr
    assert "Password" not in result.stderr


def test_create_user_with_roles(runner: CliRunner, env: dict[str, str], service_for: Any) -> None:
    result = create_user(runner, env, EMAIL, "--role", "admin", "--role", "admin", "--role", "user")
    assert result.exit_code == 0, result.output
    user = service_for(env).store.find_user_by_login(EMAIL)
    assert user.roles == ("user", "admin")


def test_invalid_role_is_refused(runner: CliRunner, env: dict[str, str]) -> None:
    result = create_user(runner, env, EMAIL, "--role", "Admin!")
    assert_clean_failure(result, 1)
    assert "Invalid role 'Admin!'" in result.stderr


# users set-roles / disable / enable / list ---------------------------------------------------


def test_set_roles_is_written_and_logged_for_running_servers(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    assert create_user(runner, env).exit_code == 0
    before = service_for(env).store.latest_revocation_id()

    result = run(runner, ["users", "set-roles", EMAIL, "user", "admin", "admin"], env)
    assert result.exit_code == 0, result.output
    assert "user, admin" in result.stdout

    service = service_for(env)
    user = service.store.find_user_by_login(EMAIL)
    assert user.roles == ("user", "admin")
    events = service.store.read_revocations(before)
    assert [(e.kind.value, e.subject) for e in events] == [("user", user.id)]


def test_disable_revokes_sessions_and_enable_restores_login(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    assert create_user(runner, env).exit_code == 0
    service = service_for(env)
    issued = service.sessions.login(EMAIL, PASSWORD, ClientInfo())

    result = run(runner, ["users", "disable", EMAIL], env)
    assert result.exit_code == 0, result.output
    user = service.store.find_user_by_login(EMAIL)
    assert user.status is UserStatus.DISABLED
    assert service.store.list_sessions(user.id, now=service.clock.now()) == []
    assert issued.session.id in {
        e.subject for e in service.store.read_revocations(0) if e.kind.value == "session"
    }
    with pytest.raises(InvalidCredentialsError):
        service.sessions.login(EMAIL, PASSWORD, ClientInfo())

    result = run(runner, ["users", "enable", EMAIL], env)
    assert result.exit_code == 0, result.output
    assert service.store.find_user_by_login(EMAIL).status is UserStatus.ACTIVE
    assert service.sessions.login(EMAIL, PASSWORD, ClientInfo()).user.id == user.id


@pytest.mark.parametrize(
    "args",
    [
        ["users", "set-roles", "nobody@example.com", "admin"],
        ["users", "disable", "nobody@example.com"],
        ["users", "enable", "nobody@example.com"],
    ],
)
def test_unknown_user_is_refused(runner: CliRunner, env: dict[str, str], args: list[str]) -> None:
    result = run(runner, args, env)
    assert_clean_failure(result, 1)
    assert "No user with the email or username 'nobody@example.com'" in result.stderr


def test_set_roles_needs_a_role(runner: CliRunner, env: dict[str, str]) -> None:
    assert create_user(runner, env).exit_code == 0
    result = runner.invoke(main, ["users", "set-roles", EMAIL], env=env)
    assert_clean_failure(result, 2)


def test_list_users_with_query(runner: CliRunner, env: dict[str, str]) -> None:
    assert create_user(runner, env, EMAIL, "--role", "admin").exit_code == 0
    assert create_user(runner, env, "grace@example.com").exit_code == 0

    result = run(runner, ["users", "list"], env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split("\t")[1] for line in lines] == [EMAIL, "grace@example.com"]
    assert lines[0].split("\t")[3:5] == ["user,admin", "active"]
    assert "2 user(s)" in result.stderr

    result = run(runner, ["users", "list", "--q", "GRACE"], env)
    assert [line.split("\t")[1] for line in result.stdout.splitlines()] == ["grace@example.com"]


# keys ----------------------------------------------------------------------------------------


def test_rotate_adds_an_active_production_key(
    runner: CliRunner, sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"
    dev_key = generate_key(keys_dir, dev=True, now=_past())

    result = run(runner, ["keys", "rotate"], sqlite_env)
    assert result.exit_code == 0, result.output
    kid = result.stdout.strip()
    assert "keep verifying until they expire" in result.stderr
    assert "No restart needed" in result.stderr and "next start" not in result.stderr

    ring = load_keyring(keys_dir)
    assert ring is not None
    assert ring.active.kid == kid
    assert not ring.active.dev
    assert [k.kid for k in ring.keys] == [kid, dev_key.kid]
    assert stat.S_IMODE((keys_dir / f"{kid}.pem").stat().st_mode) == 0o600

    result = run(runner, ["keys", "list"], sqlite_env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"* {kid}\t")
    assert lines[0].endswith("\tproduction\tactive")
    assert lines[1].startswith(f"  {dev_key.kid}\t")
    assert "\tdev\t" in lines[1]
    assert "Warning" not in result.stderr


def _past() -> Any:
    from datetime import UTC, datetime

    return datetime(2024, 1, 1, tzinfo=UTC)


def test_keys_list_warns_about_readable_key_files(
    runner: CliRunner, sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    assert run(runner, ["keys", "rotate"], sqlite_env).exit_code == 0
    (key_file,) = (tmp_path / "keys").glob("*.pem")
    key_file.chmod(0o644)
    result = run(runner, ["keys", "list"], sqlite_env)
    assert result.exit_code == 0
    assert f"Warning: {key_file} is readable" in result.stderr


def test_keys_list_without_keys(runner: CliRunner, sqlite_env: dict[str, str]) -> None:
    result = run(runner, ["keys", "list"], sqlite_env)
    assert result.exit_code == 0
    assert "No signing keys" in result.stderr
    assert "authgate keys rotate" in result.stderr


def test_rotate_with_keys_dir_creates_the_first_production_key(
    runner: CliRunner, tmp_path: Path
) -> None:
    production = {
        "AUTHGATE_ENV": "production",
        "AUTHGATE_INSTANCE_PATH": str(tmp_path),
        "AUTHGATE_PUBLIC_URL": "https://auth.example.com",
        "AUTHGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "AUTHGATE_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
    }
    result = runner.invoke(main, ["keys", "rotate"], env=production)
    assert_clean_failure(result, 2)
    assert "AUTHGATE_KEYS_DIR is not set" in result.stderr

    keys_dir = tmp_path / "secrets"
    result = run(runner, ["keys", "rotate", "--keys-dir", str(keys_dir)], production)
    assert result.exit_code == 0, result.output
    ring = load_keyring(keys_dir)
    assert ring is not None and ring.active.kid == result.stdout.strip() and not ring.active.dev

    result = run(runner, ["keys", "list", "--keys-dir", str(keys_dir)], production)
    assert result.stdout.startswith(f"* {ring.active.kid}")


def test_corrupt_key_file_is_a_clean_error(
    runner: CliRunner, sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    assert run(runner, ["keys", "rotate"], sqlite_env).exit_code == 0
    (key_file,) = (tmp_path / "keys").glob("*.pem")
    key_file.write_text("not a key")
    result = runner.invoke(main, ["keys", "list"], env=sqlite_env)
    assert_clean_failure(result, 2)
    assert "not an unencrypted PKCS8 PEM" in result.stderr


# db ------------------------------------------------------------------------------------------


def test_db_upgrade_then_current_on_a_fresh_sqlite_file(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'auth.db'}"
    env = {"AUTHGATE_INSTANCE_PATH": str(tmp_path), "AUTHGATE_DATABASE_URL": url}
    head = head_revision()

    result = run(runner, ["db", "current"], env)
    assert result.exit_code == 0, result.output
    assert "(none)" in result.stdout and "authgate db upgrade" in result.stdout

    result = run(runner, ["db", "upgrade"], env)
    assert result.exit_code == 0, result.output
    assert f"to {head} (head)" in result.stdout

    result = run(runner, ["db", "current"], env)
    assert result.stdout.strip() == f"{head} (head)"

    result = run(runner, ["db", "upgrade"], env)
    assert result.exit_code == 0, result.output
    assert "already at revision" in result.stdout


def test_db_current_on_each_database(runner: CliRunner, env: dict[str, str]) -> None:
    assert run(runner, ["db", "upgrade"], env).exit_code == 0
    result = run(runner, ["db", "current"], env)
    assert result.stdout.strip() == f"{head_revision()} (head)"


def test_unreachable_database_is_a_clean_error_without_the_password(
    runner: CliRunner, tmp_path: Path
) -> None:
    env = {
        "AUTHGATE_INSTANCE_PATH": str(tmp_path),
        "AUTHGATE_DATABASE_URL": "postgresql+psycopg://authgate:hunter2@127.0.0.1:1/nothing",
    }
    for args in (["db", "current"], ["users", "list"]):
        result = runner.invoke(main, args, env=env)
        assert_clean_failure(result, 1)
        assert "Could not use the database" in result.stderr
        assert "hunter2" not in result.output


def test_unusable_database_url_is_a_settings_error(runner: CliRunner, tmp_path: Path) -> None:
    env = {
        "AUTHGATE_INSTANCE_PATH": str(tmp_path),
        "AUTHGATE_DATABASE_URL": "nonsense://user:hunter2@host/db",
    }
    result = runner.invoke(main, ["db", "upgrade"], env=env)
    assert_clean_failure(result, 2)
    assert "AUTHGATE_DATABASE_URL is not a usable database URL" in result.stderr
    assert "hunter2" not in result.output


# settings errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["users", "list"],
        ["db", "upgrade"],
        ["keys", "list"],
        ["serve"],
    ],
)
def test_production_without_settings_lists_every_problem(
    runner: CliRunner, tmp_path: Path, args: list[str]
) -> None:
    env = {"AUTHGATE_ENV": "production", "AUTHGATE_INSTANCE_PATH": str(tmp_path)}
    result = runner.invoke(main, args, env=env)
    assert_clean_failure(result, 2)
    assert "Refusing to start in production mode" in result.stderr
    for problem in ("AUTHGATE_PUBLIC_URL", "AUTHGATE_DATABASE_URL", "AUTHGATE_KEYS_DIR"):
        assert problem in result.stderr


def test_serve_production_flag_applies_the_production_checks(
    runner: CliRunner, sqlite_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []
    monkeypatch.setattr(GunicornApplication, "run", lambda self: started.append(self))
    monkeypatch.setattr(cli, "run_development_server", started.append)

    result = runner.invoke(main, ["serve", "--production"], env=sqlite_env)
    assert_clean_failure(result, 2)
    assert "Refusing to start in production mode" in result.stderr
    assert "AUTHGATE_KEYS_DIR is not set" in result.stderr
    assert started == []


def test_serve_production_refuses_missing_and_dev_keys(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(GunicornApplication, "run", lambda self: pytest.fail("started"))
    env = {
        "AUTHGATE_INSTANCE_PATH": str(tmp_path),
        "AUTHGATE_PUBLIC_URL": "https://auth.example.com",
        "AUTHGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "AUTHGATE_KEYS_DIR": str(tmp_path / "secrets"),
        "AUTHGATE_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
    }
    result = runner.invoke(main, ["serve", "--production"], env=env)
    assert_clean_failure(result, 2)
    assert "No signing key in" in result.stderr

    generate_key(tmp_path / "secrets", dev=True, now=_past())
    result = runner.invoke(main, ["serve", "--production"], env=env)
    assert_clean_failure(result, 2)
    assert "was generated for development" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTHGATE_PORT": "0"}, "AUTHGATE_PORT"),
        ({"AUTHGATE_NOPE": "1"}, "Unknown setting AUTHGATE_NOPE"),
        ({"AUTHGATE_CONFIG": "/does/not/exist.toml"}, "does not exist"),
    ],
)
def test_invalid_settings_exit_2(
    runner: CliRunner, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = runner.invoke(main, ["users", "list"], env={**env, "AUTHGATE_INSTANCE_PATH": "x"})
    assert_clean_failure(result, 2)
    assert message in result.stderr


def test_settings_from_a_toml_file(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "authgate.toml"
    url = f"sqlite:///{tmp_path / 'from-toml.db'}"
    config.write_text(f'[authgate]\ninstance_path = "{tmp_path}"\ndatabase_url = "{url}"\n')
    result = run(runner, ["db", "upgrade"], {"AUTHGATE_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-toml.db").exists()


# serve -----------------------------------------------------------------------------------------


def test_serve_development_prepares_and_runs_werkzeug(
    runner: CliRunner,
    sqlite_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Settings] = []
    monkeypatch.setattr(cli, "run_development_server", calls.append)
    monkeypatch.setattr(GunicornApplication, "run", lambda self: pytest.fail("gunicorn"))

    result = run(runner, ["serve", "--port", "9123"], sqlite_env)
    assert result.exit_code == 0, result.output

    # (What the development server does with them: tests/test_dev_server.py.)
    (settings,) = calls
    assert (settings.host, settings.port) == ("127.0.0.1", 9123)
    # --port flows into the default public URL: cookies, CSRF and `iss` follow the address.
    assert settings.public_url == "http://localhost:9123"
    assert (tmp_path / "authgate.db").exists()  # migrated once in the parent
    ring = load_keyring(tmp_path / "keys")
    assert ring is not None and ring.active.dev


def _production_env(tmp_path: Path) -> dict[str, str]:
    keys_dir = tmp_path / "secrets"
    generate_key(keys_dir, dev=False, now=_past())
    return {
        "AUTHGATE_INSTANCE_PATH": str(tmp_path),
        "AUTHGATE_PUBLIC_URL": "https://auth.example.com",
        "AUTHGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "AUTHGATE_KEYS_DIR": str(keys_dir),
        "AUTHGATE_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
    }


def test_serve_production_becomes_the_gevent_patched_server_process(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    execs: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: execs.append((path, argv, env)))
    monkeypatch.setattr(GunicornApplication, "run", lambda self: pytest.fail("not patched"))
    monkeypatch.setattr(cli, "run_development_server", lambda s: pytest.fail("werkzeug"))
    env = _production_env(tmp_path)

    result = run(runner, ["serve", "--production", "--host", "0.0.0.0", "--workers", "3"], env)
    assert result.exit_code == 0, result.output
    ((path, argv, environ),) = execs
    assert path == sys.executable
    assert argv == [sys.executable, "-m", "authgate.serving"]
    # The command-line options travel in the environment, with everything else it had.
    assert environ["AUTHGATE_ENV"] == "production"
    assert (environ["AUTHGATE_HOST"], environ["AUTHGATE_WORKERS"]) == ("0.0.0.0", "3")
    assert "AUTHGATE_PORT" not in environ
    assert environ["AUTHGATE_KEYS_DIR"] == env["AUTHGATE_KEYS_DIR"]
    assert (tmp_path / "prod.db").exists()  # migrated once, before the hand-over


def test_production_server_runs_gevent_workers_with_a_fresh_app_per_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apps: list[GunicornApplication] = []
    monkeypatch.setattr(GunicornApplication, "run", lambda self: apps.append(self))
    env = _production_env(tmp_path)
    build_service(load_settings(environ={**env, "AUTHGATE_ENV": "production"})).close()
    for name, value in {**env, "AUTHGATE_ENV": "production", "AUTHGATE_WORKERS": "3"}.items():
        monkeypatch.setenv(name, value)

    cli.run_production_server()
    (application,) = apps
    assert application.settings.env is Environment.PRODUCTION
    cfg = application.cfg
    assert cfg.bind == ["127.0.0.1:8086"]
    assert cfg.workers == 3
    assert cfg.worker_class_str == "gevent"
    assert (cfg.worker_connections, cfg.keepalive) == (1000, 2)
    assert cfg.preload_app is False
    assert (cfg.timeout, cfg.graceful_timeout) == (30, 30)
    assert cfg.accesslog == "-"

    first, second = application.load(), application.load()
    assert isinstance(first, Flask) and first is not second  # each worker builds its own
    for app in (first, second):
        app.extensions["authgate"].service.close()


def test_production_server_reports_unusable_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHGATE_ENV", "production")
    monkeypatch.setattr(GunicornApplication, "run", lambda self: pytest.fail("started"))
    with pytest.raises(SystemExit, match="Refusing to start in production mode"):
        cli.run_production_server()


def test_the_server_process_patches_for_gevent_before_importing_authgate() -> None:
    """urllib3 keeps ``ssl.SSLContext`` from its import: patched late, the OAuth clients' TLS
    would block a gevent worker's loop. ``authgate.serving`` must patch first."""
    script = (
        "import sys, types\n"
        "import authgate.serving\n"
        "def check():\n"
        "    import gevent.ssl, urllib3.util.ssl_\n"
        "    print(urllib3.util.ssl_.SSLContext is gevent.ssl.SSLContext)\n"
        "sys.modules['authgate.production_server'] = types.SimpleNamespace(\n"
        "    run_production_server=check\n"
        ")\n"
        "authgate.serving.main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True", done.stderr


def test_gunicorn_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    settings = Settings(host="::1", port=9000)
    options = gunicorn_options(settings)
    assert options["bind"] == ["[::1]:9000"]
    assert options["workers"] == 9
    assert options["worker_class"] == "gevent"
    assert (options["worker_connections"], options["keepalive"]) == (1000, 2)
    assert options["preload_app"] is False
    assert (options["timeout"], options["graceful_timeout"]) == (30, 30)
    assert options["accesslog"] == "-"
    # The path without its query string (%(U)s): %(r)s would log an OAuth callback's code.
    assert '"%(m)s %(U)s %(H)s" %(s)s %(b)s %(D)s' in options["access_log_format"]
    assert "%(r)s" not in options["access_log_format"]

    assert gunicorn_options(Settings(workers=5))["workers"] == 5
    assert gunicorn_options(Settings(workers=5), 2)["workers"] == 2
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert gunicorn_options(Settings())["workers"] == 3
    monkeypatch.setattr(os, "cpu_count", lambda: 256)
    assert gunicorn_options(Settings())["workers"] == 64


def test_serve_rejects_bad_options(runner: CliRunner, sqlite_env: dict[str, str]) -> None:
    for args in (["--port", "0"], ["--workers", "0"], ["--port", "http"]):
        result = runner.invoke(main, ["serve", *args], env=sqlite_env)
        assert_clean_failure(result, 2)


# tokens --------------------------------------------------------------------------------------

TOKEN_PATTERN = r"^ag_[0-9A-Za-z]{16}_[0-9A-Za-z]{49}$"


def create_token(runner: CliRunner, env: dict[str, str], *extra: str) -> Result:
    return run(runner, ["tokens", "create", "--user", EMAIL, *extra], env)


def test_tokens_create_prints_only_the_token_and_it_authenticates(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    assert create_user(runner, env).exit_code == 0
    result = create_token(runner, env, "--scope", "read", "--scope", "write", "--name", "ci")
    assert result.exit_code == 0, result.output
    token = result.stdout.removesuffix("\n")
    assert re.fullmatch(TOKEN_PATTERN, token)
    assert result.stdout == token + "\n"
    assert token not in result.stderr
    token_id = token[3:19]
    assert token_id in result.stderr and "read,write" in result.stderr
    assert "shown once" in result.stderr

    service = service_for(env)
    principal = service.authenticate(token, "bearer")
    assert principal.user.email == EMAIL
    assert principal.api_token is not None
    assert principal.api_token.id == token_id
    assert principal.api_token.scopes == ("read", "write")
    assert principal.api_token.name == "ci"
    user = service.store.find_user_by_login(EMAIL)
    assert principal.api_token.tenant_id == service.store.personal_tenant_id(user.id)


def test_tokens_list_shows_tokens_without_secrets(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    assert create_user(runner, env).exit_code == 0
    token = create_token(runner, env, "--scope", "read").stdout.strip()
    token_id, secret = token[3:19], token[20:]

    result = run(runner, ["tokens", "list", "--user", EMAIL], env)
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    columns = line.split("\t")
    assert columns[0] == token_id
    assert columns[1] == "cli"
    assert columns[3] == "read"
    assert columns[4] == "-"
    assert columns[6] == "-"
    assert secret not in result.output
    assert secret[:12] not in result.output
    assert "1 token(s)" in result.stderr

    result = runner.invoke(main, ["tokens", "list"], env=env)
    assert_clean_failure(result, 2)  # --user is required


def test_tokens_revoke_stops_the_token(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    assert create_user(runner, env).exit_code == 0
    token = create_token(runner, env, "--scope", "read").stdout.strip()
    token_id = token[3:19]
    service = service_for(env)
    assert service.authenticate(token, "bearer").api_token is not None  # cached now
    before = service.store.latest_revocation_id()

    result = run(runner, ["tokens", "revoke", token_id], env)
    assert result.exit_code == 0, result.output
    assert token_id in result.stdout
    events = service.store.read_revocations(before)
    assert [(e.kind.value, e.subject) for e in events] == [("api_token", token_id)]

    with pytest.raises(TokenRevokedError):
        service_for(env).authenticate(token, "bearer")
    listed = run(runner, ["tokens", "list", "--user", EMAIL], env)
    assert listed.stdout == ""

    result = run(runner, ["tokens", "revoke", token_id], env)
    assert_clean_failure(result, 1)
    assert f"No unrevoked API token with the id {token_id!r}" in result.stderr


def test_tokens_revoke_accepts_the_listed_prefix(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    assert create_user(runner, env).exit_code == 0
    token = create_token(runner, env, "--scope", "read").stdout.strip()
    result = run(runner, ["tokens", "revoke", token[:19]], env)
    assert result.exit_code == 0, result.output
    with pytest.raises(TokenRevokedError):
        service_for(env).authenticate(token, "bearer")


def test_tokens_revoke_unknown_id(runner: CliRunner, env: dict[str, str]) -> None:
    result = run(runner, ["tokens", "revoke", "0123456789abcdef"], env)
    assert_clean_failure(result, 1)
    assert "No unrevoked API token with the id '0123456789abcdef'" in result.stderr


def test_tokens_create_records_resource_and_expiry(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    assert create_user(runner, env).exit_code == 0
    result = create_token(
        runner, env, "--scope", "read", "--resource", "doc:42", "--expires-in-days", "7"
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert "resource doc:42" in result.stderr

    service = service_for(env)
    record = service.store.get_api_token(token[3:19])
    assert record is not None
    assert record.resource == "doc:42"
    assert record.expires_at - record.created_at == timedelta(days=7)

    listed = run(runner, ["tokens", "list", "--user", EMAIL], env).stdout.split("\t")
    assert listed[4] == "doc:42"
    assert listed[5] == format_time(record.expires_at)


def test_tokens_create_in_a_team_tenant(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    assert create_user(runner, env).exit_code == 0
    assert create_user(runner, env, "grace@example.com").exit_code == 0
    service = service_for(env)
    grace = service.store.find_user_by_login("grace@example.com")
    tenant = service.store.create_tenant(name="Team", owner_id=grace.id, now=service.clock.now())

    result = create_token(runner, env, "--scope", "read", "--tenant", tenant.id)
    assert_clean_failure(result, 1)
    assert f"not a member of the tenant {tenant.id!r}" in result.stderr

    grace_args = ["--user", "grace@example.com", "--scope", "read", "--tenant", tenant.id]
    result = run(runner, ["tokens", "create", *grace_args], env)
    assert result.exit_code == 0, result.output
    principal = service.authenticate(result.stdout.strip(), "bearer")
    assert principal.api_token is not None and principal.api_token.tenant_id == tenant.id


def test_tokens_create_unknown_scope(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    assert create_user(runner, env).exit_code == 0
    result = create_token(runner, env, "--scope", "read", "--scope", "launch:missiles")
    assert_clean_failure(result, 1)
    assert result.stdout == ""
    assert "scopes: Unknown scope(s): launch:missiles" in result.stderr
    user = service_for(env).store.find_user_by_login(EMAIL)
    assert service_for(env).store.list_api_tokens(user.id) == []


@pytest.mark.parametrize("days", ["0", "-1", "100000"])
def test_tokens_create_bad_expiry(runner: CliRunner, env: dict[str, str], days: str) -> None:
    assert create_user(runner, env).exit_code == 0
    result = create_token(runner, env, "--scope", "read", "--expires-in-days", days)
    assert_clean_failure(result, 1)
    assert "expires_in_days:" in result.stderr
    assert result.stdout == ""


def test_tokens_unknown_user(runner: CliRunner, env: dict[str, str]) -> None:
    for args in (
        ["tokens", "create", "--user", "nobody@example.com", "--scope", "read"],
        ["tokens", "list", "--user", "nobody@example.com"],
    ):
        result = run(runner, args, env)
        assert_clean_failure(result, 1)
        assert "No user with the email or username 'nobody@example.com'" in result.stderr
        assert result.stdout == ""


def test_tokens_create_needs_a_scope(runner: CliRunner, env: dict[str, str]) -> None:
    result = runner.invoke(main, ["tokens", "create", "--user", EMAIL], env=env)
    assert_clean_failure(result, 2)
    assert "--scope" in result.stderr


def test_encryption_key_writes_a_new_private_key_once(runner: CliRunner, tmp_path: Path) -> None:
    from authgate.core.secret_boxes import parse_key_encryption_key

    path = tmp_path / "kek"
    result = runner.invoke(main, ["keys", "encryption-key", str(path)])
    assert result.exit_code == 0, result.output
    assert path.stat().st_mode & 0o777 == 0o600
    key = path.read_text()
    assert len(parse_key_encryption_key(key)) == 32
    again = runner.invoke(main, ["keys", "encryption-key", str(path)])
    assert again.exit_code == 1 and path.read_text() == key  # never overwritten


def test_mfa_reset_removes_the_factors_and_the_sessions(
    runner: CliRunner, env: dict[str, str], service_for: Any
) -> None:
    import pyotp

    from authgate.errors import MfaRequiredError

    assert create_user(runner, env).exit_code == 0
    service = service_for(env)
    principal = service.authenticate(
        service.sessions.login(EMAIL, PASSWORD, ClientInfo()).access_token, "bearer"
    )
    setup = service.second_factors.begin_totp(principal, PASSWORD, ip=None)
    service.second_factors.confirm_totp(principal, pyotp.TOTP(setup.secret).now())
    with pytest.raises(MfaRequiredError):
        service.sessions.login(EMAIL, PASSWORD, ClientInfo())

    result = run(runner, ["users", "mfa-reset", EMAIL], env)
    assert result.exit_code == 0, result.output
    user = service.store.find_user_by_login(EMAIL)
    assert service.store.list_sessions(user.id, now=service.clock.now()) == []
    assert service.sessions.login(EMAIL, PASSWORD, ClientInfo()).user.id == user.id
    assert_clean_failure(
        runner.invoke(main, ["users", "mfa-reset", "nobody@example.com"], env=env), 1
    )
