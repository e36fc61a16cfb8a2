"""``authgate users import`` and ``authgate tokens import``, run in-process with click's
``CliRunner``, into SQLite and PostgreSQL, from files and from seed-style databases (a SQLite
file, and a table in a private PostgreSQL schema)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pymysql
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from werkzeug.security import generate_password_hash

from authgate.bootstrap import build_service
from authgate.cli import main
from authgate.config import load_settings
from authgate.core.audit import AuditQuery
from authgate.service import AuthService, ClientInfo
from authgate.store.sqlalchemy.engines import create_database_engine
from tests.helpers import (
    PASSWORD,
    PUBLIC_URL,
    clear_authgate_environment,
    command_environment,
    pg_base_url,
)
from tests.mariadb_server import MariaDBServer

CLIENT = ClientInfo(user_agent="test", ip="127.0.0.1")
SEED_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
TOKEN = "ragflow-" + "q" * 40


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_authgate_environment(monkeypatch)


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return command_environment(tmp_path, database_url)


def run(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def service_of(env: dict[str, str]) -> AuthService:
    return build_service(
        load_settings(
            {
                "AUTHGATE_INSTANCE_PATH": env["AUTHGATE_INSTANCE_PATH"],
                "AUTHGATE_DATABASE_URL": env["AUTHGATE_DATABASE_URL"],
                "AUTHGATE_PUBLIC_URL": PUBLIC_URL,
                "AUTHGATE_LEGACY_API_TOKENS": "true",
            }
        )
    )


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_jsonl_import_reports_counts_refusals_and_reruns(
    tmp_path: Path, env: dict[str, str]
) -> None:
    source = write_jsonl(
        tmp_path / "users.jsonl",
        [
            {"email": "ada@example.com", "username": "ada", "password_hash": SEED_HASH},
            {"email": "bob@example.com", "roles": ["admin"]},
            "{not json",
            "",
            {"email": "eve@example.com", "password_hash": "{SSHA}abc"},
        ],
    )
    result = run(["users", "import", str(source)], env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "created 2, updated 0, skipped 0, refused 2"
    assert "refused line 3: not valid JSON" in result.stderr
    assert "refused line 5: password_hash: not a hash format" in result.stderr
    assert "4 rows of 4 (100%)" in result.stderr  # progress, with the total known
    again = run(["users", "import", str(source), "--on-conflict", "update"], env)
    assert again.stdout.strip() == "created 0, updated 2, skipped 0, refused 2"
    service = service_of(env)
    try:
        assert service.sessions.login("ada", PASSWORD, CLIENT).access_token
        bob = service.store.find_user_by_login("bob@example.com")
        assert bob is not None and bob.roles == ("user", "admin")
        imported = service.store.list_audit_events(AuditQuery(type="user.imported"))
        assert len(imported) == 2 and {e.actor_type for e in imported} == {"cli"}
    finally:
        service.close()


def test_csv_dry_run_writes_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    source = tmp_path / "users.csv"
    source.write_text(
        "email,name,email_verified\nada@example.com,Ada,true\n,Nobody,\nbob@example.com,,no\n"
    )
    result = run(["users", "import", str(source), "--dry-run"], env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "created 2, updated 0, skipped 0, refused 1 (dry run: nothing was written)"
    )
    assert "refused line 3: email: " in result.stderr
    service = service_of(env)
    try:
        assert service.store.count_users() == 0
    finally:
        service.close()


def test_text_in_another_encoding_is_refused_by_line_not_a_crash(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """A CSV saved as Latin-1 (Excel's habit), and a lone surrogate in JSON: no column can hold
    them, so the row is refused with its line and the others go in."""
    csv_source = tmp_path / "users.csv"
    csv_source.write_bytes(b"email,name\nada@example.com,Ad\xe9le\nbob@example.com,Bob\n")
    result = run(["users", "import", str(csv_source)], env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "created 1, updated 0, skipped 0, refused 1"
    assert "refused line 2: name: not valid UTF-8" in result.stderr
    jsonl_source = tmp_path / "users.jsonl"
    jsonl_source.write_text('{"email": "eve@example.com", "name": "\\ud800"}\n')
    result = run(["users", "import", str(jsonl_source)], env)
    assert result.exit_code == 0, result.output
    assert "refused line 1: name: not valid UTF-8" in result.stderr
    tokens = tmp_path / "tokens.csv"
    tokens.write_bytes(f"token,email,name\n{TOKEN},bob@example.com,cl\xe9\n".encode("latin-1"))
    result = run(["tokens", "import", str(tokens)], env)
    assert result.exit_code == 0, result.output
    assert "refused line 2: not valid UTF-8" in result.stderr


def test_bad_options_are_explained(tmp_path: Path, env: dict[str, str]) -> None:
    source = write_jsonl(tmp_path / "users.txt", [{"email": "ada@example.com"}])
    unknown = run(["users", "import", str(source)], env)
    assert unknown.exit_code == 2
    assert "--format jsonl|csv" in unknown.stderr
    both = run(["users", "import", str(source), "--from-database", "sqlite://"], env)
    assert both.exit_code == 2
    assert "either FILE or --from-database" in both.stderr
    bad_map = run(["users", "import", str(source), "--format", "jsonl", "--map", "mail=x"], env)
    assert bad_map.exit_code == 2
    assert "'mail' is not a field" in bad_map.stderr


SEED_TABLE = """
CREATE TABLE {table} (
    id INTEGER PRIMARY KEY,
    _name VARCHAR(255) NOT NULL,
    _uid VARCHAR(255) NOT NULL UNIQUE,
    _email VARCHAR(255),
    _password VARCHAR(255),
    _role VARCHAR(20)
)
"""
SEED_ROWS = [
    (1, "Thomas Edison", "toby", "toby@example.com", SEED_HASH, "Admin"),
    (2, "Nikola Tesla", "niko", "niko@example.com", SEED_HASH, "User"),
    (3, "No Mail", "nomail", None, SEED_HASH, "User"),
]
SEED_MAP = "email=_email,password_hash=_password,name=_name,username=_uid,roles=_role,legacy_id=id"


def fill_seed_table(url: str, table: str) -> None:
    engine = create_database_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(SEED_TABLE.format(table=table)))
            for row in SEED_ROWS:
                conn.execute(
                    text(f"INSERT INTO {table} VALUES (:id, :n, :u, :e, :p, :r)"),
                    dict(zip(("id", "n", "u", "e", "p", "r"), row, strict=True)),
                )
    finally:
        engine.dispose()


@pytest.fixture
def pg_source() -> Iterator[tuple[str, str]]:
    """A seed-style ``users`` table in a private schema of the PostgreSQL test database."""
    schema = f"legacy_{uuid.uuid4().hex[:10]}"
    admin = create_database_engine(pg_base_url())
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        fill_seed_table(pg_base_url(), f'"{schema}".users')
        yield pg_base_url(), f"{schema}.users"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_source(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    fill_seed_table(url, "users")
    return url, "users"


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDBServer]:
    """A private MariaDB server (Debian's mariadb-server), started for this module."""
    try:
        server = MariaDBServer()
    except RuntimeError as e:  # not installed: fail, never skip
        pytest.fail(str(e))
    with server:
        yield server


@pytest.fixture
def mysql_source(mariadb: MariaDBServer) -> tuple[str, str]:
    """A seed-style ``users`` table in a new database of the private MariaDB server."""
    url = mariadb.create_database(f"legacy_{uuid.uuid4().hex[:10]}")
    fill_seed_table(url, "users")
    return url, "users"


@pytest.mark.parametrize("kind", ["sqlite_source", "pg_source", "mysql_source"])
def test_from_database_imports_a_seed_style_table(
    request: pytest.FixtureRequest, kind: str, env: dict[str, str], tmp_path: Path
) -> None:
    url, table = request.getfixturevalue(kind)
    args = ["users", "import", "--from-database", url, "--table", table, "--map", SEED_MAP]
    result = run(args, env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "created 2, updated 0, skipped 0, refused 1"
    assert "refused row 3 (id=3): email: missing" in result.stderr
    tokens = write_jsonl(tmp_path / "tokens.jsonl", [{"tenant_id": 1, "token": TOKEN}])
    imported = run(
        ["tokens", "import", str(tokens), "--map", "token=token,legacy_user_id=tenant_id"], env
    )
    assert imported.exit_code == 0, imported.output
    assert imported.stdout.strip() == "created 1, skipped 0, refused 0"
    assert "AUTHGATE_LEGACY_API_TOKENS=true" in imported.stderr
    service = service_of(env)
    try:
        toby = service.store.find_user_by_login("toby")
        assert toby is not None
        assert (toby.email, toby.name, toby.roles) == (
            "toby@example.com",
            "Thomas Edison",
            ("user", "admin"),
        )
        assert service.sessions.login("toby", PASSWORD, CLIENT).access_token
        assert service.authenticate(TOKEN, "bearer").user.id == toby.id
    finally:
        service.close()


def test_a_refused_token_row_never_shows_the_token(
    sqlite_source: tuple[str, str], env: dict[str, str]
) -> None:
    """RAGFlow's ``api_token`` table has the token in its primary key (tenant_id, token): the
    refusal on stderr names the row by its key, but shows the token's column hidden."""
    url, table = sqlite_source
    assert run(
        ["users", "import", "--from-database", url, "--table", table, "--map", SEED_MAP], env
    )
    engine = create_database_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE api_token (tenant_id VARCHAR(32), token VARCHAR(255), "
                    "PRIMARY KEY (tenant_id, token))"
                )
            )
            conn.execute(text("INSERT INTO api_token VALUES ('999', :t)"), {"t": TOKEN})
    finally:
        engine.dispose()
    args = ["tokens", "import", "--from-database", url, "--table", "api_token"]
    result = run([*args, "--map", "token=token,legacy_user_id=tenant_id"], env)
    assert result.exit_code == 0, result.output
    assert "refused row 1 (tenant_id='999', token=<hidden>): no imported user" in result.stderr
    assert TOKEN not in result.output and TOKEN[8:20] not in result.stderr


def test_from_database_names_missing_columns(
    sqlite_source: tuple[str, str], env: dict[str, str]
) -> None:
    url, table = sqlite_source
    result = run(
        ["users", "import", "--from-database", url, "--table", table, "--map", "email=mail"], env
    )
    assert result.exit_code == 2
    assert "does not have: mail" in result.stderr
    missing = run(["users", "import", "--from-database", url, "--table", "nope"], env)
    assert missing.exit_code == 2
    assert "no table 'nope'" in missing.stderr


def test_mysql_source_streams_through_an_unbuffered_cursor(
    mariadb: MariaDBServer, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MariaDB table of werkzeug and bcrypt hashes, imported with ``mysql+pymysql://``, read
    through PyMySQL's ``SSCursor`` (rows come off the socket as the import takes them: a buffered
    cursor would read the whole table into memory at ``execute``); the old passwords log in."""
    url = mariadb.create_database(f"legacy_{uuid.uuid4().hex[:10]}")
    bcrypt_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    count = 2500
    connection = mariadb.connect(url.rpartition("/")[2])
    try:
        with connection.cursor() as cursor:
            cursor.execute(SEED_TABLE.format(table="users"))
            cursor.executemany(
                "INSERT INTO users VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        n,
                        f"User {n}",
                        f"user{n}",
                        f"user{n}@example.com",
                        SEED_HASH if n % 2 else bcrypt_hash,
                        "User",
                    )
                    for n in range(1, count + 1)
                ],
            )
        connection.commit()
    finally:
        connection.close()
    reads: list[tuple[type, str]] = []
    execute = pymysql.cursors.Cursor.execute

    def spy(cursor: pymysql.cursors.Cursor, query: str, args: object = None) -> int:
        reads.append((type(cursor), query))
        return execute(cursor, query, args)

    monkeypatch.setattr(pymysql.cursors.Cursor, "execute", spy)
    args = ["users", "import", "--from-database", url, "--table", "users", "--map", SEED_MAP]
    result = run([*args, "--batch-size", "500"], env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"created {count}, updated 0, skipped 0, refused 0"
    assert f"{count:,} rows of {count:,} (100%)" in result.stderr
    [(cursor_class, _query)] = [
        (kind, query) for kind, query in reads if "FROM users ORDER BY" in query
    ]
    assert issubclass(cursor_class, pymysql.cursors.SSCursor)
    # A slow batch must not make the server drop the reading connection.
    assert any("SET SESSION net_write_timeout = 3600" in query for _kind, query in reads)
    service = service_of(env)
    try:
        for login in ("user1", "user2"):  # werkzeug, bcrypt
            assert service.sessions.login(login, PASSWORD, CLIENT).access_token
    finally:
        service.close()
