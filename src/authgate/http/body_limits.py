"""How large a request body may be, beyond ``AUTHGATE_MAX_BODY_BYTES``: what the app enforces
and the generated nginx configuration repeats."""

from __future__ import annotations

# Room for the multipart boundaries and part headers around an avatar file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# The parts an avatar form may have: the image and a few fields a form may add beside it (their
# values are not read). The OpenAPI document says so too.
MAX_FORM_PARTS = 8


def describe_avatar_limit(max_bytes: int) -> str:
    """What an upload over ``AUTHGATE_AVATAR_MAX_BYTES`` is told (by the app and by nginx)."""
    return f"The image must be at most {max_bytes / (1024 * 1024):g} MB."
