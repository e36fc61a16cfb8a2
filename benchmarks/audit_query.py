"""``GET /api/audit`` on a million events, on PostgreSQL: the time of each filter (issue 16: a
user's events under 50 ms).

Creates a private schema of the test database, migrates it, writes ``--events`` events in one
``INSERT ... SELECT generate_series`` (a year of them, ids in time order, over ``--users``
users, eight types), ``ANALYZE``s, then asks the real endpoint through Flask's test client
(an admin's login session; the whole request: authentication, query, JSON) ``--repeat`` times per
filter and prints the median, p95 and max, and the plan PostgreSQL chose for the user filter.
The schema is dropped afterwards.

    .venv/bin/python benchmarks/audit_query.py                  # 1,000,000 events
    .venv/bin/python benchmarks/audit_query.py --events 100000 --repeat 50
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import create_engine, text

from authgate import AuthGate
from authgate.bootstrap import build_service
from authgate.config import Settings
from authgate.core.audit import AuditQuery
from authgate.service import ClientInfo
from authgate.store.sqlalchemy.migrate import upgrade_database

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "benchmark passphrase 1"
TYPES = (
    "login.succeeded",
    "login.succeeded",
    "login.succeeded",
    "login.failed",
    "logout",
    "session.revoked",
    "password.changed",
    "api_token.created",
)

# One statement: ids ascend with time (a year, newest last), users spread evenly.
FILL = """
INSERT INTO authgate_audit_events
    (time, type, outcome, actor_type, actor_id, user_id, tenant_id, ip, user_agent, request_id,
     details)
SELECT now() - interval '365 days' + g * (interval '365 days' / :n),
       (ARRAY[{types}])[1 + g % {ntypes}],
       CASE WHEN g % {ntypes} = 3 THEN 'failure' ELSE 'success' END,
       'user',
       'u' || lpad(((g::bigint * 7919) % :users)::text, 6, '0'),
       'u' || lpad(((g::bigint * 7919) % :users)::text, 6, '0'),
       NULL,
       '192.0.2.' || (g % 250)::text,
       'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36',
       md5(g::text),
       '{{"method":"password","session_id":"' || md5(g::text) || '"}}'
FROM generate_series(1, :n) AS g
"""


def timed(client: Any, token: str, params: dict[str, Any], repeat: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(5):  # warm: plans, pools, caches
        assert client.get("/api/audit", query_string=params, headers=headers).status_code == 200
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get("/api/audit", query_string=params, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.json
    return samples


def report(name: str, samples: list[float], count: int) -> None:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(
        f"{name:<44} median {statistics.median(ordered):6.2f} ms   p95 {p95:6.2f} ms   "
        f"max {ordered[-1]:6.2f} ms   ({count} events/page)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    schema = f"audit_bench_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in args.database_url else "?"
    url = f"{args.database_url}{separator}options=-csearch_path%3D{schema}"
    try:
        engine = create_engine(url)
        upgrade_database(engine)
        started = time.perf_counter()
        fill = FILL.format(types=", ".join(f"'{t}'" for t in TYPES), ntypes=len(TYPES))
        with engine.begin() as conn:
            conn.execute(text(fill), {"n": args.events, "users": args.users})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE authgate_audit_events"))
            size = conn.execute(
                text("SELECT pg_size_pretty(pg_total_relation_size('authgate_audit_events'))")
            ).scalar_one()
        print(
            f"{args.events:,} events over {args.users:,} users written in "
            f"{time.perf_counter() - started:.1f} s (table and indexes: {size})"
        )
        engine.dispose()

        with tempfile.TemporaryDirectory() as instance:
            settings = Settings(
                instance_path=Path(instance),
                database_url=url,  # type: ignore[arg-type]
                public_url="http://localhost:8086",
                login_rate_limit_per_account="1000 per minute",
                login_rate_limit_per_ip="1000 per minute",
            )
            service = build_service(settings)
            try:
                root = service.accounts.register(email="root@example.com", password=PASSWORD)
                service.store.update_access(
                    root.id, roles=["user", "admin"], now=service.clock.now()
                )
                token = service.sessions.login(
                    "root@example.com", PASSWORD, ClientInfo()
                ).access_token
                app = Flask("audit-bench")
                AuthGate(app, service=service)
                client = app.test_client()
                user = "u" + str(4242 % args.users).zfill(6)
                first = client.get(
                    "/api/audit",
                    query_string={"limit": 50},
                    headers={"Authorization": f"Bearer {token}"},
                ).json
                deep_cursor = first["next_cursor"]
                # A type this user has events of (each user's are of one type here).
                own_type = client.get(
                    "/api/audit",
                    query_string={"user_id": user, "limit": 1},
                    headers={"Authorization": f"Bearer {token}"},
                ).json["events"][0]["type"]
                cases = [
                    ("by user (limit 50)", {"user_id": user, "limit": 50}),
                    ("by user and type", {"user_id": user, "type": own_type}),
                    ("by user and a type it has none of", {"user_id": user, "type": "logout"}),
                    ("by user, last 30 days", {"user_id": user, "since": _days_ago(30)}),
                    ("by type (limit 50)", {"type": "password.changed", "limit": 50}),
                    (
                        "by time range (one day, 180 days ago)",
                        {"since": _days_ago(181), "until": _days_ago(180)},
                    ),
                    ("newest overall (limit 50)", {"limit": 50}),
                    ("newest overall, second page (cursor)", {"limit": 50, "cursor": deep_cursor}),
                    ("by user, limit 200", {"user_id": user, "limit": 200}),
                ]
                print(f"GET /api/audit, {args.repeat} requests each (in-process, whole request):")
                for name, params in cases:
                    count = len(
                        client.get(
                            "/api/audit",
                            query_string=params,
                            headers={"Authorization": f"Bearer {token}"},
                        ).json["events"]
                    )
                    report(name, timed(client, token, params, args.repeat), count)
                # The query alone (the store's method: SQL, rows to events), without HTTP.
                query = AuditQuery(user_id=user, limit=51)
                for _ in range(5):
                    service.store.list_audit_events(query)
                samples = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    service.store.list_audit_events(query)
                    samples.append((time.perf_counter() - started) * 1000)
                report("store.list_audit_events by user (no HTTP)", samples, 51)
                with service.store.engine.connect() as conn:  # type: ignore[attr-defined]
                    plan = (
                        conn.execute(
                            text(
                                "EXPLAIN ANALYZE SELECT * FROM authgate_audit_events "
                                "WHERE user_id = :u ORDER BY id DESC LIMIT 51"
                            ),
                            {"u": user},
                        )
                        .scalars()
                        .all()
                    )
                print("Plan of the user filter:")
                for line in plan:
                    print("   ", line)
            finally:
                service.close()
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()


def _days_ago(days: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) - timedelta(days=days)).isoformat().replace("+00:00", "Z")


if __name__ == "__main__":
    main()
