"""``set_avatar_url`` on SQLite and PostgreSQL: the new URL, the old one, a logged user event."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from authgate.service import AuthService
from authgate.store.records import RevocationKind


def _user_id(service: AuthService) -> str:
    return service.store.create_user(
        email="pic@example.com",
        username=None,
        name=None,
        password_hash="x",
        roles=["user"],
        now=service.clock.now(),
    ).id


def test_set_avatar_url_returns_the_user_and_the_replaced_url_and_logs_a_user_event(
    service: AuthService,
) -> None:
    store = service.store
    user_id = _user_id(service)
    before = store.latest_revocation_id()

    first = store.set_avatar_url(
        user_id, "http://localhost:8086/avatars/a.png", now=service.clock.now()
    )
    assert first is not None
    user, old = first
    assert user.avatar_url == "http://localhost:8086/avatars/a.png"
    assert old is None

    second = store.set_avatar_url(user_id, None, now=service.clock.now())
    assert second is not None
    assert second[0].avatar_url is None
    assert second[1] == "http://localhost:8086/avatars/a.png"
    stored = store.get_user(user_id)
    assert stored is not None and stored.avatar_url is None

    events = store.read_revocations(before)
    assert [(e.kind, e.subject) for e in events] == [
        (RevocationKind.USER, user_id),
        (RevocationKind.USER, user_id),
    ]


def test_set_avatar_url_of_an_unknown_user_is_none_and_logs_nothing(service: AuthService) -> None:
    before = service.store.latest_revocation_id()
    assert service.store.set_avatar_url("nobody", "x", now=service.clock.now()) is None
    assert service.store.read_revocations(before) == []


def test_concurrent_replacements_each_see_the_url_they_replaced(service: AuthService) -> None:
    """Row-locked: every URL is replaced exactly once, so each old file is removed once."""
    user_id = _user_id(service)
    urls = [f"http://localhost:8086/avatars/{i}.png" for i in range(12)]

    def replace(url: str) -> str | None:
        result = service.store.set_avatar_url(user_id, url, now=service.clock.now())
        assert result is not None
        return result[1]

    with ThreadPoolExecutor(max_workers=6) as pool:
        replaced = list(pool.map(replace, urls))
    final = service.store.get_user(user_id)
    assert final is not None
    assert replaced.count(None) == 1
    assert sorted(u for u in replaced if u is not None) == sorted(
        u for u in urls if u != final.avatar_url
    )
