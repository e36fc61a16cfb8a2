"""The audit trail: building events (the other parts hand them to the store method that makes
their change), recording attempts that change nothing, and reading the trail back."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from authgate.core.audit import (
    SECURITY_TYPES,
    SYSTEM,
    AuditContext,
    AuditEvent,
    AuditQuery,
    BadCursorError,
    Outcome,
    decode_cursor,
    encode_cursor,
    new_event,
)
from authgate.errors import StoreUnavailableError, ValidationFailedError
from authgate.service.principals import ClientInfo, Principal

if TYPE_CHECKING:
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.service.authorization import Authorization
    from authgate.store.protocols import Store

log = logging.getLogger("authgate")

MAX_PAGE = 200
PURGE_BATCHES_PER_RUN = 10


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    next_cursor: str | None


@dataclass(eq=False, repr=False)
class Audit:
    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    authorization: Authorization
    # Where the current work comes from: set by the adapter that runs the service (the Flask
    # extension reads the request being served; the CLI says ``cli``). Asked only when an
    # event is built, so that a request that records nothing pays nothing.
    context: Callable[[], AuditContext] = field(default=lambda: SYSTEM)

    def event(
        self,
        type: str,
        *,
        actor: Principal | str | None = None,
        user_id: str | None = None,
        tenant_id: str | None = None,
        outcome: Outcome = "success",
        details: Mapping[str, Any] | None = None,
        context: AuditContext | None = None,
    ) -> AuditEvent:
        """An event of the current work; ``actor`` is the user acting (a principal or a user
        id), none for the anonymous caller of a request, a command or authgate itself."""
        actor_id = actor.user.id if isinstance(actor, Principal) else actor
        return new_event(
            type,
            time=self.clock.now(),
            context=context if context is not None else self.context(),
            actor_id=actor_id,
            user_id=user_id,
            tenant_id=tenant_id,
            outcome=outcome,
            details=details,
        )

    def client_context(self, client: ClientInfo) -> AuditContext:
        """The current context, with the client a login names (its address and agent)."""
        context = self.context()
        return replace(
            context,
            ip=client.ip or context.ip,
            user_agent=client.user_agent or context.user_agent,
        )

    def record(self, event: AuditEvent) -> None:
        """Write an event that goes with no change (a failed attempt). A store failure is
        logged, not raised: the answer the attempt gets must not change because of it."""
        try:
            self.store.record_audit(event)
        except StoreUnavailableError:
            log.warning("audit event %s could not be recorded (store unavailable)", event.type)

    # Reading ------------------------------------------------------------------------------

    def list_events(
        self,
        actor: Principal,
        *,
        user_id: str | None = None,
        type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> AuditPage:
        """The trail, newest first (admins only)."""
        self.authorization.require_admin(actor)
        query = AuditQuery(
            user_id=user_id,
            type=type,
            since=since,
            until=until,
            before_id=_cursor_id(cursor),
            limit=_page_size(limit),
        )
        return self._page(query)

    def activity(self, principal: Principal, *, cursor: str | None, limit: int = 50) -> AuditPage:
        """The caller's own security events, newest first."""
        self.authorization.require_session(principal)
        query = AuditQuery(
            user_id=principal.user.id,
            types=SECURITY_TYPES,
            before_id=_cursor_id(cursor),
            limit=_page_size(limit),
        )
        return self._page(query)

    def _page(self, query: AuditQuery) -> AuditPage:
        # One more than asked tells whether another page follows, without a count.
        events = self.store.list_audit_events(
            AuditQuery(**{**_fields(query), "limit": query.limit + 1})
        )
        more = len(events) > query.limit
        events = events[: query.limit]
        last = events[-1].id if more and events else None
        return AuditPage(events, encode_cursor(last) if last is not None else None)

    # The operator's reading (``authgate audit tail`` / ``export``) ----------------------------

    def latest_id(self) -> int:
        return self.store.latest_audit_id()

    def read_after(
        self,
        after_id: int,
        *,
        type: str | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[AuditEvent]:
        """Events after ``after_id``, oldest first: the follower's and the export's page."""
        return self.store.list_audit_events(
            AuditQuery(
                type=type,
                user_id=user_id,
                since=since,
                until=until,
                after_id=after_id,
                oldest_first=True,
                limit=limit,
            )
        )

    def follow(self, *, type: str | None = None, user_id: str | None = None) -> AuditFollower:
        """A follower of the events recorded from now on (``authgate audit tail``)."""
        return AuditFollower(self, type=type, user_id=user_id)

    def newest(
        self, count: int, *, type: str | None = None, user_id: str | None = None
    ) -> list[AuditEvent]:
        """The last ``count`` events, oldest first (what ``tail`` shows before following)."""
        if count <= 0:
            return []
        query = AuditQuery(type=type, user_id=user_id, limit=count)
        return list(reversed(self.store.list_audit_events(query)))

    # Retention ----------------------------------------------------------------------------

    def purge(self, *, max_batches: int | None = None) -> int:
        """Delete the events past ``AUTHGATE_AUDIT_RETENTION_DAYS`` (0 keeps them forever),
        1000 per short transaction; at most ``max_batches`` of them."""
        days = self.settings.audit_retention_days
        if days <= 0:
            return 0
        return self.store.purge_audit_events(
            older_than=self.clock.now() - timedelta(days=days), max_batches=max_batches
        )

    def purge_some(self) -> int:
        """The server's periodic purge (each process, every minute): a few batches, so that
        the revocation poller it runs on is never held up long; a backlog goes over the next
        minutes (or at once with ``authgate audit purge``)."""
        return self.purge(max_batches=PURGE_BATCHES_PER_RUN)


def _fields(query: AuditQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in AuditQuery.__slots__}


def _cursor_id(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return decode_cursor(cursor)
    except BadCursorError:
        raise ValidationFailedError({"cursor": "Not a cursor this server handed out."}) from None


def _page_size(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE))


# Ids below the last one seen that each look reads again: ids are handed out at insert, rows
# become visible at commit, so on PostgreSQL event N may appear after N + 1 (as in the
# revocation feed's poller).
FOLLOW_REPLAY_WINDOW = 256


class AuditFollower:
    """Each ``poll()`` returns the events recorded since the last one, each exactly once, also
    those whose transaction committed after a later id's."""

    def __init__(self, audit: Audit, *, type: str | None, user_id: str | None) -> None:
        self._audit = audit
        self._filters: dict[str, Any] = {"type": type, "user_id": user_id}
        self._last = audit.latest_id()
        # What is already there when following starts is not new (``tail -n`` shows it).
        self._seen = {e.id for e in self._read() if e.id is not None}

    def _read(self) -> list[AuditEvent]:
        start = max(0, self._last - FOLLOW_REPLAY_WINDOW)
        return self._audit.read_after(start, **self._filters)

    def skip(self, events: list[AuditEvent]) -> None:
        """Events shown otherwise (``tail -n``): ``poll`` will not return them."""
        self._seen.update(e.id for e in events if e.id is not None)

    def poll(self) -> list[AuditEvent]:
        fresh: list[AuditEvent] = []
        while True:
            page = self._read()
            for event in page:
                if event.id is None or event.id in self._seen:
                    continue
                self._seen.add(event.id)
                self._last = max(self._last, event.id)
                fresh.append(event)
            floor = self._last - FOLLOW_REPLAY_WINDOW
            self._seen = {i for i in self._seen if i > floor}
            if len(page) < 1000:
                return fresh
