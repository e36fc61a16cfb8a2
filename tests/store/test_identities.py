"""Provider identities and OAuth flows in the SQL store (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from authgate.core.oauth import hash_flow_secret, new_flow_secrets
from authgate.errors import OAuthIdentityTakenError, UserExistsError
from authgate.store.records import OAuthFlowRecord, TenantRole, UserRecord
from authgate.store.sqlalchemy.stores import SqlAlchemyStore

NOW = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
FLOW_TTL = timedelta(minutes=10)


LOGIN_PROVIDERS = ("github", "google", "corp_sso")


def _count(store: SqlAlchemyStore, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _flow(
    state: str, *, now: datetime = NOW, user_id: str | None = None, redirect_to: str = "/account"
) -> OAuthFlowRecord:
    secrets_ = new_flow_secrets()
    return OAuthFlowRecord(
        state_hash=hash_flow_secret(state),
        binding_hash=hash_flow_secret(secrets_.binding),
        provider="github",
        nonce=secrets_.nonce,
        code_verifier=secrets_.code_verifier,
        redirect_to=redirect_to,
        user_id=user_id,
        session_id="sess-1" if user_id else None,
        created_at=now,
        expires_at=now + FLOW_TTL,
    )


def _oauth_user(
    store: SqlAlchemyStore,
    email: str = "ada@example.com",
    *,
    provider: str = "github",
    subject: str = "gh-1",
    email_verified: bool = True,
) -> UserRecord:
    return store.create_user_with_identity(
        email=email,
        name="Ada",
        avatar_url="https://avatars.example.com/ada.png",
        email_verified=email_verified,
        roles=["user"],
        provider=provider,
        subject=subject,
        now=NOW,
    )


def _password_user(store: SqlAlchemyStore, email: str = "bob@example.com") -> UserRecord:
    return store.create_user(
        email=email,
        username=None,
        name="Bob",
        password_hash="$argon2id$not-a-real-hash",
        roles=["user"],
        now=NOW,
    )


# Flows --------------------------------------------------------------------------------------


def test_a_flow_is_consumed_once(store: SqlAlchemyStore) -> None:
    flow = _flow("state-1", redirect_to="http://localhost:4100/after?x=1")
    store.create_oauth_flow(flow, now=NOW)

    assert store.consume_oauth_flow(hash_flow_secret("other-state"), now=NOW) is None
    taken = store.consume_oauth_flow(flow.state_hash, now=NOW + timedelta(seconds=5))
    assert taken == flow
    assert store.consume_oauth_flow(flow.state_hash, now=NOW + timedelta(seconds=6)) is None
    assert _count(store, "authgate_oauth_flows") == 0


def test_a_link_flow_keeps_its_user_and_session(store: SqlAlchemyStore) -> None:
    user = _password_user(store)
    flow = _flow("state-link", user_id=user.id)
    store.create_oauth_flow(flow, now=NOW)
    taken = store.consume_oauth_flow(flow.state_hash, now=NOW)
    assert taken is not None
    assert (taken.user_id, taken.session_id) == (user.id, "sess-1")
    assert (taken.nonce, taken.code_verifier) == (flow.nonce, flow.code_verifier)


def test_an_expired_flow_is_not_returned_and_is_gone(store: SqlAlchemyStore) -> None:
    flow = _flow("state-old")
    store.create_oauth_flow(flow, now=NOW)
    assert store.consume_oauth_flow(flow.state_hash, now=flow.expires_at) is None
    # The attempt removed it: not even a clock set back finds it again.
    assert store.consume_oauth_flow(flow.state_hash, now=NOW) is None
    assert _count(store, "authgate_oauth_flows") == 0


def test_a_flow_is_usable_until_just_before_it_expires(store: SqlAlchemyStore) -> None:
    flow = _flow("state-edge")
    store.create_oauth_flow(flow, now=NOW)
    just_before = flow.expires_at - timedelta(seconds=1)
    assert store.consume_oauth_flow(flow.state_hash, now=just_before) == flow


def test_creating_a_flow_deletes_expired_ones(store: SqlAlchemyStore) -> None:
    old = _flow("state-old", now=NOW)
    recent = _flow("state-recent", now=NOW + timedelta(minutes=5))
    store.create_oauth_flow(old, now=NOW)
    store.create_oauth_flow(recent, now=NOW + timedelta(minutes=5))
    assert _count(store, "authgate_oauth_flows") == 2

    later = NOW + FLOW_TTL + timedelta(minutes=1)  # old has expired, recent has not
    new = _flow("state-new", now=later)
    store.create_oauth_flow(new, now=later)

    assert _count(store, "authgate_oauth_flows") == 2
    assert store.consume_oauth_flow(old.state_hash, now=NOW) is None
    assert store.consume_oauth_flow(recent.state_hash, now=later) == recent
    assert store.consume_oauth_flow(new.state_hash, now=later) == new


def test_deleting_a_user_deletes_their_link_flows(store: SqlAlchemyStore) -> None:
    user = _password_user(store)
    flow = _flow("state-link", user_id=user.id)
    store.create_oauth_flow(flow, now=NOW)
    assert store.delete_user(user.id, now=NOW) is not None
    assert store.consume_oauth_flow(flow.state_hash, now=NOW) is None


# New users from a provider ------------------------------------------------------------------


@pytest.mark.parametrize("email_verified", [True, False])
def test_create_user_with_identity(store: SqlAlchemyStore, email_verified: bool) -> None:
    user = _oauth_user(store, "Ada@Example.com", email_verified=email_verified)

    assert user.email == "Ada@Example.com"
    assert user.email_verified is email_verified
    assert user.password_hash is None
    assert user.name == "Ada"
    assert user.avatar_url == "https://avatars.example.com/ada.png"
    assert user.roles == ("user",)
    assert user.is_active
    assert store.get_user(user.id) == user

    tenant_id = store.personal_tenant_id(user.id)
    assert tenant_id is not None
    assert [(t.id, role) for t, role in store.list_user_tenants(user.id)] == [
        (tenant_id, TenantRole.OWNER)
    ]

    identity = store.find_identity("github", "gh-1")
    assert identity is not None
    assert (identity.user_id, identity.provider, identity.subject) == (user.id, "github", "gh-1")
    assert identity.email == "Ada@Example.com"
    assert identity.linked_at == NOW
    assert identity.last_login_at == NOW
    assert store.list_identities(user.id) == [identity]


def _assert_only_the_first_user(store: SqlAlchemyStore, first: UserRecord) -> None:
    assert store.count_users() == 1
    assert _count(store, "authgate_tenants") == 1
    assert _count(store, "authgate_memberships") == 1
    assert _count(store, "authgate_identities") == 1
    assert [i.user_id for i in store.list_identities(first.id)] == [first.id]


@pytest.mark.parametrize("email", ["ada@example.com", "ADA@example.COM"])
def test_create_user_with_identity_refuses_a_taken_email(
    store: SqlAlchemyStore, email: str
) -> None:
    first = _oauth_user(store, "ada@example.com", subject="gh-1")
    with pytest.raises(UserExistsError):
        _oauth_user(store, email, provider="google", subject="g-1")
    _assert_only_the_first_user(store, first)
    assert store.find_identity("google", "g-1") is None


def test_create_user_with_identity_refuses_a_password_users_email(store: SqlAlchemyStore) -> None:
    bob = _password_user(store, "bob@example.com")
    with pytest.raises(UserExistsError):
        _oauth_user(store, "Bob@Example.com", subject="gh-bob")
    assert store.count_users() == 1
    assert store.find_identity("github", "gh-bob") is None
    assert store.list_identities(bob.id) == []


def test_create_user_with_identity_refuses_a_taken_identity(store: SqlAlchemyStore) -> None:
    first = _oauth_user(store, "ada@example.com", subject="gh-1")
    with pytest.raises(UserExistsError):
        _oauth_user(store, "other@example.com", subject="gh-1")
    _assert_only_the_first_user(store, first)
    assert store.find_user_by_email("other@example.com") is None


def test_identities_are_per_provider_and_case_sensitive(store: SqlAlchemyStore) -> None:
    github = _oauth_user(store, "a@example.com", provider="github", subject="abc")
    google = _oauth_user(store, "b@example.com", provider="google", subject="abc")
    upper = _oauth_user(store, "c@example.com", provider="github", subject="ABC")
    assert len({github.id, google.id, upper.id}) == 3
    found = [store.find_identity(p, s) for p, s in [("github", "abc"), ("google", "abc")]]
    assert [i.user_id if i else None for i in found] == [github.id, google.id]
    identity = store.find_identity("github", "ABC")
    assert identity is not None
    assert identity.user_id == upper.id
    assert store.find_identity("gitlab", "abc") is None


def test_find_user_by_email_is_case_insensitive(store: SqlAlchemyStore) -> None:
    user = _oauth_user(store, "Ada.Lovelace@Example.com")
    for email in (
        "ada.lovelace@example.com",
        "ADA.LOVELACE@EXAMPLE.COM",
        "Ada.Lovelace@Example.com",
    ):
        found = store.find_user_by_email(email)
        assert found is not None
        assert found.id == user.id
    assert store.find_user_by_email("ada@example.com") is None
    assert store.find_user_by_email("ada.lovelace@example.co") is None


# Linking ------------------------------------------------------------------------------------


def test_link_identity_and_taken_identity(store: SqlAlchemyStore) -> None:
    bob = _password_user(store, "bob@example.com")
    carol = _password_user(store, "carol@example.com")
    linked = store.link_identity(
        bob.id, provider="github", subject="gh-bob", email="bob@github.example", now=NOW
    )
    assert (linked.user_id, linked.provider, linked.subject) == (bob.id, "github", "gh-bob")
    assert store.find_identity("github", "gh-bob") == linked

    with pytest.raises(OAuthIdentityTakenError) as info:
        store.link_identity(carol.id, provider="github", subject="gh-bob", email=None, now=NOW)
    assert info.value.code == "oauth_identity_taken"
    # Linking it again to its own user is refused the same way, and changes nothing.
    with pytest.raises(OAuthIdentityTakenError):
        store.link_identity(bob.id, provider="github", subject="gh-bob", email=None, now=NOW)
    assert store.find_identity("github", "gh-bob") == linked
    assert store.list_identities(carol.id) == []
    assert _count(store, "authgate_identities") == 1


def test_record_identity_login_updates_email_and_time(store: SqlAlchemyStore) -> None:
    user = _oauth_user(store)
    identity = store.find_identity("github", "gh-1")
    assert identity is not None
    later = NOW + timedelta(days=3)
    store.record_identity_login(identity.id, email="new@example.com", now=later)
    updated = store.find_identity("github", "gh-1")
    assert updated is not None
    assert (updated.email, updated.last_login_at, updated.linked_at) == (
        "new@example.com",
        later,
        NOW,
    )
    # The provider's email is for display: the user's own email stays.
    user_now = store.get_user(user.id)
    assert user_now is not None
    assert user_now.email == "ada@example.com"


def test_list_identities_in_link_order(store: SqlAlchemyStore) -> None:
    user = _oauth_user(store, subject="gh-1")
    store.link_identity(
        user.id, provider="google", subject="g-1", email=None, now=NOW + timedelta(hours=1)
    )
    store.link_identity(
        user.id, provider="corp_sso", subject="c-1", email=None, now=NOW + timedelta(hours=2)
    )
    assert [(i.provider, i.subject) for i in store.list_identities(user.id)] == [
        ("github", "gh-1"),
        ("google", "g-1"),
        ("corp_sso", "c-1"),
    ]
    assert store.list_identities("no-such-user") == []


# Unlinking ----------------------------------------------------------------------------------


def test_the_only_login_method_cannot_be_unlinked(store: SqlAlchemyStore) -> None:
    user = _oauth_user(store)
    identity = store.find_identity("github", "gh-1")
    assert identity is not None
    assert (
        store.unlink_identity(user.id, identity.id, login_providers=LOGIN_PROVIDERS)
        == "last_login_method"
    )
    assert store.find_identity("github", "gh-1") == identity


def test_with_two_identities_one_can_be_unlinked(store: SqlAlchemyStore) -> None:
    user = _oauth_user(store, subject="gh-1")
    second = store.link_identity(user.id, provider="google", subject="g-1", email=None, now=NOW)
    first = store.find_identity("github", "gh-1")
    assert first is not None

    assert store.unlink_identity(user.id, first.id, login_providers=LOGIN_PROVIDERS) == "unlinked"
    assert store.find_identity("github", "gh-1") is None
    assert (
        store.unlink_identity(user.id, second.id, login_providers=LOGIN_PROVIDERS)
        == "last_login_method"
    )
    assert store.list_identities(user.id) == [second]


def test_a_user_with_a_password_can_unlink_their_only_identity(store: SqlAlchemyStore) -> None:
    bob = _password_user(store)
    identity = store.link_identity(bob.id, provider="github", subject="gh-b", email=None, now=NOW)
    assert store.unlink_identity(bob.id, identity.id, login_providers=LOGIN_PROVIDERS) == "unlinked"
    assert store.list_identities(bob.id) == []
    assert (
        store.unlink_identity(bob.id, identity.id, login_providers=LOGIN_PROVIDERS) == "not_found"
    )


def test_unlinking_another_users_identity_is_not_found(store: SqlAlchemyStore) -> None:
    ada = _oauth_user(store, "ada@example.com", subject="gh-ada")
    bob = _password_user(store, "bob@example.com")
    ada_identity = store.find_identity("github", "gh-ada")
    assert ada_identity is not None
    assert (
        store.unlink_identity(bob.id, ada_identity.id, login_providers=LOGIN_PROVIDERS)
        == "not_found"
    )
    assert (
        store.unlink_identity("no-such-user", ada_identity.id, login_providers=LOGIN_PROVIDERS)
        == "not_found"
    )
    assert (
        store.unlink_identity(ada.id, "no-such-identity", login_providers=LOGIN_PROVIDERS)
        == "not_found"
    )
    assert store.find_identity("github", "gh-ada") == ada_identity


def test_deleting_a_user_deletes_their_identities(store: SqlAlchemyStore) -> None:
    ada = _oauth_user(store, "ada@example.com", subject="gh-ada")
    store.link_identity(ada.id, provider="google", subject="g-ada", email=None, now=NOW)
    bob = _oauth_user(store, "bob@example.com", subject="gh-bob")
    assert _count(store, "authgate_identities") == 3

    assert store.delete_user(ada.id, now=NOW) is not None
    assert store.find_identity("github", "gh-ada") is None
    assert store.find_identity("google", "g-ada") is None
    assert store.list_identities(ada.id) == []
    assert _count(store, "authgate_identities") == 1
    assert [i.subject for i in store.list_identities(bob.id)] == ["gh-bob"]
    # The identity is free again: a new account may use it.
    again = _oauth_user(store, "ada@example.com", subject="gh-ada")
    assert again.id != ada.id


def test_concurrent_unlinks_leave_one_login_method(store: SqlAlchemyStore) -> None:
    """Two requests unlink each of a passwordless user's two identities at once. A pauses right
    after its first statement (the lock on the user's row); B runs meanwhile. Exactly one may
    succeed, on SQLite (one writer at a time) as on PostgreSQL (B waits for A's lock)."""
    user = _oauth_user(store, subject="gh-1")
    store.link_identity(user.id, provider="google", subject="g-1", email=None, now=NOW)
    first, second = (i.id for i in store.list_identities(user.id))

    a_counted, b_done = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def pause_a(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        is_lock = statement.lstrip().upper().startswith("SELECT") and "authgate_users" in statement
        if threading.current_thread().name == "unlink-a" and is_lock and not a_counted.is_set():
            a_counted.set()
            # PostgreSQL: B waits for A's row lock, so this times out and A goes on first.
            b_done.wait(timeout=1.5)

    def unlink(name: str, identity_id: str) -> None:
        outcomes[name] = store.unlink_identity(
            user.id, identity_id, login_providers=LOGIN_PROVIDERS
        )
        if name == "b":
            b_done.set()

    event.listen(store.engine, "after_cursor_execute", pause_a)
    try:
        a = threading.Thread(target=unlink, args=("a", first), name="unlink-a")
        a.start()
        assert a_counted.wait(timeout=10)
        b = threading.Thread(target=unlink, args=("b", second), name="unlink-b")
        b.start()
        a.join(timeout=20)
        b.join(timeout=20)
    finally:
        event.remove(store.engine, "after_cursor_execute", pause_a)

    assert sorted(outcomes.values()) == ["last_login_method", "unlinked"]
    assert len(store.list_identities(user.id)) == 1


def test_an_identity_of_a_provider_no_longer_configured_does_not_count(
    store: SqlAlchemyStore,
) -> None:
    """``old_sso`` was removed from the configuration: its identity logs nobody in, so the
    github identity is the user's last way to log in."""
    user = _oauth_user(store, subject="gh-1")
    store.link_identity(user.id, provider="old_sso", subject="o-1", email=None, now=NOW)
    github = store.find_identity("github", "gh-1")
    assert github is not None

    assert store.unlink_identity(user.id, github.id, login_providers=("github",)) == (
        "last_login_method"
    )
    assert store.find_identity("github", "gh-1") == github
    # Configured again, it counts.
    assert store.unlink_identity(user.id, github.id, login_providers=("github", "old_sso")) == (
        "unlinked"
    )


def test_an_identity_of_a_removed_provider_can_be_unlinked_while_another_remains(
    store: SqlAlchemyStore,
) -> None:
    user = _oauth_user(store, subject="gh-1")
    old = store.link_identity(user.id, provider="old_sso", subject="o-1", email=None, now=NOW)

    assert store.unlink_identity(user.id, old.id, login_providers=("github",)) == "unlinked"
    assert [i.provider for i in store.list_identities(user.id)] == ["github"]
