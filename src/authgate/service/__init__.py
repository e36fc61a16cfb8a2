"""The service: every authentication and authorization decision, framework-free.

``AuthService`` is a facade over one part per kind of decision (``sessions``, ``accounts``,
``email_addresses``, ``recovery``, ``authorization``, ``api_tokens``, ``tenants``,
``invitations``, ``oauth_logins``, ``avatars``, ``keys``); the values it speaks in are in
``principals``.
"""

from authgate.service.auth_service import AuthService
from authgate.service.keys import KeySource
from authgate.service.principals import (
    ADMIN_ROLE,
    DEFAULT_ROLES,
    ClientInfo,
    IssuedTokens,
    Principal,
    TenantAccess,
)

__all__ = [
    "ADMIN_ROLE",
    "DEFAULT_ROLES",
    "AuthService",
    "ClientInfo",
    "IssuedTokens",
    "KeySource",
    "Principal",
    "TenantAccess",
]
