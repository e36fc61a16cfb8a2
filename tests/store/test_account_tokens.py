"""Mailed account tokens and invitations in the SQL store (SQLite and PostgreSQL): one
transaction with their mail, single use under concurrency, dead once the email or the password
changes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from authgate.core.account_tokens import (
    TOKEN_LIFETIMES,
    TokenPurpose,
    new_account_token,
    password_fingerprint,
)
from authgate.errors import ConflictError, UserExistsError
from authgate.store.records import (
    AccountTokenRecord,
    InvitationRecord,
    OutgoingMail,
    RevocationKind,
    TenantRole,
    UserRecord,
)
from authgate.store.sqlalchemy.stores import SqlAlchemyStore

NOW = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


def _count(store: SqlAlchemyStore, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _user(store: SqlAlchemyStore, email: str = "ada@example.com") -> UserRecord:
    return store.create_user(
        email=email, username=None, name="Ada", password_hash="h1", roles=["user"], now=NOW
    )


def _mail(to: str, kind: str = "verify_email") -> OutgoingMail:
    return OutgoingMail(
        id=new_account_token()[1][:32],
        kind=kind,
        to=to,
        subject="s",
        text="t",
        html="<p>t</p>",
        created_at=NOW,
    )


def _issue(
    store: SqlAlchemyStore,
    user: UserRecord,
    purpose: TokenPurpose,
    *,
    new_email: str | None = None,
    now: datetime = NOW,
) -> str:
    _, token_hash = new_account_token()
    record = AccountTokenRecord(
        token_hash=token_hash,
        purpose=purpose,
        user_id=user.id,
        email=user.email,
        password_fingerprint=password_fingerprint(user.password_hash),
        created_at=now,
        expires_at=now + TOKEN_LIFETIMES[purpose],
        new_email=new_email,
    )
    store.create_account_token(record, _mail(new_email or user.email))
    return token_hash


def test_a_token_and_its_mail_are_written_together(store: SqlAlchemyStore) -> None:
    user = _user(store)
    _issue(store, user, TokenPurpose.VERIFY_EMAIL)
    assert _count(store, "authgate_account_tokens") == 1
    assert store.count_pending_mails() == 1


def test_a_failed_token_insert_queues_no_mail(store: SqlAlchemyStore) -> None:
    user = _user(store)
    token_hash = _issue(store, user, TokenPurpose.VERIFY_EMAIL)
    duplicate = AccountTokenRecord(
        token_hash=token_hash,
        purpose=TokenPurpose.VERIFY_EMAIL,
        user_id=user.id,
        email=user.email,
        password_fingerprint=password_fingerprint(user.password_hash),
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
    )
    with pytest.raises(Exception):
        store.create_account_token(duplicate, _mail(user.email))
    assert store.count_pending_mails() == 1


def test_verification_token_is_single_use(store: SqlAlchemyStore) -> None:
    user = _user(store)
    token_hash = _issue(store, user, TokenPurpose.VERIFY_EMAIL)
    verified = store.verify_email_with_token(token_hash, now=NOW)
    assert verified is not None and verified.email_verified
    assert store.verify_email_with_token(token_hash, now=NOW) is None


def test_a_token_works_only_for_its_purpose(store: SqlAlchemyStore) -> None:
    user = _user(store)
    token_hash = _issue(store, user, TokenPurpose.VERIFY_EMAIL)
    assert store.reset_password_with_token(token_hash, "h2", now=NOW, notice=None) is None
    assert store.find_account_token(token_hash, TokenPurpose.PASSWORD_RESET, now=NOW) is None
    assert store.find_account_token(token_hash, TokenPurpose.VERIFY_EMAIL, now=NOW) is not None


@pytest.mark.parametrize("purpose", list(TokenPurpose)[:3])
def test_tokens_expire_after_their_lifetime(store: SqlAlchemyStore, purpose: TokenPurpose) -> None:
    user = _user(store)
    token_hash = _issue(store, user, purpose, new_email="new@example.com")
    lifetime = TOKEN_LIFETIMES[purpose]
    just_before = NOW + lifetime - timedelta(seconds=1)
    assert store.find_account_token(token_hash, purpose, now=just_before) is not None
    assert store.find_account_token(token_hash, purpose, now=NOW + lifetime) is None


def test_lifetimes_are_those_of_the_issue() -> None:
    assert {
        TokenPurpose.VERIFY_EMAIL: timedelta(hours=24),
        TokenPurpose.PASSWORD_RESET: timedelta(minutes=30),
        TokenPurpose.EMAIL_CHANGE: timedelta(hours=24),
        TokenPurpose.INVITATION: timedelta(days=7),
    } == TOKEN_LIFETIMES


def test_a_password_change_kills_the_tokens_issued_before(store: SqlAlchemyStore) -> None:
    user = _user(store)
    reset = _issue(store, user, TokenPurpose.PASSWORD_RESET)
    verify = _issue(store, user, TokenPurpose.VERIFY_EMAIL)
    store.set_password_hash(user.id, "h-new", keep_session_id=None, now=NOW)
    assert store.reset_password_with_token(reset, "h3", now=NOW, notice=None) is None
    assert store.verify_email_with_token(verify, now=NOW) is None


def test_an_email_change_kills_the_tokens_issued_before(store: SqlAlchemyStore) -> None:
    user = _user(store)
    change = _issue(store, user, TokenPurpose.EMAIL_CHANGE, new_email="new@example.com")
    reset = _issue(store, user, TokenPurpose.PASSWORD_RESET)
    changed = store.change_email_with_token(change, now=NOW)
    assert changed is not None and changed.email == "new@example.com" and changed.email_verified
    assert store.reset_password_with_token(reset, "h2", now=NOW, notice=None) is None


def test_a_reset_kills_the_other_reset_links(store: SqlAlchemyStore) -> None:
    user = _user(store)
    first = _issue(store, user, TokenPurpose.PASSWORD_RESET)
    second = _issue(store, user, TokenPurpose.PASSWORD_RESET)
    outcome = store.reset_password_with_token(
        first, "h2", now=NOW, notice=_mail(user.email, "password_changed_notice")
    )
    assert outcome is not None
    changed, _ = outcome
    assert changed.password_hash == "h2" and changed.session_epoch == user.session_epoch + 1
    assert store.count_pending_mails() == 3
    assert store.reset_password_with_token(second, "h3", now=NOW, notice=None) is None


def test_a_reset_revokes_every_session(store: SqlAlchemyStore) -> None:
    user = _user(store)
    sessions = [
        store.create_session(
            user_id=user.id,
            session_epoch=None,
            refresh_token_hash=f"r{i}",
            expires_at=NOW + timedelta(days=1),
            user_agent=None,
            ip=None,
            now=NOW,
        )
        for i in range(2)
    ]
    token_hash = _issue(store, user, TokenPurpose.PASSWORD_RESET)
    outcome = store.reset_password_with_token(token_hash, "h2", now=NOW, notice=None)
    assert outcome is not None
    assert sorted(outcome[1]) == sorted((RevocationKind.SESSION, s[0].id) for s in sessions if s)
    assert store.list_sessions(user.id, now=NOW) == []


def test_email_change_to_an_address_taken_meanwhile_is_refused_and_the_token_kept(
    store: SqlAlchemyStore,
) -> None:
    user = _user(store)
    token_hash = _issue(store, user, TokenPurpose.EMAIL_CHANGE, new_email="New@example.com")
    other = _user(store, "new@example.com")
    with pytest.raises(UserExistsError):
        store.change_email_with_token(token_hash, now=NOW)
    assert store.find_account_token(token_hash, TokenPurpose.EMAIL_CHANGE, now=NOW) is not None
    store.delete_user(other.id, now=NOW)
    assert store.change_email_with_token(token_hash, now=NOW) is not None


def test_a_disabled_users_tokens_open_nothing(store: SqlAlchemyStore) -> None:
    from authgate.store.records import UserStatus

    user = _user(store)
    token_hash = _issue(store, user, TokenPurpose.PASSWORD_RESET)
    store.update_access(user.id, status=UserStatus.DISABLED, now=NOW)
    assert store.reset_password_with_token(token_hash, "h2", now=NOW, notice=None) is None


def test_re_enabling_a_user_brings_no_token_back(store: SqlAlchemyStore) -> None:
    """Disabling ends a user's links as it ends sessions and API tokens: an account disabled
    (say, because someone else held it) and enabled again opens nothing with links mailed
    before."""
    from authgate.store.records import UserStatus

    user = _user(store)
    reset = _issue(store, user, TokenPurpose.PASSWORD_RESET)
    change = _issue(store, user, TokenPurpose.EMAIL_CHANGE, new_email="new@example.com")
    store.update_access(user.id, status=UserStatus.DISABLED, now=NOW)
    store.update_access(user.id, status=UserStatus.ACTIVE, now=NOW)
    assert store.reset_password_with_token(reset, "h2", now=NOW, notice=None) is None
    assert store.change_email_with_token(change, now=NOW) is None
    assert _count(store, "authgate_account_tokens") == 0


def test_concurrent_uses_of_one_token_succeed_once(store: SqlAlchemyStore) -> None:
    user = _user(store)
    token_hash = _issue(store, user, TokenPurpose.PASSWORD_RESET)
    barrier = threading.Barrier(8)

    def attempt(i: int) -> bool:
        barrier.wait()
        return (
            store.reset_password_with_token(token_hash, f"h{i}", now=NOW, notice=None) is not None
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count(True) == 1


# Invitations ---------------------------------------------------------------------------------


def _invite(
    store: SqlAlchemyStore,
    tenant_id: str,
    inviter: UserRecord,
    email: str = "bob@example.com",
    role: TenantRole = TenantRole.MEMBER,
) -> tuple[InvitationRecord, str]:
    _, token_hash = new_account_token()
    invitation = InvitationRecord(
        id=token_hash[:24],
        tenant_id=tenant_id,
        tenant_name="",
        email=email,
        role=role,
        inviter_id=inviter.id,
        inviter_name=None,
        created_at=NOW,
        expires_at=NOW + TOKEN_LIFETIMES[TokenPurpose.INVITATION],
    )
    store.create_invitation(invitation, token_hash, _mail(email, "invitation"))
    return invitation, token_hash


def test_invitations_are_listed_revoked_and_accepted_once(store: SqlAlchemyStore) -> None:
    owner = _user(store)
    tenant = store.create_tenant(name="Team", owner_id=owner.id, now=NOW)
    first, _ = _invite(store, tenant.id, owner, "carol@example.com")
    second, token_hash = _invite(store, tenant.id, owner)
    listed = store.list_invitations(tenant.id, now=NOW)
    assert {i.id for i in listed} == {first.id, second.id}
    assert listed[0].tenant_name == "Team" and listed[0].inviter_name == "Ada"
    assert store.count_pending_mails() == 2

    assert store.revoke_invitation(tenant.id, first.id, now=NOW)
    assert not store.revoke_invitation(tenant.id, first.id, now=NOW)
    assert [i.id for i in store.list_invitations(tenant.id, now=NOW)] == [second.id]

    bob = _user(store, "bob@example.com")
    assert (
        store.accept_invitation(token_hash, user_id=bob.id, email="carol@example.com", now=NOW)
        is None
    )
    accepted = store.accept_invitation(token_hash, user_id=bob.id, email="Bob@example.com", now=NOW)
    assert accepted is not None and accepted[0].role is TenantRole.MEMBER
    assert store.get_member_role(tenant.id, bob.id) is TenantRole.MEMBER
    bob_now = store.get_user(bob.id)
    assert bob_now is not None and bob_now.email_verified
    assert store.accept_invitation(token_hash, user_id=bob.id, email=bob.email, now=NOW) is None
    assert store.list_invitations(tenant.id, now=NOW) == []


def test_a_new_invitation_replaces_an_open_one_to_the_same_address(store: SqlAlchemyStore) -> None:
    owner = _user(store)
    tenant = store.create_tenant(name="Team", owner_id=owner.id, now=NOW)
    _, old = _invite(store, tenant.id, owner)
    new, _ = _invite(store, tenant.id, owner, "BOB@example.com", TenantRole.ADMIN)
    assert [i.id for i in store.list_invitations(tenant.id, now=NOW)] == [new.id]
    assert store.find_invitation(old, now=NOW) is None


def test_an_expired_invitation_cannot_be_accepted(store: SqlAlchemyStore) -> None:
    owner = _user(store)
    tenant = store.create_tenant(name="Team", owner_id=owner.id, now=NOW)
    _, token_hash = _invite(store, tenant.id, owner)
    bob = _user(store, "bob@example.com")
    later = NOW + TOKEN_LIFETIMES[TokenPurpose.INVITATION]
    assert store.find_invitation(token_hash, now=later) is None
    assert store.accept_invitation(token_hash, user_id=bob.id, email=bob.email, now=later) is None


def test_accepting_as_a_member_already_is_a_conflict_and_keeps_the_invitation(
    store: SqlAlchemyStore,
) -> None:
    owner = _user(store)
    tenant = store.create_tenant(name="Team", owner_id=owner.id, now=NOW)
    _, token_hash = _invite(store, tenant.id, owner)
    bob = _user(store, "bob@example.com")
    store.add_member(tenant.id, bob.id, TenantRole.VIEWER, now=NOW)
    with pytest.raises(ConflictError):
        store.accept_invitation(token_hash, user_id=bob.id, email=bob.email, now=NOW)
    assert store.find_invitation(token_hash, now=NOW) is not None
    assert store.get_member_role(tenant.id, bob.id) is TenantRole.VIEWER


def test_concurrent_accepts_of_one_invitation_join_once(store: SqlAlchemyStore) -> None:
    owner = _user(store)
    tenant = store.create_tenant(name="Team", owner_id=owner.id, now=NOW)
    _, token_hash = _invite(store, tenant.id, owner)
    bob = _user(store, "bob@example.com")
    barrier = threading.Barrier(6)

    def attempt(_: int) -> str:
        barrier.wait()
        try:
            found = store.accept_invitation(token_hash, user_id=bob.id, email=bob.email, now=NOW)
        except ConflictError:
            return "conflict"
        return "joined" if found else "used"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    assert outcomes.count("joined") == 1
