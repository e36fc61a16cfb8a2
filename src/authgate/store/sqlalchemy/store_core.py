"""What the parts of the SQLAlchemy store (the mixins of ``SqlAlchemyStore``, ``stores.py``) use
of the store they are mixed into: one protocol, the type of ``self`` in their methods."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from authgate.core.audit import AuditEvent
from authgate.store.records import RevocationKind

# Told of each audit event once its transaction has committed (``AUTHGATE_AUDIT_LOG``).
AuditListener = Callable[[AuditEvent], None]


class StoreCore(Protocol):
    engine: Engine
    # Reads of one statement, without BEGIN/ROLLBACK (``engines.autocommit_engine``).
    _autocommit: Engine
    audit_listener: AuditListener | None

    def _transaction(self) -> AbstractContextManager[Session]: ...

    def _reader(self) -> Session: ...

    def _log(
        self, db: Session, kind: RevocationKind, subjects: Sequence[str], now: datetime
    ) -> None: ...

    def _revoke_user_sessions(
        self, db: Session, user_id: str, now: datetime, keep: str | None = None
    ) -> list[str]: ...

    def _revoke_user_api_tokens(self, db: Session, user_id: str, now: datetime) -> list[str]: ...
