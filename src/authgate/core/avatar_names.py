"""The names of avatar images: random, never reused, and the only thing ever looked up.

An image is stored under ``<32 characters of [A-Za-z0-9_-]>.<jpg|png>`` (``token_urlsafe(24)``
and the extension of what was written); its URL is ``<public_url>/avatars/<name>``. A name
that is not of this shape is never read nor removed, whatever storage is behind it.
"""

from __future__ import annotations

import re
import secrets

AVATAR_NAME = re.compile(r"[A-Za-z0-9_-]{32}\.(?:jpg|png)")
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}


def is_avatar_name(name: str) -> bool:
    """Whether ``name`` is of the shape we give images."""
    return AVATAR_NAME.fullmatch(name) is not None


def new_avatar_name(extension: str) -> str:
    """A new random name for an image written as ``extension`` ("jpg" or "png")."""
    if extension not in CONTENT_TYPES:
        raise ValueError(f"avatar images are jpg or png, not {extension}")
    return f"{secrets.token_urlsafe(24)}.{extension}"


def avatar_content_type(name: str) -> str:
    """The media type of an image of ours, from its name."""
    return CONTENT_TYPES[name.rsplit(".", 1)[1]]
