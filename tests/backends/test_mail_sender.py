"""``OutboxSender`` with the SQL outbox (SQLite and PostgreSQL) and a real SMTP server process:
sent once, retried with backoff while SMTP is down (nothing lost across a stop and restart), given
up on a permanent refusal or after two days, the outage logged once, pruned, woken by notify."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from authgate.backends.mail_sender import OutboxSender
from authgate.backends.mail_transport import SmtpTransport
from authgate.core.clocks import FrozenClock
from authgate.core.smtp_urls import parse_smtp_url
from authgate.store.records import OutgoingMail
from authgate.store.sqlalchemy.models import OutboxMailRow
from authgate.store.sqlalchemy.stores import SqlAlchemyStore
from tests.mail_server import MailServer

START = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


def make_sender(
    store: SqlAlchemyStore, server: MailServer, clock: FrozenClock, **options: float
) -> OutboxSender:
    transport = SmtpTransport(
        parse_smtp_url(server.url), mail_from="App <no-reply@example.test>", timeout_seconds=5
    )
    return OutboxSender(store, transport, clock, **options)  # type: ignore[arg-type]


def queue(store: SqlAlchemyStore, clock: FrozenClock, to: str, n: int = 0) -> OutgoingMail:
    mail = OutgoingMail(
        id=f"{n:02d}".ljust(32, "m"),
        kind="verify_email",
        to=to,
        subject=f"Mail {n}",
        text=f"mail number {n}\n",
        html=f"<p>mail number {n}</p>",
        created_at=clock.now(),
    )
    store.enqueue_mail(mail)
    return mail


def row(store: SqlAlchemyStore, mail_id: str) -> OutboxMailRow:
    with store._reader() as db:
        found = db.scalar(select(OutboxMailRow).where(OutboxMailRow.id == mail_id))
        assert found is not None
        return found


def test_a_due_mail_is_sent_once(
    store: SqlAlchemyStore, mail_server: MailServer, clock: FrozenClock
) -> None:
    sender = make_sender(store, mail_server, clock)
    mail = queue(store, clock, "ann@example.test")

    first = sender.deliver_due()
    second = sender.deliver_due()

    assert (first.sent, second.attempted) == (1, 0)
    [received] = mail_server.wait_for(1)
    assert received.to == ["ann@example.test"]
    assert received.message["Message-ID"] == f"<{mail.id}@example.test>"
    assert row(store, mail.id).sent_at == START
    assert store.count_pending_mails() == 0
    time.sleep(0.3)
    assert len(mail_server.messages()) == 1


def test_nothing_is_lost_while_smtp_is_down(
    store: SqlAlchemyStore,
    mail_server: MailServer,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = make_sender(store, mail_server, clock, batch_size=3)
    mail_server.stop()
    mails = [queue(store, clock, f"user{n}@example.test", n) for n in range(5)]

    with caplog.at_level(logging.DEBUG, logger="authgate.mail"):
        report = sender.deliver_due()
        assert report.sent == 0 and report.retrying == 3  # one batch tried: the server is down
        assert "refused" in (report.error or "")
        # Backoff: 15 s after the first failure, then 30, 60, ...
        assert row(store, mails[0].id).next_attempt_at == START + timedelta(seconds=15)
        clock.advance(14)
        assert sender.deliver_due().retrying == 2  # the other batch's first try; not the first
        clock.advance(1)
        assert sender.deliver_due().retrying == 3
        assert row(store, mails[0].id).next_attempt_at == clock.now() + timedelta(seconds=30)
        assert row(store, mails[0].id).attempts == 2
        assert "refused" in (row(store, mails[0].id).last_error or "")
        clock.advance(30)
        sender.deliver_due()

        mail_server.start()  # back, on the same port
        clock.advance(60)
        report = sender.deliver_due()

    assert report.sent == 5 and store.count_pending_mails() == 0
    received = mail_server.wait_for(5)
    assert sorted(m.to[0] for m in received) == sorted(m.to for m in mails)
    outage = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(outage) == 1 and "cannot send mail through smtp://127.0.0.1" in outage[0].message
    assert "mails wait in the outbox" in outage[0].message
    assert sum("works again (the outage was" in r.getMessage() for r in caplog.records) == 1
    time.sleep(0.3)
    assert len(mail_server.messages()) == 5


def test_backoff_doubles_up_to_thirty_minutes(
    store: SqlAlchemyStore, mail_server: MailServer, clock: FrozenClock
) -> None:
    sender = make_sender(store, mail_server, clock)
    delays = [sender.retry_delay(n).total_seconds() for n in range(1, 10)]
    assert delays == [15, 30, 60, 120, 240, 480, 960, 1800, 1800]
    assert sender.retry_delay(400) == timedelta(minutes=30)


def test_a_permanent_refusal_gives_up_at_once(
    store: SqlAlchemyStore, mail_server: MailServer, clock: FrozenClock
) -> None:
    sender = make_sender(store, mail_server, clock)
    refused = queue(store, clock, "refuse-permanent@example.test", 1)
    fine = queue(store, clock, "fine@example.test", 2)

    report = sender.deliver_due()

    assert (report.sent, report.given_up, report.retrying) == (1, 1, 0)
    assert row(store, refused.id).dead_at == START
    assert "550" in (row(store, refused.id).last_error or "")
    assert row(store, fine.id).sent_at == START
    clock.advance(86400)
    assert sender.deliver_due().attempted == 0


def test_a_sent_or_given_up_mail_keeps_no_body_its_link_is_not_kept_in_clear(
    store: SqlAlchemyStore, mail_server: MailServer, clock: FrozenClock
) -> None:
    sender = make_sender(store, mail_server, clock)
    sent = queue(store, clock, "fine@example.test", 1)
    refused = queue(store, clock, "refuse-permanent@example.test", 2)
    retried = queue(store, clock, "refuse-temporary@example.test", 3)

    report = sender.deliver_due()

    assert (report.sent, report.given_up, report.retrying) == (1, 1, 1)
    [received] = mail_server.wait_for(1)
    assert "mail number 1" in received.text
    for done in (sent, refused):
        kept = row(store, done.id)
        assert (kept.body_text, kept.body_html) == ("", "")
        assert (kept.kind, kept.recipient, kept.subject) == (done.kind, done.to, done.subject)
        assert kept.created_at == START and (kept.sent_at or kept.dead_at) == START
    assert "550" in (row(store, refused.id).last_error or "")
    waiting = row(store, retried.id)  # still to be sent: its bodies are needed
    assert (waiting.body_text, waiting.body_html) == (retried.text, retried.html)


def test_a_temporary_refusal_is_retried_without_stopping_the_others(
    store: SqlAlchemyStore, mail_server: MailServer, clock: FrozenClock
) -> None:
    sender = make_sender(store, mail_server, clock)
    busy = queue(store, clock, "refuse-temporary@example.test", 1)
    queue(store, clock, "fine@example.test", 2)

    report = sender.deliver_due()

    assert (report.sent, report.retrying, report.error) == (1, 1, None)
    assert row(store, busy.id).next_attempt_at == START + timedelta(seconds=15)


def test_a_mail_is_given_up_two_days_after_it_was_queued(
    store: SqlAlchemyStore, mail_server: MailServer, clock: FrozenClock
) -> None:
    sender = make_sender(store, mail_server, clock)
    mail_server.stop()
    mail = queue(store, clock, "ann@example.test")
    sender.deliver_due()

    clock.advance(2 * 86400 - 60)
    assert sender.deliver_due().retrying == 1
    clock.advance(1800)
    report = sender.deliver_due()

    assert report.given_up == 1
    assert row(store, mail.id).dead_at is not None
    assert store.count_pending_mails() == 0


def test_old_sent_mails_are_pruned(
    store: SqlAlchemyStore, mail_server: MailServer, clock: FrozenClock
) -> None:
    sender = make_sender(store, mail_server, clock)
    old = queue(store, clock, "old@example.test", 1)
    sender.deliver_due()
    clock.advance(6 * 86400)
    recent = queue(store, clock, "recent@example.test", 2)
    sender.deliver_due()
    waiting = queue(store, clock, "refuse-temporary@example.test", 3)
    sender.deliver_due()
    clock.advance(86400 + 1)

    assert sender.prune() == 1

    with store._reader() as db:
        left = set(db.scalars(select(OutboxMailRow.id)))
    assert left == {recent.id, waiting.id} and old.id not in left


def test_notify_wakes_the_background_sender(
    store: SqlAlchemyStore, mail_server: MailServer, clock: FrozenClock
) -> None:
    # A poll interval far longer than the test: only notify() can make the mail go at once.
    sender = make_sender(store, mail_server, clock, poll_interval_seconds=300)
    sender.start()
    try:
        time.sleep(0.2)  # the first round ran and found nothing
        queue(store, clock, "ann@example.test")
        started = time.monotonic()
        sender.notify()
        mail_server.wait_for(1, timeout=5)
        assert time.monotonic() - started < 3
    finally:
        sender.stop()
    assert not sender.is_running


def test_the_background_sender_polls_for_mail_queued_elsewhere(
    store: SqlAlchemyStore, mail_server: MailServer, clock: FrozenClock
) -> None:
    sender = make_sender(store, mail_server, clock, poll_interval_seconds=0.2)
    sender.start()
    try:
        time.sleep(0.3)
        queue(store, clock, "ann@example.test")  # no notify: another process queued it
        mail_server.wait_for(1, timeout=5)
    finally:
        sender.stop()


def test_concurrent_senders_lease_disjoint_mails(
    store: SqlAlchemyStore, mail_server: MailServer, clock: FrozenClock
) -> None:
    for n in range(6):
        queue(store, clock, f"user{n}@example.test", n)

    first = store.lease_mails(now=clock.now(), lease_for=timedelta(seconds=60), limit=4)
    second = store.lease_mails(now=clock.now(), lease_for=timedelta(seconds=60), limit=4)
    clock.advance(61)  # a sender that died: its lease runs out, the mails go again
    third = store.lease_mails(now=clock.now(), lease_for=timedelta(seconds=60), limit=10)

    assert len(first) == 4 and len(second) == 2
    assert not {q.mail.id for q in first} & {q.mail.id for q in second}
    assert len(third) == 6
    # The dead sender's late report does not count: its lease was taken over.
    assert not store.mark_mail_sent(first[0].mail.id, first[0].lease_token, now=clock.now())


class _SlowSmtp(SmtpTransport):
    """A real SMTP delivery that takes ``seconds`` of the (frozen) clock, as a slow server's
    would; ``meanwhile`` runs once, after the ``at``-th mail (another sender's round)."""

    def __init__(self, base: SmtpTransport, clock: FrozenClock, seconds: float) -> None:
        super().__init__(base.endpoint, mail_from=base.mail_from, timeout_seconds=5)
        self.clock, self.seconds = clock, seconds
        self.sent = 0
        self.at = 0
        self.meanwhile: list[OutboxSender] = []

    def send(self, mail: OutgoingMail) -> None:
        super().send(mail)
        self.clock.advance(self.seconds)
        self.sent += 1
        if self.sent == self.at:
            for other in self.meanwhile:
                other.deliver_due()


def test_a_slow_sender_does_not_send_mails_whose_lease_ran_out(
    store: SqlAlchemyStore, mail_server: MailServer, clock: FrozenClock
) -> None:
    """Each mail takes 25 s on a 60 s lease: the sender must not start one with too little of
    its lease left, or another process (which takes it once the lease is over) sends it too."""
    mails = [queue(store, clock, f"user{n}@example.test", n) for n in range(5)]
    other = make_sender(store, mail_server, clock)
    slow = _SlowSmtp(other.transport, clock, seconds=25)  # type: ignore[arg-type]
    slow.at, slow.meanwhile = 3, [other]  # after a third mail (t = 75 s), the other one runs
    sender = OutboxSender(store, slow, clock, lease_seconds=60)

    sender.deliver_due()
    clock.advance(61)
    other.deliver_due()
    sender.deliver_due()

    assert store.count_pending_mails() == 0
    mail_server.wait_for(5)
    time.sleep(0.3)
    received = mail_server.messages()
    assert sorted(m.to[0] for m in received) == sorted(m.to for m in mails)  # each once
