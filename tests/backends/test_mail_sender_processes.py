"""Two OS processes, each with its own ``OutboxSender``, share one outbox on PostgreSQL: every
mail reaches the (real) SMTP server exactly once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete

from authgate.store.records import OutgoingMail
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.models import OutboxMailRow
from authgate.store.sqlalchemy.stores import SqlAlchemyStore
from tests.mail_server import MailServer

MAILS = 60

SENDER_PROCESS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from authgate.backends.mail_sender import OutboxSender
    from authgate.backends.mail_transport import SmtpTransport
    from authgate.core.clocks import SystemClock
    from authgate.core.smtp_urls import parse_smtp_url
    from authgate.store.sqlalchemy.engines import create_database_engine
    from authgate.store.sqlalchemy.stores import SqlAlchemyStore

    database_url, smtp_url, go = sys.argv[1:4]
    store = SqlAlchemyStore(create_database_engine(database_url))
    transport = SmtpTransport(parse_smtp_url(smtp_url), mail_from="no-reply@example.test")
    sender = OutboxSender(store, transport, SystemClock(), batch_size=2)
    store.count_pending_mails()  # connected
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.01)
    sent = 0
    while store.count_pending_mails():
        report = sender.deliver_due()
        sent += report.sent
        if not report.attempted:
            time.sleep(0.01)  # the other process holds the rest
    print(sent)
    """
)


def test_two_processes_deliver_each_mail_exactly_once(
    pg_schema_url: str, mail_server: MailServer, tmp_path: Path
) -> None:
    engine = create_database_engine(pg_schema_url)
    with engine.begin() as conn:
        conn.execute(delete(OutboxMailRow))
    store = SqlAlchemyStore(engine)
    now = datetime.now(UTC)
    for n in range(MAILS):
        store.enqueue_mail(
            OutgoingMail(
                id=f"{n:03d}".ljust(32, "p"),
                kind="verify_email",
                to=f"user{n}@example.test",
                subject=f"Mail {n}",
                text=f"mail {n}\n",
                html=f"<p>mail {n}</p>",
                created_at=now,
            )
        )
    go = tmp_path / "go"
    root = Path(__file__).resolve().parents[2]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SENDER_PROCESS, pg_schema_url, mail_server.url, str(go)],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in processes:  # both imported, connected and waiting
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready", process.communicate(timeout=60)
    go.touch()
    outputs = [p.communicate(timeout=120) for p in processes]

    assert all(p.returncode == 0 for p in processes), outputs
    counts = [int(out.strip()) for out, _ in outputs]
    assert sum(counts) == MAILS
    assert all(count > 0 for count in counts), counts  # both took part
    received = mail_server.wait_for(MAILS)
    time.sleep(0.5)
    received = mail_server.messages()
    ids = Counter(m.message["Message-ID"] for m in received)
    assert len(received) == MAILS and len(ids) == MAILS, ids.most_common(3)
    assert store.count_pending_mails() == 0
    store.dispose()
