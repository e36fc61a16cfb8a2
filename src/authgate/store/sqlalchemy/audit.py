"""The audit trail in SQL: events inserted by the methods that make the changes they record (in
their transactions), read newest first by keyset, purged in small batches."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, select
from sqlalchemy.orm import Session

from authgate.core.audit import AuditEvent, AuditQuery
from authgate.store.sqlalchemy.models import AuditEventRow
from authgate.store.sqlalchemy.store_core import AuditListener, StoreCore

log = logging.getLogger("authgate.audit")

_EVENTS = AuditEventRow.__table__
assert isinstance(_EVENTS, Table)
_TABLE: Table = _EVENTS
# The id comes back in the same statement: the log line (``AUTHGATE_AUDIT_LOG``) carries it.
_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)

# Called with each event after its transaction committed (``AUTHGATE_AUDIT_LOG``).


def _event(row: Any) -> AuditEvent:
    try:
        details = json.loads(row.details) if row.details else {}
    except ValueError:
        details = {}
    return AuditEvent(
        id=row.id,
        time=row.time,
        type=row.type,
        outcome=row.outcome,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        user_id=row.user_id,
        tenant_id=row.tenant_id,
        ip=row.ip,
        user_agent=row.user_agent,
        request_id=row.request_id,
        details=details if isinstance(details, dict) else {},
    )


def write_audit(
    db: Session | Connection, event: AuditEvent | None, **about: str | None
) -> AuditEvent | None:
    """Insert ``event`` in the transaction of ``db`` (nothing when None); ``user_id`` in
    ``about`` fills the subject the caller could not know. The event is kept on the session to
    be announced after the commit (``SqlAlchemyStore._transaction``)."""
    if event is None:
        return None
    if about:
        event = event.about(**about)
    event_id = db.execute(_INSERT_EVENT, event.row()).scalar_one()
    event = replace(event, id=event_id)
    if isinstance(db, Session):
        db.info.setdefault("audit", []).append(event)
    return event


def announce_committed(listener: AuditListener | None, events: Sequence[AuditEvent]) -> None:
    """Hand committed events to the listener; its failure never fails the change."""
    if listener is None:
        return
    for event in events:
        try:
            listener(event)
        except Exception:
            log.exception("audit listener failed")


class AuditStoreMixin:
    def record_audit(self: StoreCore, event: AuditEvent) -> None:
        with self._writer.begin() as conn:  # type: ignore[attr-defined]
            written = write_audit(conn, event)
        announce_committed(self.audit_listener, [written or event])

    def list_audit_events(self: StoreCore, query: AuditQuery) -> list[AuditEvent]:
        events = _EVENTS
        statement = select(events)
        if query.user_id is not None:
            statement = statement.where(events.c.user_id == query.user_id)
        if query.type is not None:
            statement = statement.where(events.c.type == query.type)
        if query.types is not None:
            statement = statement.where(events.c.type.in_(sorted(query.types)))
        if query.since is not None:
            statement = statement.where(events.c.time >= query.since)
        if query.until is not None:
            statement = statement.where(events.c.time < query.until)
        if query.before_id is not None:
            statement = statement.where(events.c.id < query.before_id)
        if query.after_id is not None:
            statement = statement.where(events.c.id > query.after_id)
        order = events.c.id.asc() if query.oldest_first else events.c.id.desc()
        statement = statement.order_by(order).limit(query.limit)
        with self._reader() as db:
            return [_event(row) for row in db.execute(statement)]

    def latest_audit_id(self: StoreCore) -> int:
        with self._reader() as db:
            return int(db.scalar(select(func.max(_EVENTS.c.id))) or 0)

    def purge_audit_events(
        self: StoreCore,
        *,
        older_than: datetime,
        batch: int = 1000,
        max_batches: int | None = None,
    ) -> int:
        """Delete the events older than ``older_than``, ``batch`` rows per transaction (each
        short: the table is never locked for long), at most ``max_batches`` transactions; how
        many went."""
        total = 0
        batches = 0
        while True:
            batches += 1
            oldest = (
                select(_EVENTS.c.id)
                .where(_EVENTS.c.time < older_than)
                .order_by(_EVENTS.c.id)
                .limit(batch)
            )
            with self._writer.begin() as conn:  # type: ignore[attr-defined]
                ids = list(conn.scalars(oldest))
                if ids:
                    conn.execute(
                        delete(_TABLE)
                        .where(_EVENTS.c.id >= ids[0], _EVENTS.c.id <= ids[-1])
                        .where(_EVENTS.c.time < older_than)
                    )
            total += len(ids)
            if len(ids) < batch or (max_batches is not None and batches >= max_batches):
                return total
