"""``POST/DELETE /api/auth/me/avatar`` and ``GET /avatars/<name>`` through the Flask test client."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import ExifTags, Image
from sqlalchemy import text
from werkzeug.test import TestResponse

from authgate.service import AuthService
from authgate.store.records import AvatarImageRecord
from tests.helpers import (
    BROWSER,
    PASSWORD,
    PUBLIC_URL,
    StepClock,
    bearer,
    create_token,
    make_admin,
    make_app,
    make_settings,
    register,
    signed_in,
)

AVATAR_URL = re.compile(re.escape(PUBLIC_URL) + r"/avatars/([A-Za-z0-9_-]{32})\.(png|jpg)")
MiB = 1024 * 1024


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 64), **params: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "orange").save(out, fmt, **params)
    return out.getvalue()


BOUNDARY = "avatarboundary"


def multipart(data: bytes, *, filename: str, content_type: str, field: str = "avatar") -> bytes:
    """A multipart/form-data body with one file (built here: the test client's own encoder
    leaves large bodies in unclosed temporary files)."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    )
    return head.encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def upload(
    client: FlaskClient,
    data: bytes,
    *,
    headers: dict[str, str] | None = None,
    filename: str = "me.png",
    content_type: str = "image/png",
    field: str = "avatar",
) -> TestResponse:
    return client.post(
        "/api/auth/me/avatar",
        data=multipart(data, filename=filename, content_type=content_type, field=field),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        headers=headers or {},
    )


def image_name(url: str) -> str:
    match = AVATAR_URL.fullmatch(url)
    assert match, url
    return f"{match[1]}.{match[2]}"


def stored(service: AuthService, url: str) -> AvatarImageRecord | None:
    """The image behind an avatar URL, as its storage has it (None: not there)."""
    return service.avatars.images.storage.get(image_name(url))


def stored_names(service: AuthService) -> list[str]:
    with service.store.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(text("SELECT name FROM authgate_avatar_images ORDER BY name"))
        return [row[0] for row in rows]


def browser_login(client: FlaskClient) -> None:
    register(client)
    response = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": PASSWORD}, headers=BROWSER
    )
    assert response.status_code == 200


def served_path(url: str) -> str:
    return url.removeprefix(PUBLIC_URL)


def fetch(client: FlaskClient, url: str) -> TestResponse:
    """GET an avatar URL; the body is read and the file closed."""
    response = client.get(served_path(url))
    response.get_data()
    response.close()
    return response


# Upload, serve, replace, delete ----------------------------------------------------------------


def test_cookie_session_uploads_an_avatar_that_is_then_served(
    client: FlaskClient, service: AuthService, tmp_path: Path
) -> None:
    browser_login(client)
    response = upload(client, image_bytes("PNG", (800, 600)), headers=BROWSER)

    assert response.status_code == 200, response.json
    url = response.json["user"]["avatar_url"]
    assert AVATAR_URL.fullmatch(url)
    assert client.get("/api/auth/me").json["user"]["avatar_url"] == url

    saved = stored(service, url)
    assert saved is not None
    assert not (tmp_path / "avatars").exists()  # in the database, nothing on this instance's disk

    image = fetch(client, url)
    assert image.status_code == 200
    assert image.mimetype == "image/png"
    assert image.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert image.headers["ETag"] == f'"{hashlib.sha256(image.data).hexdigest()}"'
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert image.headers["Content-Security-Policy"] == "default-src 'none'"
    assert image.data == saved.data
    served = Image.open(io.BytesIO(image.data))
    assert served.format == "PNG"
    assert served.size == (512, 384)


def test_bearer_session_uploads_a_jpeg_and_its_exif_is_gone(
    client: FlaskClient, service: AuthService
) -> None:
    _, token = signed_in(client, "ada@example.com")
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N"}
    source = image_bytes("JPEG", exif=exif)
    assert b"SpyCam" in source

    response = upload(
        client, source, headers=bearer(token), filename="me.jpg", content_type="image/jpeg"
    )

    assert response.status_code == 200, response.json
    url = response.json["user"]["avatar_url"]
    assert url.endswith(".jpg")
    image = fetch(client, url)
    assert image.mimetype == "image/jpeg"
    assert b"SpyCam" not in image.data
    assert b"Exif" not in image.data
    assert stored(service, url) is not None


@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [
        pytest.param(image_bytes("PNG"), "me.gif", "image/gif", id="png-named-gif"),
        pytest.param(image_bytes("GIF"), "me.png", "image/png", id="gif-claimed-png"),
        pytest.param(image_bytes("JPEG"), "me.exe", "application/octet-stream", id="jpeg-as-exe"),
    ],
)
def test_the_content_decides_not_the_name_or_claimed_type(
    client: FlaskClient, data: bytes, filename: str, content_type: str
) -> None:
    _, token = signed_in(client, "ada@example.com")
    response = upload(
        client, data, headers=bearer(token), filename=filename, content_type=content_type
    )
    assert response.status_code == 200, response.json
    served = fetch(client, response.json["user"]["avatar_url"])
    assert served.mimetype in ("image/png", "image/jpeg")
    assert Image.open(io.BytesIO(served.data)).format in ("PNG", "JPEG")


def test_replacing_an_avatar_removes_the_old_image(
    client: FlaskClient, service: AuthService
) -> None:
    _, token = signed_in(client, "ada@example.com")
    first = upload(client, image_bytes(), headers=bearer(token)).json["user"]["avatar_url"]
    assert stored(service, first) is not None

    second = upload(client, image_bytes("GIF"), headers=bearer(token)).json["user"]["avatar_url"]

    assert second != first
    assert stored(service, second) is not None
    assert stored(service, first) is None
    assert fetch(client, first).status_code == 404
    assert stored_names(service) == [image_name(second)]


def test_delete_removes_the_avatar_and_its_image(client: FlaskClient, service: AuthService) -> None:
    _, token = signed_in(client, "ada@example.com")
    url = upload(client, image_bytes(), headers=bearer(token)).json["user"]["avatar_url"]

    response = client.delete("/api/auth/me/avatar", headers=bearer(token))

    assert response.status_code == 200
    assert response.json["user"]["avatar_url"] is None
    assert client.get("/api/auth/me", headers=bearer(token)).json["user"]["avatar_url"] is None
    assert stored(service, url) is None
    assert fetch(client, url).status_code == 404
    again = client.delete("/api/auth/me/avatar", headers=bearer(token))
    assert again.status_code == 200
    assert again.json["user"]["avatar_url"] is None


def test_a_file_over_the_global_body_limit_but_within_the_avatar_limit_is_accepted(
    client: FlaskClient, service: AuthService
) -> None:
    assert service.settings.max_body_bytes == MiB
    assert service.settings.avatar_max_bytes == 5 * MiB
    noise = Image.effect_noise((1100, 1000), 100).convert("RGB")
    out = io.BytesIO()
    noise.save(out, "PNG")
    big = out.getvalue()
    assert 2 * MiB < len(big) < 5 * MiB
    _, token = signed_in(client, "ada@example.com")
    response = upload(client, big, headers=bearer(token))
    assert response.status_code == 200, response.json
    # Every other endpoint keeps the global limit.
    large_json = client.patch("/api/auth/me", json={"name": "x" * (2 * MiB)}, headers=bearer(token))
    assert large_json.status_code == 413


def test_an_admin_deleting_a_user_removes_their_avatar_image(
    client: FlaskClient, service: AuthService
) -> None:
    admin, admin_token = signed_in(client, "admin@example.com")
    make_admin(service, admin["id"])  # roles are read live: the token now acts as admin
    user, token = signed_in(client, "ada@example.com")
    url = upload(client, image_bytes(), headers=bearer(token)).json["user"]["avatar_url"]
    assert stored(service, url) is not None
    response = client.delete(f"/api/users/{user['id']}", headers=bearer(admin_token))
    assert response.status_code == 204
    assert stored(service, url) is None
    assert stored_names(service) == []


def test_an_upload_for_a_user_deleted_meanwhile_leaves_no_image(
    client: FlaskClient, service: AuthService
) -> None:
    from authgate.errors import TokenRevokedError

    user, token = signed_in(client, "ada@example.com")
    principal = service.authenticate(token, "bearer")
    service.store.delete_user(user["id"], now=service.clock.now())
    with pytest.raises(TokenRevokedError):
        service.avatars.set_avatar(principal, image_bytes())
    assert stored_names(service) == []


# Files that are not ours -----------------------------------------------------------------------


def test_a_provider_avatar_url_is_replaced_but_nothing_outside_our_files_is_touched(
    client: FlaskClient, service: AuthService, tmp_path: Path
) -> None:
    user, token = signed_in(client, "ada@example.com")
    victim = tmp_path / "authgate-victim.txt"
    victim.write_text("keep me")
    for url in (
        "https://avatars.githubusercontent.com/u/1?v=4",
        f"{PUBLIC_URL}/avatars/../authgate-victim.txt",
        f"{PUBLIC_URL}/avatars/..%2Fauthgate-victim.txt",
        f"https://evil.test/avatars/{'a' * 32}.png",
    ):
        service.store.set_avatar_url(user["id"], url, now=service.clock.now())
        service.cache.users.pop(user["id"])
        response = upload(client, image_bytes(), headers=bearer(token))
        assert response.status_code == 200
        assert victim.read_text() == "keep me"


@pytest.mark.parametrize(
    "path",
    [
        "/avatars/../authgate.db",
        "/avatars/..%2Fauthgate.db",
        "/avatars/%2e%2e%2fkeys",
        "/avatars/.upload-abc.tmp",
        "/avatars/secret.txt",
        f"/avatars/{'A' * 32}.png",  # the right shape, but no such image
        f"/avatars/{'B' * 32}.png",  # a file of that name in the folder, but no such image
        f"/avatars/{'A' * 32}.svg",
        f"/avatars/{'A' * 31}.png",
        "/avatars/",
    ],
)
def test_only_our_own_avatar_names_are_served(
    client: FlaskClient, tmp_path: Path, path: str
) -> None:
    _, token = signed_in(client, "ada@example.com")
    upload(client, image_bytes(), headers=bearer(token))
    # Files an earlier version's folder might hold are never served from the disk.
    (tmp_path / "avatars").mkdir()
    (tmp_path / "avatars" / "secret.txt").write_text("not an avatar")
    (tmp_path / "avatars" / ".upload-abc.tmp").write_text("half written")
    (tmp_path / "avatars" / f"{'A' * 32}.svg").write_text("<svg/>")
    (tmp_path / "avatars" / f"{'B' * 32}.png").write_text("not an avatar")
    response = client.get(path)
    assert response.status_code == 404
    assert b"not an avatar" not in response.data
    assert b"SQLite" not in response.data


# Refusals --------------------------------------------------------------------------------------


def test_a_corrupt_image_is_422_invalid_image(client: FlaskClient, service: AuthService) -> None:
    _, token = signed_in(client, "ada@example.com")
    good = image_bytes("PNG", (300, 300))
    for data in (good[: len(good) // 2], b"<svg xmlns='http://www.w3.org/2000/svg'/>"):
        response = upload(client, data, headers=bearer(token))
        assert response.status_code == 422
        assert response.json["error"]["code"] == "invalid_image"
    assert client.get("/api/auth/me", headers=bearer(token)).json["user"]["avatar_url"] is None
    assert stored_names(service) == []  # nothing stored for refused files


def test_a_decompression_bomb_is_422_not_500(client: FlaskClient) -> None:
    from tests.helpers import png_declaring

    _, token = signed_in(client, "ada@example.com")
    # 20 MP is over the 16 MP the server decodes (a 16-bit or palette PNG that size would take
    # hundreds of MB while being converted).
    for width, height in ((30000, 30000), (10000, 10000), (5000, 4000)):
        response = upload(client, png_declaring(width, height), headers=bearer(token))
        assert response.status_code == 422
        assert response.json["error"]["code"] == "invalid_image"
        assert "too many pixels" in response.json["error"]["message"]


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(
            lambda c, h: upload(c, image_bytes(), headers=h, field="file"), id="wrong-field"
        ),
        pytest.param(lambda c, h: upload(c, b"", headers=h), id="empty-file"),
        pytest.param(lambda c, h: c.post("/api/auth/me/avatar", headers=h), id="no-body"),
        pytest.param(
            lambda c, h: c.post("/api/auth/me/avatar", json={"avatar": "x"}, headers=h), id="json"
        ),
    ],
)
def test_a_missing_file_is_422_validation_failed(client: FlaskClient, send: Any) -> None:
    _, token = signed_in(client, "ada@example.com")
    response = send(client, bearer(token))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_failed"
    assert "avatar" in response.json["error"]["details"]["fields"]


def test_an_api_token_cannot_change_the_avatar(client: FlaskClient) -> None:
    _, session = signed_in(client, "ada@example.com")
    api_token = create_token(client, session, scopes=["write"])["token"]
    for response in (
        upload(client, image_bytes(), headers=bearer(api_token)),
        client.delete("/api/auth/me/avatar", headers=bearer(api_token)),
    ):
        assert response.status_code == 403
        assert response.json["error"]["code"] == "session_required"


def test_without_credentials_it_is_401(client: FlaskClient) -> None:
    assert upload(client, image_bytes()).status_code == 401
    assert client.delete("/api/auth/me/avatar").status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "https://evil.test", "X-Requested-With": "fetch"},
        {"Origin": BROWSER["Origin"]},
    ],
)
def test_a_cookie_upload_without_csrf_proof_is_refused(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    browser_login(client)
    response = upload(client, image_bytes(), headers=headers)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "csrf_failed"
    deleted = client.delete("/api/auth/me/avatar", headers=headers)
    assert deleted.status_code == 403
    assert client.get("/api/auth/me").json["user"]["avatar_url"] is None


# Size limits -----------------------------------------------------------------------------------


class Body(io.RawIOBase):
    """A multipart body whose file part runs on for ``total`` bytes; counts the bytes read."""

    def __init__(self, total: int):
        self.head = (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="avatar"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.total = total
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        body_end = len(self.head) + self.total
        chunk = bytearray()
        while len(chunk) < len(buffer):
            at = self.position + len(chunk)
            if at < len(self.head):
                chunk += self.head[at:]
            elif at < body_end:
                chunk += b"\x89" * min(len(buffer) - len(chunk), body_end - at)
            elif at < body_end + len(self.tail):
                chunk += self.tail[at - body_end :]
            else:
                break
        chunk = chunk[: len(buffer)]
        buffer[: len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)


def raw_body(stream: Any) -> dict[str, Any]:
    """WSGI environ entries that send ``stream`` as the multipart body (the test client would
    otherwise encode its own, with another boundary)."""
    return {"wsgi.input": stream, "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}"}


def test_a_declared_content_length_over_the_limit_is_413_before_reading(
    client: FlaskClient,
) -> None:
    _, token = signed_in(client, "ada@example.com")
    body = Body(6 * MiB)
    response = client.post(
        "/api/auth/me/avatar",
        headers=bearer(token),
        environ_overrides={**raw_body(body), "CONTENT_LENGTH": str(6 * MiB + 200)},
    )
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"
    assert "5 MB" in response.json["error"]["message"]
    assert body.position == 0


def test_a_chunked_upload_is_cut_off_at_the_limit_while_streaming(client: FlaskClient) -> None:
    _, token = signed_in(client, "ada@example.com")
    body = Body(200 * MiB)  # far more than anyone should buffer
    response = client.post(
        "/api/auth/me/avatar",
        headers={**bearer(token), "Transfer-Encoding": "chunked"},
        environ_overrides={**raw_body(body), "wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"
    assert 5 * MiB < body.position <= 5 * MiB + 64 * 1024


def test_a_chunked_upload_within_the_limit_is_accepted(client: FlaskClient) -> None:
    _, token = signed_in(client, "ada@example.com")
    body = multipart(image_bytes("PNG", (100, 100)), filename="a.png", content_type="image/png")
    response = client.post(
        "/api/auth/me/avatar",
        headers={**bearer(token), "Transfer-Encoding": "chunked"},
        environ_overrides={**raw_body(io.BytesIO(body)), "wsgi.input_terminated": True},
    )
    assert response.status_code == 200, response.json


def test_a_file_over_a_configured_limit_is_413(
    tmp_path: Path, database_url: str, clock: StepClock
) -> None:
    from authgate.bootstrap import build_service

    service = build_service(
        make_settings(tmp_path, database_url, avatar_max_bytes=20_000), clock=clock
    )
    try:
        app: Flask = make_app(service)
        client = app.test_client()
        _, token = signed_in(client, "ada@example.com")
        noise = io.BytesIO()
        Image.effect_noise((120, 120), 100).convert("RGB").save(noise, "PNG")
        assert 20_000 < len(noise.getvalue()) < 20_000 + 64 * 1024  # within the body allowance
        response = upload(client, noise.getvalue(), headers=bearer(token))
        assert response.status_code == 413
        assert response.json["error"]["code"] == "payload_too_large"
        assert upload(client, image_bytes("PNG", (8, 8)), headers=bearer(token)).status_code == 200
    finally:
        service.close()


def test_the_upload_limits_follow_the_setting_for_forms(
    tmp_path: Path, database_url: str, clock: StepClock
) -> None:
    from authgate.bootstrap import build_service

    service = build_service(
        make_settings(tmp_path, database_url, avatar_max_bytes=3 * MiB), clock=clock
    )
    try:
        app = make_app(service)
        client = app.test_client()
        _, token = signed_in(client, "ada@example.com")
        response = client.get("/api/auth/me/avatar", headers=bearer(token))
        assert response.status_code == 200
        assert response.json == {
            "max_bytes": 3 * MiB,
            "types": ["image/jpeg", "image/png", "image/gif"],
            "limit_message": "The image must be at most 3 MB.",
        }
        assert app.test_client().get("/api/auth/me/avatar").status_code == 401  # no credential
        api_token = create_token(client, token)["token"]
        refused = client.get("/api/auth/me/avatar", headers=bearer(api_token))
        assert refused.status_code == 403
        assert refused.json["error"]["code"] == "session_required"
    finally:
        service.close()


# The form itself ------------------------------------------------------------------------------


def form(*parts: tuple[str, str | None, bytes], head: str = "") -> bytes:
    """A multipart/form-data body of (field, filename or None for a text field, data) parts."""
    body = b""
    for field, filename, data in parts:
        disposition = f'form-data; name="{field}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        body += f"--{BOUNDARY}\r\n{head}Content-Disposition: {disposition}\r\n\r\n".encode()
        body += data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def send_form(client: FlaskClient, body: bytes, token: str) -> TestResponse:
    return client.post(
        "/api/auth/me/avatar",
        data=body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        headers=bearer(token),
    )


ONE_IMAGE = "Send one image, in the field 'avatar', in a form of at most 8 parts."


def test_nine_small_parts_are_422_saying_what_the_form_may_be_not_413(
    client: FlaskClient,
) -> None:
    _, token = signed_in(client, "ada@example.com")
    fields = [(f"note{i}", None, b"x") for i in range(8)]

    response = send_form(client, form(("avatar", "a.png", image_bytes()), *fields), token)

    assert response.status_code == 422  # was 413 "The image must be at most 5 MB."
    assert response.json["error"]["code"] == "validation_failed"
    assert response.json["error"]["details"]["fields"] == {"avatar": ONE_IMAGE}
    assert client.get("/api/auth/me", headers=bearer(token)).json["user"]["avatar_url"] is None


def test_eight_parts_with_the_image_are_accepted_the_others_ignored(client: FlaskClient) -> None:
    _, token = signed_in(client, "ada@example.com")
    fields = [(f"note{i}", None, b"x" * 1000) for i in range(6)]

    response = send_form(
        client,
        form(*fields[:3], ("avatar", "a.png", image_bytes()), *fields[3:], ("f", "", b"")),
        token,
    )

    assert response.status_code == 200, response.json
    assert AVATAR_URL.fullmatch(response.json["user"]["avatar_url"])


def test_two_images_are_422(client: FlaskClient) -> None:
    _, token = signed_in(client, "ada@example.com")
    image = image_bytes()

    response = send_form(
        client, form(("avatar", "a.png", image), ("avatar", "b.png", image)), token
    )

    assert response.status_code == 422
    assert response.json["error"]["details"]["fields"] == {"avatar": ONE_IMAGE}


def test_part_headers_that_run_on_are_422_not_413(client: FlaskClient) -> None:
    _, token = signed_in(client, "ada@example.com")
    head = "X-Padding: " + "x" * 200_000 + "\r\n"

    response = send_form(client, form(("avatar", "a.png", image_bytes()), head=head), token)

    assert response.status_code == 422
    assert response.json["error"]["details"]["fields"] == {
        "avatar": "Send the image as multipart/form-data in the field 'avatar'."
    }


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(form(("avatar", "a.png", image_bytes()))[:-30], id="cut-short"),
        pytest.param(b"no boundary at all", id="no-boundary"),
        pytest.param(form(("avatar", "a.png", b"")), id="empty-file"),
        pytest.param(form(("avatar", None, b"text")), id="text-field"),
    ],
)
def test_a_malformed_form_or_no_image_is_422(client: FlaskClient, body: bytes) -> None:
    _, token = signed_in(client, "ada@example.com")

    response = send_form(client, body, token)

    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_failed"
    assert set(response.json["error"]["details"]["fields"]) == {"avatar"}


def test_an_image_over_the_limit_in_a_body_within_the_allowance_is_cut_off_at_the_limit(
    client: FlaskClient,
) -> None:
    # A declared length within limit + overhead: the image itself stops being read at 5 MiB.
    _, token = signed_in(client, "ada@example.com")
    body = Body(5 * MiB + 1)
    length = len(body.head) + body.total + len(body.tail)
    response = client.post(
        "/api/auth/me/avatar",
        headers=bearer(token),
        environ_overrides={**raw_body(body), "CONTENT_LENGTH": str(length)},
    )
    assert response.status_code == 413
    assert response.json["error"]["message"] == "The image must be at most 5 MB."
