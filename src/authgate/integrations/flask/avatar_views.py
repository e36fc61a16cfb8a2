"""The caller's avatar (``/api/auth/me/avatar``) and the avatar images (``/avatars/<name>``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, cast

from flask import Blueprint, Response, request, send_from_directory
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from authgate.errors import NotFoundError, PayloadTooLargeError, ValidationFailedError
from authgate.http.body_limits import MULTIPART_OVERHEAD_BYTES, describe_avatar_limit
from authgate.http.routes import AVATAR_UPLOAD_PATH
from authgate.http.schemas import user_to_json
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required

blueprint = Blueprint("authgate_avatars", __name__)

FIELD = "avatar"
# An upload larger than this is spooled to a temporary file rather than kept in memory.
_IN_MEMORY_BYTES = 512 * 1024
# A year, never revalidated: a new avatar always gets a new name.
IMMUTABLE = "public, max-age=31536000, immutable"
_CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(describe_avatar_limit(max_bytes))


@contextmanager
def _uploaded_file(max_bytes: int) -> Iterator[IO[bytes]]:
    """The file of the ``avatar`` field, spooled to disk as it streams in (closed afterwards).

    This request may be larger than the global body limit: up to ``max_bytes`` of image. A
    declared Content-Length beyond that is refused before the body is read; a chunked body is
    cut off at the limit while it streams. The form is parsed here rather than by
    ``request.files`` so that the parts already spooled are closed when parsing stops half-way.
    """
    request.max_content_length = max_bytes + MULTIPART_OVERHEAD_BYTES
    if request.mimetype != "multipart/form-data":
        raise _missing_file()
    spooled: list[IO[bytes]] = []

    def spool(*_: object, **__: object) -> IO[bytes]:
        # Left open for the parser to fill; every one is closed in ``finally`` below.
        file = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY_BYTES)  # noqa: SIM115
        spooled.append(cast(IO[bytes], file))
        return cast(IO[bytes], file)

    parser = FormDataParser(
        spool,
        max_form_memory_size=request.max_form_memory_size,
        max_content_length=request.max_content_length,
        max_form_parts=8,
    )
    try:
        _, _, files = parser.parse(
            request.stream, request.mimetype, request.content_length, request.mimetype_params
        )
        upload = files.get(FIELD)
        if upload is None:
            raise _missing_file()
        stream = upload.stream
        size = stream.seek(0, os.SEEK_END)
        stream.seek(0)
        if size > max_bytes:
            raise _too_large(max_bytes)
        if size == 0:
            raise ValidationFailedError({FIELD: "The file is empty."})
        yield stream
    except RequestEntityTooLarge:
        raise _too_large(max_bytes) from None
    finally:
        for file in spooled:
            file.close()


def _missing_file() -> ValidationFailedError:
    return ValidationFailedError(
        {FIELD: "Send the image as multipart/form-data in the field 'avatar'."}
    )


@blueprint.get(AVATAR_UPLOAD_PATH)
@token_required(sessions_only=True)
def avatar_options() -> dict[str, object]:
    """What an upload may be, for forms: the size limit and the image types."""
    max_bytes = get_extension().settings.avatar_max_bytes
    return {
        "max_bytes": max_bytes,
        "types": ["image/jpeg", "image/png", "image/gif"],
        "limit_message": describe_avatar_limit(max_bytes),
    }


@blueprint.post(AVATAR_UPLOAD_PATH)
@token_required(sessions_only=True)
def upload_avatar() -> dict[str, object]:
    ext = get_extension()
    with _uploaded_file(ext.settings.avatar_max_bytes) as upload:
        user = ext.service.avatars.set_avatar(authenticate_request(), upload)
    return {"user": user_to_json(user)}


@blueprint.delete(AVATAR_UPLOAD_PATH)
@token_required(sessions_only=True)
def delete_avatar() -> dict[str, object]:
    user = get_extension().service.avatars.remove_avatar(authenticate_request())
    return {"user": user_to_json(user)}


@blueprint.get("/avatars/<name>")
def avatar_image(name: str) -> Response:
    files = get_extension().service.avatars.files
    path = files.path(name)
    if path is None or not path.is_file():
        raise NotFoundError()
    response = send_from_directory(
        files.directory, name, mimetype=_CONTENT_TYPES[name.rsplit(".", 1)[1]]
    )
    response.headers["Cache-Control"] = IMMUTABLE
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    # Pages on the allowed origins show it with <img>, also under Cross-Origin-Embedder-Policy.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
