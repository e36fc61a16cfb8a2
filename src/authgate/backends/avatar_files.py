"""The avatar image files: an upload checked and re-encoded by ``authgate.backends.avatar_images``,
written under ``<instance_path>/avatars/`` with a random name nobody can guess (public content:
0644 in a 0755 directory). Only ever a file of ours is removed, by a name of our own pattern.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from authgate.backends.avatar_images import ProcessedAvatar

log = logging.getLogger("authgate")

# ``secrets.token_urlsafe(24)``: 32 characters of [A-Za-z0-9_-], and the extension we wrote.
AVATAR_NAME = re.compile(r"[A-Za-z0-9_-]{32}\.(?:jpg|png)")
# Decoded at most this many pixels: 16 MP (a 4096 x 4096 photo) is ~64 MB as RGBA, and a
# 512-pixel avatar gains nothing from more. JPEGs decode scaled down.
AVATAR_MAX_PIXELS = 16_000_000
AVATAR_MAX_SIDE = 512


class AvatarFiles:
    """The avatar images in one directory: written atomically, named at random."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path(self, name: str) -> Path | None:
        """The file of an avatar name; None for any name we would not have made."""
        if not AVATAR_NAME.fullmatch(name):
            return None
        return self.directory / name

    def save_upload(self, upload: bytes | IO[bytes]) -> str:
        """Check and re-encode an upload, write it, and return its new name;
        ``InvalidImageError`` (422) for anything but a readable JPEG, PNG or GIF."""
        # Pillow is loaded by the first upload, not by every worker as it boots.
        from authgate.backends.avatar_images import process_avatar

        return self.save(
            process_avatar(upload, max_pixels=AVATAR_MAX_PIXELS, max_side=AVATAR_MAX_SIDE)
        )

    def save(self, avatar: ProcessedAvatar) -> str:
        """Write the image under a new random name (0644) and return the name."""
        self._ensure_directory()
        name = f"{secrets.token_urlsafe(24)}.{avatar.extension}"
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".upload-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(avatar.data)
                f.flush()
                os.fchmod(f.fileno(), 0o644)
                os.fsync(f.fileno())
            os.replace(temporary, self.directory / name)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return name

    def remove(self, name: str) -> None:
        path = self.path(name)
        if path is None:
            return
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:  # the account change stands; the orphan file is only logged
            log.warning("could not remove the avatar file %s: %s", path, e)

    def _ensure_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o755, parents=True)
        except FileExistsError:
            return
        # Whatever the umask: the images are public content, and a front proxy may serve them.
        os.chmod(self.directory, 0o755)  # noqa: S103
