"""The mail outbox in SQL (mixed into ``SqlAlchemyStore``); see ``store.protocols.MailOutbox``."""

from __future__ import annotations

import secrets
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from authgate.store.records import OutgoingMail, QueuedMail
from authgate.store.sqlalchemy.models import OutboxMailRow

_ERROR_LENGTH = 500
# What a mail's bodies become once it is sent or given up: they carry a live link (its token),
# and tokens are kept hashed at rest. Kind, recipient, subject and timestamps stay for the operator.
_BLANKED_BODIES: dict[str, object] = {"body_text": "", "body_html": ""}


def insert_outbox_mail(db: Session, mail: OutgoingMail) -> None:
    """Queue ``mail`` in the caller's transaction: it is sent only if that transaction commits."""
    db.execute(
        insert(OutboxMailRow).values(
            id=mail.id,
            kind=mail.kind,
            recipient=mail.to,
            subject=mail.subject,
            body_text=mail.text,
            body_html=mail.html,
            created_at=mail.created_at,
            attempts=0,
            next_attempt_at=mail.created_at,
        )
    )


def _outgoing_mail(row: OutboxMailRow) -> OutgoingMail:
    return OutgoingMail(
        id=row.id,
        kind=row.kind,
        to=row.recipient,
        subject=row.subject,
        text=row.body_text,
        html=row.body_html,
        created_at=row.created_at,
    )


class _HasTransactions(Protocol):
    def _transaction(self) -> AbstractContextManager[Session]: ...

    def _reader(self) -> Session: ...


class MailOutboxMixin:
    def enqueue_mail(self: _HasTransactions, mail: OutgoingMail) -> None:
        with self._transaction() as db:
            insert_outbox_mail(db, mail)

    def lease_mails(
        self: _HasTransactions, *, now: datetime, lease_for: timedelta, limit: int
    ) -> list[QueuedMail]:
        lease_token = secrets.token_hex(16)
        lease_until = now + lease_for
        with self._transaction() as db:
            due = (
                select(OutboxMailRow)
                .where(
                    OutboxMailRow.sent_at.is_(None),
                    OutboxMailRow.dead_at.is_(None),
                    OutboxMailRow.next_attempt_at <= now,
                    or_(OutboxMailRow.lease_until.is_(None), OutboxMailRow.lease_until <= now),
                )
                .order_by(OutboxMailRow.next_attempt_at, OutboxMailRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = list(db.scalars(due))
            leased = []
            for row in rows:
                row.lease_token = lease_token
                row.lease_until = lease_until
                leased.append(
                    QueuedMail(
                        mail=_outgoing_mail(row),
                        attempts=row.attempts,
                        lease_token=lease_token,
                        lease_until=lease_until,
                    )
                )
            return leased

    def mark_mail_sent(
        self: _HasTransactions, mail_id: str, lease_token: str, *, now: datetime
    ) -> bool:
        with self._transaction() as db:
            result = db.execute(
                update(OutboxMailRow)
                .where(OutboxMailRow.id == mail_id, OutboxMailRow.lease_token == lease_token)
                .values(
                    sent_at=now,
                    attempts=OutboxMailRow.attempts + 1,
                    lease_token=None,
                    lease_until=None,
                    last_error=None,
                    **_BLANKED_BODIES,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def mark_mail_failed(
        self: _HasTransactions,
        mail_id: str,
        lease_token: str,
        *,
        error: str,
        retry_at: datetime | None,
        now: datetime,
    ) -> bool:
        values: dict[str, object] = {
            "attempts": OutboxMailRow.attempts + 1,
            "lease_token": None,
            "lease_until": None,
            "last_error": error[:_ERROR_LENGTH],
        }
        if retry_at is None:
            values["dead_at"] = now
            values.update(_BLANKED_BODIES)
        else:
            values["next_attempt_at"] = retry_at
        with self._transaction() as db:
            result = db.execute(
                update(OutboxMailRow)
                .where(OutboxMailRow.id == mail_id, OutboxMailRow.lease_token == lease_token)
                .values(**values)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def count_pending_mails(self: _HasTransactions) -> int:
        with self._reader() as db:
            pending = select(func.count()).where(
                OutboxMailRow.sent_at.is_(None), OutboxMailRow.dead_at.is_(None)
            )
            return int(db.scalar(pending) or 0)

    def prune_mails(self: _HasTransactions, *, sent_before: datetime, dead_before: datetime) -> int:
        with self._transaction() as db:
            result = db.execute(
                delete(OutboxMailRow).where(
                    or_(
                        and_(
                            OutboxMailRow.sent_at.is_not(None), OutboxMailRow.sent_at < sent_before
                        ),
                        and_(
                            OutboxMailRow.dead_at.is_not(None), OutboxMailRow.dead_at < dead_before
                        ),
                    )
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
