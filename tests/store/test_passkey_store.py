"""Passkeys and WebAuthn challenges in the SQL store (SQLite and PostgreSQL): a challenge is
taken once however many requests race for it, and a signature counter only moves forward."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from authgate.errors import PasskeyExistsError
from authgate.store.records import ChallengePurpose, PasskeyRecord, WebAuthnChallengeRecord
from authgate.store.sqlalchemy.stores import SqlAlchemyStore

NOW = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


def _user(store: SqlAlchemyStore) -> str:
    user = store.create_user(
        email="ada@example.com",
        password_hash="x",
        name=None,
        username=None,
        roles=["user"],
        now=NOW,
    )
    return user.id


def _challenge(challenge_hash: str, *, user_id: str | None = None) -> WebAuthnChallengeRecord:
    return WebAuthnChallengeRecord(
        challenge_hash=challenge_hash,
        purpose=ChallengePurpose.LOGIN,
        user_id=user_id,
        binding_hash=None,
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=5),
    )


def _passkey(
    user_id: str, credential_id: str = "Y3JlZA", passkey_id: str = "p" * 24
) -> PasskeyRecord:
    return PasskeyRecord(
        id=passkey_id,
        user_id=user_id,
        credential_id=credential_id,
        public_key=b"cose",
        sign_count=0,
        transports=("internal",),
        name="Laptop",
        aaguid="00000000-0000-0000-0000-000000000000",
        backup_eligible=False,
        backed_up=False,
        created_at=NOW,
    )


def test_a_challenge_is_taken_once_by_racing_requests(store: SqlAlchemyStore) -> None:
    store.create_webauthn_challenge(_challenge("a" * 64), now=NOW)
    start = threading.Barrier(8)

    def take() -> WebAuthnChallengeRecord | None:
        start.wait()
        return store.consume_webauthn_challenge("a" * 64, now=NOW)

    with ThreadPoolExecutor(8) as pool:
        taken = [r for r in pool.map(lambda _: take(), range(8)) if r is not None]
    assert len(taken) == 1
    assert taken[0].purpose is ChallengePurpose.LOGIN


def test_an_expired_challenge_is_not_returned_and_is_swept(store: SqlAlchemyStore) -> None:
    store.create_webauthn_challenge(_challenge("b" * 64), now=NOW)
    later = NOW + timedelta(minutes=5)
    assert store.consume_webauthn_challenge("b" * 64, now=later) is None
    store.create_webauthn_challenge(_challenge("c" * 64), now=NOW)
    store.create_webauthn_challenge(_challenge("d" * 64), now=later)  # sweeps the expired "c"
    assert store.consume_webauthn_challenge("c" * 64, now=NOW) is None


def test_the_counter_only_moves_forward(store: SqlAlchemyStore) -> None:
    passkey = _passkey(_user(store))
    store.add_passkey(passkey)
    assert store.record_passkey_use(passkey.id, sign_count=0, backed_up=False, now=NOW)
    assert store.record_passkey_use(passkey.id, sign_count=3, backed_up=True, now=NOW)
    assert not store.record_passkey_use(passkey.id, sign_count=3, backed_up=True, now=NOW)
    assert not store.record_passkey_use(passkey.id, sign_count=2, backed_up=True, now=NOW)
    assert not store.record_passkey_use(passkey.id, sign_count=0, backed_up=True, now=NOW)
    found = store.find_passkey(passkey.credential_id)
    assert found is not None
    assert (found.sign_count, found.backed_up, found.last_used_at) == (3, True, NOW)


def test_a_credential_belongs_to_one_account(store: SqlAlchemyStore) -> None:
    user_id = _user(store)
    store.add_passkey(_passkey(user_id))
    with pytest.raises(PasskeyExistsError):
        store.add_passkey(_passkey(user_id, "Y3JlZA", passkey_id="q" * 24))
    store.add_passkey(_passkey(user_id, "b3RoZXI", passkey_id="q" * 24))
    assert [p.credential_id for p in store.list_passkeys(user_id)] == ["Y3JlZA", "b3RoZXI"]


def test_passkeys_and_challenges_go_with_their_user(store: SqlAlchemyStore) -> None:
    user_id = _user(store)
    store.add_passkey(_passkey(user_id))
    store.create_webauthn_challenge(_challenge("e" * 64, user_id=user_id), now=NOW)
    store.delete_user(user_id, now=NOW)
    assert store.find_passkey("Y3JlZA") is None
    assert store.consume_webauthn_challenge("e" * 64, now=NOW) is None
