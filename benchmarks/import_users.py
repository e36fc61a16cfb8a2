"""How fast ``authgate users import`` brings users in, and that its memory stays bounded.

Generates ``--rows`` users as JSON Lines (email, username, name, roles, created_at and a
password hash, the same cheap bcrypt hash for every row: an import stores hashes as they are and
never computes one), then runs ``authgate users import FILE`` in a child process against
PostgreSQL (a private schema of the test database, dropped afterwards) and reports the wall
time, rows per second and the child's peak RSS. With ``--also`` it first imports a smaller file
the same way, so that the two peaks can be compared: a bounded import has about the same peak
for 100,000 rows as for 1,000,000.

    .venv/bin/python benchmarks/import_users.py                       # 1,000,000 rows
    .venv/bin/python benchmarks/import_users.py --rows 100000 --also 10000
    .venv/bin/python benchmarks/import_users.py --rows 200000 --dry-run  # then the import
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import bcrypt
from sqlalchemy import create_engine, text

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
AUTHGATE = [sys.executable, "-m", "authgate"]


def generate(path: Path, rows: int) -> None:
    stored = bcrypt.hashpw(b"correct horse battery staple", bcrypt.gensalt(rounds=4)).decode()
    with path.open("w") as handle:
        for i in range(rows):
            record = {
                "email": f"user{i}@example.com",
                "username": f"user{i}",
                "name": f"User Number {i}",
                "roles": "User" if i % 50 else "Admin",
                "created_at": "2024-05-01T12:00:00Z",
                "password_hash": stored,
            }
            handle.write(json.dumps(record) + "\n")


def run_import(
    path: Path, database_url: str, instance: Path, batch_size: int, dry_run: bool = False
) -> dict[str, float]:
    env = {
        **os.environ,
        "AUTHGATE_DATABASE_URL": database_url,
        "AUTHGATE_INSTANCE_PATH": str(instance),
        "AUTHGATE_PUBLIC_URL": "http://localhost:8086",
    }
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [
                *AUTHGATE,
                "users",
                "import",
                str(path),
                "--batch-size",
                str(batch_size),
                *(["--dry-run"] if dry_run else []),
            ],
            env=env,
            stdout=out,
            stderr=err,
        )
        # wait4 gives this child's own resource use: ru_maxrss is its peak RSS (KiB on Linux).
        _pid, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"import failed ({child.returncode}):\n{err.read()[-2000:]}")
        print(f"  {out.read().strip()}")
    return {"seconds": elapsed, "peak_rss_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--also", type=int, default=0, help="first import this many rows too")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="also measure a --dry-run of the same file first (it remembers what it would write)",
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("AUTHGATE_TEST_DATABASE_URL", DEFAULT_PG)
    )
    args = parser.parse_args()

    sizes = [n for n in (args.also, args.rows) if n]
    admin = create_engine(args.database_url)
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            schema = f"import_bench_{uuid.uuid4().hex[:8]}"
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            separator = "&" if "?" in args.database_url else "?"
            url = f"{args.database_url}{separator}options=-csearch_path%3D{schema}"
            source = Path(tmp) / f"users-{rows}.jsonl"
            try:
                started = time.perf_counter()
                generate(source, rows)
                size_mib = source.stat().st_size / 2**20
                print(
                    f"{rows:,} rows: generated {size_mib:.0f} MiB in "
                    f"{time.perf_counter() - started:.1f} s"
                )
                # Migrate first, so that the measured run is the import alone.
                subprocess.run(
                    [*AUTHGATE, "db", "upgrade"],
                    env={
                        **os.environ,
                        "AUTHGATE_DATABASE_URL": url,
                        "AUTHGATE_INSTANCE_PATH": tmp,
                        "AUTHGATE_PUBLIC_URL": "http://localhost:8086",
                    },
                    check=True,
                    capture_output=True,
                )
                if args.dry_run:
                    figures = run_import(source, url, Path(tmp), args.batch_size, dry_run=True)
                    print(
                        f"  dry run: {figures['seconds']:.1f} s, "
                        f"{rows / figures['seconds']:,.0f} rows/s, "
                        f"peak RSS {figures['peak_rss_mib']:.0f} MiB"
                    )
                figures = run_import(source, url, Path(tmp), args.batch_size)
                seconds = figures["seconds"]
                print(
                    f"  import: {seconds:.1f} s, {rows / seconds:,.0f} rows/s, "
                    f"peak RSS {figures['peak_rss_mib']:.0f} MiB"
                )
            finally:
                source.unlink(missing_ok=True)
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


if __name__ == "__main__":
    main()
