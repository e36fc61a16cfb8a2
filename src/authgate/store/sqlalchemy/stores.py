"""The SQLAlchemy implementation of every store protocol (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Engine,
    Row,
    Table,
    Update,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from authgate.core.audit import USER_DISABLED, USER_ENABLED, USER_ROLES_CHANGED, AuditEvent
from authgate.errors import LastAdminError, UserExistsError
from authgate.store.records import (
    RefreshOutcome,
    RevocationEvent,
    RevocationKind,
    Revocations,
    SessionRecord,
    UserRecord,
    UserStatus,
    parse_revocation_entry,
)
from authgate.store.sqlalchemy.account_tokens import AccountTokenStoreMixin
from authgate.store.sqlalchemy.audit import (
    AuditStoreMixin,
    announce_committed,
    write_audit,
)
from authgate.store.sqlalchemy.avatar_images import AvatarImageStoreMixin
from authgate.store.sqlalchemy.database_errors import translate_database_errors
from authgate.store.sqlalchemy.engines import autocommit_engine, writer_engine
from authgate.store.sqlalchemy.identities import IdentityStoreMixin
from authgate.store.sqlalchemy.invitations import InvitationStoreMixin
from authgate.store.sqlalchemy.mail_outbox import MailOutboxMixin
from authgate.store.sqlalchemy.models import (
    AccountTokenRow,
    ApiTokenRow,
    RefreshTokenRow,
    RevocationRow,
    SessionRow,
    UserRow,
    columns_by_name,
    split_user_row,
    user_record,
)
from authgate.store.sqlalchemy.passkeys import PasskeyStoreMixin
from authgate.store.sqlalchemy.second_factors import SecondFactorStoreMixin
from authgate.store.sqlalchemy.session_statements import (
    AUDIT_ID,
    SESSION_COLUMNS,
    login_statement,
    revocation_statement,
    rotation_statement,
    user_of_rotation,
)
from authgate.store.sqlalchemy.signing_keys import SigningKeyStoreMixin
from authgate.store.sqlalchemy.store_core import AuditListener
from authgate.store.sqlalchemy.tenants import TenantStoreMixin, add_personal_tenant
from authgate.store.sqlalchemy.user_imports import LEGACY_SESSION_PURPOSE, ImportStoreMixin

# Login statements, built once: a login runs them on a plain connection (no ORM unit of work),
# so that it costs little more than its password hash.
_USERS = UserRow.__table__
assert isinstance(_USERS, Table)
_FIND_BY_EMAIL = select(_USERS).where(_USERS.c.email_key == bindparam("key"))
_FIND_BY_USERNAME = select(_USERS).where(_USERS.c.username_key == bindparam("key"))
# A token's first request in a process reads its session and its user: plain statements too.
_SESSIONS = SessionRow.__table__
assert isinstance(_SESSIONS, Table)
_GET_USER = select(_USERS).where(_USERS.c.id == bindparam("id"))
_GET_SESSION = select(_SESSIONS).where(_SESSIONS.c.id == bindparam("id"))
# Both in one statement: the user's columns under their names, the session's as ``s_<name>``.
_GET_SESSION_WITH_USER = (
    select(_USERS, *(column.label(f"s_{column.name}") for column in _SESSIONS.c))
    .join_from(_SESSIONS, _USERS, _SESSIONS.c.user_id == _USERS.c.id)
    .where(_SESSIONS.c.id == bindparam("id"))
)
_SESSION_TABLE_COLUMNS = tuple(column.name for column in _SESSIONS.c)


def _record_login_statement(*, same_epoch: bool, rehashed: bool) -> Update:
    """The login's one statement on the user: the check that the user may still log in (active,
    and no revocation of all its sessions since the login read it) and the update, at once —
    it returns the user's row, or nothing when the check failed."""
    users = _USERS
    assert isinstance(users, Table)
    statement = update(users).where(
        users.c.id == bindparam("uid"), users.c.status == UserStatus.ACTIVE.value
    )
    if same_epoch:
        statement = statement.where(users.c.session_epoch == bindparam("epoch"))
    statement = statement.values(last_login_at=bindparam("now"))
    if rehashed:
        statement = statement.values(password_hash=bindparam("password_hash"))
    return statement.returning(*users.c)


# (same epoch checked, password rehashed) -> statement
_RECORD_LOGIN = {
    (epoch, rehashed): _record_login_statement(same_epoch=epoch, rehashed=rehashed)
    for epoch in (False, True)
    for rehashed in (False, True)
}
_INSERT_SESSION = insert(SessionRow)
_INSERT_REFRESH_TOKEN = insert(RefreshTokenRow)


def _session_record(row: SessionRow | Row[Any]) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        user_id=row.user_id,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        user_agent=row.user_agent,
        ip=row.ip,
        auth_time=row.auth_time,
        amr=tuple(row.amr.split()) if row.amr else (),
    )


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _username_key(username: str | None) -> str | None:
    return username.casefold() if username else None


def _dispose_after_fork(store: weakref.ref[SqlAlchemyStore]) -> None:
    alive = store()
    if alive is not None:
        alive.engine.dispose(close=False)


_log = logging.getLogger("authgate")
_UNKNOWN_REVOCATION_KINDS: set[str] = set()  # warned about once per process


def _extend_session(
    db: Session,
    row: SessionRow,
    new_hash: str,
    rotated_from: str,
    expires_at: datetime,
    now: datetime,
) -> UserRow | None:
    """A refresh: the session ``row`` lives on until ``expires_at`` with a new refresh token
    (``new_hash``, issued from ``rotated_from``). Returns its user, read in the same transaction:
    a failure here leaves the presented token current (nothing committed), and a committed
    rotation has all it needs."""
    user = db.get(UserRow, row.user_id)
    row.last_seen_at = now
    row.expires_at = expires_at
    db.add(
        RefreshTokenRow(
            token_hash=new_hash, session_id=row.id, created_at=now, rotated_from=rotated_from
        )
    )
    return user


@translate_database_errors
class SqlAlchemyStore(
    TenantStoreMixin,
    IdentityStoreMixin,
    MailOutboxMixin,
    AccountTokenStoreMixin,
    InvitationStoreMixin,
    ImportStoreMixin,
    SecondFactorStoreMixin,
    AuditStoreMixin,
    PasskeyStoreMixin,
    AvatarImageStoreMixin,
    SigningKeyStoreMixin,
):
    """Users, sessions, refresh tokens, tenants, API tokens, the revocation log, the mail
    outbox, mailed account tokens and invitations in SQL."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writer = writer_engine(engine)  # every transaction that writes
        self._writes = sessionmaker(self._writer, expire_on_commit=False)
        # PostgreSQL: a login's and a refresh's one statement (``session_statements``).
        self._one_statement = engine.dialect.name == "postgresql"
        # Reads of one statement (and on PostgreSQL those statements), without BEGIN/COMMIT or
        # ROLLBACK: round trips on PostgreSQL, instructions on SQLite; other backends as before.
        one_read = engine.dialect.name in ("postgresql", "sqlite")
        self._autocommit = autocommit_engine(engine) if one_read else engine
        # Told of each audit event once its transaction committed (``AUTHGATE_AUDIT_LOG``).
        self.audit_listener: AuditListener | None = None
        # A forked child (gunicorn --preload) must not reuse the parent's connections.
        store = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _dispose_after_fork(store))

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._writes.begin() as session:
            yield session
        # Committed: the audit events written in it may be announced.
        events = session.info.pop("audit", None)
        if events:
            announce_committed(self.audit_listener, events)

    def _reader(self) -> Session:
        return self._sessions()

    def _log(
        self, db: Session, kind: RevocationKind, subjects: Sequence[str], now: datetime
    ) -> None:
        if subjects:
            db.execute(
                insert(RevocationRow),
                [{"kind": kind.value, "subject": s, "created_at": now} for s in subjects],
            )

    # Lifecycle -------------------------------------------------------------------------------

    def ping(self) -> bool:
        try:
            with self._autocommit.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError:
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()

    # Users -----------------------------------------------------------------------------------

    def create_user(
        self,
        *,
        email: str,
        username: str | None,
        name: str | None,
        password_hash: str | None,
        roles: Sequence[str],
        now: datetime,
        email_verified: bool = False,
        audit: AuditEvent | None = None,
    ) -> UserRecord:
        row = UserRow(
            id=secrets.token_hex(12),
            email=email,
            email_key=email.casefold(),
            username=username,
            username_key=_username_key(username),
            name=name,
            password_hash=password_hash,
            roles=json.dumps(list(roles)),
            status=UserStatus.ACTIVE.value,
            email_verified=email_verified,
            created_at=now,
            last_login_at=None,
        )
        try:
            with self._transaction() as db:
                db.add(row)
                db.flush()
                add_personal_tenant(db, row.id, now)
                write_audit(db, audit, user_id=row.id)
        except IntegrityError:
            raise UserExistsError() from None
        return user_record(row)

    def get_user(self, user_id: str) -> UserRecord | None:
        with self._autocommit.connect() as conn:
            row = conn.execute(_GET_USER, {"id": user_id}).first()
        return user_record(row) if row else None

    def find_user_by_login(self, login: str) -> UserRecord | None:
        statement = _FIND_BY_EMAIL if "@" in login else _FIND_BY_USERNAME
        with self._autocommit.connect() as conn:
            row = conn.execute(statement, {"key": login.casefold()}).first()
            return user_record(row) if row else None

    def update_profile(
        self, user_id: str, *, name: str | None, username: str | None, now: datetime
    ) -> UserRecord | None:
        try:
            with self._transaction() as db:
                row = db.get(UserRow, user_id)
                if row is None:
                    return None
                row.name = name
                row.username = username
                row.username_key = _username_key(username)
                self._log(db, RevocationKind.USER, [user_id], now)
        except IntegrityError:
            raise UserExistsError("This username is already taken.") from None
        return user_record(row)

    def set_avatar_url(
        self, user_id: str, url: str | None, *, now: datetime, audit: AuditEvent | None = None
    ) -> tuple[UserRecord, str | None] | None:
        # Compare and swap, so that of two uploads at once each learns the URL it replaced (and
        # its file is removed exactly once), on SQLite as on PostgreSQL.
        current = select(UserRow.avatar_url).where(UserRow.id == user_id)
        with self._transaction() as db:
            while True:
                found = db.execute(current).first()
                if found is None:
                    return None
                old_url = found[0]
                swapped = db.execute(
                    update(UserRow)
                    .where(UserRow.id == user_id, UserRow.avatar_url.is_not_distinct_from(old_url))
                    .values(avatar_url=url)
                )
                if swapped.rowcount == 1:  # type: ignore[attr-defined]
                    break
            self._log(db, RevocationKind.USER, [user_id], now)
            if old_url != url:
                write_audit(db, audit)
            row = db.get(UserRow, user_id, populate_existing=True)
            assert row is not None
        return user_record(row), old_url

    def update_access(
        self,
        user_id: str,
        *,
        roles: Sequence[str] | None = None,
        status: UserStatus | None = None,
        now: datetime,
        keep_role: str | None = None,
        audit: AuditEvent | None = None,
    ) -> tuple[UserRecord, Revocations] | None:
        with self._transaction() as db:
            if keep_role is not None:
                self._keep_an_active_holder(db, keep_role, user_id, roles=roles, status=status)
            row = db.get(UserRow, user_id, with_for_update=True)
            if row is None:
                return None
            if roles is not None:
                before = json.loads(row.roles)
                row.roles = json.dumps(list(roles))
                if audit is not None and list(before) != list(roles):
                    changed = audit.with_details(before=before, after=list(roles))
                    write_audit(db, replace(changed, type=USER_ROLES_CHANGED))
            if status is not None:
                was = row.status
                row.status = status.value
                if audit is not None and was != status.value:
                    kind = USER_DISABLED if status is UserStatus.DISABLED else USER_ENABLED
                    write_audit(db, replace(audit, type=kind))
            revoked: Revocations = [(RevocationKind.USER, user_id)]
            if status is UserStatus.DISABLED:
                sessions = self._revoke_user_sessions(db, user_id, now)
                tokens = self._revoke_user_api_tokens(db, user_id, now)
                # Its mailed links too: re-enabling brings none of them back. (The legacy
                # session tokens it exchanged stay remembered: re-enabling must not make them
                # exchangeable again.)
                db.execute(
                    delete(AccountTokenRow).where(
                        AccountTokenRow.user_id == user_id,
                        AccountTokenRow.purpose != LEGACY_SESSION_PURPOSE,
                    )
                )
                revoked += [(RevocationKind.SESSION, s) for s in sessions]
                revoked += [(RevocationKind.API_TOKEN, t) for t in tokens]
            self._log(db, RevocationKind.USER, [user_id], now)
        return user_record(row), revoked

    def set_password_hash(
        self,
        user_id: str,
        password_hash: str,
        *,
        keep_session_id: str | None,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> list[str]:
        with self._transaction() as db:
            changed = db.execute(
                update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash)
            )
            revoked = self._revoke_user_sessions(db, user_id, now, keep=keep_session_id)
            if audit is not None and changed.rowcount:  # type: ignore[attr-defined]
                write_audit(db, audit.with_details(sessions_revoked=len(revoked)))
            return revoked

    def delete_user(
        self,
        user_id: str,
        *,
        now: datetime,
        keep_role: str | None = None,
        audit: AuditEvent | None = None,
    ) -> Revocations | None:
        with self._transaction() as db:
            if keep_role is not None:
                self._keep_an_active_holder(db, keep_role, user_id, deleted=True)
            sessions = self._revoke_user_sessions(db, user_id, now)
            result = db.execute(delete(UserRow).where(UserRow.id == user_id))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                return None
            self._log(db, RevocationKind.USER, [user_id], now)
            write_audit(db, audit)
            return [(RevocationKind.USER, user_id)] + [
                (RevocationKind.SESSION, s) for s in sessions
            ]

    def _keep_an_active_holder(
        self,
        db: Session,
        role: str,
        user_id: str,
        *,
        roles: Sequence[str] | None = None,
        status: UserStatus | None = None,
        deleted: bool = False,
    ) -> None:
        """``LastAdminError`` if the change to ``user_id`` would leave no active user holding
        ``role`` — decided in the change's own transaction, so that two changes at once cannot
        both pass (two admins demoting each other).

        PostgreSQL: every active holder's row is locked, in id order (no deadlock between two
        such changes); one that waited re-reads the rows the other changed, and a holder no
        longer active or holding the role drops out of the answer. SQLite: the transaction
        began with ``BEGIN IMMEDIATE`` (``writer_engine``), so writers run one at a time."""
        candidates = db.execute(
            select(UserRow.id, UserRow.roles)
            .where(
                UserRow.status == UserStatus.ACTIVE.value,
                UserRow.roles.like(f'%"{_escape_like(role)}"%', escape="\\"),
            )
            .order_by(UserRow.id)
            .with_for_update()
        ).all()
        holders = {r.id for r in candidates if role in json.loads(r.roles or "[]")}
        if user_id not in holders or holders - {user_id}:
            return  # the user holds no such role now, or someone else still will
        stays = (
            not deleted
            and (roles is None or role in roles)
            and (status is None or status is UserStatus.ACTIVE)
        )
        if not stays:
            raise LastAdminError()

    def list_users(
        self, *, query: str | None, offset: int, limit: int
    ) -> tuple[list[UserRecord], int]:
        stmt = select(UserRow)
        if query:
            pattern = f"%{_escape_like(query.casefold())}%"
            stmt = stmt.where(
                or_(
                    UserRow.email_key.like(pattern, escape="\\"),
                    UserRow.username_key.like(pattern, escape="\\"),
                    func.lower(UserRow.name).like(pattern, escape="\\"),
                )
            )
        with self._sessions() as db:
            total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = db.scalars(
                stmt.order_by(UserRow.created_at, UserRow.id).offset(offset).limit(limit)
            ).all()
            return [user_record(r) for r in rows], total

    def count_users(self) -> int:
        with self._sessions() as db:
            return db.scalar(select(func.count()).select_from(UserRow)) or 0

    # Sessions --------------------------------------------------------------------------------

    def create_session(
        self,
        *,
        user_id: str,
        session_epoch: int | None,
        refresh_token_hash: str,
        expires_at: datetime,
        user_agent: str | None,
        ip: str | None,
        now: datetime,
        password_hash: str | None = None,
        amr: Sequence[str] = (),
        audit: AuditEvent | None = None,
        authenticated: bool = True,
    ) -> tuple[SessionRecord, UserRecord] | None:
        record = SessionRecord(
            id=secrets.token_urlsafe(18),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
            revoked_at=None,
            user_agent=user_agent[:512] if user_agent else None,
            ip=ip,
            auth_time=now if authenticated else None,
            amr=tuple(amr),
        )
        statement = _RECORD_LOGIN[session_epoch is not None, password_hash is not None]
        # Only the statement's own parameters: one named after a column (password_hash) would
        # add that column to the SET clause.
        params: dict[str, object] = {"uid": user_id, "now": now}
        if session_epoch is not None:
            params["epoch"] = session_epoch
        if password_hash is not None:
            params["password_hash"] = password_hash
        # On PostgreSQL the UPDATE waits for the row lock of a revocation in progress and then
        # sees its committed epoch; on SQLite the write transaction waits for it altogether.
        if self._one_statement:
            return self._create_session_at_once(record, refresh_token_hash, params, audit)
        with self._writer.begin() as conn:
            user = conn.execute(statement, params).first()
            if user is None:
                return None  # nothing was written
            conn.execute(_INSERT_SESSION, {**asdict(record), "amr": " ".join(record.amr) or None})
            conn.execute(
                _INSERT_REFRESH_TOKEN,
                {"token_hash": refresh_token_hash, "session_id": record.id, "created_at": now},
            )
            # The login's audit event: one more INSERT on the same connection.
            written = write_audit(conn, audit.with_details(session_id=record.id) if audit else None)
        if written is not None:
            announce_committed(self.audit_listener, [written])
        return record, user_record(user)

    def _create_session_at_once(
        self,
        record: SessionRecord,
        refresh_token_hash: str,
        params: dict[str, object],
        audit: AuditEvent | None,
    ) -> tuple[SessionRecord, UserRecord] | None:
        """``create_session`` on PostgreSQL: the same steps in one statement, one round trip."""
        event = audit.with_details(session_id=record.id) if audit else None
        statement = login_statement(
            same_epoch="epoch" in params,
            rehashed="password_hash" in params,
            audited=event is not None,
        )
        values = {**asdict(record), "amr": " ".join(record.amr) or None}
        params = {**params, "token_hash": refresh_token_hash}
        params.update({f"s_{name}": values[name] for name in SESSION_COLUMNS})
        if event is not None:
            params.update({f"a_{name}": value for name, value in event.row().items()})
        with self._autocommit.connect() as conn:
            user = conn.execute(statement, params).first()
        if user is None:
            return None  # nothing was written
        if event is not None:
            announce_committed(self.audit_listener, [replace(event, id=user._mapping[AUDIT_ID])])
        return record, user_record(user)

    def get_session(self, session_id: str) -> SessionRecord | None:
        with self._autocommit.connect() as conn:
            row = conn.execute(_GET_SESSION, {"id": session_id}).first()
        return _session_record(row) if row else None

    def get_session_with_user(self, session_id: str) -> tuple[SessionRecord, UserRecord] | None:
        with self._autocommit.connect() as conn:  # one statement: no transaction around it
            found = conn.execute(_GET_SESSION_WITH_USER, {"id": session_id}).first()
        if found is None:
            return None
        user, rest = split_user_row(found)
        return _session_record(columns_by_name(_SESSION_TABLE_COLUMNS, rest)), user

    def list_sessions(self, user_id: str, *, now: datetime) -> list[SessionRecord]:
        with self._sessions() as db:
            rows = db.scalars(
                select(SessionRow)
                .where(
                    SessionRow.user_id == user_id,
                    SessionRow.revoked_at.is_(None),
                    SessionRow.expires_at > now,
                )
                .order_by(SessionRow.created_at.desc(), SessionRow.id)
            ).all()
            return [_session_record(r) for r in rows]

    def rotate_refresh_token(
        self,
        presented_hash: str,
        new_hash: str,
        *,
        expires_at: datetime,
        now: datetime,
        reuse_audit: AuditEvent | None = None,
        grace_since: datetime | None = None,
        grace_audit: AuditEvent | None = None,
    ) -> RefreshOutcome:
        if self._one_statement:
            rotated = self._rotate_at_once(presented_hash, new_hash, expires_at, now)
            if rotated is not None:
                return rotated
            # The token was not current: the transaction below tells a reuse from a stranger.
        with self._transaction() as db:
            consumed = db.execute(
                update(RefreshTokenRow)
                .where(
                    RefreshTokenRow.token_hash == presented_hash, RefreshTokenRow.used_at.is_(None)
                )
                .values(used_at=now)
                .returning(RefreshTokenRow.session_id)
            ).scalar_one_or_none()
            if consumed is None and grace_since is not None:
                graced = self._rotate_in_grace(
                    db, presented_hash, new_hash, expires_at, now, grace_since, grace_audit
                )
                if graced is not None:
                    return graced
            if consumed is None:
                reused = db.scalar(
                    select(RefreshTokenRow.session_id).where(
                        RefreshTokenRow.token_hash == presented_hash
                    )
                )
                if reused is None:
                    return RefreshOutcome()
                if not self._revoke_sessions(db, [reused], now):
                    return RefreshOutcome()  # replay of a session already revoked: nothing new
                if reuse_audit is not None:
                    owner = db.scalar(select(SessionRow.user_id).where(SessionRow.id == reused))
                    write_audit(db, reuse_audit.with_details(session_id=reused), user_id=owner)
                return RefreshOutcome(reused_session_id=reused)
            row = db.get(SessionRow, consumed, with_for_update=True)
            if row is None or not _session_record(row).is_valid_at(now):
                return RefreshOutcome()
            user = _extend_session(db, row, new_hash, presented_hash, expires_at, now)
            return RefreshOutcome(
                session=_session_record(row), user=user_record(user) if user else None
            )

    def _rotate_in_grace(
        self,
        db: Session,
        presented_hash: str,
        new_hash: str,
        expires_at: datetime,
        now: datetime,
        grace_since: datetime,
        audit: AuditEvent | None,
    ) -> RefreshOutcome | None:
        """Rotate again a token spent by a rotation at or after ``grace_since`` (its response
        was lost), while no token that rotation issued has been used: its unused successors are
        spent (``superseded_at``), so one live token remains. None when that does not hold:
        the caller treats the token as reused.

        Locks in the order of a rotation (tokens, then the session): the presented token first,
        so concurrent retries of it run one after the other and each sees the successor the
        previous one issued."""
        token = db.scalar(
            select(RefreshTokenRow)
            .where(RefreshTokenRow.token_hash == presented_hash)
            .with_for_update()
        )
        if (
            token is None
            or token.superseded_at is not None  # killed unused by a grace rotation: a reuse
            or token.used_at is None
            or token.used_at < grace_since
        ):
            return None
        children = RefreshTokenRow.rotated_from == presented_hash
        db.execute(
            update(RefreshTokenRow)
            .where(children, RefreshTokenRow.used_at.is_(None))
            .values(used_at=now, superseded_at=now)
        )
        successor_used = db.scalar(
            select(RefreshTokenRow.token_hash)
            .where(children, RefreshTokenRow.superseded_at.is_(None))
            .limit(1)
        )
        if successor_used is not None:
            return None
        row = db.get(SessionRow, token.session_id, with_for_update=True)
        if row is None or not _session_record(row).is_valid_at(now):
            return None
        user = _extend_session(db, row, new_hash, presented_hash, expires_at, now)
        if audit is not None:
            write_audit(db, audit.with_details(session_id=row.id), user_id=row.user_id)
        return RefreshOutcome(
            session=_session_record(row), user=user_record(user) if user else None, graced=True
        )

    def _rotate_at_once(
        self, presented_hash: str, new_hash: str, expires_at: datetime, now: datetime
    ) -> RefreshOutcome | None:
        """``rotate_refresh_token`` on PostgreSQL, when the presented token is current: one
        statement, one round trip. None when it was not current (nothing was written)."""
        params = {"presented": presented_hash, "new_hash": new_hash, "now": now}
        with self._autocommit.connect() as conn:
            row = conn.execute(rotation_statement(), {**params, "expires_at": expires_at}).first()
        if row is None:
            return None
        if row.id is None:
            return RefreshOutcome()  # spent, but its session is revoked or expired
        user = user_of_rotation(row)
        return RefreshOutcome(
            session=_session_record(row), user=user_record(UserRow(**user)) if user else None
        )

    def reauthenticate_session(
        self, session_id: str, *, user_id: str, amr: Sequence[str], now: datetime
    ) -> SessionRecord | None:
        """Record a new proof of identity in a live session: its ``auth_time`` becomes ``now``."""
        with self._transaction() as db:
            row = db.get(SessionRow, session_id, with_for_update=True)
            if row is None or row.user_id != user_id or not _session_record(row).is_valid_at(now):
                return None
            row.auth_time = now
            row.amr = " ".join(amr) or None
            return _session_record(row)

    def find_refresh_session(self, token_hash: str) -> str | None:
        with self._sessions() as db:
            return db.scalar(
                select(RefreshTokenRow.session_id).where(RefreshTokenRow.token_hash == token_hash)
            )

    def revoke_session(
        self,
        session_id: str,
        *,
        user_id: str | None,
        now: datetime,
        audit: AuditEvent | None = None,
    ) -> bool:
        if self._one_statement:
            return self._revoke_session_at_once(session_id, user_id, now, audit)
        with self._transaction() as db:
            stmt = select(SessionRow.id, SessionRow.user_id).where(
                SessionRow.id == session_id, SessionRow.revoked_at.is_(None)
            )
            if user_id is not None:
                stmt = stmt.where(SessionRow.user_id == user_id)
            found = db.execute(stmt).all()
            if not self._revoke_sessions(db, [row.id for row in found], now):
                return False
            write_audit(db, audit, user_id=found[0].user_id)
            return True

    def _revoke_session_at_once(
        self, session_id: str, user_id: str | None, now: datetime, audit: AuditEvent | None
    ) -> bool:
        """``revoke_session`` on PostgreSQL: one statement, one round trip."""
        statement = revocation_statement(of_user=user_id is not None, audited=audit is not None)
        params: dict[str, object] = {
            "sid": session_id,
            "uid": user_id,
            "now": now,
            "kind": RevocationKind.SESSION.value,
        }
        if audit is not None:
            params.update({f"a_{name}": value for name, value in audit.row().items()})
        with self._autocommit.connect() as conn:
            revoked = conn.execute(statement, params).first()
        if revoked is None:
            return False
        if audit is not None:
            written = replace(audit.about(user_id=revoked.user_id), id=revoked._mapping[AUDIT_ID])
            announce_committed(self.audit_listener, [written])
        return True

    def revoke_user_sessions(
        self, user_id: str, *, now: datetime, audit: AuditEvent | None = None
    ) -> list[str]:
        with self._transaction() as db:
            revoked = self._revoke_user_sessions(db, user_id, now)
            if audit is not None:
                write_audit(db, audit.with_details(sessions=len(revoked)))
            return revoked

    def _revoke_user_sessions(
        self, db: Session, user_id: str, now: datetime, keep: str | None = None
    ) -> list[str]:
        """Revoke all the user's sessions (but ``keep``) and move its session epoch on, so that
        a login that read the user before cannot open a session after (``create_session``).

        The epoch's UPDATE comes first: on PostgreSQL it takes the user's row lock, waiting for
        a login that holds it, whose session the SELECT below then sees."""
        db.execute(
            update(UserRow)
            .where(UserRow.id == user_id)
            .values(session_epoch=UserRow.session_epoch + 1)
        )
        stmt = select(SessionRow.id).where(
            SessionRow.user_id == user_id, SessionRow.revoked_at.is_(None)
        )
        if keep is not None:
            stmt = stmt.where(SessionRow.id != keep)
        return self._revoke_sessions(db, list(db.scalars(stmt).all()), now)

    def _revoke_user_api_tokens(self, db: Session, user_id: str, now: datetime) -> list[str]:
        """Disabling an account revokes its API tokens for good, as it does its sessions."""
        revoked = list(
            db.scalars(
                update(ApiTokenRow)
                .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(ApiTokenRow.id)
            )
        )
        self._log(db, RevocationKind.API_TOKEN, revoked, now)
        return revoked

    def _revoke_sessions(self, db: Session, ids: Sequence[str], now: datetime) -> list[str]:
        """Revoke the sessions not revoked yet; log and return only those that changed."""
        if not ids:
            return []
        changed = list(
            db.scalars(
                update(SessionRow)
                .where(SessionRow.id.in_(ids), SessionRow.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(SessionRow.id)
            )
        )
        self._log(db, RevocationKind.SESSION, changed, now)
        return changed

    def touch_sessions(self, last_seen: dict[str, datetime]) -> None:
        if not last_seen:
            return
        with self._transaction() as db:
            for session_id, seen in last_seen.items():
                db.execute(
                    update(SessionRow)
                    .where(SessionRow.id == session_id, SessionRow.last_seen_at < seen)
                    .values(last_seen_at=seen)
                )

    # Revocation log --------------------------------------------------------------------------

    def read_revocations(self, after_id: int, *, limit: int = 1000) -> list[RevocationEvent]:
        # Every process polls: one statement, one round trip on PostgreSQL.
        with self._autocommit.connect() as db:
            rows = db.execute(
                select(RevocationRow.id, RevocationRow.kind, RevocationRow.subject)
                .where(RevocationRow.id > after_id)
                .order_by(RevocationRow.id)
                .limit(limit)
            ).all()
        events = []
        for r in rows:
            parsed = parse_revocation_entry(r.kind, r.subject)
            if parsed is None:
                # Written by a newer version: skipped (a poller that raised here would never
                # move its cursor past it, and would apply no revocation at all any more).
                if r.kind not in _UNKNOWN_REVOCATION_KINDS:
                    _UNKNOWN_REVOCATION_KINDS.add(r.kind)
                    _log.warning("skipped revocation log entries of unknown kind %r", r.kind)
                continue
            events.append(RevocationEvent(r.id, *parsed))
        return events

    def latest_revocation_id(self) -> int:
        with self._sessions() as db:
            return db.scalar(select(func.max(RevocationRow.id))) or 0

    def prune_sessions(self, *, now: datetime, grace: timedelta) -> int:
        """Delete expired sessions and those revoked more than ``grace`` ago (with their
        refresh tokens): past that, no access token of theirs can still be valid."""
        with self._transaction() as db:
            result = db.execute(
                delete(SessionRow).where(
                    or_(SessionRow.expires_at < now - grace, SessionRow.revoked_at < now - grace)
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def prune_revocations(self, *, older_than: datetime) -> int:
        with self._transaction() as db:
            result = db.execute(delete(RevocationRow).where(RevocationRow.created_at < older_than))
            return int(result.rowcount)  # type: ignore[attr-defined]
