"""Passkeys and WebAuthn challenges in SQL (mixed into ``SqlAlchemyStore``); see
``store.protocols.PasskeyStore``.

A challenge is consumed by one conditional DELETE: of two requests presenting the same challenge
exactly one deletes its row and goes on. A use of a passkey is recorded by one conditional
UPDATE that only moves the signature counter forward.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from authgate.core.audit import AuditEvent
from authgate.errors import PasskeyExistsError
from authgate.store.records import ChallengePurpose, PasskeyRecord, WebAuthnChallengeRecord
from authgate.store.sqlalchemy.audit import write_audit
from authgate.store.sqlalchemy.models import PasskeyRow, WebAuthnChallengeRow
from authgate.store.sqlalchemy.store_core import StoreCore


def credential_key(credential_id: str) -> str:
    """How a credential id (base64url) is indexed: its SHA-256, a fixed length."""
    return hashlib.sha256(credential_id.encode("ascii", "replace")).hexdigest()


def _record(row: PasskeyRow) -> PasskeyRecord:
    return PasskeyRecord(
        id=row.id,
        user_id=row.user_id,
        credential_id=row.credential_id,
        public_key=bytes(row.public_key),
        sign_count=row.sign_count,
        transports=tuple(json.loads(row.transports)),
        name=row.name,
        aaguid=row.aaguid,
        backup_eligible=row.backup_eligible,
        backed_up=row.backed_up,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


class PasskeyStoreMixin:
    # Challenges -------------------------------------------------------------------------------

    def create_webauthn_challenge(
        self: StoreCore, challenge: WebAuthnChallengeRecord, *, now: datetime
    ) -> None:
        with self._transaction() as db:
            db.execute(delete(WebAuthnChallengeRow).where(WebAuthnChallengeRow.expires_at <= now))
            db.execute(
                insert(WebAuthnChallengeRow).values(
                    challenge_hash=challenge.challenge_hash,
                    purpose=challenge.purpose.value,
                    user_id=challenge.user_id,
                    binding_hash=challenge.binding_hash,
                    created_at=challenge.created_at,
                    expires_at=challenge.expires_at,
                )
            )

    def consume_webauthn_challenge(
        self: StoreCore, challenge_hash: str, *, now: datetime
    ) -> WebAuthnChallengeRecord | None:
        """Delete the challenge; returned only if this request deleted it and it had not
        expired (an expired one is deleted all the same)."""
        with self._transaction() as db:
            row = db.get(WebAuthnChallengeRow, challenge_hash)
            if row is None:
                return None
            deleted = db.execute(
                delete(WebAuthnChallengeRow).where(
                    WebAuthnChallengeRow.challenge_hash == challenge_hash
                )
            )
            if deleted.rowcount != 1 or row.expires_at <= now:  # type: ignore[attr-defined]
                return None
            return WebAuthnChallengeRecord(
                challenge_hash=row.challenge_hash,
                purpose=ChallengePurpose(row.purpose),
                user_id=row.user_id,
                binding_hash=row.binding_hash,
                created_at=row.created_at,
                expires_at=row.expires_at,
            )

    # Passkeys ---------------------------------------------------------------------------------

    def add_passkey(
        self: StoreCore, passkey: PasskeyRecord, *, audit: AuditEvent | None = None
    ) -> None:
        try:
            with self._transaction() as db:
                write_audit(db, audit)
                db.execute(
                    insert(PasskeyRow).values(
                        id=passkey.id,
                        user_id=passkey.user_id,
                        credential_key=credential_key(passkey.credential_id),
                        credential_id=passkey.credential_id,
                        public_key=passkey.public_key,
                        sign_count=passkey.sign_count,
                        transports=json.dumps(list(passkey.transports)),
                        name=passkey.name,
                        aaguid=passkey.aaguid,
                        backup_eligible=passkey.backup_eligible,
                        backed_up=passkey.backed_up,
                        created_at=passkey.created_at,
                        last_used_at=passkey.last_used_at,
                    )
                )
        except IntegrityError:
            raise PasskeyExistsError() from None

    def list_passkeys(self: StoreCore, user_id: str) -> list[PasskeyRecord]:
        with self._reader() as db:
            rows = db.scalars(
                select(PasskeyRow)
                .where(PasskeyRow.user_id == user_id)
                .order_by(PasskeyRow.created_at, PasskeyRow.id)
            ).all()
            return [_record(row) for row in rows]

    def find_passkey(self: StoreCore, credential_id: str) -> PasskeyRecord | None:
        with self._reader() as db:
            row = db.scalar(
                select(PasskeyRow).where(PasskeyRow.credential_key == credential_key(credential_id))
            )
            # The key is a hash: the id itself must match too.
            return _record(row) if row and row.credential_id == credential_id else None

    def rename_passkey(
        self: StoreCore, user_id: str, passkey_id: str, name: str
    ) -> PasskeyRecord | None:
        with self._transaction() as db:
            row = db.scalar(
                select(PasskeyRow).where(PasskeyRow.id == passkey_id, PasskeyRow.user_id == user_id)
            )
            if row is None:
                return None
            row.name = name
            db.flush()
            return _record(row)

    def delete_passkey(
        self: StoreCore, user_id: str, passkey_id: str, *, audit: AuditEvent | None = None
    ) -> bool:
        with self._transaction() as db:
            deleted = db.execute(
                delete(PasskeyRow).where(PasskeyRow.id == passkey_id, PasskeyRow.user_id == user_id)
            )
            if not deleted.rowcount:  # type: ignore[attr-defined]
                return False
            write_audit(db, audit)
            return True

    def record_passkey_use(
        self: StoreCore, passkey_id: str, *, sign_count: int, backed_up: bool, now: datetime
    ) -> bool:
        if sign_count == 0:  # an authenticator without a counter keeps sending 0
            moved_on = PasskeyRow.sign_count == 0
        else:
            moved_on = PasskeyRow.sign_count < sign_count
        with self._transaction() as db:
            updated = db.execute(
                update(PasskeyRow)
                .where(PasskeyRow.id == passkey_id, moved_on)
                .values(sign_count=sign_count, backed_up=backed_up, last_used_at=now)
            )
            return bool(updated.rowcount)  # type: ignore[attr-defined]
