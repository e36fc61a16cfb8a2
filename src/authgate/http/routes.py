"""The paths of authgate's HTTP contract that are also named outside its views: in links the
service builds, and in the nginx configuration generated for them."""

from __future__ import annotations

OAUTH_CALLBACK_PATH = "/api/oauth/{provider}/callback"
AVATAR_UPLOAD_PATH = "/api/auth/me/avatar"
# Avatar images are served at ``<public_url>/avatars/<name>``.
AVATAR_PATH = "/avatars/"

# The pages that mailed links open, under ``link_base_url``; the token follows in the fragment
# (``#token=...``), which no server log or Referer sees, and the page posts it to the API.
VERIFY_EMAIL_PAGE = "/verify-email"
RESET_PASSWORD_PAGE = "/reset-password"  # noqa: S105 - a page path, not a secret
CONFIRM_EMAIL_CHANGE_PAGE = "/confirm-email-change"
INVITATION_PAGE = "/invitation"
