"""The mail outbox under the real server: two gunicorn servers (two workers each) on one PostgreSQL
database share the outbox with a real SMTP server process. Each mail is delivered exactly once, and
mails that wait through an SMTP outage all arrive once it is back.

Mails are queued straight into the outbox table, as another instance or the CLI would: the servers
find them by polling (and retry them on their backoff), which is what this test is about; the
flows that queue mail through requests are tested in their own modules.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from authgate.store.records import OutgoingMail
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.models import OutboxMailRow
from authgate.store.sqlalchemy.stores import SqlAlchemyStore
from tests.e2e.helpers import ServerGroup, server_group
from tests.mail_server import MailServer


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    with MailServer(tmp_path_factory.mktemp("smtp"), mode="starttls", auth=("mailer", "pw")) as s:
        yield s


@pytest.fixture(scope="module")
def group(smtp: MailServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerGroup]:
    with server_group("postgresql", tmp_path_factory) as group:
        settings = {k: str(v) for k, v in smtp.settings().items()}
        for _ in range(2):  # two instances, each of two worker processes
            group.start(workers=2, **settings)
        yield group


@pytest.fixture
def store(group: ServerGroup) -> Iterator[SqlAlchemyStore]:
    store = SqlAlchemyStore(create_database_engine(group.database.url))
    yield store
    store.dispose()


def queue(store: SqlAlchemyStore, label: str, count: int) -> list[OutgoingMail]:
    mails = [
        OutgoingMail(
            id=f"{label}{n:03d}".ljust(32, "x"),
            kind="test",
            to=f"{label}{n}@example.test",
            subject=f"{label} {n}",
            text=f"{label} {n}\n",
            html=f"<p>{label} {n}</p>",
            created_at=datetime.now(UTC),
        )
        for n in range(count)
    ]
    for mail in mails:
        store.enqueue_mail(mail)
    return mails


def delivered(smtp: MailServer, label: str) -> Counter[str]:
    return Counter(
        str(m.message["Message-ID"]) for m in smtp.messages() if m.subject.startswith(label)
    )


def wait_until_sent(store: SqlAlchemyStore, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while store.count_pending_mails() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.count_pending_mails() == 0


def test_each_mail_is_delivered_exactly_once(store: SqlAlchemyStore, smtp: MailServer) -> None:
    mails = queue(store, "once", 40)

    wait_until_sent(store, timeout=60)
    time.sleep(1.0)  # a duplicate would arrive by now

    counts = delivered(smtp, "once")
    assert len(counts) == len(mails)
    assert set(counts.values()) == {1}, counts.most_common(3)
    assert all(m.authenticated_as == "mailer" and m.tls for m in smtp.messages())


def test_mails_wait_through_an_smtp_outage_and_all_arrive_once(
    store: SqlAlchemyStore, smtp: MailServer, group: ServerGroup
) -> None:
    smtp.stop()
    mails = queue(store, "outage", 10)
    deadline = time.monotonic() + 30
    with store._reader() as db:  # the servers tried (and failed) at least once
        while time.monotonic() < deadline:
            errors = list(
                db.scalars(
                    select(OutboxMailRow.last_error).where(
                        OutboxMailRow.id.in_([m.id for m in mails]),
                        OutboxMailRow.last_error.is_not(None),
                    )
                )
            )
            if errors:
                break
            time.sleep(0.2)
            db.expire_all()
            db.rollback()
    assert errors and "refused" in errors[0]
    assert store.count_pending_mails() == len(mails)

    smtp.start()  # same port: the servers' settings stay right
    wait_until_sent(store, timeout=90)  # the first retry is due 15 s after the failure
    time.sleep(1.0)

    counts = delivered(smtp, "outage")
    assert len(counts) == len(mails) and set(counts.values()) == {1}, counts
    logs = "".join(server.log_path.read_text(errors="replace") for server in group.servers)
    assert "cannot send mail through smtp+starttls://127.0.0.1" in logs
    assert "works again" in logs
