"""Login and ``/me`` with 1,000,000 users beside the same with 10,000, in one run (issue 17).

Two private PostgreSQL databases are created on the server (``CREATE DATABASE``, dropped at the
end whatever happens; nothing else on the server is touched), migrated, and filled in the server
itself (``INSERT … SELECT`` over ``generate_series``: no row crosses the network): ``--small``
users in one, ``--users`` in the other, each with their personal tenant and its membership (as
``authgate users import`` writes them) and one expired session (so that the sessions table is as
large as the users table), and the same argon2id hash (of ``PASSWORD``, computed once with the
default parameters) for every user; then ``VACUUM ANALYZE``. One authgate app per
database runs in this process (the Flask test client: no HTTP server), and the measurements
alternate between the two apps so that whatever else the machine does falls on both alike:

- a password login (``POST /api/auth/login``) of a user drawn at random from the whole table;
- that login's first ``GET /api/auth/me`` with its access token, the process's caches emptied
  first (as a new process would: the user and the session are read from the database);
- ``--repeat`` more ``/me`` with the same token (cached: no SQL).

For each it reports the median and 90th percentile wall time, the SQL statements the request
ran and the time they took (SQLAlchemy's cursor events on the request's own thread: the
background threads' polls are not counted), and the ratio 1M / 10k (target: within 10 %). Last,
``EXPLAIN (ANALYZE, BUFFERS)`` of the login's user lookup, as the login ran it, in the 1M
database: it has to be an index scan.

    .venv/bin/python benchmarks/million_users.py                    # 1,000,000 vs 10,000
    .venv/bin/python benchmarks/million_users.py --users 200000 --logins 50
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "correct horse battery staple"
TARGET = 1.10  # 1M within 10 % of 10k


@dataclass
class Sample:
    seconds: float
    statements: int
    sql_seconds: float


@dataclass
class Figures:
    login: list[Sample] = field(default_factory=list)
    me_first: list[Sample] = field(default_factory=list)
    me_cached: list[Sample] = field(default_factory=list)


class SqlCounter:
    """The statements run on this thread, per database (SQLAlchemy cursor events)."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.statements: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.captured: dict[str, list[tuple[str, Any]]] = {}
        self._started: float = 0.0
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if threading.get_ident() == self.thread:
            self._started = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if threading.get_ident() != self.thread:
            return
        database = str(conn.engine.url.database)
        self.statements[database] = self.statements.get(database, 0) + 1
        self.seconds[database] = (
            self.seconds.get(database, 0.0) + time.perf_counter() - self._started
        )
        self.captured.setdefault(database, []).append((statement, params))

    def reset(self) -> None:
        self.statements.clear()
        self.seconds.clear()
        self.captured.clear()


# The databases -------------------------------------------------------------------------------


@contextmanager
def private_databases(server: str, names: list[str]) -> Iterator[None]:
    with psycopg.connect(server, autocommit=True) as admin:
        try:
            for name in names:
                admin.execute(f'CREATE DATABASE "{name}"')
            yield
        finally:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(server: str, name: str, *, driver: str = "postgresql+psycopg") -> str:
    base = server.rsplit("/", 1)[0].split("://", 1)[1]
    return f"{driver}://{base}/{name}"


def fill(url: str, users: int, password_hash: str) -> float:
    """Migrate, then ``users`` users with their personal tenants; seconds taken."""
    from authgate.store.sqlalchemy.migrate import upgrade_database

    engine = create_engine(url)
    try:
        upgrade_database(engine)
    finally:
        engine.dispose()
    started = time.perf_counter()
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        _refuse_unfilled_columns(conn)
        # Random-looking ids (as secrets.token_hex(12) makes them): the primary key's pages
        # are visited in no useful order, as in a real table.
        conn.execute(
            """
            INSERT INTO authgate_users (id, email, email_key, username, username_key, name,
                password_hash, roles, status, email_verified, created_at, session_epoch)
            SELECT substr(md5('u' || i), 1, 24), 'user' || i || '@example.com',
                'user' || i || '@example.com', 'user' || i, 'user' || i, 'User ' || i,
                %(hash)s, '["user"]', 'active', true, now() - interval '1 day', 0
            FROM generate_series(0, %(last)s) AS i
            """,
            {"hash": password_hash, "last": users - 1},
        )
        conn.execute(
            """
            INSERT INTO authgate_tenants (id, name, personal_owner_id, created_at)
            SELECT substr(md5('t' || i), 1, 24), 'Personal', substr(md5('u' || i), 1, 24),
                now() - interval '1 day'
            FROM generate_series(0, %(last)s) AS i
            """,
            {"last": users - 1},
        )
        conn.execute(
            """
            INSERT INTO authgate_memberships (tenant_id, user_id, role, created_at)
            SELECT substr(md5('t' || i), 1, 24), substr(md5('u' || i), 1, 24), 'owner',
                now() - interval '1 day'
            FROM generate_series(0, %(last)s) AS i
            """,
            {"last": users - 1},
        )
        # One earlier session per user (expired a day ago): the sessions table a first /me
        # reads is as large as the users table, not just this run's logins.
        conn.execute(
            """
            INSERT INTO authgate_sessions (id, user_id, created_at, last_seen_at, expires_at)
            SELECT md5('s' || i) || md5('s2' || i), substr(md5('u' || i), 1, 24),
                now() - interval '31 days', now() - interval '2 days', now() - interval '1 day'
            FROM generate_series(0, %(last)s) AS i
            """,
            {"last": users - 1},
        )
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


_FILLED = {
    "authgate_users": {
        "id",
        "email",
        "email_key",
        "username",
        "username_key",
        "name",
        "password_hash",
        "roles",
        "status",
        "email_verified",
        "created_at",
        "session_epoch",
    },
    "authgate_tenants": {"id", "name", "personal_owner_id", "created_at"},
    "authgate_memberships": {"tenant_id", "user_id", "role", "created_at"},
    "authgate_sessions": {"id", "user_id", "created_at", "last_seen_at", "expires_at"},
}


def _refuse_unfilled_columns(conn: psycopg.Connection[Any]) -> None:
    """A NOT NULL column without a default that the inserts above do not fill: the schema
    moved on; say which instead of failing on the first row."""
    missing = []
    for table, filled in _FILLED.items():
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " AND is_nullable = 'NO' AND column_default IS NULL",
            (table,),
        ).fetchall()
        missing += [f"{table}.{name}" for (name,) in rows if name not in filled]
    if missing:
        raise SystemExit(f"million_users.py does not fill {', '.join(missing)}: update fill()")


# The apps ------------------------------------------------------------------------------------


def build_app(url: str, instance: Path) -> Any:
    from authgate.config import load_settings
    from authgate.server import create_app

    environ = {
        "AUTHGATE_DATABASE_URL": url,
        "AUTHGATE_INSTANCE_PATH": str(instance),
        "AUTHGATE_PUBLIC_URL": "http://localhost:8086",
        "AUTHGATE_ORIGINS": "http://localhost:4100",
        # Every login here succeeds (successes are free), but many come from one address.
        "AUTHGATE_LOGIN_RATE_LIMIT_PER_IP": "1000000 per minute",
        "AUTHGATE_LOGIN_RATE_LIMIT_PER_ACCOUNT": "1000000 per minute",
    }
    return create_app(load_settings(environ={**os.environ, **environ}))


def _service(app: Any) -> Any:
    from authgate.integrations.flask.context import EXTENSION_KEY

    return app.extensions[EXTENSION_KEY].service


def _measure(counter: SqlCounter, database: str, call: Callable[[], Any]) -> tuple[Sample, Any]:
    counter.reset()
    started = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - started
    sample = Sample(elapsed, counter.statements.get(database, 0), counter.seconds.get(database, 0))
    return sample, result


def one_round(
    app: Any, database: str, users: int, counter: SqlCounter, figures: Figures, repeat: int
) -> dict[str, list[tuple[str, Any]]]:
    """One login of a random user, its first /me (caches emptied), ``repeat`` cached /me.
    Returns the statements of the login and of the first /me."""
    client = app.test_client()
    email = f"user{random.randrange(users)}@example.com"
    sample, answer = _measure(
        counter,
        database,
        lambda: client.post(
            "/api/auth/login",
            json={"login": email, "password": PASSWORD},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        ),
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    statements = {"login": list(counter.captured.get(database, []))}
    figures.login.append(sample)
    headers = {"Authorization": f"Bearer {answer.get_json()['access_token']}"}
    client = app.test_client()  # no cookies: the bearer token alone
    _service(app).cache.clear()  # as in a process that has not seen this user or session
    for n in range(repeat + 1):
        sample, answer = _measure(
            counter, database, lambda: client.get("/api/auth/me", headers=headers)
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
        if n == 0:
            figures.me_first.append(sample)
            statements["me_first"] = list(counter.captured.get(database, []))
        else:
            figures.me_cached.append(sample)
    return statements


def explain(url: str, statement: str, params: Any) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of one statement as the app ran it (rolled back: a write
    explained is not kept)."""
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params).fetchall()
        conn.rollback()
    return [row[0] for row in rows]


def explain_reads(
    sizes: list[int], urls: list[str], statements: list[dict[str, list[tuple[str, Any]]]]
) -> dict[str, Any]:
    """Each SELECT of a login and of a first /me, explained in both databases: the plan's
    first line, its buffers and the server's execution time, side by side."""
    out: dict[str, Any] = {}
    print("\nthe reads of a login and of a first /me, EXPLAIN (ANALYZE, BUFFERS):")
    for request in ("login", "me_first"):
        for n, (statement, _) in enumerate(statements[1][request]):
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            where = " ".join(statement.split()).partition(" FROM ")[2][:90]
            print(f"  {request} #{n + 1}: FROM {where}")
            for size, url, found in zip(sizes, urls, statements, strict=True):
                same, params = found[request][n]
                plan = explain(url, same, params)
                buffers = next((line.strip() for line in plan if "Buffers" in line), "")
                execution = next((line.strip() for line in plan if "Execution" in line), "")
                print(f"    {size:>9,} users: {plan[0].strip()[:70]}; {buffers}; {execution}")
                out.setdefault(f"{request} #{n + 1}", {})[str(size)] = plan
    return out


# Report --------------------------------------------------------------------------------------


def _ms(values: list[float]) -> tuple[float, float, float]:
    """(min, median, 90th percentile) in milliseconds."""
    ordered = sorted(values)
    return (
        ordered[0] * 1000,
        statistics.median(ordered) * 1000,
        ordered[int(len(ordered) * 0.9)] * 1000,
    )


def report(sizes: list[int], figures: list[Figures]) -> dict[str, Any]:
    """The table; the ratios are of the larger size's figure to the smaller's."""
    out: dict[str, Any] = {}
    print(
        f"\n{'request':<18} {'users':>9} {'min ms':>8} {'median ms':>10} {'p90 ms':>8}"
        f" {'SQL stmts':>10} {'SQL ms':>8}"
    )
    for kind, label in (
        ("login", "POST /login"),
        ("me_first", "GET /me (first)"),
        ("me_cached", "GET /me (cached)"),
    ):
        rows = []
        for size, fig in zip(sizes, figures, strict=True):
            samples: list[Sample] = getattr(fig, kind)
            low, median, p90 = _ms([s.seconds for s in samples])
            statements = statistics.median(s.statements for s in samples)
            sql_ms = statistics.median(s.sql_seconds for s in samples) * 1000
            rows.append((low, median, sql_ms))
            print(
                f"{label:<18} {size:>9,} {low:>8.3f} {median:>10.3f} {p90:>8.3f}"
                f" {statements:>10.0f} {sql_ms:>8.3f}"
            )
            out.setdefault(kind, {})[str(size)] = {
                "min_ms": low,
                "median_ms": median,
                "p90_ms": p90,
                "statements": statements,
                "sql_ms": sql_ms,
                "samples": len(samples),
            }
        (low0, median0, sql0), (low1, median1, sql1) = rows
        ratio = median1 / median0
        verdict = "PASS" if ratio <= TARGET else "MISS"
        sql_ratio = f"{sql1 / sql0:.3f}" if sql0 else "-"
        print(
            f"{'':<18} {'ratio':>9} {low1 / low0:>8.3f} {ratio:>10.3f} {'':>8} {'':>10}"
            f" {sql_ratio:>8}  median <= {TARGET:.2f}: {verdict}"
        )
        out[kind]["ratio"] = ratio
        out[kind]["ratio_min"] = low1 / low0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--logins", type=int, default=100, help="logins per size")
    parser.add_argument("--repeat", type=int, default=20, help="cached /me after each login")
    parser.add_argument("--server", default=SERVER, help="libpq URL of a database to connect to")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    from authgate.core.passwords import PasswordHasher

    sizes = [args.small, args.users]
    tag = uuid.uuid4().hex[:8]
    names = [f"authgate_bench_{size}_{tag}" for size in sizes]
    password_hash = PasswordHasher().hash_password(PASSWORD)
    with private_databases(args.server, names), tempfile.TemporaryDirectory() as tmp:
        urls = [database_url(args.server, name) for name in names]
        for size, url in zip(sizes, urls, strict=True):
            seconds = fill(url, size, password_hash)
            print(f"{size:>9,} users loaded in {seconds:.1f} s")
        apps = [build_app(url, Path(tmp) / name) for url, name in zip(urls, names, strict=True)]
        counter = SqlCounter()
        figures = [Figures(), Figures()]
        statements: list[dict[str, list[tuple[str, Any]]]] = [{}, {}]
        for app, name, size in zip(apps, names, sizes, strict=True):
            for _ in range(3):  # warm each app's code paths and pools, not counted
                one_round(app, name, size, counter, Figures(), 2)
        for n in range(args.logins):
            order = [0, 1] if n % 2 == 0 else [1, 0]  # neither size always runs first
            for i in order:
                statements[i] = one_round(
                    apps[i], names[i], sizes[i], counter, figures[i], args.repeat
                )
        figures_out = report(sizes, figures)
        plans = explain_reads(sizes, urls, statements)
        login_lookup = " ".join(statements[1]["login"][0][0].split())
        print(f"\nthe login's user lookup: {login_lookup}")
        print("\n".join(f"  {line}" for line in plans.get("login #1", {}).get(str(sizes[1]), [])))
        for app in apps:
            _service(app).close()
    if args.json:
        args.json.write_text(json.dumps({"sizes": sizes, **figures_out, "plans": plans}, indent=2))


if __name__ == "__main__":
    main()
