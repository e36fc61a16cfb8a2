"""Tenant invitations in SQL (mixed into ``SqlAlchemyStore``); see
``store.protocols.InvitationStore``.

An invitation is accepted by one conditional UPDATE (``... WHERE accepted_at IS NULL AND
revoked_at IS NULL``), in the transaction that adds the membership: of two requests with the
same token exactly one joins, and a failed join leaves the invitation open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from authgate.core.audit import AuditEvent
from authgate.errors import ConflictError
from authgate.store.records import (
    InvitationRecord,
    OutgoingMail,
    RevocationKind,
    Revocations,
    TenantRole,
    membership_subject,
)
from authgate.store.sqlalchemy.audit import write_audit
from authgate.store.sqlalchemy.mail_outbox import insert_outbox_mail
from authgate.store.sqlalchemy.models import InvitationRow, MembershipRow, TenantRow, UserRow
from authgate.store.sqlalchemy.store_core import StoreCore

_ALREADY_MEMBER = "This account is already a member of the tenant."


_INVITER = aliased(UserRow)


def _described() -> Select[InvitationRow, str, str | None, str]:
    """Invitations with their tenant's name and their inviter's name (or email)."""
    return (
        select(InvitationRow, TenantRow.name, _INVITER.name, _INVITER.email)
        .join(TenantRow, TenantRow.id == InvitationRow.tenant_id)
        .outerjoin(_INVITER, _INVITER.id == InvitationRow.inviter_id)
    )


def _record(described: Row[InvitationRow, str, str | None, str]) -> InvitationRecord:
    row, tenant_name, name, email = described
    return InvitationRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        tenant_name=tenant_name,
        email=row.email,
        role=TenantRole(row.role),
        inviter_id=row.inviter_id,
        inviter_name=name or email,
        created_at=row.created_at,
        expires_at=row.expires_at,
        accepted_at=row.accepted_at,
        revoked_at=row.revoked_at,
    )


def _open(now: datetime) -> tuple[Any, ...]:
    return (
        InvitationRow.accepted_at.is_(None),
        InvitationRow.revoked_at.is_(None),
        InvitationRow.expires_at > now,
    )


class InvitationStoreMixin:
    def create_invitation(
        self: StoreCore,
        invitation: InvitationRecord,
        token_hash: str,
        mail: OutgoingMail,
        *,
        audit: AuditEvent | None = None,
    ) -> None:
        """Record the invitation and queue its mail at once; an open invitation of the same
        address to the same tenant is revoked (the new one replaces it)."""
        key = invitation.email.casefold()
        with self._transaction() as db:
            db.execute(
                update(InvitationRow)
                .where(
                    InvitationRow.tenant_id == invitation.tenant_id,
                    InvitationRow.email_key == key,
                    *_open(invitation.created_at),
                )
                .values(revoked_at=invitation.created_at)
            )
            db.execute(
                insert(InvitationRow).values(
                    id=invitation.id,
                    tenant_id=invitation.tenant_id,
                    email=invitation.email,
                    email_key=key,
                    role=invitation.role.value,
                    inviter_id=invitation.inviter_id,
                    token_hash=token_hash,
                    created_at=invitation.created_at,
                    expires_at=invitation.expires_at,
                )
            )
            insert_outbox_mail(db, mail)
            write_audit(db, audit)

    def list_invitations(
        self: StoreCore, tenant_id: str, *, now: datetime
    ) -> list[InvitationRecord]:
        """The tenant's open invitations (not accepted, revoked or expired), oldest first."""
        with self._reader() as db:
            rows = db.execute(
                _described()
                .where(InvitationRow.tenant_id == tenant_id, *_open(now))
                .order_by(InvitationRow.created_at, InvitationRow.id)
            ).all()
            return [_record(row) for row in rows]

    def revoke_invitation(
        self: StoreCore, tenant_id: str, invitation_id: str, *, now: datetime
    ) -> bool:
        with self._transaction() as db:
            result = db.execute(
                update(InvitationRow)
                .where(
                    InvitationRow.id == invitation_id,
                    InvitationRow.tenant_id == tenant_id,
                    *_open(now),
                )
                .values(revoked_at=now)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def find_invitation(
        self: StoreCore, token_hash: str, *, now: datetime
    ) -> InvitationRecord | None:
        with self._reader() as db:
            row = db.execute(
                _described().where(InvitationRow.token_hash == token_hash, *_open(now))
            ).first()
            return _record(row) if row else None

    def accept_invitation(
        self: StoreCore,
        token_hash: str,
        *,
        user_id: str,
        email: str,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> tuple[InvitationRecord, Revocations] | None:
        """Join the tenant with the invitation's role, if it is open and addressed to
        ``email``; the address counts as verified from then on (the mailed link reached it).
        ``ConflictError`` (the invitation left open) when the user is a member already."""
        try:
            with self._transaction() as db:
                accepted = db.scalar(
                    update(InvitationRow)
                    .where(
                        InvitationRow.token_hash == token_hash,
                        InvitationRow.email_key == email.casefold(),
                        *_open(now),
                    )
                    .values(accepted_at=now, accepted_by=user_id)
                    .returning(InvitationRow.id)
                )
                if accepted is None:
                    return None
                row = db.execute(_described().where(InvitationRow.id == accepted)).one()
                invitation = _record(row)
                member = db.scalar(
                    select(MembershipRow.user_id).where(
                        MembershipRow.tenant_id == invitation.tenant_id,
                        MembershipRow.user_id == user_id,
                    )
                )
                if member is not None:
                    raise ConflictError(_ALREADY_MEMBER)
                db.execute(
                    insert(MembershipRow).values(
                        tenant_id=invitation.tenant_id,
                        user_id=user_id,
                        role=invitation.role.value,
                        created_at=now,
                    )
                )
                db.execute(
                    update(UserRow)
                    .where(UserRow.id == user_id, UserRow.email_key == email.casefold())
                    .values(email_verified=True)
                )
                subject = membership_subject(invitation.tenant_id, user_id)
                self._log(db, RevocationKind.MEMBERSHIP, [subject], now)
                self._log(db, RevocationKind.USER, [user_id], now)
                if audit is not None:
                    joined = audit.with_details(
                        invitation_id=invitation.id, role=invitation.role.value
                    )
                    write_audit(db, joined, tenant_id=invitation.tenant_id)
        except IntegrityError:
            raise ConflictError(_ALREADY_MEMBER) from None
        return invitation, [(RevocationKind.MEMBERSHIP, subject), (RevocationKind.USER, user_id)]
