"""One error hierarchy for authgate.

``AuthError`` subclasses carry a stable snake_case ``code`` that clients may rely on, the HTTP
``status`` the Flask adapter answers with, and a client-safe ``message``. They never carry the text
of a library exception. ``ConfigError`` is raised at startup and never becomes an HTTP response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class ConfigError(Exception):
    """The settings are unusable; raised at startup, with what to fix."""


class StoreUnavailableError(Exception):
    """The store could not complete an operation: the database is unreachable or failed.

    Raised by the store in place of its driver's errors (chained as ``__cause__``), so that
    nothing above the store names SQLAlchemy. Its message never carries the database's text."""

    def __init__(self, message: str = "The database could not complete the operation."):
        super().__init__(message)


class AuthError(Exception):
    code: ClassVar[str] = "auth_error"
    status: ClassVar[int] = 400
    default_message: ClassVar[str] = "The request could not be processed."

    def __init__(self, message: str | None = None, *, details: Mapping[str, object] | None = None):
        self.message = message or self.default_message
        self.details = dict(details) if details else None
        super().__init__(self.message)

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class BadRequestError(AuthError):
    code = "bad_request"
    status = 400
    default_message = "The request body is not valid JSON."


class ValidationFailedError(AuthError):
    """Invalid fields; ``details["fields"]`` maps each field name to its message."""

    code = "validation_failed"
    status = 422
    default_message = "Some fields are invalid."

    def __init__(self, fields: Mapping[str, str], message: str | None = None):
        super().__init__(message, details={"fields": dict(fields)})
        self.fields = dict(fields)


class AuthenticationRequiredError(AuthError):
    code = "authentication_required"
    status = 401
    default_message = "Authentication is required."


class InvalidCredentialsError(AuthError):
    code = "invalid_credentials"
    status = 401
    default_message = "The login or password is incorrect."


class InvalidTokenError(AuthError):
    code = "invalid_token"
    status = 401
    default_message = "The token is invalid."


class TokenExpiredError(AuthError):
    code = "token_expired"
    status = 401
    default_message = "The token has expired."


class LegacySessionEndedError(AuthError):
    """A session token of the app authgate replaced, presented after the dual run's cut-off."""

    code = "legacy_session_ended"
    status = 401
    default_message = "Sessions of the previous app have ended: log in again."


class TokenRevokedError(AuthError):
    code = "token_revoked"
    status = 401
    default_message = "The token has been revoked."


class CsrfFailedError(AuthError):
    code = "csrf_failed"
    status = 403
    default_message = "Cross-site request refused."


class InsufficientRoleError(AuthError):
    code = "insufficient_role"
    status = 403
    default_message = "You do not have the role this action requires."


class ForbiddenError(AuthError):
    code = "forbidden"
    status = 403
    default_message = "You are not allowed to do this."


class NotFoundError(AuthError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class UserExistsError(AuthError):
    code = "user_exists"
    status = 409
    default_message = "An account with this email or username already exists."


class SessionRequiredError(AuthError):
    code = "session_required"
    status = 403
    default_message = "This needs a login session; an API token cannot do it."


class ConflictError(AuthError):
    code = "conflict"
    status = 409
    default_message = "The request conflicts with the current state."


class InsufficientScopeError(AuthError):
    code = "insufficient_scope"
    status = 403
    default_message = "The token does not have the scope this action requires."


class PayloadTooLargeError(AuthError):
    code = "payload_too_large"
    status = 413
    default_message = "The request body is too large."


class InvalidImageError(AuthError):
    code = "invalid_image"
    status = 422
    default_message = "The file is not a JPEG, PNG or GIF image that can be read."


class RateLimitedError(AuthError):
    code = "rate_limited"
    status = 429
    default_message = "Too many requests; try again later."

    def __init__(self, message: str | None = None, *, retry_after: int):
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class ServiceUnavailableError(AuthError):
    code = "service_unavailable"
    status = 503
    default_message = "The service is temporarily unavailable."


class ServerBusyError(ServiceUnavailableError):
    """Too many passwords are being hashed in this process, and too many wait already: a login
    flood. Refused before anything was charged or written; ``retry_after`` in seconds."""

    code = "server_busy"
    default_message = "The server is busy checking passwords; try again in a moment."

    def __init__(self, message: str | None = None, *, retry_after: int):
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class AvatarStorageUnavailableError(ServiceUnavailableError):
    """The avatar images' storage (S3-compatible) did not answer or refused; raised by the
    backend in place of its library's errors, never with their text."""

    code = "avatar_storage_unavailable"
    default_message = "The avatar storage is unavailable; try again in a few seconds."


class AccountDisabledError(AuthError):
    code = "account_disabled"
    status = 403
    default_message = "This account is disabled."


class LastLoginMethodError(AuthError):
    code = "last_login_method"
    status = 409
    default_message = (
        "This is the account's only way to log in: set a password or link another provider first."
    )


class LastAdminError(AuthError):
    """Disabling, deleting or demoting the last active administrator: nobody could administer
    the deployment afterwards (``authgate users set-roles`` on the server could)."""

    code = "last_admin"
    status = 409
    default_message = (
        "This is the last active administrator: make someone else an administrator first."
    )


class UnknownRoleError(AuthError):
    code = "unknown_role"
    status = 400
    default_message = "Unknown role."


class InvalidAccountTokenError(AuthError):
    """A mailed link's token that opens nothing: unknown, already used, expired, or issued
    before the account's email or password changed (one answer for all: no oracle)."""

    code = "invalid_or_expired_token"
    status = 400
    default_message = "This link is invalid, has expired or was already used; ask for a new one."


class EmailNotVerifiedError(AuthError):
    code = "email_not_verified"
    status = 403
    default_message = (
        "Verify your email address first: follow the link in the mail we sent "
        "(POST /api/auth/email/verify/resend sends a new one)."
    )


class InvitationEmailMismatchError(AuthError):
    code = "invitation_email_mismatch"
    status = 403
    default_message = "This invitation was sent to another email address: log in with that address."


# "Log in with ..." ---------------------------------------------------------------------------
# Raised while a browser is away at the provider or coming back; the Flask adapter redirects the
# browser to the frontend with ``error=<code>`` instead of rendering an error page.


class OAuthError(AuthError):
    code = "oauth_failed"
    status = 400
    default_message = "Logging in with the provider failed."


class OAuthUnknownProviderError(OAuthError):
    code = "oauth_unknown_provider"
    status = 404
    default_message = "No such login provider is configured."


class OAuthStateMismatchError(OAuthError):
    code = "oauth_state_mismatch"
    status = 400
    default_message = (
        "This login did not start in this browser, was already used or took too long; start again."
    )


class OAuthIssuerMismatchError(OAuthError):
    """The authorization response names another issuer than the provider the login was started
    with, or names none although that provider says it always does (RFC 9207)."""

    code = "oauth_issuer_mismatch"
    status = 400
    default_message = (
        "The provider's answer does not come from the provider this login was started with; "
        "start again."
    )


class OAuthDeniedError(OAuthError):
    code = "oauth_denied"
    status = 400
    default_message = "The login was cancelled at the provider."


class OAuthProviderUnavailableError(OAuthError):
    code = "oauth_provider_unavailable"
    status = 503
    default_message = "The login provider cannot be reached; try again later."


class OAuthProviderResponseError(OAuthError):
    code = "oauth_provider_error"
    status = 502
    default_message = "The login provider answered in a way authgate cannot accept."


class OAuthInvalidIdTokenError(OAuthError):
    code = "oauth_invalid_id_token"
    status = 502
    default_message = "The provider's ID token is invalid."


class OAuthAccountExistsError(OAuthError):
    code = "oauth_account_exists"
    status = 409
    default_message = (
        "An account with this email already exists. Log in to it, then link this provider "
        "from your account page."
    )


class OAuthIdentityTakenError(OAuthError):
    code = "oauth_identity_taken"
    status = 409
    default_message = "This provider account is already linked to another user."


class OAuthHandoffInvalidError(OAuthError):
    code = "oauth_handoff_invalid"
    status = 400
    default_message = (
        "This sign-in cannot be completed here: it was already used, took too long, or was "
        "started by another page. Start again."
    )


class OAuthEmailMissingError(OAuthError):
    code = "oauth_email_missing"
    status = 422
    default_message = "The provider did not share an email address; authgate needs one."


class OAuthEmailUnverifiedError(OAuthError):
    code = "oauth_email_unverified"
    status = 422
    default_message = (
        "The provider has not verified this account's email address, so it cannot open an "
        "account here: verify the address at the provider, or register with a password."
    )


class PasskeyInvalidError(AuthError):
    """A passkey ceremony that cannot be accepted: its challenge is unknown, used, expired or
    was issued to another browser, or the authenticator's response does not verify (one
    answer for all: no oracle)."""

    code = "passkey_invalid"
    status = 400
    default_message = "The passkey could not be verified; start again."


class PasskeyExistsError(AuthError):
    code = "passkey_exists"
    status = 409
    default_message = "This passkey is registered already."


class PasskeysUnavailableError(AuthError):
    code = "passkeys_unavailable"
    status = 404
    default_message = (
        "Passkeys are not available: authgate is served at an IP address; serve it under a "
        "host name (or set AUTHGATE_WEBAUTHN_RP_ID)."
    )


# Second factors and step-up (docs/mfa.md) ------------------------------------------------------


class MfaRequiredError(AuthError):
    """The password was right; the login completes at ``POST /api/auth/mfa/verify`` with the
    ``mfa`` token (and the browser's binding cookie) and a second factor. No session yet."""

    code = "mfa_required"
    status = 401
    default_message = "Enter a code from your authenticator app (or a recovery code)."

    def __init__(
        self, token: str, methods: list[str], *, binding: str | None, message: str | None = None
    ):
        super().__init__(message)
        self.token = token
        self.methods = methods
        self.binding = binding  # the browser's cookie value, set by the adapter

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "mfa": {"token": self.token, "methods": self.methods}}


class MfaEnrollmentRequiredError(MfaRequiredError):
    """The account's role requires a second factor it does not have: the ``mfa`` token allows
    setting one up (``/api/auth/mfa/totp`` and ``/confirm``), which completes the login."""

    code = "mfa_enrollment_required"
    default_message = "Your account requires a second factor: set up an authenticator app."


class InvalidMfaTokenError(AuthError):
    """Unknown, expired, used up, out of attempts, or from another browser: one answer."""

    code = "invalid_mfa_token"
    status = 401
    default_message = "This sign-in step has expired or was already used: log in again."


class InvalidMfaCodeError(AuthError):
    code = "invalid_code"
    status = 401
    default_message = "The code is not correct (or was already used)."


class ReauthenticationRequiredError(AuthError):
    code = "reauthentication_required"
    status = 403
    default_message = (
        "Confirm it is you: POST /api/auth/reauthenticate with your password or a code, then "
        "try again."
    )
