"""The caller's avatar (``/api/auth/me/avatar``) and the avatar images (``/avatars/<name>``).

An image is served from wherever it is stored (the database, or an S3-compatible bucket: the
app reads it, so the bucket may stay private and every image has the same headers). Its name is
never reused, so it is cached for a year without revalidation (``immutable``); its strong
``ETag`` (the SHA-256 of its bytes) answers a revalidation that comes anyway (a reload, a cache
that ignores ``immutable``) with ``304 Not Modified``, for which only the tag is read.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, cast

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from authgate.errors import PayloadTooLargeError, ValidationFailedError
from authgate.http.body_limits import (
    MAX_FORM_PARTS,
    MULTIPART_OVERHEAD_BYTES,
    describe_avatar_limit,
)
from authgate.http.routes import AVATAR_UPLOAD_PATH
from authgate.http.schemas import user_to_json
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required
from authgate.store.records import AvatarImageRecord

blueprint = Blueprint("authgate_avatars", __name__)

FIELD = "avatar"
# An upload larger than this is spooled to a temporary file rather than kept in memory.
_IN_MEMORY_BYTES = 512 * 1024
# The body is read in chunks of this size; what the decoder holds unparsed (a preamble, a part's
# headers, the start of a boundary) may not grow much beyond one.
_CHUNK_BYTES = 64 * 1024
_UNPARSED_BYTES = _CHUNK_BYTES + 16 * 1024
# A year, never revalidated: a new avatar always gets a new name.
IMMUTABLE = "public, max-age=31536000, immutable"


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(describe_avatar_limit(max_bytes))


@contextmanager
def _uploaded_file(max_bytes: int) -> Iterator[IO[bytes]]:
    """The file of the ``avatar`` field, spooled to disk as it streams in (closed afterwards).

    This request may be larger than the global body limit: up to ``max_bytes`` of image. A
    declared Content-Length beyond that is refused before the body is read; a chunked body, or
    an image that grows past ``max_bytes``, is cut off while it streams. The form is read here
    part by part, so that each refusal gives its own reason: too large (413), or not the form
    asked for (422: no ``avatar`` file, two of them, more than ``MAX_FORM_PARTS`` parts, or not
    multipart at all). Only the image is kept; the data of any other part is dropped.
    """
    request.max_content_length = max_bytes + MULTIPART_OVERHEAD_BYTES
    boundary = request.mimetype_params.get("boundary", "")
    if request.mimetype != "multipart/form-data" or not boundary or not boundary.isascii():
        raise _missing_file()
    with tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY_BYTES) as file:
        try:
            size = _receive_avatar(request.stream, boundary.encode(), file, max_bytes)
        except RequestEntityTooLarge:  # the body as a whole: its Content-Length or a chunked one
            raise _too_large(max_bytes) from None
        except ValueError:  # werkzeug: malformed multipart (no boundary, no headers, cut short)
            raise _missing_file() from None
        if size is None:
            raise _missing_file()
        if size == 0:
            raise ValidationFailedError({FIELD: "The file is empty."})
        file.seek(0)
        yield cast(IO[bytes], file)


def _receive_avatar(
    stream: IO[bytes], boundary: bytes, file: IO[bytes], max_bytes: int
) -> int | None:
    """Write the ``avatar`` file's bytes to ``file`` as they arrive; its size, or None when the
    form has no such file."""
    decoder = MultipartDecoder(boundary, max_form_memory_size=_UNPARSED_BYTES)
    parts = 0
    size: int | None = None
    receiving = False  # whether the data of the current part is the image's
    while True:
        chunk = stream.read(_CHUNK_BYTES)
        try:
            decoder.receive_data(chunk or None)
        except RequestEntityTooLarge:  # a preamble or a part's headers that run on
            raise _missing_file() from None
        event = decoder.next_event()
        while not isinstance(event, NeedData | Epilogue):
            if isinstance(event, Field | File):
                parts += 1
                receiving = isinstance(event, File) and event.name == FIELD
                if parts > MAX_FORM_PARTS or (receiving and size is not None):
                    raise _not_one_image()
                if receiving:
                    size = 0
            elif isinstance(event, Data) and receiving and size is not None:
                size += len(event.data)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                file.write(event.data)
            event = decoder.next_event()
        if not chunk:
            return size


def _not_one_image() -> ValidationFailedError:
    return ValidationFailedError(
        {
            FIELD: f"Send one image, in the field 'avatar', in a form of at most "
            f"{MAX_FORM_PARTS} parts."
        }
    )


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
    avatars = get_extension().service.avatars
    image = avatars.read_avatar(name, if_none_match=request.if_none_match)
    if isinstance(image, AvatarImageRecord):
        response = Response(image.data, mimetype=image.content_type)
    else:  # the client's copy is current: only the tag was read
        response = Response(status=304)
    response.set_etag(image.digest)  # strong: the same bytes, byte for byte
    response.headers["Cache-Control"] = IMMUTABLE
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    # Pages on the allowed origins show it with <img>, also under Cross-Origin-Embedder-Policy.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    # The other conditions (If-Match, If-Modified-Since, ...) as werkzeug answers them.
    response.make_conditional(request)
    return response
