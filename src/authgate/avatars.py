"""Profile pictures: the caller uploads or removes theirs (mixed into the service), and the files.

An upload is checked and re-encoded by ``authgate.core.avatars``, written under
``<instance_path>/avatars/`` with a random name nobody can guess (public content: 0644 in a 0755
directory), and the user's ``avatar_url`` becomes ``<public_url>/avatars/<name>``. The file it
replaces is removed — only ever a file of ours, by a name of our own pattern: an avatar URL from
a login provider (``https://avatars.githubusercontent.com/...``) is left alone.
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

from authgate.core.avatars import ProcessedAvatar, process_avatar
from authgate.errors import TokenRevokedError
from authgate.store.records import RevocationKind, UserRecord

if TYPE_CHECKING:
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.revocations import RevocationFeed
    from authgate.service import Principal
    from authgate.store.protocols import Store

log = logging.getLogger("authgate")

AVATAR_PATH = "/avatars/"
# ``secrets.token_urlsafe(24)``: 32 characters of [A-Za-z0-9_-], and the extension we wrote.
AVATAR_NAME = re.compile(r"[A-Za-z0-9_-]{32}\.(?:jpg|png)")
# Decoded at most this many pixels: 16 MP (a 4096 x 4096 photo) is ~64 MB as RGBA, and a
# 512-pixel avatar gains nothing from more. JPEGs decode scaled down.
AVATAR_MAX_PIXELS = 16_000_000
AVATAR_MAX_SIDE = 512


def describe_avatar_limit(max_bytes: int) -> str:
    """What an upload over ``AUTHGATE_AVATAR_MAX_BYTES`` is told (by the app and by nginx)."""
    return f"The image must be at most {max_bytes / (1024 * 1024):g} MB."


class AvatarFiles:
    """The avatar images in one directory: written atomically, named at random."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path(self, name: str) -> Path | None:
        """The file of an avatar name; None for any name we would not have made."""
        if not AVATAR_NAME.fullmatch(name):
            return None
        return self.directory / name

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


class AvatarMixin:
    """The avatar decisions of ``AuthService``."""

    if TYPE_CHECKING:
        settings: Settings
        store: Store
        clock: Clock
        feed: RevocationFeed

        def _session_id(self, principal: Principal) -> str: ...

    @property
    def avatars(self) -> AvatarFiles:
        return AvatarFiles(self.settings.instance_path / "avatars")

    def avatar_url(self, name: str) -> str:
        return f"{self.settings.public_url}{AVATAR_PATH}{name}"

    def own_avatar_name(self, url: str | None) -> str | None:
        """The file name of an avatar URL this server made; None for any other URL."""
        prefix = self.settings.public_url + AVATAR_PATH
        if url is None or not url.startswith(prefix):
            return None
        name = url.removeprefix(prefix)
        return name if AVATAR_NAME.fullmatch(name) else None

    def set_avatar(self, principal: Principal, upload: bytes | IO[bytes]) -> UserRecord:
        """Replace the caller's avatar with ``upload`` (login session only);
        ``InvalidImageError`` (422) for anything but a readable JPEG, PNG or GIF."""
        self._session_id(principal)
        avatar = process_avatar(upload, max_pixels=AVATAR_MAX_PIXELS, max_side=AVATAR_MAX_SIDE)
        files = self.avatars
        name = files.save(avatar)
        stored = False
        try:
            user = self._replace_avatar_url(principal.user.id, self.avatar_url(name))
            stored = True
        finally:
            if not stored:
                files.remove(name)
        return user

    def remove_avatar(self, principal: Principal) -> UserRecord:
        """Clear the caller's avatar (login session only); the file goes too."""
        self._session_id(principal)
        return self._replace_avatar_url(principal.user.id, None)

    def remove_avatar_file(self, url: str | None) -> None:
        """Delete the file behind an avatar URL if it is one of ours (a deleted user's)."""
        name = self.own_avatar_name(url)
        if name is not None:
            self.avatars.remove(name)

    def _replace_avatar_url(self, user_id: str, url: str | None) -> UserRecord:
        result = self.store.set_avatar_url(user_id, url, now=self.clock.now())
        if result is None:
            raise TokenRevokedError()
        user, old_url = result
        self.feed.announce([(RevocationKind.USER, user_id)])
        self.remove_avatar_file(old_url)
        return user
