"""Mailed single-use tokens in SQL (mixed into ``SqlAlchemyStore``); see
``store.protocols.AccountTokenStore``.

A token is consumed by one conditional UPDATE (``... WHERE used_at IS NULL``): of two requests
with the same token, exactly one sees the row change. What the token does (verify, reset, change
the address) happens in that same transaction, after checking the token is still bound to the
user (same email, same password: ``core.account_tokens.is_bound_to``) under the user's row lock.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authgate.core.account_tokens import TokenPurpose, is_bound_to
from authgate.core.audit import AuditEvent
from authgate.errors import UserExistsError
from authgate.store.records import (
    AccountTokenRecord,
    OutgoingMail,
    RevocationKind,
    Revocations,
    UserRecord,
    UserStatus,
)
from authgate.store.sqlalchemy.audit import write_audit
from authgate.store.sqlalchemy.mail_outbox import insert_outbox_mail
from authgate.store.sqlalchemy.models import AccountTokenRow, IdentityRow, UserRow, user_record
from authgate.store.sqlalchemy.store_core import StoreCore


def _token_record(row: AccountTokenRow) -> AccountTokenRecord:
    return AccountTokenRecord(
        token_hash=row.token_hash,
        purpose=TokenPurpose(row.purpose),
        user_id=row.user_id,
        email=row.email,
        password_fingerprint=row.password_fingerprint,
        created_at=row.created_at,
        expires_at=row.expires_at,
        new_email=row.new_email,
    )


def _is_live(token: AccountTokenRow | AccountTokenRecord, user: UserRow | None) -> bool:
    """The token still belongs to the user as it is now, and the user may act."""
    return (
        user is not None
        and user.status == UserStatus.ACTIVE.value
        and is_bound_to(
            email=token.email,
            fingerprint=token.password_fingerprint,
            current_email=user.email,
            current_password_hash=user.password_hash,
        )
    )


def _consume(
    db: Session, token_hash: str, purpose: TokenPurpose, now: datetime
) -> tuple[AccountTokenRecord, UserRow] | None:
    """Use the token up (one conditional UPDATE: the first request wins) and lock its user;
    None when it is unknown, used, expired or no longer bound to the user."""
    used = db.scalar(
        update(AccountTokenRow)
        .where(
            AccountTokenRow.token_hash == token_hash,
            AccountTokenRow.purpose == purpose.value,
            AccountTokenRow.used_at.is_(None),
            AccountTokenRow.expires_at > now,
        )
        .values(used_at=now)
        .returning(AccountTokenRow)
    )
    if used is None:
        return None
    token = _token_record(used)
    user = db.get(UserRow, token.user_id, with_for_update=True, populate_existing=True)
    if user is None or not _is_live(token, user):
        return None
    return token, user


class AccountTokenStoreMixin:
    def create_account_token(
        self: StoreCore,
        token: AccountTokenRecord,
        mail: OutgoingMail,
        *,
        notice: OutgoingMail | None = None,
        audit: AuditEvent | None = None,
    ) -> None:
        with self._transaction() as db:
            write_audit(db, audit)
            # Expired tokens go when a new one is made (the index on expires_at finds them).
            db.execute(delete(AccountTokenRow).where(AccountTokenRow.expires_at < token.created_at))
            db.execute(
                insert(AccountTokenRow).values(
                    token_hash=token.token_hash,
                    purpose=token.purpose.value,
                    user_id=token.user_id,
                    email=token.email,
                    password_fingerprint=token.password_fingerprint,
                    new_email=token.new_email,
                    created_at=token.created_at,
                    expires_at=token.expires_at,
                    used_at=None,
                )
            )
            insert_outbox_mail(db, mail)
            if notice is not None:
                insert_outbox_mail(db, notice)

    def find_account_token(
        self: StoreCore, token_hash: str, purpose: TokenPurpose, *, now: datetime
    ) -> tuple[AccountTokenRecord, UserRecord] | None:
        with self._reader() as db:
            row = db.scalar(
                select(AccountTokenRow).where(
                    AccountTokenRow.token_hash == token_hash,
                    AccountTokenRow.purpose == purpose.value,
                    AccountTokenRow.used_at.is_(None),
                    AccountTokenRow.expires_at > now,
                )
            )
            if row is None:
                return None
            user = db.get(UserRow, row.user_id)
            if user is None or not _is_live(row, user):
                return None
            return _token_record(row), user_record(user)

    def verify_email_with_token(
        self: StoreCore, token_hash: str, *, now: datetime, audit: AuditEvent | None = None
    ) -> UserRecord | None:
        with self._transaction() as db:
            found = _consume(db, token_hash, TokenPurpose.VERIFY_EMAIL, now)
            if found is None:
                return None
            _, user = found
            if not user.email_verified:
                user.email_verified = True
                self._log(db, RevocationKind.USER, [user.id], now)
                write_audit(db, audit, user_id=user.id)
            return user_record(user)

    def reset_password_with_token(
        self: StoreCore,
        token_hash: str,
        password_hash: str,
        *,
        now: datetime,
        notice: OutgoingMail | None,
        audit: AuditEvent | None = None,
    ) -> tuple[UserRecord, Revocations] | None:
        with self._transaction() as db:
            found = _consume(db, token_hash, TokenPurpose.PASSWORD_RESET, now)
            if found is None:
                return None
            _, user = found
            # The reset link went to the address: it is the user's. If nobody had proven that
            # before, the account changes hands now (someone had registered an address that is
            # not theirs): what its previous holder set up to come back goes with its sessions.
            first_proof = not user.email_verified
            user.password_hash = password_hash
            user.email_verified = True
            db.flush()
            sessions = self._revoke_user_sessions(db, user.id, now)
            revoked: Revocations = [(RevocationKind.SESSION, s) for s in sessions]
            if first_proof:
                tokens = self._revoke_user_api_tokens(db, user.id, now)
                revoked += [(RevocationKind.API_TOKEN, t) for t in tokens]
                db.execute(delete(IdentityRow).where(IdentityRow.user_id == user.id))
            self._log(db, RevocationKind.USER, [user.id], now)
            if notice is not None:
                insert_outbox_mail(db, notice)
            if audit is not None:
                details = {"sessions_revoked": len(sessions), "first_proof": first_proof}
                write_audit(db, audit.with_details(**details), user_id=user.id)
            db.refresh(user)
            return user_record(user), revoked

    def change_email_with_token(
        self: StoreCore, token_hash: str, *, now: datetime, audit: AuditEvent | None = None
    ) -> UserRecord | None:
        """``UserExistsError`` (and the token left unused) when another account took the new
        address meanwhile."""
        try:
            with self._transaction() as db:
                found = _consume(db, token_hash, TokenPurpose.EMAIL_CHANGE, now)
                if found is None:
                    return None
                token, user = found
                assert token.new_email is not None
                key = token.new_email.casefold()
                taken = db.scalar(
                    select(UserRow.id).where(UserRow.email_key == key, UserRow.id != user.id)
                )
                if taken is not None:
                    raise UserExistsError("Another account uses this email address now.")
                if audit is not None:
                    moved = audit.with_details(**{"from": user.email, "to": token.new_email})
                    write_audit(db, moved, user_id=user.id)
                user.email = token.new_email
                user.email_key = key
                user.email_verified = True
                db.flush()
                self._log(db, RevocationKind.USER, [user.id], now)
                return user_record(user)
        except IntegrityError:
            raise UserExistsError("Another account uses this email address now.") from None
