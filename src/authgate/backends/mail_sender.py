"""``OutboxSender``: delivers the mail outbox, so that a mail queued is a mail sent.

A mail is a row of the outbox, written in the transaction of whatever it announces. This sender —
one background thread per process — leases due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
the write lock on SQLite, so several processes and hosts never send one mail at once), hands
each to the transport and records the outcome:

- sent: done (kept a few days, then pruned);
- refused for good (a 5xx for its recipient or content), or still failing two days after it was
  queued: given up, kept as dead for the operator to see;
- either way its bodies are blanked in the same update (they carry a live link, and tokens are
  not kept in clear at rest): kind, recipient, subject, times and the last error stay;
- anything else: tried again later, 15 s after the first failure, doubling up to 30 minutes.

``notify()`` wakes the sender right after a commit that queued mail; it also polls every few
seconds, for mail queued by other processes and for retries that fall due. A server that is down
(refused, TLS, authentication) is logged once when the outage starts and once when it ends, not
at each attempt. ``deliver_due()`` does one round synchronously (the CLI, tests).

A mail is sent twice only if the process dies (or the database fails) between the server's
acceptance and the ``sent`` mark, or one delivery outlasts half the lease; its ``Message-ID`` is
the same both times. (A sender starts no mail once half of its batch's lease has gone: a slow
server leaves the rest of the batch to the next lease rather than to two senders at once.)
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from authgate.backends.mail_transport import MailDeliveryError, MailTransport
from authgate.core.clocks import Clock
from authgate.errors import StoreUnavailableError
from authgate.store.protocols import MailOutbox
from authgate.store.records import QueuedMail

__all__ = ["DeliveryReport", "OutboxSender"]

log = logging.getLogger("authgate.mail")

POLL_INTERVAL_SECONDS = 5.0
LEASE_SECONDS = 60.0
BATCH_SIZE = 20
FIRST_RETRY_SECONDS = 15.0
MAX_RETRY_SECONDS = 30 * 60.0
GIVE_UP_AFTER_SECONDS = 2 * 86400.0
KEEP_SECONDS = 7 * 86400.0  # sent mails are pruned after this; given-up ones after 4 times it
PRUNE_INTERVAL_SECONDS = 3600.0
_STOP_WAIT_SECONDS = 5.0


@dataclass
class DeliveryReport:
    """What one ``deliver_due`` did."""

    sent: int = 0
    retrying: int = 0
    given_up: int = 0
    error: str | None = None  # the outage that stopped the round, if one did

    @property
    def attempted(self) -> int:
        return self.sent + self.retrying + self.given_up


class OutboxSender:
    def __init__(
        self,
        outbox: MailOutbox,
        transport: MailTransport,
        clock: Clock,
        *,
        poll_interval_seconds: float = POLL_INTERVAL_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
        batch_size: int = BATCH_SIZE,
        first_retry_seconds: float = FIRST_RETRY_SECONDS,
        max_retry_seconds: float = MAX_RETRY_SECONDS,
        give_up_after_seconds: float = GIVE_UP_AFTER_SECONDS,
        keep_seconds: float = KEEP_SECONDS,
    ):
        self.outbox = outbox
        self.transport = transport
        self._clock = clock
        self.poll_interval_seconds = poll_interval_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._batch_size = batch_size
        self._first_retry = first_retry_seconds
        self._max_retry = max_retry_seconds
        self._give_up_after = timedelta(seconds=give_up_after_seconds)
        self._keep = timedelta(seconds=keep_seconds)
        self._outage: str | None = None  # the error of the outage in progress, logged once
        self._store_failing = False
        self._last_prune: datetime | None = None
        # The thread of this process: started by ``start``, again after a fork.
        self._wanted = False
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Told of each delivery attempt: (mail kind, "sent" | "failed" | "given_up").
        self.on_delivery: list[Callable[[str, str], None]] = []

    # Lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Deliver in the background from now on (in this process, and in its forked children
        from their first ``notify`` or ``ensure_started``)."""
        self._wanted = True
        self.ensure_started()

    def ensure_started(self) -> None:
        """Start this process's thread if ``start`` was called and it does not run here."""
        pid = os.getpid()
        if self._pid == pid or not self._wanted:
            return
        with self._lock:
            if self._pid == pid:
                return
            # New events after a fork: the parent's belong to the parent's thread.
            self._wake = threading.Event()
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run,
                args=(self._wake, self._stop),
                name="authgate-mail-sender",
                daemon=True,
            )
            self._thread.start()
            self._pid = pid

    def notify(self) -> None:
        """Mail was just committed to the outbox: deliver it now. Cheap; never blocks."""
        self.ensure_started()
        self._wake.set()

    def stop(self) -> None:
        self._wanted = False
        thread, self._thread = self._thread, None
        self._stop.set()
        self._wake.set()
        if (
            thread is not None
            and self._pid == os.getpid()
            and thread is not threading.current_thread()
        ):
            thread.join(timeout=_STOP_WAIT_SECONDS)
        self._pid = None

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._pid == os.getpid() and self._thread.is_alive()

    # Delivery ----------------------------------------------------------------------------------

    def deliver_due(self) -> DeliveryReport:
        """Send every mail that is due now, batch by batch, until none is left or the server
        is down (the rest wait for their retry). Raises ``StoreUnavailableError``."""
        report = DeliveryReport()
        if not self.outbox.count_pending_mails():
            return report  # a read: no write transaction (lock) every poll of every process
        while True:
            now = self._clock.now()
            batch = self.outbox.lease_mails(now=now, lease_for=self._lease, limit=self._batch_size)
            if not batch:
                return report
            for index, queued in enumerate(batch):
                if self._clock.now() > queued.lease_until - self._lease / 2:
                    # A slow server ate half the lease: another sender takes these mails once
                    # it runs out, so do not start one now (it would go twice). The rest of the
                    # batch goes when its lease is over, from whichever sender comes first.
                    return report
                error = self._deliver(queued, report)
                if error is not None and error.outage:
                    for rest in batch[index + 1 :]:  # not tried: the server takes nothing now
                        self._record_failure(rest, error, report)
                    report.error = str(error)
                    return report
            if len(batch) < self._batch_size:
                return report

    def retry_delay(self, attempts: int) -> timedelta:
        """How long to wait after failed attempt number ``attempts`` (1 = the first)."""
        seconds = self._first_retry * 2 ** min(max(attempts - 1, 0), 30)
        return timedelta(seconds=min(seconds, self._max_retry))

    def prune(self) -> int:
        """Forget sent mails older than a few days (and given-up ones later): the outbox must
        not grow for ever. Returns how many rows went."""
        now = self._clock.now()
        return self.outbox.prune_mails(
            sent_before=now - self._keep, dead_before=now - 4 * self._keep
        )

    def _deliver(self, queued: QueuedMail, report: DeliveryReport) -> MailDeliveryError | None:
        mail = queued.mail
        try:
            self.transport.send(mail)
        except MailDeliveryError as error:
            self._record_failure(queued, error, report)
            return error
        except ValueError as e:  # a header that cannot be encoded (a line break, ...)
            unsendable = MailDeliveryError(
                f"the mail cannot be encoded: {e}", outage=False, permanent=True
            )
            self._record_failure(queued, unsendable, report)
            return unsendable
        if self._outage is not None:
            log.warning(
                "mail delivery through %s works again (the outage was: %s)",
                self.transport.describe(),
                self._outage,
            )
            self._outage = None
        report.sent += 1
        self._tell(mail.kind, "sent")
        if not self.outbox.mark_mail_sent(mail.id, queued.lease_token, now=self._clock.now()):
            log.warning(
                "%s mail %s was sent, but its lease had run out: another sender may send it "
                "again (same Message-ID)",
                mail.kind,
                mail.id,
            )
        else:
            log.info("sent %s mail %s to %s", mail.kind, mail.id, mail.to)
        return None

    def _tell(self, kind: str, outcome: str) -> None:
        for callback in self.on_delivery:
            try:
                callback(kind, outcome)
            except Exception:
                log.exception("a mail delivery callback failed")

    def _record_failure(
        self, queued: QueuedMail, error: MailDeliveryError, report: DeliveryReport
    ) -> None:
        mail = queued.mail
        now = self._clock.now()
        attempts = queued.attempts + 1
        give_up = error.permanent or now - mail.created_at >= self._give_up_after
        retry_at = None if give_up else now + self.retry_delay(attempts)
        self.outbox.mark_mail_failed(
            mail.id, queued.lease_token, error=str(error), retry_at=retry_at, now=now
        )
        self._tell(mail.kind, "given_up" if give_up else "failed")
        if give_up:
            report.given_up += 1
            log.error(
                "gave up on %s mail %s to %s after %d attempt(s): %s",
                mail.kind,
                mail.id,
                mail.to,
                attempts,
                error,
            )
            return
        report.retrying += 1
        if not error.outage:
            log.warning(
                "%s mail %s to %s not sent (attempt %d), trying again at %s: %s",
                mail.kind,
                mail.id,
                mail.to,
                attempts,
                retry_at,
                error,
            )
        elif self._outage is None:
            self._outage = str(error)
            log.error(
                "cannot send mail through %s: %s — mails wait in the outbox and are sent when "
                "it works again (retrying with backoff, at most every %g minutes)",
                self.transport.describe(),
                error,
                self._max_retry / 60,
            )
        else:
            log.debug("mail %s still not sent: %s", mail.id, error)

    # The thread ----------------------------------------------------------------------------------

    def _run(self, wake: threading.Event, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.deliver_due()
                self._prune_now_and_then()
                if self._store_failing:
                    self._store_failing = False
                    log.warning("the mail sender reaches the database again")
            except StoreUnavailableError as e:
                if not self._store_failing:
                    self._store_failing = True
                    log.warning(
                        "the mail sender cannot read the outbox (%s); trying again every %g s",
                        type(e.__cause__ or e).__name__,
                        self.poll_interval_seconds,
                    )
            except Exception:  # the sender must outlive any bug: a dead one loses no mail, but
                log.exception("the mail sender crashed; continuing")  # sends none either
            wake.wait(self.poll_interval_seconds)
            wake.clear()

    def _prune_now_and_then(self) -> None:
        now = self._clock.now()
        if self._last_prune is None or now - self._last_prune >= timedelta(
            seconds=PRUNE_INTERVAL_SECONDS
        ):
            self._last_prune = now
            self.prune()
