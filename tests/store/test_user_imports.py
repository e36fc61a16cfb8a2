"""The store's bulk import: a batch per transaction, decided whole before anything is written,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select, text

from authgate.core.user_imports import ImportedUser, ImportOutcome
from authgate.errors import StoreUnavailableError
from authgate.service import AuthService
from authgate.store.records import RevocationKind, TenantRole
from authgate.store.sqlalchemy.models import MembershipRow, TenantRow, UserRow
from tests.helpers import PASSWORD

CREATED, UPDATED, SKIPPED = ImportOutcome.CREATED, ImportOutcome.UPDATED, ImportOutcome.SKIPPED
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
BCRYPT = "$2b$04$" + "a" * 53


def _count(service: AuthService, model: type) -> int:
    with service.store.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_created_users_get_a_personal_tenant_like_registered_ones(service: AuthService) -> None:
    users = [
        ImportedUser("ada@example.com", username="ada", name="Ada", roles=("user", "admin")),
        ImportedUser("bob@example.com", created_at=datetime(2020, 1, 2, tzinfo=UTC)),
    ]
    outcomes, revoked = service.store.import_users(
        users, on_conflict="skip", dry_run=False, now=NOW
    )
    assert outcomes == [CREATED, CREATED]
    assert revoked == []
    ada = service.store.find_user_by_login("ada")
    assert ada is not None
    assert (ada.email, ada.name, ada.roles, ada.password_hash) == (
        "ada@example.com",
        "Ada",
        ("user", "admin"),
        None,
    )
    assert ada.created_at == NOW
    bob = service.store.find_user_by_login("BOB@example.com")
    assert bob is not None
    assert bob.roles == ("user",)
    assert bob.created_at == datetime(2020, 1, 2, tzinfo=UTC)
    for user in (ada, bob):
        tenant_id = service.store.personal_tenant_id(user.id)
        assert tenant_id is not None
        assert service.store.get_member_role(tenant_id, user.id) is TenantRole.OWNER


def test_skip_leaves_existing_users_alone(service: AuthService) -> None:
    registered = service.accounts.register(email="ada@example.com", password=PASSWORD)
    outcomes, _ = service.store.import_users(
        [ImportedUser("ADA@example.com", name="Other", password_hash=BCRYPT)],
        on_conflict="skip",
        dry_run=False,
        now=NOW,
    )
    assert outcomes == [SKIPPED]
    after = service.store.get_user(registered.id)
    assert after == registered


def test_update_sets_the_given_fields_and_ends_sessions_when_the_hash_changes(
    service: AuthService,
) -> None:
    outcomes, _ = service.store.import_users(
        [ImportedUser("ada@example.com", name="Ada", roles=("user", "admin"))],
        on_conflict="skip",
        dry_run=False,
        now=NOW,
    )
    ada = service.store.find_user_by_login("ada@example.com")
    assert ada is not None
    outcomes, revoked = service.store.import_users(
        [ImportedUser("ada@example.com", username="ada", password_hash=BCRYPT)],
        on_conflict="update",
        dry_run=False,
        now=NOW,
    )
    assert outcomes == [UPDATED]
    assert (RevocationKind.USER, ada.id) in revoked
    after = service.store.get_user(ada.id)
    assert after is not None
    # Given fields change; the others (name, roles) stay; the session epoch moved on.
    assert (after.username, after.name, after.roles, after.password_hash) == (
        "ada",
        "Ada",
        ("user", "admin"),
        BCRYPT,
    )
    assert after.session_epoch == ada.session_epoch + 1


def test_a_username_or_legacy_id_of_another_user_refuses_only_that_row(
    service: AuthService,
) -> None:
    service.store.import_users(
        [ImportedUser("ada@example.com", username="ada", legacy_id="7")],
        on_conflict="skip",
        dry_run=False,
        now=NOW,
    )
    outcomes, _ = service.store.import_users(
        [
            ImportedUser("eve@example.com", username="ADA"),
            ImportedUser("mallory@example.com", legacy_id="7"),
            ImportedUser("bob@example.com", username="bob"),
            ImportedUser("bob2@example.com", username="bob"),  # taken earlier in the batch
        ],
        on_conflict="update",
        dry_run=False,
        now=NOW,
    )
    assert outcomes == [
        ImportOutcome.USERNAME_TAKEN,
        ImportOutcome.LEGACY_ID_TAKEN,
        CREATED,
        ImportOutcome.USERNAME_TAKEN,
    ]
    assert service.store.find_user_by_login("eve@example.com") is None
    legacy = service.store.find_user_by_legacy_id("7")
    assert legacy is not None and legacy.email == "ada@example.com"


def test_the_same_email_twice_in_a_batch_is_one_user(service: AuthService) -> None:
    users = [
        ImportedUser("ada@example.com", name="First"),
        ImportedUser("Ada@example.com", name="Second"),
    ]
    skip, _ = service.store.import_users(users, on_conflict="skip", dry_run=False, now=NOW)
    assert skip == [CREATED, SKIPPED]
    update, _ = service.store.import_users(
        [
            ImportedUser("bob@example.com", name="First"),
            ImportedUser("BOB@example.com", name="Second"),
        ],
        on_conflict="update",
        dry_run=False,
        now=NOW,
    )
    assert update == [CREATED, UPDATED]
    bob = service.store.find_user_by_login("bob@example.com")
    assert bob is not None and bob.name == "Second"
    assert _count(service, UserRow) == 2
    assert _count(service, TenantRow) == 2


def test_dry_run_decides_the_same_and_writes_nothing(service: AuthService) -> None:
    service.accounts.register(email="ada@example.com", password=PASSWORD)
    users = [ImportedUser("ada@example.com"), ImportedUser("bob@example.com")]
    outcomes, revoked = service.store.import_users(
        users, on_conflict="update", dry_run=True, now=NOW
    )
    assert outcomes == [UPDATED, CREATED]
    assert revoked == []
    assert _count(service, UserRow) == 1
    assert service.store.find_user_by_login("bob@example.com") is None


def test_a_failing_batch_leaves_no_half_written_user(service: AuthService) -> None:
    """The memberships' insert fails after the users and tenants went in: nothing stays. The
    failure is the database's own on PostgreSQL (a constraint no row meets; the rows go in by
    COPY), a failing statement on SQLite."""
    engine = service.store.engine  # type: ignore[attr-defined]
    writer = service.store._writer  # type: ignore[attr-defined]
    postgres = engine.dialect.name == "postgresql"

    def fail_on_memberships(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "authgate_memberships" in statement:
            raise RuntimeError("the disk is full")

    if postgres:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "ALTER TABLE authgate_memberships ADD CONSTRAINT import_test_refuses "
                    "CHECK (false) NOT VALID"
                )
            )
    else:
        event.listen(writer, "before_cursor_execute", fail_on_memberships)
    try:
        with pytest.raises((RuntimeError, StoreUnavailableError)):
            service.store.import_users(
                [ImportedUser(f"user{i}@example.com") for i in range(5)],
                on_conflict="skip",
                dry_run=False,
                now=NOW,
            )
    finally:
        if postgres:
            with engine.begin() as conn:
                conn.execute(
                    text("ALTER TABLE authgate_memberships DROP CONSTRAINT import_test_refuses")
                )
        else:
            event.remove(writer, "before_cursor_execute", fail_on_memberships)
    assert _count(service, UserRow) == 0
    assert _count(service, TenantRow) == 0
    assert _count(service, MembershipRow) == 0
