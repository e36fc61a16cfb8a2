"""``set_avatar_url`` on SQLite and PostgreSQL: the new URL, the old one, a logged user event;
the avatar images table (put, get, delete)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import event

from authgate.backends.avatar_storage import avatar_image
from authgate.service import AuthService
from authgate.store.records import AvatarImageTag, RevocationKind


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


# The images (AUTHGATE_AVATAR_STORAGE=database) ------------------------------------------------


def test_an_image_is_stored_read_back_byte_for_byte_and_deleted(service: AuthService) -> None:
    store = service.store
    data = bytes(range(256)) * 300  # every byte value, 75 KiB: a typical avatar
    image = avatar_image("B" * 32 + ".jpg", data)

    assert store.put_avatar_image(image, now=service.clock.now()) is True

    read = store.get_avatar_image(image.name)
    assert read == image
    assert read is not None and read.data == data and read.content_type == "image/jpeg"
    assert store.delete_avatar_image(image.name) is True
    assert store.get_avatar_image(image.name) is None
    assert store.delete_avatar_image(image.name) is False


def test_a_taken_name_is_refused_and_the_stored_image_kept(service: AuthService) -> None:
    store = service.store
    first = avatar_image("C" * 32 + ".png", b"first")
    assert store.put_avatar_image(first, now=service.clock.now()) is True
    assert store.put_avatar_image(avatar_image(first.name, b"second"), now=service.clock.now()) is (
        False
    )
    assert store.get_avatar_image(first.name) == first


def test_an_unknown_image_is_none(service: AuthService) -> None:
    assert service.store.get_avatar_image("D" * 32 + ".png") is None


def test_the_tag_is_read_without_the_image_data(service: AuthService) -> None:
    """A revalidation's query names the name, type and digest columns, never ``data``."""
    store = service.store
    image = avatar_image("E" * 32 + ".png", b"\x89PNG" + bytes(1000))
    assert store.put_avatar_image(image, now=service.clock.now()) is True
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    engine = store.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", record)
    try:
        tag = store.get_avatar_image_tag(image.name)
        missing = store.get_avatar_image_tag("F" * 32 + ".png")
        read = store.get_avatar_image(image.name)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert tag == AvatarImageTag(name=image.name, content_type="image/png", digest=image.digest)
    assert missing is None
    assert read == image
    [tag_query, _, image_query] = [s for s in statements if "authgate_avatar_images" in s]
    assert "authgate_avatar_images.digest" in tag_query
    assert "authgate_avatar_images.data" not in tag_query
    assert "authgate_avatar_images.data" in image_query  # what the check above would see
