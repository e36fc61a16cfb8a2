"""Profile pictures: the caller uploads or removes theirs; anyone reads them.

The image is checked, re-encoded and stored by the avatar images backend (in the database, or
an S3-compatible bucket); the user's ``avatar_url`` becomes ``<public_url>/avatars/<name>``.
The image it replaces is removed — only ever an image of ours: an avatar URL from a login
provider (``https://avatars.githubusercontent.com/...``) is left alone.

A revalidation (``If-None-Match``) is answered from the image's tag alone: the storage reads
the digest kept beside the image, not the image, to say ``304``.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import IO, TYPE_CHECKING, Protocol, overload

from authgate.core import audit as events
from authgate.core.avatar_names import is_avatar_name
from authgate.errors import NotFoundError, TokenRevokedError
from authgate.http.routes import AVATAR_PATH
from authgate.service.principals import Principal
from authgate.store.records import AvatarImageRecord, AvatarImageTag, RevocationKind, UserRecord

if TYPE_CHECKING:
    from authgate.backends.avatar_storage import AvatarImages
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.service.audit import Audit
    from authgate.service.authorization import Authorization
    from authgate.store.protocols import Store


class EntityTags(Protocol):
    """The entity tags of a request's ``If-None-Match`` (werkzeug's ``ETags``): false when it
    names none; ``*`` contains every tag."""

    def __bool__(self) -> bool: ...

    def contains_weak(self, etag: str) -> bool:
        """Whether ``etag`` (unquoted) is one of them, by the weak comparison If-None-Match
        asks for (RFC 9110, 13.1.2)."""
        ...


@dataclass(eq=False, repr=False)
class Avatars:
    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    feed: RevocationFeed
    images: AvatarImages
    authorization: Authorization
    audit: Audit

    def avatar_url(self, name: str) -> str:
        return f"{self.settings.public_url}{AVATAR_PATH}{name}"

    def own_avatar_name(self, url: str | None) -> str | None:
        """The image name of an avatar URL this server made; None for any other URL."""
        prefix = self.settings.public_url + AVATAR_PATH
        if url is None or not url.startswith(prefix):
            return None
        name = url.removeprefix(prefix)
        return name if is_avatar_name(name) else None

    @overload
    def read_avatar(self, name: str) -> AvatarImageRecord: ...

    @overload
    def read_avatar(self, name: str, *, if_none_match: EntityTags | None) -> AvatarImageTag: ...

    def read_avatar(self, name: str, *, if_none_match: EntityTags | None = None) -> AvatarImageTag:
        """The image served at ``/avatars/<name>`` (public), an ``AvatarImageRecord``; only its
        ``AvatarImageTag`` when ``if_none_match`` (the request's) names its tag or is ``*``:
        the client's copy is current (``304``), and the image itself is not read.
        ``NotFoundError`` for a name that is not one of ours or an image replaced or removed
        since."""
        if if_none_match:
            tag = self.images.read_tag(name)
            if tag is None:
                raise NotFoundError()
            if if_none_match.contains_weak(tag.digest):
                return AvatarImageTag(
                    name=tag.name, content_type=tag.content_type, digest=tag.digest
                )
            if isinstance(tag, AvatarImageRecord):  # the storage had to read it whole to know
                return tag
        image = self.images.read(name)
        if image is None:
            raise NotFoundError()
        return image

    def set_avatar(self, principal: Principal, upload: bytes | IO[bytes]) -> UserRecord:
        """Replace the caller's avatar with ``upload`` (login session only);
        ``InvalidImageError`` (422) for anything but a readable JPEG, PNG or GIF."""
        self.authorization.require_session(principal)
        name = self.images.save_upload(upload)
        stored = False
        try:
            user = self._replace_avatar_url(principal.user.id, self.avatar_url(name))
            stored = True
        finally:
            if not stored:
                self.images.remove(name)
        return user

    def remove_avatar(self, principal: Principal) -> UserRecord:
        """Clear the caller's avatar (login session only); the image goes too."""
        self.authorization.require_session(principal)
        return self._replace_avatar_url(principal.user.id, None)

    def remove_avatar_image(self, url: str | None) -> None:
        """Delete the image behind an avatar URL if it is one of ours (a deleted user's)."""
        name = self.own_avatar_name(url)
        if name is not None:
            self.images.remove(name)

    def _replace_avatar_url(self, user_id: str, url: str | None) -> UserRecord:
        audit = self.audit.event(
            events.AVATAR_CHANGED,
            actor=user_id,
            user_id=user_id,
            details={"removed": url is None},
        )
        result = self.store.set_avatar_url(user_id, url, now=self.clock.now(), audit=audit)
        if result is None:
            raise TokenRevokedError()
        user, old_url = result
        self.feed.announce([(RevocationKind.USER, user_id)])
        self.remove_avatar_image(old_url)
        return user
