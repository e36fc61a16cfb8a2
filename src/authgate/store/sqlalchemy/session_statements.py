"""A login, a refresh and a logout in ONE PostgreSQL statement each: their reads and writes
folded into data-modifying ``WITH`` clauses, run without ``BEGIN``/``COMMIT``
(``autocommit_engine``).

A statement is atomic on its own: all its changes commit together or none does, so a login's
session, refresh token and audit event (a refresh's rotation; a logout's revocation, its log
entry and audit event) are written together, as in a transaction, at the cost of one round
trip instead of four to eight. The row locks are those of the statements they replace:
``UPDATE`` locks the user (a login), the refresh token and the session (a refresh), the session
(a logout) and, under READ COMMITTED, re-checks its ``WHERE`` against a row a concurrent
transaction changed (a revocation of all sessions, a revoked session) before writing.
Data-modifying ``WITH`` is PostgreSQL's: SQLite runs the same steps in a transaction
(``SqlAlchemyStore``)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import CTE, Select, Table, bindparam, func, insert, select, update

from authgate.store.records import UserStatus
from authgate.store.sqlalchemy.models import (
    AuditEventRow,
    Base,
    RefreshTokenRow,
    RevocationRow,
    SessionRow,
    UserRow,
)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_USERS = _table(UserRow)
_SESSIONS = _table(SessionRow)
_REFRESH_TOKENS = _table(RefreshTokenRow)
_EVENTS = _table(AuditEventRow)
_REVOCATIONS = _table(RevocationRow)

# The session's columns a login inserts, each from a parameter ``s_<column>`` but the user's id.
SESSION_COLUMNS = tuple(c.name for c in _SESSIONS.c if c.name != "user_id")
# The audit event's columns, each from a parameter ``a_<column>`` (the id is the database's).
AUDIT_COLUMNS = tuple(c.name for c in _EVENTS.c if c.name != "id")
# The audit event's id, among the columns a login's statement returns.
AUDIT_ID = "audit_event_id"
# The session of the refresh token a rotation spent, among the columns it returns.
SPENT = "spent_session_id"


def _parameters(table: Table, columns: Iterable[str], prefix: str) -> list[Any]:
    return [bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in columns]


def _insert_from(table: Table, columns: Iterable[str], source: Select[Any]) -> Any:
    return insert(table).from_select(list(columns), source)


@cache
def login_statement(*, same_epoch: bool, rehashed: bool, audited: bool) -> Select[Any]:
    """Record a login: the check that the user may still log in (active, and with
    ``same_epoch`` no revocation of all its sessions since the login read it) and the update of
    the user, then — only if that matched — the session, its refresh token and the audit event.

    Returns the user's row (and ``audit_event_id``), or no row when the check failed and
    nothing was written. Parameters: ``uid``, ``now``, ``epoch``, ``password_hash``,
    ``s_<column>`` of the session, ``token_hash``, ``a_<column>`` of the audit event."""
    users = _USERS
    user = update(users).where(
        users.c.id == bindparam("uid"), users.c.status == UserStatus.ACTIVE.value
    )
    if same_epoch:
        user = user.where(users.c.session_epoch == bindparam("epoch"))
    user = user.values(last_login_at=bindparam("now", type_=users.c.last_login_at.type))
    if rehashed:
        user = user.values(password_hash=bindparam("password_hash"))
    updated: CTE = user.returning(*users.c).cte("login_user")

    session_columns = [*SESSION_COLUMNS, "user_id"]
    session = (
        _insert_from(
            _SESSIONS,
            session_columns,
            select(*_parameters(_SESSIONS, SESSION_COLUMNS, "s_"), updated.c.id),
        )
        .returning(_SESSIONS.c.id)
        .cte("login_session")
    )
    token = _REFRESH_TOKENS
    refresh_token = _insert_from(
        token,
        ["token_hash", "session_id", "created_at"],
        select(
            bindparam("token_hash", type_=token.c.token_hash.type),
            session.c.id,
            bindparam("now", type_=token.c.created_at.type),
        ),
    ).cte("login_refresh_token")
    statement = select(updated)
    if audited:
        event = (
            _insert_from(
                _EVENTS,
                AUDIT_COLUMNS,
                select(*_parameters(_EVENTS, AUDIT_COLUMNS, "a_")).where(
                    select(updated.c.id).exists()
                ),
            )
            .returning(_EVENTS.c.id)
            .cte("login_audit_event")
        )
        statement = select(updated, select(event.c.id).scalar_subquery().label(AUDIT_ID))
    return statement.add_cte(session, refresh_token, nest_here=False)


@cache
def rotation_statement() -> Select[Any]:
    """Rotate a refresh token: spend the presented one (``presented``) if it is current; if so,
    and its session is live at ``now``, move the session's expiry on (``expires_at``) and give
    it the new token (``new_hash``, ``rotated_from`` the presented one).

    Returns no row when the token was not current (spent before, or unknown: the caller looks
    for a reuse); otherwise a row with ``spent_session_id``, the session's columns and its
    user's (``u_<column>``), these NULL when the session was not live (then only the spending
    of the token was written, as by the transaction this replaces) or the user is gone."""
    tokens = _REFRESH_TOKENS
    sessions = _SESSIONS
    now = bindparam("now", type_=sessions.c.last_seen_at.type)
    spent = (
        update(tokens)
        .where(tokens.c.token_hash == bindparam("presented"), tokens.c.used_at.is_(None))
        .values(used_at=now)
        .returning(tokens.c.session_id)
        .cte("spent_refresh_token")
    )
    session = (
        update(sessions)
        .where(
            sessions.c.id == spent.c.session_id,
            sessions.c.revoked_at.is_(None),
            sessions.c.expires_at > now,
        )
        .values(
            last_seen_at=now,
            expires_at=bindparam("expires_at", type_=sessions.c.expires_at.type),
        )
        .returning(*sessions.c)
        .cte("rotated_session")
    )
    new_token = _insert_from(
        tokens,
        ["token_hash", "session_id", "created_at", "rotated_from"],
        select(
            bindparam("new_hash", type_=tokens.c.token_hash.type),
            session.c.id,
            now,
            bindparam("presented", type_=tokens.c.rotated_from.type),
        ),
    ).cte("new_refresh_token")
    users = _USERS
    user_columns = [c.label(f"u_{c.name}") for c in users.c]
    return (
        select(spent.c.session_id.label(SPENT), session, *user_columns)
        .select_from(
            spent.outerjoin(session, session.c.id == spent.c.session_id).outerjoin(
                users, users.c.id == session.c.user_id
            )
        )
        .add_cte(new_token, nest_here=False)
    )


@cache
def revocation_statement(*, of_user: bool, audited: bool) -> Select[Any]:
    """Revoke a session (``sid``; with ``of_user``, only if it is ``uid``'s) not revoked yet,
    log the revocation and write the audit event (its ``a_user_id`` NULL: the session's user).

    Returns the session's ``user_id`` (and ``audit_event_id``); no row when no live session
    matched and nothing was written."""
    sessions = _SESSIONS
    revoked = update(sessions).where(
        sessions.c.id == bindparam("sid"), sessions.c.revoked_at.is_(None)
    )
    if of_user:
        revoked = revoked.where(sessions.c.user_id == bindparam("uid"))
    now = bindparam("now", type_=sessions.c.revoked_at.type)
    changed: CTE = (
        revoked.values(revoked_at=now).returning(sessions.c.id, sessions.c.user_id).cte("revoked")
    )
    log = _REVOCATIONS
    logged = _insert_from(
        log,
        ["kind", "subject", "created_at"],
        select(bindparam("kind", type_=log.c.kind.type), changed.c.id, now),
    ).cte("revocation_logged")
    statement = select(changed.c.user_id)
    if audited:
        values = [
            func.coalesce(parameter, changed.c.user_id) if name == "user_id" else parameter
            for name, parameter in zip(
                AUDIT_COLUMNS, _parameters(_EVENTS, AUDIT_COLUMNS, "a_"), strict=True
            )
        ]
        event = (
            _insert_from(_EVENTS, AUDIT_COLUMNS, select(*values).select_from(changed))
            .returning(_EVENTS.c.id)
            .cte("revocation_audit_event")
        )
        statement = select(changed.c.user_id, select(event.c.id).scalar_subquery().label(AUDIT_ID))
    return statement.add_cte(logged, nest_here=False)


def user_of_rotation(row: Any) -> dict[str, Any] | None:
    """The user's columns of a row of ``rotation_statement``; None when the user is gone."""
    mapping = row._mapping
    if mapping["u_id"] is None:
        return None
    return {c.name: mapping[f"u_{c.name}"] for c in _USERS.c}
