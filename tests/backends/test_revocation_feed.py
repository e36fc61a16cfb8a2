"""The per-process cache and how revocation events change it."""

from __future__ import annotations

from datetime import UTC, datetime

from authgate.backends.auth_cache import AuthCache, BoundedCache
from authgate.service import AuthService
from authgate.store.records import RevocationKind, UserRecord, UserStatus


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
