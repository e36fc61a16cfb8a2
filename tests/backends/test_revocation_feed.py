"""The per-process cache and how revocation events change it."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import OperationalError

from authgate.backends.auth_cache import AuthCache, BoundedCache
from authgate.errors import ConfigError, StoreUnavailableError
from authgate.service import AuthService
from authgate.store.records import RevocationEvent, RevocationKind, UserRecord, UserStatus


def _user(user_id: str = "u1", roles: tuple[str, ...] = ("user",)) -> UserRecord:
    return UserRecord(
        id=user_id,
        email="a@example.com",
        username=None,
        name=None,
        password_hash=None,
        roles=roles,
        status=UserStatus.ACTIVE,
        email_verified=False,
        created_at=datetime(2030, 1, 1, tzinfo=UTC),
        last_login_at=None,
    )


def test_bounded_cache_evicts_the_oldest_entry() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert cache.get("a") is None
    assert (cache.get("b"), cache.get("c"), len(cache)) == (2, 3, 2)


def test_session_event_marks_revoked_and_forgets_liveness() -> None:
    cache = AuthCache()
    cache.live_sessions.put("s1", "u1")
    cache.apply(RevocationKind.SESSION, "s1", forget_at=100.0)
    assert cache.live_sessions.get("s1") is None
    assert "s1" in cache.revoked_sessions
    cache.prune(99.0)
    assert "s1" in cache.revoked_sessions
    cache.prune(100.0)
    assert "s1" not in cache.revoked_sessions


def test_a_user_loaded_while_an_event_arrived_is_not_cached() -> None:
    """The load raced with a role change: caching it would keep stale roles."""
    cache = AuthCache()
    generation = cache.users.generation
    stale = _user(roles=("user", "admin"))
    cache.apply(RevocationKind.USER, "u1", forget_at=0.0)  # arrives during the load
    cache.users.put_if_current("u1", stale, generation=generation)
    assert cache.users.get("u1") is None
    cache.users.put_if_current("u1", _user(), generation=cache.users.generation)
    assert cache.users.get("u1") is not None


def test_poll_applies_each_event_once_even_when_re_read(service: AuthService) -> None:
    user = service.accounts.register(email="p@example.com", password="correct horse battery staple")
    applied: list[tuple[RevocationKind, str]] = []
    service.feed.on_apply.append(lambda kind, subject: applied.append((kind, subject)))
    service.store.update_access(user.id, roles=["user", "x"], now=service.clock.now())
    assert service.feed.poll_once() == 1
    assert service.feed.poll_once() == 0  # the replay window re-reads it; not applied again
    assert applied == [(RevocationKind.USER, user.id)]


def test_malformed_pubsub_messages_are_ignored(service: AuthService) -> None:
    applied: list[tuple[RevocationKind, str]] = []
    service.feed.on_apply.append(lambda kind, subject: applied.append((kind, subject)))
    for data in (b"not json", b'[["nope", "x"]]', b"{}", 42, b'[["session", "s9"]]'):
        service.feed._apply_message(data)
    assert applied == [(RevocationKind.SESSION, "s9")]


def test_a_store_outage_is_logged_once_not_at_every_poll(
    service: AuthService, caplog: pytest.LogCaptureFixture
) -> None:
    """During a database outage the poll fails every interval: one warning for the outage (and
    one when it ends), not a traceback four times a second per worker."""
    feed = service.feed
    real_read = service.store.read_revocations
    failures = threading.Semaphore(0)
    attempts = {"failed": 0}

    def read_revocations(after_id: int, *, limit: int = 1000) -> list[RevocationEvent]:
        if attempts["failed"] < 6:
            attempts["failed"] += 1
            failures.release()
            raise StoreUnavailableError() from OperationalError("SELECT", {}, Exception("down"))
        return real_read(after_id, limit=limit)

    service.store.read_revocations = read_revocations  # type: ignore[method-assign]
    feed._poll_interval = 0.01
    caplog.set_level(logging.DEBUG, logger="authgate.revocations")
    feed.ensure_started()
    for _ in range(6):
        assert failures.acquire(timeout=5)
    deadline = time.monotonic() + 5
    while "works again" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "revocation poll failed (OperationalError); retrying every 0.01 s",
        "revocation poll works again",
    ]
    assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.WARNING)


def test_a_signing_keys_event_reaches_the_listeners_and_leaves_the_caches_alone(
    service: AuthService,
) -> None:
    """``signing_keys`` is not a revocation: the key source follows it (``on_apply``), and no
    cached membership, user or session is dropped for it — neither announced here, nor by
    pub/sub, nor from the log."""
    applied: list[tuple[RevocationKind, str]] = []
    service.feed.on_apply.append(lambda kind, subject: applied.append((kind, subject)))
    cache = service.cache
    cache.memberships.put("k1", "kept")  # type: ignore[arg-type]
    service.feed.announce_keys_changed("k1")
    service.feed._apply_message(b'[["signing_keys", "k1"]]')
    service.feed._apply_message(b'[["user", "signing-keys:k1"]]')
    assert applied == [(RevocationKind.SIGNING_KEYS, "k1")] * 3
    assert cache.users.generation == 0  # not even read as a user's change
    assert cache.memberships.get("k1") == "kept"


def test_a_pubsub_message_skips_only_the_kinds_it_does_not_know(service: AuthService) -> None:
    """A newer version's kind in a message: the known changes next to it are applied."""
    applied: list[tuple[RevocationKind, str]] = []
    service.feed.on_apply.append(lambda kind, subject: applied.append((kind, subject)))
    service.feed._apply_message(b'[["future", "x"], ["session", "s1"]]')
    assert applied == [(RevocationKind.SESSION, "s1")]


def test_announced_keys_are_published_as_the_previous_release_reads_them(
    service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[str] = []
    monkeypatch.setattr(service.feed, "_redis", object())
    monkeypatch.setattr(service.feed, "_publish_later", published.append)
    service.feed.announce_keys_changed("k1")
    assert published == ['[["user", "signing-keys:k1"]]']


def test_an_event_whose_listener_failed_is_applied_again_at_the_next_poll(
    service: AuthService,
) -> None:
    """The keys could not be re-read (the database went down between the poll and the
    re-read): the event is not marked applied, the next poll retries it."""
    user = service.accounts.register(email="f@example.com", password="correct horse battery staple")
    calls: list[str] = []

    def listener(kind: RevocationKind, subject: str) -> None:
        calls.append(subject)
        if len(calls) == 1:
            raise StoreUnavailableError()

    service.feed.on_apply.append(listener)
    service.store.update_access(user.id, roles=["user", "x"], now=service.clock.now())
    with pytest.raises(StoreUnavailableError):
        service.feed.poll_once()
    assert service.feed.poll_once() == 1
    assert service.feed.poll_once() == 0
    assert calls == [user.id, user.id]


def test_a_failing_housekeeping_task_does_not_skip_the_others(service: AuthService) -> None:
    """A scheduled rotation refused (``ConfigError``) must not stop retired keys being pruned."""
    ran: list[str] = []

    def refused() -> None:
        raise ConfigError("refused")

    service.feed.housekeeping[:] = [refused, lambda: ran.append("prune")]
    service.feed._housekeeping()
    assert ran == ["prune"]
