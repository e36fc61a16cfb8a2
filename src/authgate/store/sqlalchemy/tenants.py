"""Tenants, memberships and API tokens in SQL (mixed into ``SqlAlchemyStore``)."""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from sqlalchemy import Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authgate.core.audit import AuditEvent
from authgate.errors import ConflictError
from authgate.store.records import (
    ApiTokenRecord,
    MemberRecord,
    RevocationKind,
    Revocations,
    TenantRecord,
    TenantRole,
    UserRecord,
    membership_subject,
)
from authgate.store.sqlalchemy.audit import write_audit
from authgate.store.sqlalchemy.models import (
    ApiTokenRow,
    MembershipRow,
    TenantRow,
    UserRow,
    columns_by_name,
    split_user_row,
)
from authgate.store.sqlalchemy.store_core import StoreCore

PERSONAL_TENANT_NAME = "Personal"

# An API token's first request in a process: the token, its user (whose deletion deletes its
# tokens) and the user's role in the token's tenant (none once no longer a member), in one
# statement; its columns are the user's, the token's, then the role.
_TOKENS, _USERS, _MEMBERSHIPS = ApiTokenRow.__table__, UserRow.__table__, MembershipRow.__table__
assert isinstance(_TOKENS, Table) and isinstance(_USERS, Table) and isinstance(_MEMBERSHIPS, Table)
_GET_API_TOKEN_WITH_OWNER = (
    select(
        _USERS,
        *(column.label(f"t_{column.name}") for column in _TOKENS.c),
        _MEMBERSHIPS.c.role.label("m_role"),
    )
    .select_from(
        _TOKENS.join(_USERS, _USERS.c.id == _TOKENS.c.user_id).outerjoin(
            _MEMBERSHIPS,
            and_(
                _MEMBERSHIPS.c.tenant_id == _TOKENS.c.tenant_id,
                _MEMBERSHIPS.c.user_id == _TOKENS.c.user_id,
            ),
        )
    )
    .where(_TOKENS.c.id == bindparam("id"))
)
_TOKEN_KEYS = tuple(column.name for column in _TOKENS.c)


def _tenant_record(row: TenantRow) -> TenantRecord:
    return TenantRecord(
        id=row.id,
        name=row.name,
        personal=row.personal_owner_id is not None,
        created_at=row.created_at,
    )


def _token_record(row: ApiTokenRow) -> ApiTokenRecord:
    return ApiTokenRecord(
        id=row.id,
        user_id=row.user_id,
        tenant_id=row.tenant_id,
        name=row.name,
        secret_hash=row.secret_hash,
        scopes=tuple(json.loads(row.scopes)),
        resource=row.resource,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        last_used_ip=row.last_used_ip,
    )


def add_personal_tenant(db: Session, user_id: str, now: datetime) -> None:
    """Every user's own tenant, created with the user in the same transaction."""
    tenant_id = secrets.token_hex(12)
    db.execute(
        insert(TenantRow).values(
            id=tenant_id, name=PERSONAL_TENANT_NAME, personal_owner_id=user_id, created_at=now
        )
    )
    db.execute(
        insert(MembershipRow).values(
            tenant_id=tenant_id, user_id=user_id, role=TenantRole.OWNER.value, created_at=now
        )
    )


class TenantStoreMixin:
    # Tenants ---------------------------------------------------------------------------------

    def create_tenant(
        self: StoreCore,
        *,
        name: str,
        owner_id: str,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> TenantRecord:
        row = TenantRow(id=secrets.token_hex(12), name=name, personal_owner_id=None, created_at=now)
        with self._transaction() as db:
            db.add(row)
            db.flush()
            db.add(
                MembershipRow(
                    tenant_id=row.id,
                    user_id=owner_id,
                    role=TenantRole.OWNER.value,
                    created_at=now,
                )
            )
            write_audit(db, audit, tenant_id=row.id)
        return _tenant_record(row)

    def get_tenant(self: StoreCore, tenant_id: str) -> TenantRecord | None:
        with self._reader() as db:
            row = db.get(TenantRow, tenant_id)
            return _tenant_record(row) if row else None

    def personal_tenant_id(self: StoreCore, user_id: str) -> str | None:
        with self._reader() as db:
            return db.scalar(select(TenantRow.id).where(TenantRow.personal_owner_id == user_id))

    def list_user_tenants(self: StoreCore, user_id: str) -> list[tuple[TenantRecord, TenantRole]]:
        with self._reader() as db:
            rows = db.execute(
                select(TenantRow, MembershipRow.role)
                .join(MembershipRow, MembershipRow.tenant_id == TenantRow.id)
                .where(MembershipRow.user_id == user_id)
                .order_by(TenantRow.personal_owner_id.is_(None), TenantRow.created_at, TenantRow.id)
            ).all()
            return [(_tenant_record(t), TenantRole(role)) for t, role in rows]

    def rename_tenant(self: StoreCore, tenant_id: str, name: str) -> TenantRecord | None:
        with self._transaction() as db:
            row = db.get(TenantRow, tenant_id)
            if row is None:
                return None
            row.name = name
            return _tenant_record(row)

    def delete_tenant(
        self: StoreCore, tenant_id: str, *, now: datetime, audit: AuditEvent | None = None
    ) -> Revocations | None:
        """Delete a tenant, its memberships and its API tokens (all logged as revoked); what
        was revoked, or None when there is no such tenant."""
        with self._transaction() as db:
            members = list(
                db.scalars(
                    select(MembershipRow.user_id).where(MembershipRow.tenant_id == tenant_id)
                )
            )
            tokens = list(
                db.scalars(select(ApiTokenRow.id).where(ApiTokenRow.tenant_id == tenant_id))
            )
            db.execute(delete(ApiTokenRow).where(ApiTokenRow.tenant_id == tenant_id))
            db.execute(delete(MembershipRow).where(MembershipRow.tenant_id == tenant_id))
            result = db.execute(delete(TenantRow).where(TenantRow.id == tenant_id))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                return None
            subjects = [membership_subject(tenant_id, user_id) for user_id in members]
            self._log(db, RevocationKind.API_TOKEN, tokens, now)
            self._log(db, RevocationKind.MEMBERSHIP, subjects, now)
            write_audit(db, audit)
            return [(RevocationKind.API_TOKEN, t) for t in tokens] + [
                (RevocationKind.MEMBERSHIP, s) for s in subjects
            ]

    # Memberships -----------------------------------------------------------------------------

    def get_member_role(self: StoreCore, tenant_id: str, user_id: str) -> TenantRole | None:
        with self._reader() as db:
            role = db.scalar(
                select(MembershipRow.role).where(
                    MembershipRow.tenant_id == tenant_id, MembershipRow.user_id == user_id
                )
            )
            return TenantRole(role) if role else None

    def list_members(self: StoreCore, tenant_id: str) -> list[MemberRecord]:
        with self._reader() as db:
            rows = db.execute(
                select(MembershipRow, UserRow.email, UserRow.name)
                .join(UserRow, UserRow.id == MembershipRow.user_id)
                .where(MembershipRow.tenant_id == tenant_id)
                .order_by(MembershipRow.created_at, UserRow.email_key)
            ).all()
            return [
                MemberRecord(m.tenant_id, m.user_id, email, name, TenantRole(m.role), m.created_at)
                for m, email, name in rows
            ]

    def add_member(
        self: StoreCore,
        tenant_id: str,
        user_id: str,
        role: TenantRole,
        *,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> None:
        try:
            with self._transaction() as db:
                db.execute(
                    insert(MembershipRow).values(
                        tenant_id=tenant_id, user_id=user_id, role=role.value, created_at=now
                    )
                )
                self._log(
                    db, RevocationKind.MEMBERSHIP, [membership_subject(tenant_id, user_id)], now
                )
                write_audit(db, audit)
        except IntegrityError:
            raise ConflictError("This user is already a member of the tenant.") from None

    def set_member_role(
        self: StoreCore,
        tenant_id: str,
        user_id: str,
        role: TenantRole,
        *,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> bool:
        with self._transaction() as db:
            _lock_tenant(db, tenant_id)
            current = _member_role(db, tenant_id, user_id)
            if current is None:
                return False
            if current is TenantRole.OWNER and role is not TenantRole.OWNER:
                _refuse_last_owner(db, tenant_id)
            db.execute(
                update(MembershipRow)
                .where(MembershipRow.tenant_id == tenant_id, MembershipRow.user_id == user_id)
                .values(role=role.value)
            )
            self._log(db, RevocationKind.MEMBERSHIP, [membership_subject(tenant_id, user_id)], now)
            if audit is not None and current is not role:
                write_audit(db, audit.with_details(before=current.value))
            return True

    def remove_member(
        self: StoreCore,
        tenant_id: str,
        user_id: str,
        *,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> Revocations | None:
        """Remove a member and revoke their API tokens for this tenant; what was revoked, or
        None when not a member."""
        with self._transaction() as db:
            _lock_tenant(db, tenant_id)
            current = _member_role(db, tenant_id, user_id)
            if current is None:
                return None
            if current is TenantRole.OWNER:
                _refuse_last_owner(db, tenant_id)
            db.execute(
                delete(MembershipRow).where(
                    MembershipRow.tenant_id == tenant_id, MembershipRow.user_id == user_id
                )
            )
            tokens = list(
                db.scalars(
                    select(ApiTokenRow.id).where(
                        ApiTokenRow.tenant_id == tenant_id,
                        ApiTokenRow.user_id == user_id,
                        ApiTokenRow.revoked_at.is_(None),
                    )
                )
            )
            if tokens:
                db.execute(
                    update(ApiTokenRow).where(ApiTokenRow.id.in_(tokens)).values(revoked_at=now)
                )
            subject = membership_subject(tenant_id, user_id)
            self._log(db, RevocationKind.API_TOKEN, tokens, now)
            self._log(db, RevocationKind.MEMBERSHIP, [subject], now)
            if audit is not None:
                write_audit(db, audit.with_details(role=current.value, api_tokens=len(tokens)))
            return [(RevocationKind.API_TOKEN, t) for t in tokens] + [
                (RevocationKind.MEMBERSHIP, subject)
            ]

    def sole_owned_tenants(self: StoreCore, user_id: str) -> list[str]:
        """Shared tenants in which ``user_id`` is the only owner."""
        owners = (
            select(MembershipRow.tenant_id)
            .where(MembershipRow.role == TenantRole.OWNER.value)
            .group_by(MembershipRow.tenant_id)
            .having(func.count() == 1)
        )
        with self._reader() as db:
            return list(
                db.scalars(
                    select(MembershipRow.tenant_id)
                    .join(TenantRow, TenantRow.id == MembershipRow.tenant_id)
                    .where(
                        MembershipRow.user_id == user_id,
                        MembershipRow.role == TenantRole.OWNER.value,
                        TenantRow.personal_owner_id.is_(None),
                        MembershipRow.tenant_id.in_(owners),
                    )
                )
            )

    # API tokens ------------------------------------------------------------------------------

    def create_api_token(
        self: StoreCore, record: ApiTokenRecord, *, audit: AuditEvent | None = None
    ) -> None:
        with self._transaction() as db:
            write_audit(db, audit)
            db.execute(
                insert(ApiTokenRow).values(
                    id=record.id,
                    user_id=record.user_id,
                    tenant_id=record.tenant_id,
                    name=record.name,
                    secret_hash=record.secret_hash,
                    scopes=json.dumps(list(record.scopes)),
                    resource=record.resource,
                    created_at=record.created_at,
                    expires_at=record.expires_at,
                    revoked_at=None,
                    last_used_at=None,
                    last_used_ip=None,
                )
            )

    def get_api_token(self: StoreCore, token_id: str) -> ApiTokenRecord | None:
        with self._reader() as db:
            row = db.get(ApiTokenRow, token_id)
            return _token_record(row) if row else None

    def get_api_token_with_owner(
        self: StoreCore, token_id: str
    ) -> tuple[ApiTokenRecord, UserRecord, TenantRole | None] | None:
        with self._autocommit.connect() as conn:  # one statement: no transaction around it
            found = conn.execute(_GET_API_TOKEN_WITH_OWNER, {"id": token_id}).first()
        if found is None:
            return None
        user, rest = split_user_row(found)
        token = _token_record(columns_by_name(_TOKEN_KEYS, rest[:-1]))
        role = rest[-1]
        return token, user, TenantRole(role) if role else None

    def list_api_tokens(self: StoreCore, user_id: str) -> list[ApiTokenRecord]:
        """The user's tokens that are not revoked (expired ones included), newest first."""
        with self._reader() as db:
            rows = db.scalars(
                select(ApiTokenRow)
                .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
                .order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.id)
            ).all()
            return [_token_record(r) for r in rows]

    def revoke_api_token(
        self: StoreCore,
        token_id: str,
        *,
        user_id: str | None,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> bool:
        with self._transaction() as db:
            stmt = update(ApiTokenRow).where(
                ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None)
            )
            if user_id is not None:
                stmt = stmt.where(ApiTokenRow.user_id == user_id)
            revoked = db.execute(
                stmt.values(revoked_at=now).returning(ApiTokenRow.user_id, ApiTokenRow.tenant_id)
            ).first()
            if revoked is None:
                return False
            self._log(db, RevocationKind.API_TOKEN, [token_id], now)
            write_audit(db, audit, user_id=revoked.user_id, tenant_id=revoked.tenant_id)
            return True

    def touch_api_tokens(self: StoreCore, used: dict[str, tuple[datetime, str | None]]) -> None:
        if not used:
            return
        with self._transaction() as db:
            for token_id, (when, ip) in used.items():
                db.execute(
                    update(ApiTokenRow)
                    .where(
                        ApiTokenRow.id == token_id,
                        or_(ApiTokenRow.last_used_at.is_(None), ApiTokenRow.last_used_at < when),
                    )
                    .values(last_used_at=when, last_used_ip=ip)
                )


def _lock_tenant(db: Session, tenant_id: str) -> None:
    """Serialise membership changes of one tenant (row lock on PostgreSQL)."""
    db.execute(select(TenantRow.id).where(TenantRow.id == tenant_id).with_for_update())


def _member_role(db: Session, tenant_id: str, user_id: str) -> TenantRole | None:
    role = db.scalar(
        select(MembershipRow.role).where(
            MembershipRow.tenant_id == tenant_id, MembershipRow.user_id == user_id
        )
    )
    return TenantRole(role) if role else None


def _refuse_last_owner(db: Session, tenant_id: str) -> None:
    owners = db.scalar(
        select(func.count()).where(
            MembershipRow.tenant_id == tenant_id, MembershipRow.role == TenantRole.OWNER.value
        )
    )
    if (owners or 0) <= 1:
        raise ConflictError("A tenant must keep at least one owner; make someone else owner first.")
