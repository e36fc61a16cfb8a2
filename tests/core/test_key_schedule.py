"""``schedule_keys``: which database key signs, which are published, and when that changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from authgate.core.keys import KeyRing, ScheduledKey, new_signing_key, schedule_keys

T0 = datetime(2031, 1, 1, tzinfo=UTC)
RETAIN = timedelta(seconds=960)


def _key(kid: str, created: float, activates: float) -> ScheduledKey:
    return ScheduledKey(kid, T0 + timedelta(seconds=created), T0 + timedelta(seconds=activates))


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_pending_key_is_published_but_does_not_sign_before_its_time() -> None:
    keys = [_key("old", 0, 0), _key("new", 100, 460)]
    before = schedule_keys(keys, now=_at(459), retain=RETAIN)
    assert before is not None
    assert before.active == "old"
    assert set(before.published) == {"old", "new"}
    assert before.next_change == _at(460)
    after = schedule_keys(keys, now=_at(460), retain=RETAIN)
    assert after is not None
    assert after.active == "new"
    assert set(after.published) == {"old", "new"}
    assert after.next_change == _at(460) + RETAIN


def test_a_superseded_key_verifies_for_the_retention_then_retires() -> None:
    keys = [_key("old", 0, 0), _key("new", 100, 460)]
    still = schedule_keys(keys, now=_at(460) + RETAIN - timedelta(microseconds=1), retain=RETAIN)
    gone = schedule_keys(keys, now=_at(460) + RETAIN, retain=RETAIN)
    assert still is not None and gone is not None
    assert "old" in still.published and still.retired == ()
    assert gone.published == ("new",)
    assert gone.retired == ("old",)
    assert gone.next_change is None


def test_without_a_key_whose_time_has_come_the_first_signs() -> None:
    schedule = schedule_keys([_key("b", 0, 200), _key("a", 0, 100)], now=_at(0), retain=RETAIN)
    assert schedule is not None
    assert schedule.active == "a"
    assert schedule_keys([], now=_at(0), retain=RETAIN) is None


def test_a_key_ring_signs_with_the_key_it_is_told() -> None:
    older = new_signing_key(dev=False, now=T0)
    newer = new_signing_key(dev=False, now=_at(1))
    assert KeyRing([older, newer]).active is newer
    ring = KeyRing([older, newer], active=older.kid)
    assert ring.active is older
    assert {k["kid"] for k in ring.jwks()["keys"]} == {older.kid, newer.kid}
