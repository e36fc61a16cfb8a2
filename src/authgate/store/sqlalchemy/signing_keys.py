"""Signing keys in SQL (mixed into ``SqlAlchemyStore``); see ``store.protocols.SigningKeyStore``.

Adding a key logs a ``SIGNING_KEYS`` event in the revocation log in the same transaction, so every
process's poller learns of it even without Redis (written as a ``user`` entry with a reserved
subject, ``revocation_entry``: a previous version's poller reads it without harm). A scheduled
rotation names the key it replaces (``succeeds``, unique): of two processes rotating at once, one
insert wins, the other's fails on the constraint and adds nothing. An immediate rotation deletes
the keys still pending in the same transaction (``drop_pending``).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from authgate.core.audit import AuditEvent
from authgate.store.records import RevocationKind, SigningKeyRecord, revocation_entry
from authgate.store.sqlalchemy.audit import write_audit
from authgate.store.sqlalchemy.models import RevocationRow, SigningKeyRow
from authgate.store.sqlalchemy.store_core import StoreCore


class SigningKeyStoreMixin:
    def list_signing_keys(self: StoreCore) -> list[SigningKeyRecord]:
        with self._reader() as db:
            rows = db.scalars(
                select(SigningKeyRow).order_by(
                    SigningKeyRow.activates_at, SigningKeyRow.created_at, SigningKeyRow.kid
                )
            ).all()
            return [
                SigningKeyRecord(
                    kid=row.kid,
                    sealed_private_key=row.sealed_private_key,
                    created_at=row.created_at,
                    activates_at=row.activates_at,
                    dev=row.dev,
                    succeeds=row.succeeds,
                )
                for row in rows
            ]

    def add_signing_key(
        self: StoreCore,
        key: SigningKeyRecord,
        *,
        now: datetime,
        audit: AuditEvent | None = None,
        drop_pending: bool = False,
    ) -> bool:
        try:
            with self._transaction() as db:
                if drop_pending:
                    db.execute(delete(SigningKeyRow).where(SigningKeyRow.activates_at > now))
                db.execute(
                    insert(SigningKeyRow).values(
                        kid=key.kid,
                        sealed_private_key=key.sealed_private_key,
                        created_at=key.created_at,
                        activates_at=key.activates_at,
                        dev=key.dev,
                        succeeds=key.succeeds,
                    )
                )
                kind, subject = revocation_entry(RevocationKind.SIGNING_KEYS, key.kid)
                db.execute(insert(RevocationRow).values(kind=kind, subject=subject, created_at=now))
                write_audit(db, audit)
        except IntegrityError:
            return False
        return True

    def delete_signing_keys(self: StoreCore, kids: Collection[str]) -> int:
        if not kids:
            return 0
        with self._transaction() as db:
            result = db.execute(delete(SigningKeyRow).where(SigningKeyRow.kid.in_(list(kids))))
            return int(result.rowcount)  # type: ignore[attr-defined]
