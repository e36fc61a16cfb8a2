"""Provider identities and OAuth flows in SQL (mixed into ``SqlAlchemyStore``)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from authgate.core.audit import AuditEvent
from authgate.errors import OAuthIdentityTakenError, UserExistsError
from authgate.store.records import (
    IdentityRecord,
    LoginHandoffRecord,
    OAuthFlowRecord,
    UserRecord,
    UserStatus,
)
from authgate.store.sqlalchemy.audit import write_audit
from authgate.store.sqlalchemy.models import (
    IdentityRow,
    LoginHandoffRow,
    OAuthFlowRow,
    UserRow,
    user_record,
)
from authgate.store.sqlalchemy.store_core import StoreCore
from authgate.store.sqlalchemy.tenants import add_personal_tenant

UnlinkOutcome = Literal["unlinked", "not_found", "last_login_method"]


def _identity_record(row: IdentityRow) -> IdentityRecord:
    return IdentityRecord(
        id=row.id,
        user_id=row.user_id,
        provider=row.provider,
        subject=row.subject,
        email=row.email,
        linked_at=row.linked_at,
        last_login_at=row.last_login_at,
    )


def _flow_record(row: OAuthFlowRow) -> OAuthFlowRecord:
    return OAuthFlowRecord(
        state_hash=row.state_hash,
        binding_hash=row.binding_hash,
        provider=row.provider,
        nonce=row.nonce,
        code_verifier=row.code_verifier,
        redirect_to=row.redirect_to,
        user_id=row.user_id,
        session_id=row.session_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        handoff_challenge=row.handoff_challenge,
    )


def _identity_row(
    user_id: str, provider: str, subject: str, email: str | None, now: datetime
) -> IdentityRow:
    return IdentityRow(
        id=secrets.token_hex(12),
        user_id=user_id,
        provider=provider,
        subject=subject,
        email=email,
        linked_at=now,
        last_login_at=now,
    )


class IdentityStoreMixin:
    """Identities at login providers and the short-lived state of flows in progress."""

    # Flows -----------------------------------------------------------------------------------

    def create_oauth_flow(self: StoreCore, flow: OAuthFlowRecord, *, now: datetime) -> None:
        with self._transaction() as db:
            # Abandoned flows (the user never came back) go when the next one starts.
            db.execute(delete(OAuthFlowRow).where(OAuthFlowRow.expires_at < now))
            db.add(OAuthFlowRow(**{f: getattr(flow, f) for f in OAuthFlowRecord.__slots__}))

    def consume_oauth_flow(
        self: StoreCore, state_hash: str, *, now: datetime
    ) -> OAuthFlowRecord | None:
        """Take the flow out: it can be used once, by whichever request deletes it first."""
        with self._transaction() as db:
            row = db.get(OAuthFlowRow, state_hash)
            if row is None:
                return None
            deleted = db.execute(delete(OAuthFlowRow).where(OAuthFlowRow.state_hash == state_hash))
            if deleted.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return _flow_record(row) if row.expires_at > now else None

    def create_login_handoff(
        self: StoreCore, handoff: LoginHandoffRecord, *, now: datetime
    ) -> None:
        with self._transaction() as db:
            db.execute(delete(LoginHandoffRow).where(LoginHandoffRow.expires_at < now))
            db.add(LoginHandoffRow(**{f: getattr(handoff, f) for f in handoff.__slots__}))

    def consume_login_handoff(
        self: StoreCore, code_hash: str, *, now: datetime
    ) -> LoginHandoffRecord | None:
        """Take the handoff out: usable once, before it expires."""
        with self._transaction() as db:
            row = db.get(LoginHandoffRow, code_hash)
            if row is None:
                return None
            deleted = db.execute(
                delete(LoginHandoffRow).where(LoginHandoffRow.code_hash == code_hash)
            )
            if deleted.rowcount != 1 or row.expires_at <= now:  # type: ignore[attr-defined]
                return None
            return LoginHandoffRecord(
                code_hash=row.code_hash,
                user_id=row.user_id,
                challenge=row.challenge,
                provider=row.provider,
                expires_at=row.expires_at,
            )

    # Identities ------------------------------------------------------------------------------

    def find_identity(self: StoreCore, provider: str, subject: str) -> IdentityRecord | None:
        with self._reader() as db:
            row = db.scalar(
                select(IdentityRow).where(
                    IdentityRow.provider == provider, IdentityRow.subject == subject
                )
            )
            return _identity_record(row) if row else None

    def find_user_by_email(self: StoreCore, email: str) -> UserRecord | None:
        with self._reader() as db:
            row = db.scalar(select(UserRow).where(UserRow.email_key == email.casefold()))
            return user_record(row) if row else None

    def create_user_with_identity(
        self: StoreCore,
        *,
        email: str,
        name: str | None,
        avatar_url: str | None,
        email_verified: bool,
        roles: Sequence[str],
        provider: str,
        subject: str,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> UserRecord:
        """A new user (no password), their personal tenant and their first identity, at once.
        ``UserExistsError`` when the email or the identity was taken meanwhile."""
        row = UserRow(
            id=secrets.token_hex(12),
            email=email,
            email_key=email.casefold(),
            username=None,
            username_key=None,
            name=name,
            password_hash=None,
            roles=json.dumps(list(roles)),
            status=UserStatus.ACTIVE.value,
            email_verified=email_verified,
            created_at=now,
            last_login_at=None,
            avatar_url=avatar_url,
        )
        try:
            with self._transaction() as db:
                db.add(row)
                db.flush()
                add_personal_tenant(db, row.id, now)
                db.add(_identity_row(row.id, provider, subject, email, now))
                db.flush()
                write_audit(db, audit, user_id=row.id)
        except IntegrityError:
            raise UserExistsError() from None
        return user_record(row)

    def link_identity(
        self: StoreCore,
        user_id: str,
        *,
        provider: str,
        subject: str,
        email: str | None,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> IdentityRecord:
        """``OAuthIdentityTakenError`` when this identity belongs to someone already."""
        row = _identity_row(user_id, provider, subject, email, now)
        try:
            with self._transaction() as db:
                db.add(row)
                db.flush()
                write_audit(db, audit)
        except IntegrityError:
            raise OAuthIdentityTakenError() from None
        return _identity_record(row)

    def record_identity_login(
        self: StoreCore, identity_id: str, *, email: str | None, now: datetime
    ) -> None:
        with self._transaction() as db:
            db.execute(
                update(IdentityRow)
                .where(IdentityRow.id == identity_id)
                .values(email=email, last_login_at=now)
            )

    def list_identities(self: StoreCore, user_id: str) -> list[IdentityRecord]:
        with self._reader() as db:
            rows = db.scalars(
                select(IdentityRow)
                .where(IdentityRow.user_id == user_id)
                .order_by(IdentityRow.linked_at, IdentityRow.id)
            ).all()
            return [_identity_record(r) for r in rows]

    def unlink_identity(
        self: StoreCore,
        user_id: str,
        identity_id: str,
        *,
        login_providers: Collection[str],
        audit: AuditEvent | None = None,
    ) -> UnlinkOutcome:
        """Remove one of the user's identities unless it is their last way to log in (no
        password, no other identity of a provider in ``login_providers``, the ones configured);
        decided under a lock on the user's row."""
        others = aliased(IdentityRow)
        still_can_log_in = or_(
            exists().where(UserRow.id == user_id, UserRow.password_hash.is_not(None)),
            exists().where(
                others.user_id == user_id,
                others.id != identity_id,
                others.provider.in_(tuple(login_providers)),
            ),
        )
        with self._transaction() as db:
            # PostgreSQL: unlinks of one user queue on the user's row. SQLite: the conditional
            # delete below is one statement, and SQLite runs writes one at a time.
            db.execute(select(UserRow.id).where(UserRow.id == user_id).with_for_update())
            deleted = db.execute(
                delete(IdentityRow)
                .where(
                    IdentityRow.id == identity_id,
                    IdentityRow.user_id == user_id,
                    still_can_log_in,
                )
                .returning(IdentityRow.provider)
            ).first()
            if deleted is not None:
                if audit is not None:
                    write_audit(db, audit.with_details(provider=deleted.provider))
                return "unlinked"
            owned = db.scalar(
                select(IdentityRow.id).where(
                    IdentityRow.id == identity_id, IdentityRow.user_id == user_id
                )
            )
            return "last_login_method" if owned else "not_found"
