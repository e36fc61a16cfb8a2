"""``service.avatars`` over both storages: the database (default) and an S3 bucket (moto_server).

Nothing is written to the instance folder; a replaced, removed or orphaned image leaves the
storage; a storage failure is a 503 for the request that needs the image, never a lost
account change.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text
from werkzeug.datastructures import ETags

from authgate.backends.avatar_s3 import S3AvatarStorage
from authgate.backends.avatar_storage import avatar_image
from authgate.bootstrap import build_service
from authgate.config import Settings
from authgate.errors import (
    AvatarStorageUnavailableError,
    NotFoundError,
    StoreUnavailableError,
    TokenRevokedError,
)
from authgate.service import AuthService
from authgate.store.records import AvatarImageRecord, AvatarImageTag
from tests.helpers import (
    PUBLIC_URL,
    StepClock,
    make_admin,
    make_settings,
    new_user,
    session_of,
)
from tests.s3_server import S3Server, free_port


def png(colour: str = "orange") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(params=["database", "s3"])
def avatar_service(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str, clock: StepClock
) -> Iterator[AuthService]:
    """The service with its images in the database, or in a fresh bucket of moto_server."""
    storage: dict[str, object] = {}
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        storage = server.settings(server.new_bucket())
    service = build_service(make_settings(tmp_path, database_url, **storage), clock=clock)
    yield service
    service.close()


def stored_names(service: AuthService) -> set[str]:
    """The names of every image the storage holds."""
    storage = service.avatars.images.storage
    if isinstance(storage, S3AvatarStorage):
        listed = storage._s3().list_objects_v2(Bucket=storage.bucket, Prefix=storage.prefix)
        return {item["Key"].removeprefix(storage.prefix) for item in listed.get("Contents", [])}
    with service.store.engine.connect() as conn:  # type: ignore[attr-defined]
        return {row[0] for row in conn.execute(text("SELECT name FROM authgate_avatar_images"))}


def name_of(url: str) -> str:
    assert url.startswith(PUBLIC_URL + "/avatars/")
    return url.removeprefix(PUBLIC_URL + "/avatars/")


def test_an_upload_is_stored_and_read_back_and_nothing_is_written_locally(
    avatar_service: AuthService, tmp_path: Path
) -> None:
    service = avatar_service
    user = new_user(service, "ada@example.com")

    updated = service.avatars.set_avatar(session_of(service, user), png())

    name = name_of(updated.avatar_url or "")
    assert stored_names(service) == {name}
    image = service.avatars.read_avatar(name)
    assert image.content_type == "image/png"
    assert Image.open(io.BytesIO(image.data)).size == (40, 30)
    assert not (tmp_path / "avatars").exists()


def test_replacing_and_removing_delete_the_old_image(avatar_service: AuthService) -> None:
    service = avatar_service
    user = new_user(service, "ada@example.com")
    principal = session_of(service, user)
    first = name_of(service.avatars.set_avatar(principal, png("red")).avatar_url or "")
    second = name_of(service.avatars.set_avatar(principal, png("blue")).avatar_url or "")

    assert first != second
    assert stored_names(service) == {second}
    with pytest.raises(NotFoundError):
        service.avatars.read_avatar(first)

    assert service.avatars.remove_avatar(principal).avatar_url is None
    assert stored_names(service) == set()


def test_deleting_the_user_deletes_their_image(avatar_service: AuthService) -> None:
    service = avatar_service
    user = new_user(service, "ada@example.com")
    service.avatars.set_avatar(session_of(service, user), png())
    admin = new_user(service, "admin@example.com")
    make_admin(service, admin.id)
    service.accounts.delete_user(session_of(service, admin), user.id)
    assert stored_names(service) == set()


def test_an_upload_for_a_user_deleted_meanwhile_leaves_no_image(
    avatar_service: AuthService,
) -> None:
    service = avatar_service
    user = new_user(service, "ada@example.com")
    principal = session_of(service, user)
    service.store.delete_user(user.id, now=service.clock.now())
    with pytest.raises(TokenRevokedError):
        service.avatars.set_avatar(principal, png())
    assert stored_names(service) == set()


@pytest.mark.parametrize(
    "name", ["../authgate.db", "A" * 31 + ".png", "A" * 32 + ".svg", "", "A" * 32 + ".png"]
)
def test_only_our_names_of_stored_images_are_read(avatar_service: AuthService, name: str) -> None:
    with pytest.raises(NotFoundError):
        avatar_service.avatars.read_avatar(name)


def test_an_earlier_versions_file_is_imported_under_its_own_name(
    avatar_service: AuthService,
) -> None:
    images = avatar_service.avatars.images
    name = "E" * 32 + ".jpg"
    assert images.import_image(name, b"jpeg bytes") is True
    assert images.import_image(name, b"other bytes") is False
    assert avatar_service.avatars.read_avatar(name) == avatar_image(name, b"jpeg bytes")
    with pytest.raises(ValueError, match="not an avatar image name"):
        images.import_image("../escape.png", b"x")


# Revalidation ------------------------------------------------------------------------------------


def test_a_matching_if_none_match_reads_only_the_tag(
    avatar_service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's copy is current: its tag is returned and the image itself never read."""
    service = avatar_service
    name = "H" * 32 + ".png"
    stored = avatar_image(name, png())
    assert service.avatars.images.import_image(name, stored.data) is True
    storage = service.avatars.images.storage
    reads: list[str] = []
    read_image = storage.get

    def counted_get(name: str) -> AvatarImageRecord | None:
        reads.append(name)
        return read_image(name)

    monkeypatch.setattr(storage, "get", counted_get)

    for tags in (ETags([stored.digest]), ETags(["x", stored.digest]), ETags(star_tag=True)):
        current = service.avatars.read_avatar(name, if_none_match=tags)
        assert current == AvatarImageTag(name=name, content_type="image/png", digest=stored.digest)
        assert not isinstance(current, AvatarImageRecord)
    # If-None-Match compares weakly: W/"<digest>" names the same image.
    weak = service.avatars.read_avatar(name, if_none_match=ETags(weak_etags=[stored.digest]))
    assert not isinstance(weak, AvatarImageRecord)
    assert reads == []

    # Another tag, or none: the image, read as before.
    assert service.avatars.read_avatar(name, if_none_match=ETags(["0123"])) == stored
    assert service.avatars.read_avatar(name, if_none_match=ETags()) == stored
    assert service.avatars.read_avatar(name) == stored
    assert reads == [name, name, name]


@pytest.mark.parametrize("name", ["../authgate.db", "A" * 32 + ".svg", "A" * 32 + ".png"])
def test_a_revalidation_of_no_image_of_ours_is_not_found(
    avatar_service: AuthService, name: str
) -> None:
    with pytest.raises(NotFoundError):
        avatar_service.avatars.read_avatar(name, if_none_match=ETags(star_tag=True))


# Failures ----------------------------------------------------------------------------------------


def unreachable_s3(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        avatar_storage="s3",
        s3_bucket="avatars",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        s3_access_key_id="id",
        s3_secret_access_key="secret",
        s3_timeout_seconds=2,
    )


def test_an_unreachable_bucket_refuses_the_upload_with_503_and_keeps_the_old_avatar(
    tmp_path: Path, database_url: str, clock: StepClock
) -> None:
    service = build_service(unreachable_s3(tmp_path, database_url), clock=clock)
    try:
        user = new_user(service, "ada@example.com")
        with pytest.raises(AvatarStorageUnavailableError):
            service.avatars.set_avatar(session_of(service, user), png())
        with pytest.raises(AvatarStorageUnavailableError):
            service.avatars.read_avatar("A" * 32 + ".png")
        with pytest.raises(AvatarStorageUnavailableError):
            service.avatars.read_avatar("A" * 32 + ".png", if_none_match=ETags(star_tag=True))
        stored = service.store.get_user(user.id)
        assert stored is not None and stored.avatar_url is None
    finally:
        service.close()


def test_removing_an_avatar_while_the_bucket_is_unreachable_still_clears_it(
    tmp_path: Path, database_url: str, clock: StepClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The account change stands; the orphan image is logged (nobody links to it)."""
    service = build_service(unreachable_s3(tmp_path, database_url), clock=clock)
    try:
        user = new_user(service, "ada@example.com")
        url = f"{PUBLIC_URL}/avatars/{'F' * 32}.png"
        service.store.set_avatar_url(user.id, url, now=clock.now())
        with caplog.at_level(logging.WARNING, logger="authgate"):
            updated = service.avatars.remove_avatar(session_of(service, user))
        assert updated.avatar_url is None
        assert f"could not remove the avatar image {'F' * 32}.png" in caplog.text
    finally:
        service.close()


def test_a_database_failure_while_removing_an_image_is_logged_not_raised(
    service: AuthService, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(name: str) -> bool:
        raise StoreUnavailableError()

    monkeypatch.setattr(service.store, "delete_avatar_image", fail)
    with caplog.at_level(logging.WARNING, logger="authgate"):
        service.avatars.images.remove("G" * 32 + ".png")
    assert "could not remove the avatar image" in caplog.text
