"""Where the avatar images live: in the database (``AUTHGATE_AVATAR_STORAGE=database``, the
default) or in an S3-compatible bucket (``s3``, ``authgate.backends.avatar_s3``). Nothing is
kept on the instance's disk, so any instance serves any image.

An upload is checked and re-encoded by ``authgate.backends.avatar_images`` and stored under a
random name nobody can guess; an image never changes under its name (a new upload gets a new
one), which is what lets it be cached for good. Its SHA-256 is kept beside it: the strong
``ETag`` it is served with, read alone (``get_tag``, without the bytes) to answer a
revalidation. Only ever an image of ours is removed, by a name of our own pattern.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from authgate.core.avatar_names import avatar_content_type, is_avatar_name, new_avatar_name
from authgate.errors import ServiceUnavailableError, StoreUnavailableError
from authgate.store.records import AvatarImageRecord, AvatarImageTag

if TYPE_CHECKING:
    from datetime import datetime

    from authgate.backends.avatar_images import ProcessedAvatar
    from authgate.core.clocks import Clock
    from authgate.store.protocols import AvatarImageStore

log = logging.getLogger("authgate")

# Decoded at most this many pixels: 16 MP (a 4096 x 4096 photo) is ~64 MB as RGBA, and a
# 512-pixel avatar gains nothing from more. JPEGs decode scaled down.
AVATAR_MAX_PIXELS = 16_000_000
AVATAR_MAX_SIDE = 512


def avatar_image(name: str, data: bytes) -> AvatarImageRecord:
    """The record of an image of ours: its type from its name, its digest from its bytes."""
    return AvatarImageRecord(
        name=name,
        data=data,
        content_type=avatar_content_type(name),
        digest=hashlib.sha256(data).hexdigest(),
    )


class AvatarStorage(Protocol):
    """Where the images are kept. Failures are ``StoreUnavailableError`` (the database) or
    ``AvatarStorageUnavailableError`` (a bucket): both answer 503."""

    def put(self, image: AvatarImageRecord, *, now: datetime) -> bool:
        """Store the image; False when an image of that name is there already."""
        ...

    def get(self, name: str) -> AvatarImageRecord | None: ...

    def get_tag(self, name: str) -> AvatarImageTag | None:
        """The image's type and digest, without its bytes where the storage keeps the digest
        apart; a storage that had to read the bytes to know it returns the whole image."""
        ...

    def delete(self, name: str) -> None: ...

    def describe(self) -> str:
        """Where the images are, for commands' messages (no secret)."""
        ...


class DatabaseAvatarStorage:
    """The images in the database's ``authgate_avatar_images`` table."""

    def __init__(self, store: AvatarImageStore):
        self.store = store

    def put(self, image: AvatarImageRecord, *, now: datetime) -> bool:
        return self.store.put_avatar_image(image, now=now)

    def get(self, name: str) -> AvatarImageRecord | None:
        return self.store.get_avatar_image(name)

    def get_tag(self, name: str) -> AvatarImageTag | None:
        return self.store.get_avatar_image_tag(name)

    def delete(self, name: str) -> None:
        self.store.delete_avatar_image(name)

    def describe(self) -> str:
        return "the database"


class AvatarImages:
    """The service's view of the images: uploads checked, re-encoded and named; only our own
    names ever read or removed."""

    def __init__(self, storage: AvatarStorage, clock: Clock):
        self.storage = storage
        self.clock = clock

    def save_upload(self, upload: bytes | IO[bytes]) -> str:
        """Check and re-encode an upload, store it, and return its new name;
        ``InvalidImageError`` (422) for anything but a readable JPEG, PNG or GIF."""
        # Pillow is loaded by the first upload, not by every worker as it boots.
        from authgate.backends.avatar_images import process_avatar

        return self.save(
            process_avatar(upload, max_pixels=AVATAR_MAX_PIXELS, max_side=AVATAR_MAX_SIDE)
        )

    def save(self, avatar: ProcessedAvatar) -> str:
        """Store the image under a new random name and return the name."""
        name = new_avatar_name(avatar.extension)
        self.storage.put(avatar_image(name, avatar.data), now=self.clock.now())
        return name

    def read(self, name: str) -> AvatarImageRecord | None:
        """The image of that name; None for a name we would not have made, or no such image."""
        if not is_avatar_name(name):
            return None
        return self.storage.get(name)

    def read_tag(self, name: str) -> AvatarImageTag | None:
        """The tag of the image of that name (its type and digest; the whole image when the
        storage had to read it to know); None as for ``read``."""
        if not is_avatar_name(name):
            return None
        return self.storage.get_tag(name)

    def remove(self, name: str) -> None:
        """Delete an image of ours. A failure is only logged: the account change that let go
        of the image stands, and the image is an orphan nobody links to."""
        if not is_avatar_name(name):
            return
        try:
            self.storage.delete(name)
        except (StoreUnavailableError, ServiceUnavailableError) as e:
            log.warning("could not remove the avatar image %s: %s", name, e)

    def import_image(self, name: str, data: bytes) -> bool:
        """Store an image of an earlier version's avatar folder under its own name (so the
        URLs that name it keep working); False when it is there already."""
        if not is_avatar_name(name):
            raise ValueError(f"{name} is not an avatar image name")
        return self.storage.put(avatar_image(name, data), now=self.clock.now())


def avatar_files_in(directory: Path) -> Iterator[Path]:
    """The image files an earlier version wrote in ``<instance>/avatars/`` (other files,
    such as half-written ``.upload-*.tmp`` ones, are left out), in name order."""
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        if is_avatar_name(path.name) and path.is_file():
            yield path
