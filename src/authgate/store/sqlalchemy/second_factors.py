"""Second factors in SQL (mixed into ``SqlAlchemyStore``); see
``store.protocols.SecondFactorStore``.

Whatever may be used once is consumed by one conditional statement: a TOTP step by
``UPDATE ... WHERE last_used_step < :step``, a recovery code and an mfa challenge by ``DELETE``,
an attempt of a challenge by ``UPDATE ... WHERE attempts < :max`` — of two concurrent requests,
exactly one sees the row change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Executable,
    Row,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from authgate.core.audit import AuditEvent
from authgate.store.records import (
    MfaChallengeRecord,
    MfaPurpose,
    TotpRecord,
)
from authgate.store.sqlalchemy.audit import write_audit
from authgate.store.sqlalchemy.models import (
    MfaChallengeRow,
    PasskeyRow,
    RecoveryCodeRow,
    TotpSecretRow,
    UserRow,
)
from authgate.store.sqlalchemy.store_core import StoreCore


def _totp_record(row: TotpSecretRow) -> TotpRecord:
    return TotpRecord(
        user_id=row.user_id,
        sealed_secret=row.sealed_secret,
        created_at=row.created_at,
        confirmed_at=row.confirmed_at,
        last_used_step=row.last_used_step,
    )


def _challenge_record(row: Row[Any]) -> MfaChallengeRecord:
    return MfaChallengeRecord(
        token_hash=row.token_hash,
        user_id=row.user_id,
        purpose=MfaPurpose(row.purpose),
        browser_hash=row.browser_hash,
        throttle_key=row.throttle_key,
        session_epoch=row.session_epoch,
        amr=tuple(row.amr.split()),
        password_hash=row.password_hash,
        attempts=row.attempts,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _changed(db: Session, statement: Executable) -> int:
    """How many rows an UPDATE or DELETE changed."""
    return cast("CursorResult[Any]", db.execute(statement)).rowcount


def _insert_codes(db: Session, user_id: str, code_hashes: Sequence[str], now: datetime) -> None:
    db.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id))
    if code_hashes:
        db.execute(
            insert(RecoveryCodeRow),
            [{"code_hash": h, "user_id": user_id, "created_at": now} for h in code_hashes],
        )


class SecondFactorStoreMixin:
    # TOTP --------------------------------------------------------------------------------------

    def get_totp(self: StoreCore, user_id: str) -> TotpRecord | None:
        with self._reader() as db:
            row = db.get(TotpSecretRow, user_id)
            return _totp_record(row) if row else None

    def begin_totp(self: StoreCore, user_id: str, sealed_secret: str, *, now: datetime) -> bool:
        with self._transaction() as db:
            # The user's row lock orders this against a concurrent confirmation or removal.
            db.execute(select(UserRow.id).where(UserRow.id == user_id).with_for_update())
            row = db.get(TotpSecretRow, user_id)
            if row is not None and row.confirmed_at is not None:
                return False
            if row is None:
                db.add(
                    TotpSecretRow(
                        user_id=user_id,
                        sealed_secret=sealed_secret,
                        created_at=now,
                        confirmed_at=None,
                        last_used_step=None,
                    )
                )
            else:
                row.sealed_secret = sealed_secret
                row.created_at = now
                row.last_used_step = None
            return True

    def confirm_totp(
        self: StoreCore,
        user_id: str,
        *,
        sealed_secret: str,
        step: int,
        code_hashes: Sequence[str],
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> bool:
        with self._transaction() as db:
            confirmed = _changed(
                db,
                update(TotpSecretRow)
                .where(
                    TotpSecretRow.user_id == user_id,
                    TotpSecretRow.sealed_secret == sealed_secret,
                    TotpSecretRow.confirmed_at.is_(None),
                )
                .values(confirmed_at=now, last_used_step=step),
            )
            if confirmed != 1:
                return False
            _insert_codes(db, user_id, code_hashes, now)
            write_audit(db, audit)
            return True

    def second_factor_counts(self: StoreCore, user_id: str) -> tuple[bool, int, int]:
        # Every password login asks: one statement, one round trip.
        with self._autocommit.connect() as db:
            row = db.execute(
                select(
                    select(TotpSecretRow.user_id)
                    .where(
                        TotpSecretRow.user_id == user_id, TotpSecretRow.confirmed_at.is_not(None)
                    )
                    .exists()
                    .label("totp"),
                    select(func.count())
                    .select_from(PasskeyRow)
                    .where(PasskeyRow.user_id == user_id)
                    .scalar_subquery()
                    .label("passkeys"),
                    select(func.count())
                    .select_from(RecoveryCodeRow)
                    .where(RecoveryCodeRow.user_id == user_id)
                    .scalar_subquery()
                    .label("codes"),
                )
            ).one()
            return bool(row.totp), int(row.passkeys or 0), int(row.codes or 0)

    def use_totp_step(self: StoreCore, user_id: str, step: int) -> bool:
        with self._transaction() as db:
            used = _changed(
                db,
                update(TotpSecretRow)
                .where(
                    TotpSecretRow.user_id == user_id,
                    TotpSecretRow.confirmed_at.is_not(None),
                    or_(
                        TotpSecretRow.last_used_step.is_(None),
                        TotpSecretRow.last_used_step < step,
                    ),
                )
                .values(last_used_step=step),
            )
            return used == 1

    def delete_totp(self: StoreCore, user_id: str, *, audit: AuditEvent | None = None) -> bool:
        with self._transaction() as db:
            deleted = _changed(db, delete(TotpSecretRow).where(TotpSecretRow.user_id == user_id))
            db.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id))
            if deleted == 1:
                write_audit(db, audit)
            return deleted == 1

    # Recovery codes ----------------------------------------------------------------------------

    def replace_recovery_codes(
        self: StoreCore,
        user_id: str,
        code_hashes: Sequence[str],
        *,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> None:
        with self._transaction() as db:
            _insert_codes(db, user_id, code_hashes, now)
            write_audit(db, audit)

    def use_recovery_code(self: StoreCore, user_id: str, code_hash: str) -> bool:
        with self._transaction() as db:
            used = _changed(
                db,
                delete(RecoveryCodeRow).where(
                    RecoveryCodeRow.code_hash == code_hash, RecoveryCodeRow.user_id == user_id
                ),
            )
            return used == 1

    def count_recovery_codes(self: StoreCore, user_id: str) -> int:
        with self._reader() as db:
            return int(
                db.scalar(
                    select(func.count())
                    .select_from(RecoveryCodeRow)
                    .where(RecoveryCodeRow.user_id == user_id)
                )
                or 0
            )

    # Mfa challenges ----------------------------------------------------------------------------

    def create_mfa_challenge(self: StoreCore, challenge: MfaChallengeRecord) -> None:
        values = asdict(challenge)
        values["purpose"] = challenge.purpose.value
        values["amr"] = " ".join(challenge.amr)
        with self._transaction() as db:
            db.execute(insert(MfaChallengeRow), values)

    def attempt_mfa_challenge(
        self: StoreCore,
        token_hash: str,
        *,
        browser_hash: str | None,
        max_attempts: int,
        now: datetime,
    ) -> MfaChallengeRecord | None:
        table = MfaChallengeRow.__table__
        bound: ColumnElement[bool] = MfaChallengeRow.browser_hash.is_(None)
        if browser_hash is not None:
            bound = or_(bound, MfaChallengeRow.browser_hash == browser_hash)
        with self._transaction() as db:
            row = db.execute(
                update(MfaChallengeRow)
                .where(
                    MfaChallengeRow.token_hash == token_hash,
                    MfaChallengeRow.expires_at > now,
                    MfaChallengeRow.attempts < max_attempts,
                    bound,
                )
                .values(attempts=MfaChallengeRow.attempts + 1)
                .returning(*table.c)
            ).first()
            return _challenge_record(row) if row else None

    def finish_mfa_challenge(self: StoreCore, token_hash: str) -> bool:
        with self._transaction() as db:
            deleted = _changed(
                db, delete(MfaChallengeRow).where(MfaChallengeRow.token_hash == token_hash)
            )
            return deleted == 1

    def prune_mfa_challenges(self: StoreCore, *, now: datetime) -> int:
        with self._transaction() as db:
            return int(
                _changed(db, delete(MfaChallengeRow).where(MfaChallengeRow.expires_at <= now))
            )

    # Removal -----------------------------------------------------------------------------------

    def remove_second_factors(
        self: StoreCore, user_id: str, *, now: datetime, audit: AuditEvent | None = None
    ) -> list[str] | None:
        with self._transaction() as db:
            if db.get(UserRow, user_id) is None:
                return None
            revoked = self._revoke_user_sessions(db, user_id, now)
            for model in (TotpSecretRow, RecoveryCodeRow, MfaChallengeRow, PasskeyRow):
                db.execute(delete(model).where(model.user_id == user_id))
            if audit is not None:
                write_audit(db, audit.with_details(sessions_revoked=len(revoked)))
            return revoked
