"""``S3AvatarStorage`` against a real S3-wire-compatible server process (moto_server)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest

from authgate.backends.avatar_s3 import OBJECT_CACHE_CONTROL, S3AvatarStorage
from authgate.backends.avatar_storage import avatar_image
from authgate.errors import AvatarStorageUnavailableError
from authgate.store.records import AvatarImageTag
from tests.s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, S3Server, free_port

NOW = datetime(2026, 12, 6, tzinfo=UTC)
NAME = "A" * 32 + ".png"


def storage_at(url: str, bucket: str, **options: object) -> S3AvatarStorage:
    return S3AvatarStorage(
        bucket=bucket,
        endpoint_url=url,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        **options,  # type: ignore[arg-type]
    )


def test_an_image_is_stored_read_and_deleted_as_one_object_under_the_prefix(
    s3_server: S3Server,
) -> None:
    bucket = s3_server.new_bucket()
    storage = storage_at(s3_server.url, bucket, prefix="pictures/")
    image = avatar_image(NAME, b"\x89PNG not really")

    assert storage.put(image, now=NOW) is True

    assert s3_server.keys(bucket) == [f"pictures/{NAME}"]
    head = s3_server.client().head_object(Bucket=bucket, Key=f"pictures/{NAME}")
    assert head["ContentType"] == "image/png"
    assert head["CacheControl"] == OBJECT_CACHE_CONTROL
    assert head["Metadata"] == {"sha256": hashlib.sha256(image.data).hexdigest()}
    assert storage.get(NAME) == image

    storage.delete(NAME)
    assert s3_server.keys(bucket) == []
    assert storage.get(NAME) is None
    storage.delete(NAME)  # gone already: nothing to do, no error


def test_a_name_already_taken_is_not_overwritten(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    storage = storage_at(s3_server.url, bucket)
    first = avatar_image(NAME, b"first")
    assert storage.put(first, now=NOW) is True
    assert storage.put(avatar_image(NAME, b"second"), now=NOW) is False
    assert storage.get(NAME) == first


def test_the_type_comes_from_our_name_not_from_the_bucket(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    s3_server.client().put_object(
        Bucket=bucket, Key=f"avatars/{NAME}", Body=b"<svg/>", ContentType="image/svg+xml"
    )
    image = storage_at(s3_server.url, bucket).get(NAME)
    assert image is not None
    assert image.content_type == "image/png"
    assert image.digest == hashlib.sha256(b"<svg/>").hexdigest()


def test_the_tag_is_the_objects_metadata_or_else_its_bytes(s3_server: S3Server) -> None:
    """``get_tag`` is one ``HeadObject`` for an object of ours; one put by another tool without
    a SHA-256 of ours (none, or not one) is read whole, and that image returned."""
    bucket = s3_server.new_bucket()
    storage = storage_at(s3_server.url, bucket)
    calls: list[str] = []
    storage._s3().meta.events.register(
        "before-call.s3", lambda model, **kwargs: calls.append(model.name)
    )
    image = avatar_image(NAME, b"\x89PNG ours")
    storage.put(image, now=NOW)

    calls.clear()
    tag = storage.get_tag(NAME)
    assert tag == AvatarImageTag(name=NAME, content_type="image/png", digest=image.digest)
    assert calls == ["HeadObject"]
    calls.clear()
    # A HEAD's 404 does not say whether the object or the bucket is missing: GetObject does.
    assert storage.get_tag("B" * 32 + ".png") is None
    assert calls == ["HeadObject", "GetObject"]

    for other, metadata in (("C", {}), ("D", {"sha256": "not-a-digest"})):
        name = other * 32 + ".jpg"
        s3_server.client().put_object(
            Bucket=bucket, Key=f"avatars/{name}", Body=b"jpeg", Metadata=metadata
        )
        calls.clear()
        assert storage.get_tag(name) == avatar_image(name, b"jpeg")
        assert calls == ["HeadObject", "GetObject"]


def test_an_unreachable_server_is_avatar_storage_unavailable() -> None:
    storage = storage_at(f"http://127.0.0.1:{free_port()}", "avatars", timeout_seconds=2)
    image = avatar_image(NAME, b"data")
    for call in (
        lambda: storage.put(image, now=NOW),
        lambda: storage.get(NAME),
        lambda: storage.get_tag(NAME),
        lambda: storage.delete(NAME),
        storage.check,
    ):
        with pytest.raises(AvatarStorageUnavailableError) as raised:
            call()
        assert raised.value.status == 503
        assert raised.value.code == "avatar_storage_unavailable"
        assert "127.0.0.1" not in raised.value.message


def test_a_missing_bucket_is_avatar_storage_unavailable_not_a_missing_image(
    s3_server: S3Server,
) -> None:
    storage = storage_at(s3_server.url, "no-such-bucket-here")
    with pytest.raises(AvatarStorageUnavailableError):
        storage.get(NAME)
    with pytest.raises(AvatarStorageUnavailableError):
        storage.get_tag(NAME)
    with pytest.raises(AvatarStorageUnavailableError):
        storage.put(avatar_image(NAME, b"x"), now=NOW)
    with pytest.raises(AvatarStorageUnavailableError):
        storage.check()
    storage_at(s3_server.url, s3_server.new_bucket()).check()


def test_the_secret_never_shows_in_its_repr() -> None:
    storage = storage_at("http://127.0.0.1:9", "avatars")
    assert SECRET_ACCESS_KEY not in repr(storage)
    assert repr(storage) == "S3AvatarStorage(s3://avatars/avatars/ at http://127.0.0.1:9)"


def test_boto3_is_loaded_by_the_first_use_and_never_without_s3(tmp_path: object) -> None:
    """A worker without S3 never imports boto3; one with S3 only when an image is used."""
    script = textwrap.dedent(
        f"""
        import sys
        from authgate.bootstrap import build_service
        from authgate.config import Settings
        service = build_service(Settings(instance_path={str(tmp_path)!r}))
        assert "boto3" not in sys.modules and "botocore" not in sys.modules, "database"
        service.close()
        service = build_service(Settings(
            instance_path={str(tmp_path)!r}, avatar_storage="s3", s3_bucket="b",
            s3_endpoint_url="http://127.0.0.1:9",
        ))
        assert "boto3" not in sys.modules and "botocore" not in sys.modules, "s3 at boot"
        service.close()
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
