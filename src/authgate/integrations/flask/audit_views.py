"""``/api/audit`` (the audit trail, admin) and ``/api/auth/activity`` (the caller's own security
events); and the request context the audit events of a request are written with."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, has_request_context, request

from authgate.core.audit import SYSTEM, AuditContext
from authgate.http.schemas import ActivityQuery, AuditListQuery, audit_page_to_json
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required
from authgate.integrations.flask.request_ids import current_request_id
from authgate.integrations.flask.requests import read_query
from authgate.service import ADMIN_ROLE

blueprint = Blueprint("authgate_audit", __name__)


def request_audit_context() -> AuditContext:
    """Where the work being done comes from: the request being served (its client, as
    ``ProxyFix`` saw it, and its id), or authgate itself outside a request. Asked only when an
    event is built (``service.audit.context``): a request that records nothing pays nothing."""
    if not has_request_context():
        return SYSTEM
    ip = request.remote_addr
    return AuditContext(
        actor_type="user",
        ip=ip[:64] if ip else None,
        user_agent=request.user_agent.string or None,
        request_id=current_request_id(),
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@blueprint.get("/api/audit")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def list_audit_events() -> dict[str, object]:
    query = read_query(AuditListQuery)
    page = get_extension().service.audit.list_events(
        authenticate_request(),
        user_id=query.user_id,
        type=query.type,
        since=_utc(query.since),
        until=_utc(query.until),
        cursor=query.cursor,
        limit=query.limit,
    )
    return audit_page_to_json(page.events, page.next_cursor)


@blueprint.get("/api/auth/activity")
@token_required(sessions_only=True)
def my_activity() -> dict[str, object]:
    query = read_query(ActivityQuery)
    page = get_extension().service.audit.activity(
        authenticate_request(), cursor=query.cursor, limit=query.limit
    )
    return audit_page_to_json(page.events, page.next_cursor)
