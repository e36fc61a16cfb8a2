"""SQLite: a read of one statement (a token's first request: its session and user; an API
token, its user and membership) runs without the BEGIN/ROLLBACK authgate puts around each
transaction (store/sqlalchemy/engines.py, ``autocommit_engine``); transactions still begin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from authgate.store.records import ApiTokenRecord, TenantRole
from authgate.store.sqlalchemy.engines import create_database_engine, events_engine
from authgate.store.sqlalchemy.models import Base
from authgate.store.sqlalchemy.stores import SqlAlchemyStore

NOW = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlAlchemyStore]:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    store = SqlAlchemyStore(engine)
    yield store
    store.dispose()


def _statements(store: SqlAlchemyStore) -> tuple[list[str], Any]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0].upper())

    engine = events_engine(store.engine)
    event.listen(engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(engine, "before_cursor_execute", record)


def _session(store: SqlAlchemyStore) -> tuple[str, str]:
    user = store.create_user(
        email="a@example.com", username=None, name="A", password_hash="x", roles=["user"], now=NOW
    )
    created = store.create_session(
        user_id=user.id,
        session_epoch=None,
        refresh_token_hash="h",
        expires_at=NOW + timedelta(days=1),
        user_agent=None,
        ip=None,
        now=NOW,
    )
    assert created is not None
    return created[0].id, user.id


def test_a_token_first_read_is_one_select_without_begin(store: SqlAlchemyStore) -> None:
    session_id, user_id = _session(store)
    seen, stop = _statements(store)
    try:
        found = store.get_session_with_user(session_id)
        assert seen == ["SELECT"]  # no BEGIN before it (and no ROLLBACK after it)
        seen.clear()
        assert store.get_user(user_id) is not None
        assert seen == ["SELECT"]
    finally:
        stop()
    assert found is not None
    session, user = found
    assert (session.id, session.user_id, user.id) == (session_id, user_id, user_id)
    # Read back as written: aware UTC datetimes (SQLite keeps no zone), microseconds kept.
    assert session.created_at == NOW and session.created_at.tzinfo is UTC
    assert session.expires_at == NOW + timedelta(days=1)
    assert user.created_at == NOW and user.created_at.tzinfo is UTC


def test_an_api_token_first_read_is_one_select_without_begin(store: SqlAlchemyStore) -> None:
    _, user_id = _session(store)
    tenant_id = store.personal_tenant_id(user_id)
    assert tenant_id is not None
    token = ApiTokenRecord(
        id="t" * 16,
        user_id=user_id,
        tenant_id=tenant_id,
        name="ci",
        secret_hash="h",
        scopes=("read",),
        resource=None,
        created_at=NOW,
        expires_at=NOW + timedelta(days=1),
        revoked_at=None,
        last_used_at=None,
        last_used_ip=None,
    )
    store.create_api_token(token)
    seen, stop = _statements(store)
    try:
        found = store.get_api_token_with_owner(token.id)
        assert seen == ["SELECT"]  # no BEGIN before it (and no ROLLBACK after it)
    finally:
        stop()
    assert found is not None
    assert found == (token, store.get_user(user_id), TenantRole.OWNER)
    assert found[0].expires_at.tzinfo is UTC


def test_transactions_still_begin_and_are_seen_by_the_same_listener(
    store: SqlAlchemyStore,
) -> None:
    seen, stop = _statements(store)
    try:
        _session(store)
    finally:
        stop()
    assert seen[0] == "BEGIN"  # the writer's BEGIN IMMEDIATE
    assert "INSERT" in seen
