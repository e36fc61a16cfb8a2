"""The paths of authgate's HTTP contract that are also named outside its views: in links the
service builds, and in the nginx configuration generated for them."""

from __future__ import annotations

OAUTH_CALLBACK_PATH = "/api/oauth/{provider}/callback"
AVATAR_UPLOAD_PATH = "/api/auth/me/avatar"
# Avatar images are served at ``<public_url>/avatars/<name>``.
AVATAR_PATH = "/avatars/"
