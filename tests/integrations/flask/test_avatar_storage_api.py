"""``GET /avatars/<name>``'s caching (strong ETag, 304, immutable) and the avatar API with
``AUTHGATE_AVATAR_STORAGE=s3`` against a real S3-wire-compatible server (moto_server): the same
answers as from the database, old objects deleted, limits kept, and a clear 503 when the bucket
cannot be reached."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, text
from werkzeug.test import TestResponse

from authgate.backends.avatar_s3 import S3AvatarStorage
from authgate.bootstrap import build_service
from authgate.errors import StoreUnavailableError
from authgate.service import AuthService
from tests.helpers import (
    StepClock,
    bearer,
    make_admin,
    make_app,
    make_settings,
    signed_in,
)
from tests.integrations.flask.test_avatars_api import (
    fetch,
    image_bytes,
    image_name,
    served_path,
    upload,
)
from tests.s3_server import S3Server, free_port

IMMUTABLE = "public, max-age=31536000, immutable"


def uploaded(client: FlaskClient, fmt: str = "PNG") -> tuple[str, str]:
    """Sign in, upload an image; (its URL, the session token)."""
    _, token = signed_in(client, "ada@example.com")
    response = upload(client, image_bytes(fmt), headers=bearer(token))
    assert response.status_code == 200, response.json
    return response.json["user"]["avatar_url"], token


# Caching (the database storage) ------------------------------------------------------------------


def test_the_etag_is_the_content_hash_and_a_match_is_304_without_a_body(
    client: FlaskClient,
) -> None:
    url, _ = uploaded(client)
    first = fetch(client, url)
    etag = first.headers["ETag"]
    assert etag == f'"{hashlib.sha256(first.data).hexdigest()}"'  # strong: no W/

    again = client.get(served_path(url), headers={"If-None-Match": etag})

    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == IMMUTABLE
    # Any of several tags, or *, matches too; another tag does not.
    assert client.get(served_path(url), headers={"If-None-Match": f'"x", {etag}'}).status_code == (
        304
    )
    assert client.get(served_path(url), headers={"If-None-Match": "*"}).status_code == 304
    other = client.get(served_path(url), headers={"If-None-Match": '"0123"'})
    assert other.status_code == 200
    assert other.data == first.data


def test_head_answers_the_headers_of_get(client: FlaskClient) -> None:
    url, _ = uploaded(client, "JPEG")
    head = client.head(served_path(url))
    assert head.status_code == 200
    assert head.data == b""
    assert head.mimetype == "image/jpeg"
    assert head.headers["ETag"] == fetch(client, url).headers["ETag"]
    assert head.headers["Cache-Control"] == IMMUTABLE


def cached_headers(response: TestResponse) -> dict[str, str]:
    """The headers a 304 repeats from the 200 (all but the body's and the request's own)."""
    own = {"Content-Type", "Content-Length", "Date", "X-Request-ID"}
    return {k: v for k, v in response.headers.items() if k not in own}


def test_a_revalidation_reads_the_digest_not_the_image_from_the_database(
    client: FlaskClient, service: AuthService
) -> None:
    url, _ = uploaded(client)
    first = fetch(client, url)
    etag = first.headers["ETag"]
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "authgate_avatar_images" in statement:
            statements.append(statement)

    engine = service.store.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", record)
    try:
        revalidated = client.get(served_path(url), headers={"If-None-Match": etag})
        current, statements[:] = list(statements), []
        other = client.get(served_path(url), headers={"If-None-Match": '"0123"'})
        not_current, statements[:] = list(statements), []
        plain = client.get(served_path(url))
        unconditional = list(statements)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert revalidated.status_code == 304
    assert revalidated.data == b""
    assert cached_headers(revalidated) == cached_headers(first)
    [digest_query] = current
    assert "authgate_avatar_images.digest" in digest_query
    assert "authgate_avatar_images.data" not in digest_query
    # Another tag: the digest, then the image as before; none: the image only.
    assert (other.status_code, other.data) == (200, first.data)
    assert ["authgate_avatar_images.data" in q for q in not_current] == [False, True]
    assert (plain.status_code, plain.data) == (200, first.data)
    assert ["authgate_avatar_images.data" in q for q in unconditional] == [True]
    # A revalidation of an unknown image is a 404, as its GET.
    unknown = client.get(f"/avatars/{'A' * 32}.png", headers={"If-None-Match": "*"})
    assert unknown.status_code == 404


def test_a_new_upload_is_a_new_url_with_a_new_etag(client: FlaskClient) -> None:
    """What makes ``immutable`` right: content never changes under a URL."""
    url, token = uploaded(client)
    etag = fetch(client, url).headers["ETag"]
    second = upload(client, image_bytes("JPEG"), headers=bearer(token)).json["user"]["avatar_url"]
    assert second != url
    assert fetch(client, second).headers["ETag"] != etag
    assert fetch(client, url).status_code == 404


# S3 ------------------------------------------------------------------------------------------


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


@pytest.fixture
def s3_client(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, database_url: str, clock: StepClock
) -> Iterator[tuple[FlaskClient, AuthService]]:
    settings = make_settings(tmp_path, database_url, **s3_server.settings(s3_bucket))
    service = build_service(settings, clock=clock)
    yield make_app(service).test_client(), service
    service.close()


def test_s3_an_upload_is_one_object_served_with_the_same_headers(
    s3_client: tuple[FlaskClient, AuthService],
    s3_server: S3Server,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    client, service = s3_client
    url, _ = uploaded(client)

    assert s3_server.keys(s3_bucket) == [f"avatars/{image_name(url)}"]
    assert not (tmp_path / "avatars").exists()
    with service.store.engine.connect() as conn:  # type: ignore[attr-defined]
        assert conn.execute(text("SELECT count(*) FROM authgate_avatar_images")).scalar() == 0
    body = s3_server.client().get_object(Bucket=s3_bucket, Key=f"avatars/{image_name(url)}")
    data = body["Body"].read()

    image = fetch(client, url)
    assert image.status_code == 200
    assert image.data == data
    assert image.mimetype == "image/png"
    assert image.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert image.headers["Cache-Control"] == IMMUTABLE
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert image.headers["Content-Security-Policy"] == "default-src 'none'"
    revalidated = client.get(served_path(url), headers={"If-None-Match": image.headers["ETag"]})
    assert revalidated.status_code == 304
    assert revalidated.data == b""


def s3_operations(service: AuthService) -> list[str]:
    """The S3 operations the app's storage calls from now on, in order (boto3's events)."""
    calls: list[str] = []

    def record(model: Any, **kwargs: Any) -> None:
        calls.append(model.name)

    storage = service.avatars.images.storage
    assert isinstance(storage, S3AvatarStorage)
    storage._s3().meta.events.register("before-call.s3", record)
    return calls


def test_s3_a_revalidation_heads_the_object_and_never_gets_it(
    s3_client: tuple[FlaskClient, AuthService],
) -> None:
    client, service = s3_client
    url, _ = uploaded(client)
    calls = s3_operations(service)
    first = fetch(client, url)
    etag = first.headers["ETag"]
    assert calls == ["GetObject"]

    calls.clear()
    for tags in (etag, f'"x", {etag}', "*", f"W/{etag}"):
        revalidated = client.get(served_path(url), headers={"If-None-Match": tags})
        assert revalidated.status_code == 304, tags
        assert revalidated.data == b""
        assert cached_headers(revalidated) == cached_headers(first)
    assert calls == ["HeadObject"] * 4

    calls.clear()
    other = client.get(served_path(url), headers={"If-None-Match": '"0123"'})
    assert (other.status_code, other.data) == (200, first.data)
    assert calls == ["HeadObject", "GetObject"]

    calls.clear()
    unknown = client.get(f"/avatars/{'A' * 32}.png", headers={"If-None-Match": etag})
    assert unknown.status_code == 404
    assert calls == ["HeadObject", "GetObject"]  # which is missing, the object or the bucket


def test_s3_an_object_without_our_digest_is_read_once_to_revalidate(
    s3_client: tuple[FlaskClient, AuthService], s3_server: S3Server, s3_bucket: str
) -> None:
    """Put by another tool (no ``sha256`` metadata): its bytes are read to know its tag, and
    only once, whether the answer is 304 or the image."""
    client, service = s3_client
    name = "B" * 32 + ".png"
    data = image_bytes()
    s3_server.client().put_object(Bucket=s3_bucket, Key=f"avatars/{name}", Body=data)
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    calls = s3_operations(service)

    revalidated = client.get(f"/avatars/{name}", headers={"If-None-Match": etag})
    assert (revalidated.status_code, revalidated.headers["ETag"]) == (304, etag)
    assert calls == ["HeadObject", "GetObject"]

    calls.clear()
    other = client.get(f"/avatars/{name}", headers={"If-None-Match": '"0123"'})
    assert (other.status_code, other.data, other.headers["ETag"]) == (200, data, etag)
    assert calls == ["HeadObject", "GetObject"]


def test_s3_replacing_and_deleting_delete_the_old_objects(
    s3_client: tuple[FlaskClient, AuthService], s3_server: S3Server, s3_bucket: str
) -> None:
    client, _ = s3_client
    first, token = uploaded(client)
    second = upload(client, image_bytes("GIF"), headers=bearer(token)).json["user"]["avatar_url"]

    assert s3_server.keys(s3_bucket) == [f"avatars/{image_name(second)}"]
    assert fetch(client, first).status_code == 404

    assert client.delete("/api/auth/me/avatar", headers=bearer(token)).status_code == 200
    assert s3_server.keys(s3_bucket) == []
    assert fetch(client, second).status_code == 404


def test_s3_an_admin_deleting_a_user_deletes_their_object(
    s3_client: tuple[FlaskClient, AuthService], s3_server: S3Server, s3_bucket: str
) -> None:
    client, service = s3_client
    admin, admin_token = signed_in(client, "admin@example.com")
    make_admin(service, admin["id"])
    user, token = signed_in(client, "ada@example.com")
    assert upload(client, image_bytes(), headers=bearer(token)).status_code == 200
    assert len(s3_server.keys(s3_bucket)) == 1
    assert client.delete(f"/api/users/{user['id']}", headers=bearer(admin_token)).status_code == 204
    assert s3_server.keys(s3_bucket) == []


def test_s3_the_size_limit_still_refuses_before_anything_is_stored(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, database_url: str, clock: StepClock
) -> None:
    settings = make_settings(
        tmp_path, database_url, avatar_max_bytes=20_000, **s3_server.settings(s3_bucket)
    )
    service = build_service(settings, clock=clock)
    try:
        client = make_app(service).test_client()
        _, token = signed_in(client, "ada@example.com")
        big = image_bytes("BMP", (200, 200))  # 120 kB, over 20,000 bytes
        response = upload(client, big, headers=bearer(token))
        assert response.status_code == 413
        assert response.json["error"]["code"] == "payload_too_large"
        assert upload(client, b"not an image", headers=bearer(token)).status_code == 422
        assert s3_server.keys(s3_bucket) == []
    finally:
        service.close()


@pytest.fixture
def unreachable_client(
    tmp_path: Path, database_url: str, clock: StepClock
) -> Iterator[tuple[FlaskClient, AuthService]]:
    settings = make_settings(
        tmp_path,
        database_url,
        avatar_storage="s3",
        s3_bucket="avatars",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        s3_access_key_id="id",
        s3_secret_access_key="secret-never-shown",
        s3_timeout_seconds=2,
    )
    service = build_service(settings, clock=clock)
    yield make_app(service).test_client(), service
    service.close()


def test_s3_unreachable_is_a_clear_json_503_for_upload_and_image(
    unreachable_client: tuple[FlaskClient, AuthService],
) -> None:
    client, _ = unreachable_client
    _, token = signed_in(client, "ada@example.com")

    for response in (
        upload(client, image_bytes(), headers=bearer(token)),
        client.get(f"/avatars/{'A' * 32}.png"),
        client.get(f"/avatars/{'A' * 32}.png", headers={"If-None-Match": '"0123"'}),
    ):
        assert response.status_code == 503
        assert response.json["error"]["code"] == "avatar_storage_unavailable"
        assert response.json["error"]["message"] == (
            "The avatar storage is unavailable; try again in a few seconds."
        )
        assert response.headers["Retry-After"]
        assert b"secret-never-shown" not in response.data
        assert b"127.0.0.1" not in response.data
    me = client.get("/api/auth/me", headers=bearer(token))
    assert me.json["user"]["avatar_url"] is None
    # Everything that needs no image goes on.
    assert client.delete("/api/auth/me/avatar", headers=bearer(token)).status_code == 200


def test_the_database_failing_while_serving_an_image_is_503_not_500(
    client: FlaskClient, service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = uploaded(client)

    def fail(name: str) -> None:
        raise StoreUnavailableError()

    monkeypatch.setattr(service.store, "get_avatar_image", fail)
    monkeypatch.setattr(service.store, "get_avatar_image_tag", fail)
    revalidation = client.get(served_path(url), headers={"If-None-Match": "*"})
    assert revalidation.status_code == 503
    # Outside /api/ an outage is rendered as the app renders its errors, JSON when asked for.
    plain = client.get(served_path(url))
    assert plain.status_code == 503
    assert plain.headers["Retry-After"]
    response = client.get(served_path(url), headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.json["error"]["code"] == "service_unavailable"
    assert response.headers["Retry-After"]
