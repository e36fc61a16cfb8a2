"""Users and API tokens brought in from another app, a batch per transaction
(``store.protocols.ImportStore``)."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from authgate.core.audit import AuditEvent
from authgate.core.user_imports import (
    DEFAULT_IMPORT_ROLES,
    ImportedUser,
    ImportLedger,
    ImportOutcome,
)
from authgate.store.records import (
    ApiTokenRecord,
    RevocationKind,
    Revocations,
    TenantRole,
    UserRecord,
    UserStatus,
)
from authgate.store.sqlalchemy.audit import write_audit
from authgate.store.sqlalchemy.models import (
    AccountTokenRow,
    ApiTokenRow,
    MembershipRow,
    TenantRow,
    UserRow,
    user_record,
)
from authgate.store.sqlalchemy.store_core import StoreCore
from authgate.store.sqlalchemy.tenants import PERSONAL_TENANT_NAME


class _SqlBase(StoreCore, Protocol):
    def _plan_import(
        self,
        db: Session,
        users: Sequence[ImportedUser],
        *,
        on_conflict: Literal["skip", "update"],
        now: datetime,
        ledger: ImportLedger | None = None,
    ) -> _Plan: ...

    def _write_import(self, db: Session, plan: _Plan, now: datetime) -> Revocations: ...


# The purpose of an exchanged legacy session token's row in authgate_account_tokens.
LEGACY_SESSION_PURPOSE = "legacy_session"
# A batch that met a concurrent insert of the same email or username is planned again.
_ATTEMPTS = 3


@dataclass
class _Plan:
    """What one batch writes: new users (with their tenants) and updates of existing ones."""

    inserts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by email key
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # by user id
    rehashed: set[str] = field(default_factory=set)  # user ids whose password hash changes
    outcomes: list[ImportOutcome] = field(default_factory=list)


@dataclass(frozen=True)
class _LedgerUser:
    """A user an earlier batch of the dry run would have created: what the real run would find
    in the database (no id: a dry run writes nothing)."""

    email_key: str
    id: None = None
    username_key: None = None
    legacy_id: None = None
    password_hash: None = None
    last_login_at: None = None


def _held_by_another(owner: str | int | None, key: str, email_id: int) -> bool:
    """Whether a username or legacy id is someone else's than the user of email key ``key``:
    ``owner`` is an email key (the database's, or this batch's), or the email id of an earlier
    dry-run batch's (``ImportLedger``; ``email_id`` is ``key``'s)."""
    if owner is None:
        return False
    return owner != (key if isinstance(owner, str) else email_id)


def _new_user_values(user: ImportedUser, now: datetime) -> dict[str, Any]:
    return {
        "id": secrets.token_hex(12),
        "email": user.email,
        "email_key": user.email_key,
        "username": user.username,
        "username_key": user.username.casefold() if user.username else None,
        "name": user.name,
        "password_hash": user.password_hash,
        "roles": json.dumps(list(user.roles or DEFAULT_IMPORT_ROLES)),
        "status": UserStatus.ACTIVE.value,
        "email_verified": bool(user.email_verified),
        "created_at": user.created_at or now,
        "last_login_at": None,
        "avatar_url": None,
        "session_epoch": 0,
        "legacy_id": user.legacy_id,
    }


def _changed_values(user: ImportedUser) -> dict[str, Any]:
    """The columns an update sets: those the row gives (the email stays as it is)."""
    values: dict[str, Any] = {}
    if user.username is not None:
        values["username"] = user.username
        values["username_key"] = user.username.casefold()
    if user.name is not None:
        values["name"] = user.name
    if user.password_hash is not None:
        values["password_hash"] = user.password_hash
    if user.roles is not None:
        values["roles"] = json.dumps(list(user.roles))
    if user.email_verified is not None:
        values["email_verified"] = user.email_verified
    if user.created_at is not None:
        values["created_at"] = user.created_at
    if user.legacy_id is not None:
        values["legacy_id"] = user.legacy_id
    return values


def _insert_many(db: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys). On PostgreSQL by ``COPY``, an order of
    magnitude faster than INSERT statements for a batch of imported users; elsewhere by an
    executemany."""
    if not rows:
        return
    connection = db.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    names = ", ".join(connection.dialect.identifier_preparer.quote(c) for c in columns)
    target = connection.dialect.identifier_preparer.format_table(table)
    statement = f"COPY {target} ({names}) FROM STDIN"
    driver = connection.connection.driver_connection
    assert driver is not None
    import psycopg  # the driver of every PostgreSQL URL here (engines.py)

    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
    except psycopg.Error as e:
        # Raised by the driver, past SQLAlchemy: give it SQLAlchemy's shape (IntegrityError for a
        # taken email, ...), as every other statement of the store has.
        raise DBAPIError.instance(statement, None, e, psycopg.Error) from e


class ImportStoreMixin:
    # Users -----------------------------------------------------------------------------------

    def import_users(
        self: _SqlBase,
        users: Sequence[ImportedUser],
        *,
        on_conflict: Literal["skip", "update"],
        dry_run: bool,
        now: datetime,
        ledger: ImportLedger | None = None,
        audit: AuditEvent | None = None,
    ) -> tuple[list[ImportOutcome], Revocations]:
        """``audit``: the batch's one summary event (a ``user.imported``), its counts filled
        in here, written with the batch (never in a dry run)."""
        if dry_run:  # the same decisions, read outside any write transaction
            with self._reader() as db:
                plan = self._plan_import(db, users, on_conflict=on_conflict, now=now, ledger=ledger)
                return plan.outcomes, []
        for attempt in range(_ATTEMPTS):
            try:
                with self._transaction() as db:
                    plan = self._plan_import(db, users, on_conflict=on_conflict, now=now)
                    revoked = self._write_import(db, plan, now)
                    if audit is not None:
                        counts = Counter(outcome.value for outcome in plan.outcomes)
                        write_audit(db, audit.with_details(**dict(sorted(counts.items()))))
                    return plan.outcomes, revoked
            except IntegrityError:
                # Someone else took an email, username or legacy id since the batch read them:
                # decide the batch again. (Any other integrity error fails again, and is raised.)
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _plan_import(
        self: _SqlBase,
        db: Session,
        users: Sequence[ImportedUser],
        *,
        on_conflict: Literal["skip", "update"],
        now: datetime,
        ledger: ImportLedger | None = None,
    ) -> _Plan:
        """Decide every user of the batch. ``ledger`` (a dry run's): what the earlier batches
        would have written, which the real run finds in the database; it is read for the
        batch's keys and told what this batch would write."""
        email_keys = {u.email_key for u in users}
        username_keys = {u.username.casefold() for u in users if u.username}
        legacy_ids = {u.legacy_id for u in users if u.legacy_id}
        conditions = [UserRow.email_key.in_(email_keys)]
        if username_keys:
            conditions.append(UserRow.username_key.in_(username_keys))
        if legacy_ids:
            conditions.append(UserRow.legacy_id.in_(legacy_ids))
        found = db.execute(
            select(
                UserRow.id,
                UserRow.email_key,
                UserRow.username_key,
                UserRow.legacy_id,
                UserRow.password_hash,
                UserRow.last_login_at,
            ).where(or_(*conditions))
        ).all()
        existing: dict[str, Any] = {row.email_key: row for row in found}
        # Who holds each username and legacy id (by email key), the batch's new users included.
        username_owner: dict[str, str | int] = {
            row.username_key: row.email_key for row in found if row.username_key
        }
        legacy_owner: dict[str, str | int] = {
            row.legacy_id: row.email_key for row in found if row.legacy_id
        }
        if ledger is not None:
            # Earlier batches are newer than the database (they would have been written).
            for key in email_keys - existing.keys():
                if ledger.has_email(key):
                    existing[key] = _LedgerUser(key)
            for owners, values, owner_of in (
                (username_owner, username_keys, ledger.username_owner),
                (legacy_owner, legacy_ids, ledger.legacy_id_owner),
            ):
                for value in values:
                    db_owner = owners.get(value)
                    owner = owner_of(value, db_owner if isinstance(db_owner, str) else None)
                    if owner == 0:  # let go by an earlier batch
                        owners.pop(value, None)
                    elif owner is not None:
                        owners[value] = owner
        plan = _Plan()
        for user in users:
            key = user.email_key
            tag = ledger.email_id(key) if ledger is not None else 0
            username_key = user.username.casefold() if user.username else None
            if username_key and _held_by_another(username_owner.get(username_key), key, tag):
                plan.outcomes.append(ImportOutcome.USERNAME_TAKEN)
                continue
            if user.legacy_id and _held_by_another(legacy_owner.get(user.legacy_id), key, tag):
                plan.outcomes.append(ImportOutcome.LEGACY_ID_TAKEN)
                continue
            row = existing.get(key)
            if row is None and key not in plan.inserts:
                plan.inserts[key] = _new_user_values(user, now)
                plan.outcomes.append(ImportOutcome.CREATED)
                if ledger is not None:
                    ledger.add_email(key)
            elif on_conflict == "skip":
                plan.outcomes.append(ImportOutcome.SKIPPED)
                continue
            elif row is None:  # the same email earlier in this batch: the later row wins
                plan.inserts[key].update(_changed_values(user))
                plan.outcomes.append(ImportOutcome.UPDATED)
            elif row.id is None:  # created by an earlier batch of this dry run
                plan.outcomes.append(ImportOutcome.UPDATED)
            else:
                changes = _changed_values(user)
                if row.last_login_at is not None:
                    # The user has logged in to authgate since (its hash was re-hashed, or it
                    # chose a new password here): authgate owns the password now. Putting the
                    # old app's hash back would undo a change and end the user's sessions.
                    changes.pop("password_hash", None)
                plan.updates.setdefault(row.id, {}).update(changes)
                if "password_hash" in changes and changes["password_hash"] != row.password_hash:
                    plan.rehashed.add(row.id)
                plan.outcomes.append(ImportOutcome.UPDATED)
            if username_key:
                username_owner[username_key] = key
                if ledger is not None:  # and what its holder had before is let go
                    ledger.set_username(key, username_key)
            if user.legacy_id:
                legacy_owner[user.legacy_id] = key
                if ledger is not None:
                    ledger.set_legacy_id(key, user.legacy_id)
        return plan

    def _write_import(self: _SqlBase, db: Session, plan: _Plan, now: datetime) -> Revocations:
        if plan.inserts:
            rows = list(plan.inserts.values())
            _insert_many(db, UserRow.__table__, rows)
            tenants = [
                {
                    "id": secrets.token_hex(12),
                    "name": PERSONAL_TENANT_NAME,
                    "personal_owner_id": row["id"],
                    "created_at": now,
                }
                for row in rows
            ]
            _insert_many(db, TenantRow.__table__, tenants)
            _insert_many(
                db,
                MembershipRow.__table__,
                [
                    {
                        "tenant_id": tenant["id"],
                        "user_id": tenant["personal_owner_id"],
                        "role": TenantRole.OWNER.value,
                        "created_at": now,
                    }
                    for tenant in tenants
                ],
            )
        revoked: Revocations = []
        for user_id, values in plan.updates.items():
            if values:
                db.execute(update(UserRow).where(UserRow.id == user_id).values(**values))
            if user_id in plan.rehashed:
                # A new password from the old app: sessions opened with the old one end.
                sessions = self._revoke_user_sessions(db, user_id, now)
                revoked += [(RevocationKind.SESSION, s) for s in sessions]
            revoked.append((RevocationKind.USER, user_id))
        self._log(db, RevocationKind.USER, list(plan.updates), now)
        return revoked

    def find_user_by_legacy_id(self: _SqlBase, legacy_id: str) -> UserRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(UserRow.__table__).where(UserRow.legacy_id == legacy_id)
            ).first()
            return user_record(row) if row else None

    # Legacy sessions -------------------------------------------------------------------------

    def use_legacy_session(
        self: _SqlBase,
        token_hash: str,
        *,
        user_id: str,
        email: str,
        now: datetime,
        expires_at: datetime,
    ) -> bool:
        """Remember that the legacy session token of hash ``token_hash`` was exchanged, until
        ``expires_at``; False when it was already. A row of the single-use tokens' table
        (purpose ``legacy_session``, never one of a mailed link's, so never found as one), its
        primary key the hash: of two requests at once, one inserts and the other meets the key.
        It goes with the expired mailed tokens, or with its user."""
        try:
            with self._transaction() as db:
                db.execute(
                    insert(AccountTokenRow).values(
                        token_hash=token_hash,
                        purpose=LEGACY_SESSION_PURPOSE,
                        user_id=user_id,
                        email=email,
                        password_fingerprint="",
                        new_email=None,
                        created_at=now,
                        expires_at=expires_at,
                        used_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    # API tokens ------------------------------------------------------------------------------

    def import_api_tokens(
        self: _SqlBase, records: Sequence[ApiTokenRecord], *, dry_run: bool
    ) -> list[bool]:
        """Insert the tokens not stored yet, in one transaction; for each, whether it is new."""
        if not records:
            return []
        with self._reader() if dry_run else self._transaction() as db:
            known = set(
                db.scalars(
                    select(ApiTokenRow.id).where(ApiTokenRow.id.in_([r.id for r in records]))
                )
            )
            created: list[bool] = []
            rows: list[dict[str, Any]] = []
            for record in records:
                is_new = record.id not in known
                created.append(is_new)
                if is_new:
                    known.add(record.id)
                    rows.append(
                        {
                            "id": record.id,
                            "user_id": record.user_id,
                            "tenant_id": record.tenant_id,
                            "name": record.name,
                            "secret_hash": record.secret_hash,
                            "scopes": json.dumps(list(record.scopes)),
                            "resource": record.resource,
                            "created_at": record.created_at,
                            "expires_at": record.expires_at,
                            "revoked_at": None,
                            "last_used_at": None,
                            "last_used_ip": None,
                        }
                    )
            if rows and not dry_run:
                db.execute(insert(ApiTokenRow), rows)
        return created
