"""The errors of authgate: each an ``AuthError`` with a stable code and HTTP status."""

from __future__ import annotations

from authgate.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InsufficientRoleError,
    InsufficientScopeError,
    InvalidTokenError,
    SessionRequiredError,
    TokenExpiredError,
    TokenRevokedError,
)


def test_errors_are_auth_errors_with_stable_codes() -> None:
    codes = {
        SessionRequiredError: ("session_required", 403),
        InsufficientScopeError: ("insufficient_scope", 403),
        InsufficientRoleError: ("insufficient_role", 403),
        ForbiddenError: ("forbidden", 403),
        ConflictError: ("conflict", 409),
        TokenRevokedError: ("token_revoked", 401),
        TokenExpiredError: ("token_expired", 401),
        InvalidTokenError: ("invalid_token", 401),
    }
    for error, (code, status) in codes.items():
        assert issubclass(error, AuthError)
        assert (error.code, error.status) == (code, status)
