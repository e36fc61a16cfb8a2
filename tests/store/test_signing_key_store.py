"""Signing keys in the SQL store (SQLite and PostgreSQL): stored and listed in signing order,
announced in the revocation log, and of two rotations after the same key only one is stored."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from authgate.store.records import (
    FIRST_SIGNING_KEY,
    SIGNING_KEYS_SUBJECT_PREFIX,
    RevocationKind,
    SigningKeyRecord,
)
from authgate.store.sqlalchemy import stores
from authgate.store.sqlalchemy.models import RevocationRow
from authgate.store.sqlalchemy.stores import SqlAlchemyStore

NOW = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


def _key(kid: str, *, activates_in: float = 0, succeeds: str | None = None) -> SigningKeyRecord:
    return SigningKeyRecord(
        kid=kid,
        sealed_private_key=f"v1.sealed-{kid}",
        created_at=NOW,
        activates_at=NOW + timedelta(seconds=activates_in),
        dev=False,
        succeeds=succeeds,
    )


def test_keys_are_listed_in_the_order_they_sign(store: SqlAlchemyStore) -> None:
    assert store.add_signing_key(_key("b", activates_in=300), now=NOW)
    assert store.add_signing_key(_key("a", succeeds=FIRST_SIGNING_KEY), now=NOW)
    keys = store.list_signing_keys()
    assert [k.kid for k in keys] == ["a", "b"]
    assert keys[0] == _key("a", succeeds=FIRST_SIGNING_KEY)
    assert keys[1].activates_at == NOW + timedelta(seconds=300)
    assert keys[1].activates_at.tzinfo is not None


def test_adding_a_key_logs_it_for_the_other_processes(store: SqlAlchemyStore) -> None:
    before = store.latest_revocation_id()
    store.add_signing_key(_key("k1"), now=NOW)
    events = store.read_revocations(before)
    assert [(e.kind, e.subject) for e in events] == [(RevocationKind.SIGNING_KEYS, "k1")]


# The kinds of revocation-log entries the previous release reads (``RevocationKind(kind)``): any
# other kind made its poller raise at every poll, never to apply a revocation again.
PREVIOUS_RELEASE_KINDS = {"session", "user", "api_token", "membership"}


def test_a_key_is_logged_as_an_entry_the_previous_release_reads(store: SqlAlchemyStore) -> None:
    """A rolling upgrade: the entry must not stop an older instance's poller; that one reads a
    ``user`` entry for a user that does not exist (one cache invalidation, nothing else)."""
    store.add_signing_key(_key("k1"), now=NOW)
    with store.engine.connect() as conn:
        kind, subject = conn.execute(
            select(RevocationRow.kind, RevocationRow.subject).order_by(RevocationRow.id.desc())
        ).one()
    assert kind in PREVIOUS_RELEASE_KINDS
    assert subject == f"{SIGNING_KEYS_SUBJECT_PREFIX}k1"


def test_entries_of_an_unknown_kind_are_skipped(
    store: SqlAlchemyStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written by a newer version: skipped (and said once), the entries around them read."""
    monkeypatch.setattr(stores, "_UNKNOWN_REVOCATION_KINDS", set())
    before = store.latest_revocation_id()
    with store.engine.begin() as conn:
        for kind, subject in [("session", "s1"), ("future", "x"), ("future", "y"), ("user", "u")]:
            conn.execute(insert(RevocationRow).values(kind=kind, subject=subject, created_at=NOW))
    caplog.set_level(logging.WARNING, logger="authgate")
    for _ in range(2):
        events = store.read_revocations(before)
        assert [(e.kind, e.subject) for e in events] == [
            (RevocationKind.SESSION, "s1"),
            (RevocationKind.USER, "u"),
        ]
    assert [r.getMessage() for r in caplog.records] == [
        "skipped revocation log entries of unknown kind 'future'"
    ]


def test_an_immediate_rotation_deletes_the_pending_keys_with_it(store: SqlAlchemyStore) -> None:
    assert store.add_signing_key(_key("old", activates_in=-60), now=NOW)
    assert store.add_signing_key(_key("pending", activates_in=300, succeeds="old"), now=NOW)
    assert store.add_signing_key(_key("now"), now=NOW, drop_pending=True)
    assert [k.kid for k in store.list_signing_keys()] == ["old", "now"]


def test_a_kid_is_stored_once_and_a_refused_key_logs_nothing(store: SqlAlchemyStore) -> None:
    assert store.add_signing_key(_key("k1"), now=NOW)
    before = store.latest_revocation_id()
    assert not store.add_signing_key(_key("k1"), now=NOW)
    assert store.read_revocations(before) == []
    assert len(store.list_signing_keys()) == 1


def test_only_one_key_succeeds_a_key(store: SqlAlchemyStore) -> None:
    assert store.add_signing_key(_key("k1", succeeds=FIRST_SIGNING_KEY), now=NOW)
    assert not store.add_signing_key(_key("k0", succeeds=FIRST_SIGNING_KEY), now=NOW)
    assert store.add_signing_key(_key("k2", succeeds="k1"), now=NOW)
    assert not store.add_signing_key(_key("k3", succeeds="k1"), now=NOW)
    # Keys that succeed nothing in particular (imported, rotated by hand) are not limited.
    assert store.add_signing_key(_key("k4"), now=NOW)
    assert store.add_signing_key(_key("k5"), now=NOW)
    assert [k.kid for k in store.list_signing_keys()] == ["k1", "k2", "k4", "k5"]


def test_two_processes_rotating_after_the_same_key_store_one(store: SqlAlchemyStore) -> None:
    """Eight threads insert a key succeeding the same one at the same moment: exactly one is
    stored (the unique constraint, not a read-then-write check)."""
    store.add_signing_key(_key("k1", succeeds=FIRST_SIGNING_KEY), now=NOW)
    start = threading.Barrier(8)

    def rotate(i: int) -> bool:
        start.wait()
        return store.add_signing_key(_key(f"n{i}", succeeds="k1"), now=NOW)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(rotate, range(8)))
    assert results.count(True) == 1
    assert len(store.list_signing_keys()) == 2


def test_retired_keys_are_deleted(store: SqlAlchemyStore) -> None:
    for kid in ("k1", "k2", "k3"):
        store.add_signing_key(_key(kid), now=NOW)
    assert store.delete_signing_keys(["k1", "k2", "nope"]) == 2
    assert store.delete_signing_keys([]) == 0
    assert [k.kid for k in store.list_signing_keys()] == ["k3"]
