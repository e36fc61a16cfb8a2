"""What a process remembers so that a protected request needs no database query.

``AuthCache`` holds verified access-token claims, sessions known to be live, users, API tokens,
memberships, and sessions known to be revoked. Every entry can be invalidated: the
``RevocationFeed`` (``authgate.backends.revocation_feed``) keeps it honest across processes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import suppress
from typing import Generic, TypeVar

from authgate.core.tokens import AccessClaims
from authgate.store.records import ApiTokenRecord, RevocationKind, TenantRole, UserRecord

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A dict with a maximum size that evicts the least recently inserted entry."""

    def __init__(self, max_entries: int):
        self._data: OrderedDict[K, V] = OrderedDict()
        self._max = max_entries

    def get(self, key: K) -> V | None:
        return self._data.get(key)

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        if len(self._data) > self._max:
            with suppress(KeyError):  # emptied by another thread meanwhile
                self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class GuardedCache(BoundedCache[K, V]):
    """A cache filled from the database and emptied by events.

    A value loaded while an event arrived may already be stale: ``put_if_current`` drops it when
    the generation moved since ``generation`` was read before the load. The check and the put are
    one step under a lock: an invalidation from another thread (the revocation feed's, or another
    request's) cannot fall between them and be overwritten by the stale value.
    """

    def __init__(self, max_entries: int):
        super().__init__(max_entries)
        self.generation = 0
        self._lock = threading.Lock()

    def invalidate(self, key: K) -> None:
        with self._lock:
            self.generation += 1
            self.pop(key)

    def clear(self) -> None:
        """Forget every value, and any load that began before: it may hold what was cleared."""
        with self._lock:
            self.generation += 1
            super().clear()

    def put_if_current(self, key: K, value: V, *, generation: int) -> None:
        with self._lock:
            if self.generation == generation:
                self.put(key, value)


class AuthCache:
    """Per-process memory of what was already checked; every entry can be invalidated."""

    def __init__(self, *, max_entries: int = 50_000):
        # Tokens are the largest entries (~1 KB with their claims): fewer of them.
        self.claims: BoundedCache[str, AccessClaims] = BoundedCache(max(1, max_entries // 5))
        self.live_sessions: BoundedCache[str, str] = BoundedCache(max_entries)  # sid -> user id
        self.users: GuardedCache[str, UserRecord] = GuardedCache(max_entries)
        self.api_tokens: GuardedCache[str, ApiTokenRecord] = GuardedCache(max_entries)
        # Plaintext API tokens whose checksum and secret were verified -> their id. A token's
        # secret never changes; whether it is still valid comes from ``api_tokens``.
        self.verified_api_tokens: BoundedCache[str, str] = BoundedCache(max(1, max_entries // 5))
        self.memberships: GuardedCache[str, TenantRole] = GuardedCache(max_entries)
        self.revoked_sessions: dict[str, float] = {}  # sid -> when to forget (epoch seconds)
        self.last_seen: dict[str, float] = {}  # sid -> epoch seconds
        self.api_token_use: dict[str, tuple[float, str | None]] = {}  # id -> (when, ip)

    def apply(self, kind: RevocationKind, subject: str, *, forget_at: float) -> None:
        if kind is RevocationKind.SESSION:
            self.revoked_sessions[subject] = forget_at
            self.live_sessions.pop(subject)
            self.last_seen.pop(subject, None)
        elif kind is RevocationKind.USER:
            self.users.invalidate(subject)
        elif kind is RevocationKind.API_TOKEN:
            self.api_tokens.invalidate(subject)
            self.api_token_use.pop(subject, None)
        elif kind is RevocationKind.MEMBERSHIP:
            self.memberships.invalidate(subject)
        # SIGNING_KEYS: nothing cached here (the key source follows it through ``on_apply``).

    def prune(self, now: float) -> None:
        # list() copies under the GIL: request threads may add entries meanwhile.
        expired = [sid for sid, until in list(self.revoked_sessions.items()) if until <= now]
        for sid in expired:
            self.revoked_sessions.pop(sid, None)

    def clear(self) -> None:
        for cache in (
            self.claims,
            self.verified_api_tokens,
            self.live_sessions,
            self.users,
            self.api_tokens,
            self.memberships,
        ):
            cache.clear()
        self.revoked_sessions.clear()
        self.last_seen.clear()
        self.api_token_use.clear()
