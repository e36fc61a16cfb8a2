"""``AuthCache``'s guarded caches under threads: request threads, the revocation feed's thread."""

from __future__ import annotations

import threading

from authgate.backends.auth_cache import GuardedCache


class _SlowPut(GuardedCache[str, str]):
    """A put during which another thread invalidates the key: the moment of the race."""

    def put(self, key: str, value: str) -> None:
        invalidation = threading.Thread(target=self.invalidate, args=(key,))
        invalidation.start()
        invalidation.join(timeout=0.2)  # it finishes here unless it must wait for this put
        super().put(key, value)
        self.invalidation = invalidation


def test_an_invalidation_between_the_check_and_the_put_is_not_lost() -> None:
    cache = _SlowPut(10)
    generation = cache.generation  # read before loading "stale" from the database
    cache.put_if_current("user", "stale", generation=generation)
    cache.invalidation.join(timeout=5)
    assert not cache.invalidation.is_alive()
    assert cache.generation == generation + 1
    assert cache.get("user") is None  # never left holding the value loaded before the change


def test_a_load_begun_before_a_clear_is_not_kept() -> None:
    cache: GuardedCache[str, str] = GuardedCache(10)
    generation = cache.generation  # a load begins
    cache.clear()  # everything is forgotten meanwhile (as in a process just forked)
    cache.put_if_current("user", "loaded before the clear", generation=generation)
    assert cache.get("user") is None
    cache.put_if_current("user", "loaded after", generation=cache.generation)
    assert cache.get("user") == "loaded after"
