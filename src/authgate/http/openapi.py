"""The OpenAPI 3.1 document, built from the same pydantic models that validate requests."""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from authgate.config import Settings
from authgate.http.body_limits import MAX_FORM_PARTS
from authgate.http.routes import OAUTH_CALLBACK_PATH
from authgate.http.schemas import (
    PATH_ID_PATTERN,
    TOKEN_ID_PATTERN,
    ActivityQuery,
    ApiTokenCreated,
    ApiTokenCreateInput,
    ApiTokenList,
    AuditEventPage,
    AuditListQuery,
    EmailChangeInput,
    ErrorOut,
    ForgotPasswordInput,
    HandoffInput,
    IdentityList,
    InvitationAcceptedOut,
    InvitationEnvelope,
    InvitationInput,
    InvitationList,
    InvitationPreviewOut,
    LinkTokenInput,
    LoginInput,
    LoginOut,
    MailRequestedOut,
    MemberAddInput,
    MemberEnvelope,
    MemberList,
    MemberRoleInput,
    MfaRequiredOut,
    MfaStatusOut,
    MfaVerifyInput,
    OAuthLinkOut,
    PasskeyAssertionInput,
    PasskeyEnvelope,
    PasskeyList,
    PasskeyMfaInput,
    PasskeyMfaOptionsInput,
    PasskeyRegisterInput,
    PasskeyRenameInput,
    PasswordChangeInput,
    PasswordResetInput,
    ProfileInput,
    ProviderList,
    ReauthenticatedOut,
    ReauthenticateInput,
    RecoveryCodesOut,
    RefreshInput,
    RefreshOut,
    RegisterInput,
    RelatedOriginsOut,
    RoleList,
    SessionList,
    TenantEnvelope,
    TenantInput,
    TenantList,
    TotpBeginInput,
    TotpConfirmInput,
    TotpSetupOut,
    UserAccessInput,
    UserEnvelope,
    UserListQuery,
    UserMfaOut,
    UserPage,
    VerificationResendInput,
    WebAuthnOptionsOut,
)
from authgate.version import __version__

# Every error answer, as a response component (``#/components/responses/<name>``): the name, the
# description and the headers it always carries (integrations/flask/errors.py).
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
_ERRORS: dict[int, tuple[str, str, dict[str, Any]]] = {
    400: ("BadRequest", "Malformed request (not JSON, control characters, too deep)", {}),
    401: (
        "Unauthorized",
        "No valid credential",
        {
            "WWW-Authenticate": {
                "description": 'Bearer realm="authgate"; error="invalid_token" for a bad token',
                "required": True,
                "schema": {"type": "string"},
            }
        },
    ),
    403: ("Forbidden", "Not allowed (CSRF, role, scope, session required)", {}),
    404: ("NotFound", "Not found (also: a path id containing control characters)", {}),
    409: ("Conflict", "Conflict", {}),
    413: ("PayloadTooLarge", "Body too large", {}),
    422: ("ValidationFailed", "Invalid fields (details.fields)", {}),
    429: ("RateLimited", "Too many failed attempts", _RETRY_AFTER),
    503: (
        "ServiceUnavailable",
        "The database (or a login provider) is unavailable, or the server is too busy hashing"
        " passwords (server_busy)",
        _RETRY_AFTER,
    ),
}

METRICS_PATH = "/metrics"  # served only with AUTHGATE_METRICS on
READYZ_PATH = "/readyz"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    ok: int = 200
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    auth: bool = True
    errors: tuple[int, ...] = ()
    query: tuple[tuple[str, dict[str, Any]], ...] = field(default=())
    tag: str = "auth"
    # A multipart/form-data body carrying one file in this field (instead of ``body``).
    upload: str | None = None
    # Media types of a non-JSON 200 response (an image, a script).
    media: tuple[str, ...] = ()
    # Whether the JSON ``body`` may be left out (refresh and logout fall back to the cookie).
    body_required: bool = True
    # The query parameters are this model's fields (instead of ``query``).
    query_model: type[BaseModel] | None = None
    # Whether the operation needs the database: 503 (with Retry-After) when it is unavailable.
    store: bool = True
    # With ``auth``: whether it also works without an access token or session cookie (logout by
    # the refresh token in the body or cookie).
    anonymous: bool = False


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post",
        "/api/auth/register",
        "Create an account",
        201,
        RegisterInput,
        UserEnvelope,
        auth=False,
        errors=(400, 403, 409, 413, 422),
    ),
    Operation(
        "post",
        "/api/auth/login",
        "Log in with email or username and password",
        200,
        LoginInput,
        LoginOut,
        auth=False,
        errors=(400, 401, 403, 413, 422, 429),
    ),
    Operation(
        "post",
        "/api/auth/refresh",
        "Rotate the refresh token (cookie or body)",
        200,
        RefreshInput,
        RefreshOut,
        auth=False,
        errors=(400, 401, 403, 413, 422),
        body_required=False,
    ),
    Operation(
        "post",
        "/api/auth/logout",
        "Revoke this session and clear cookies; without a valid access token, the session of "
        "the refresh token in the body or cookie",
        204,
        RefreshInput,
        errors=(400, 401, 403, 413, 422),
        body_required=False,
        anonymous=True,
    ),
    Operation(
        "post", "/api/auth/logout-all", "Revoke every session of the caller", 204, errors=(401, 403)
    ),
    Operation("get", "/api/auth/me", "The caller", 200, None, UserEnvelope, errors=(401, 403)),
    Operation(
        "patch",
        "/api/auth/me",
        "Update name and username",
        200,
        ProfileInput,
        UserEnvelope,
        errors=(400, 401, 403, 409, 413, 422),
    ),
    Operation(
        "post",
        "/api/auth/password",
        "Change password; other sessions are revoked",
        204,
        PasswordChangeInput,
        errors=(400, 401, 403, 413, 422, 429),
    ),
    Operation(
        "get",
        "/api/auth/mfa",
        "Which second factors the caller has on (and whether their role requires one)",
        200,
        None,
        MfaStatusOut,
        errors=(401, 403),
        tag="mfa",
    ),
    Operation(
        "post",
        "/api/auth/mfa/totp",
        "Set up an authenticator app: a new secret and its QR code, pending until confirmed "
        "(the password of a session, or the mfa token of mfa_enrollment_required)",
        200,
        TotpBeginInput,
        TotpSetupOut,
        auth=False,
        errors=(400, 401, 403, 409, 413, 422, 429),
        tag="mfa",
    ),
    Operation(
        "post",
        "/api/auth/mfa/totp/confirm",
        "Turn the authenticator app on with a code: 10 recovery codes, shown once (with an "
        "mfa token: also the answer of a login)",
        200,
        TotpConfirmInput,
        RecoveryCodesOut,
        auth=False,
        errors=(400, 401, 403, 409, 413, 422, 429),
        tag="mfa",
    ),
    Operation(
        "delete",
        "/api/auth/mfa/totp",
        "Turn the authenticator app off (needs a recent authentication)",
        204,
        errors=(401, 403, 404, 409),
        tag="mfa",
    ),
    Operation(
        "post",
        "/api/auth/mfa/recovery-codes",
        "A new set of recovery codes; the old set stops working (needs a recent authentication)",
        200,
        None,
        RecoveryCodesOut,
        errors=(401, 403, 409),
        tag="mfa",
    ),
    Operation(
        "post",
        "/api/auth/mfa/verify",
        "The second step of a login answered 401 mfa_required: the mfa token (and, for a "
        "browser, its cookie) with a code, a recovery code or a passkey assertion (credential, "
        "for the options of /api/auth/passkeys/mfa/options); the answer of a login",
        200,
        MfaVerifyInput,
        LoginOut,
        auth=False,
        errors=(400, 401, 403, 413, 422, 429),
        tag="mfa",
    ),
    Operation(
        "post",
        "/api/auth/reauthenticate",
        "Step-up: the password, a code or a passkey assertion (credential, for the options of "
        "/api/auth/passkeys/reauthenticate/options); the session's auth_time becomes now (a new "
        "access token, or cookie)",
        200,
        ReauthenticateInput,
        ReauthenticatedOut,
        errors=(400, 401, 403, 413, 422, 429),
        tag="mfa",
    ),
    Operation(
        "post",
        "/api/auth/email/verify/request",
        "Mail the caller a (new) link that verifies their address (409 if verified already)",
        202,
        None,
        MailRequestedOut,
        errors=(401, 403, 409, 429),
        tag="email",
    ),
    Operation(
        "post",
        "/api/auth/email/verify/resend",
        "For a login refused with email_not_verified: the same login and password ask for a "
        "new verification link; the same answer whatever the outcome",
        202,
        VerificationResendInput,
        MailRequestedOut,
        auth=False,
        errors=(400, 403, 413, 422, 429),
        tag="email",
    ),
    Operation(
        "post",
        "/api/auth/email/verify",
        "Verify the address with the token of a verification link",
        200,
        LinkTokenInput,
        UserEnvelope,
        auth=False,
        errors=(400, 403, 413, 422),
        tag="email",
    ),
    Operation(
        "post",
        "/api/auth/email/change",
        "Ask to move to another address (current password): a link goes to the new address, "
        "a notice to the current one; nothing changes until the link is used",
        202,
        EmailChangeInput,
        MailRequestedOut,
        errors=(400, 401, 403, 409, 413, 422, 429),
        tag="email",
    ),
    Operation(
        "post",
        "/api/auth/email/change/confirm",
        "Move to the new address (verified) with the token of its confirmation link",
        200,
        LinkTokenInput,
        UserEnvelope,
        auth=False,
        errors=(400, 403, 409, 413, 422),
        tag="email",
    ),
    Operation(
        "post",
        "/api/auth/password/forgot",
        "Mail a password-reset link if an account uses the address; the same answer for "
        "every address",
        202,
        ForgotPasswordInput,
        MailRequestedOut,
        auth=False,
        errors=(400, 403, 413, 422, 429),
        tag="email",
    ),
    Operation(
        "post",
        "/api/auth/password/reset",
        "Set a new password with the token of a reset link; every session of the account is "
        "revoked and this browser's session cookies cleared",
        204,
        PasswordResetInput,
        auth=False,
        errors=(400, 403, 413, 422),
        tag="email",
    ),
    Operation(
        "get",
        "/api/auth/me/avatar",
        "What an avatar upload may be (size limit, image types), for forms",
        errors=(401, 403),
    ),
    Operation(
        "post",
        "/api/auth/me/avatar",
        "Upload an avatar (JPEG, PNG or GIF, multipart field 'avatar'); it is re-encoded",
        200,
        None,
        UserEnvelope,
        errors=(401, 403, 413, 422),
        upload="avatar",
    ),
    Operation(
        "delete",
        "/api/auth/me/avatar",
        "Remove the avatar",
        200,
        None,
        UserEnvelope,
        errors=(401, 403),
    ),
    Operation(
        "get",
        "/avatars/{name}",
        "An avatar image (public, immutable; a strong ETag, 304 for If-None-Match)",
        auth=False,
        errors=(404,),
        media=("image/jpeg", "image/png"),
    ),
    Operation(
        "get",
        "/api/auth/sessions",
        "The caller's active sessions",
        200,
        None,
        SessionList,
        errors=(401, 403),
    ),
    Operation(
        "delete",
        "/api/auth/sessions/{session_id}",
        "Revoke one of the caller's sessions",
        204,
        errors=(401, 403, 404),
    ),
    Operation(
        "get",
        "/api/auth/activity",
        "The caller's own security events (sign-ins, failed sign-ins, password and email "
        "changes, sessions revoked, ...), newest first; login sessions only",
        200,
        None,
        AuditEventPage,
        errors=(400, 401, 403, 422),
        query_model=ActivityQuery,
    ),
    Operation(
        "get",
        "/api/audit",
        "The audit trail (admin), newest first, filtered by user, type and time range "
        "(since inclusive, until exclusive); next_cursor pages on, stable under new events",
        200,
        None,
        AuditEventPage,
        errors=(400, 401, 403, 422),
        query_model=AuditListQuery,
        tag="audit",
    ),
    Operation(
        "get",
        "/api/users",
        "List users (admin)",
        200,
        None,
        UserPage,
        errors=(400, 401, 403, 422),
        query_model=UserListQuery,
        tag="users",
    ),
    Operation(
        "get",
        "/api/users/{user_id}",
        "One user (admin)",
        200,
        None,
        UserEnvelope,
        errors=(401, 403, 404),
        tag="users",
    ),
    Operation(
        "patch",
        "/api/users/{user_id}",
        "Set roles and status (admin): roles among GET /api/roles (400 unknown_role); never "
        "the last active admin's demotion or disabling (409 last_admin)",
        200,
        UserAccessInput,
        UserEnvelope,
        errors=(400, 401, 403, 404, 409, 413, 422),
        tag="users",
    ),
    Operation(
        "delete",
        "/api/users/{user_id}",
        "Delete a user (admin); not the last active admin (409 last_admin)",
        204,
        errors=(401, 403, 404, 409),
        tag="users",
    ),
    Operation(
        "get",
        "/api/users/{user_id}/sessions",
        "A user's live sessions, with their devices (admin)",
        200,
        None,
        SessionList,
        errors=(401, 403, 404),
        tag="users",
    ),
    Operation(
        "get",
        "/api/users/{user_id}/mfa",
        "The second factors a user has on (admin)",
        200,
        None,
        UserMfaOut,
        errors=(401, 403, 404),
        tag="users",
    ),
    Operation(
        "delete",
        "/api/users/{user_id}/mfa",
        "Remove every second factor of a user (TOTP, recovery codes, passkeys) and log them out "
        "everywhere; they are told by mail (admin, recent authentication)",
        204,
        errors=(401, 403, 404),
        tag="users",
    ),
    Operation(
        "delete",
        "/api/users/{user_id}/sessions",
        "Log a user out everywhere: revoke all their sessions (admin)",
        204,
        errors=(401, 403, 404),
        tag="users",
    ),
    Operation(
        "delete",
        "/api/users/{user_id}/sessions/{session_id}",
        "Revoke one of a user's sessions (admin)",
        204,
        errors=(401, 403, 404),
        tag="users",
    ),
    Operation(
        "get",
        "/api/users/{user_id}/identities",
        "A user's linked provider identities (admin)",
        200,
        None,
        IdentityList,
        errors=(401, 403, 404),
        tag="users",
    ),
    Operation(
        "delete",
        "/api/users/{user_id}/identities/{identity_id}",
        "Unlink one of a user's identities (admin); not their last way to log in (409)",
        204,
        errors=(401, 403, 404, 409),
        tag="users",
    ),
    Operation(
        "get",
        "/api/roles",
        "The roles an admin can give (admin)",
        200,
        None,
        RoleList,
        errors=(401, 403),
        tag="users",
    ),
    *[
        Operation(method, path, summary, ok, body, response, errors=errors, tag=tag)
        for method, path, summary, ok, body, response, errors, tag in (
            (
                "get",
                "/api/tenants",
                "The caller's tenants",
                200,
                None,
                TenantList,
                (401, 403),
                "tenants",
            ),
            (
                "post",
                "/api/tenants",
                "Create a tenant (login session)",
                201,
                TenantInput,
                TenantEnvelope,
                (400, 401, 403, 413, 422),
                "tenants",
            ),
            (
                "get",
                "/api/tenants/{tenant_id}",
                "One tenant (members only)",
                200,
                None,
                TenantEnvelope,
                (401, 403, 404),
                "tenants",
            ),
            (
                "patch",
                "/api/tenants/{tenant_id}",
                "Rename (owner, admin)",
                200,
                TenantInput,
                TenantEnvelope,
                (400, 401, 403, 404, 413, 422),
                "tenants",
            ),
            (
                "delete",
                "/api/tenants/{tenant_id}",
                "Delete (owner); its tokens stop at once",
                204,
                None,
                None,
                (401, 403, 404, 409),
                "tenants",
            ),
            (
                "get",
                "/api/tenants/{tenant_id}/members",
                "Members",
                200,
                None,
                MemberList,
                (401, 403, 404),
                "tenants",
            ),
            (
                "post",
                "/api/tenants/{tenant_id}/members",
                "Add a member by email",
                201,
                MemberAddInput,
                MemberEnvelope,
                (400, 401, 403, 404, 409, 413, 422),
                "tenants",
            ),
            (
                "patch",
                "/api/tenants/{tenant_id}/members/{user_id}",
                "Change a member's role",
                200,
                MemberRoleInput,
                MemberEnvelope,
                (400, 401, 403, 404, 409, 413, 422),
                "tenants",
            ),
            (
                "delete",
                "/api/tenants/{tenant_id}/members/{user_id}",
                "Remove a member, or leave; their tokens for it stop at once",
                204,
                None,
                None,
                (401, 403, 404, 409),
                "tenants",
            ),
            (
                "post",
                "/api/tenants/{tenant_id}/invitations",
                "Invite someone by email (owner, admin; not above one's own role)",
                201,
                InvitationInput,
                InvitationEnvelope,
                (400, 401, 403, 404, 409, 413, 422, 429),
                "invitations",
            ),
            (
                "get",
                "/api/tenants/{tenant_id}/invitations",
                "Open invitations (owner, admin)",
                200,
                None,
                InvitationList,
                (401, 403, 404),
                "invitations",
            ),
            (
                "delete",
                "/api/tenants/{tenant_id}/invitations/{invitation_id}",
                "Revoke an open invitation (owner, admin)",
                204,
                None,
                None,
                (401, 403, 404),
                "invitations",
            ),
            (
                "post",
                "/api/invitations/accept",
                "Join the tenant of an invitation (login session with the invited address; "
                "marks it verified)",
                200,
                LinkTokenInput,
                InvitationAcceptedOut,
                (400, 401, 403, 409, 413, 422),
                "invitations",
            ),
            (
                "post",
                "/api/tokens",
                "Create an API token; the secret is shown once",
                201,
                ApiTokenCreateInput,
                ApiTokenCreated,
                (400, 401, 403, 404, 413, 422),
                "tokens",
            ),
            (
                "get",
                "/api/tokens",
                "The caller's API tokens (never the secret)",
                200,
                None,
                ApiTokenList,
                (401, 403),
                "tokens",
            ),
            (
                "delete",
                "/api/tokens/{token_id}",
                "Revoke an API token",
                204,
                None,
                None,
                (401, 403, 404),
                "tokens",
            ),
            (
                "get",
                "/api/users/{user_id}/tokens",
                "A user's API tokens (admin)",
                200,
                None,
                ApiTokenList,
                (401, 403, 404),
                "users",
            ),
            (
                "delete",
                "/api/users/{user_id}/tokens/{token_id}",
                "Revoke a user's token (admin)",
                204,
                None,
                None,
                (401, 403, 404),
                "users",
            ),
        )
    ],
    Operation(
        "post",
        "/api/invitations/preview",
        "What an invitation is (tenant, address, role, inviter) before logging in; the token "
        "is the credential",
        200,
        LinkTokenInput,
        InvitationPreviewOut,
        auth=False,
        errors=(400, 403, 413, 422),
        tag="invitations",
    ),
    Operation(
        "get",
        "/.well-known/jwks.json",
        "Public keys of the access-token signing keys",
        auth=False,
        tag="meta",
        store=False,
    ),
    Operation(
        "get", "/healthz", "200 when the database answers", auth=False, errors=(503,), tag="meta"
    ),
    Operation(
        "get",
        READYZ_PATH,
        "Readiness: 200 {status: ready, checks} when the database, Redis (when configured) and "
        "the signing keys are usable; 503 {status: not_ready, checks} naming each check's "
        "result (ok, failed, timeout)",
        auth=False,
        tag="meta",
        store=False,
    ),
    Operation(
        "get",
        METRICS_PATH,
        "Prometheus metrics (text format; docs/operations.md). Served only with "
        "AUTHGATE_METRICS set: to this host only (loopback) or with Authorization: Bearer "
        "<the metrics token>",
        auth=False,
        errors=(401, 403),
        tag="meta",
        media=("text/plain",),
        store=False,
    ),
    Operation("get", "/api/openapi.json", "This document", auth=False, tag="meta", store=False),
    Operation(
        "get",
        "/api/auth/diagnose",
        "What the server saw of this request (Origin allowed? session cookie? scheme?) and "
        "the problems found, each with its fix; readable from any origin without credentials",
        auth=False,
        tag="meta",
        store=False,
    ),
    Operation(
        "get",
        "/authgate.js",
        "The JavaScript client (an ES module; any origin may import it)",
        auth=False,
        tag="meta",
        media=("text/javascript",),
        store=False,
    ),
    Operation(
        "get",
        "/api/tokens/scopes",
        "The scopes and lifetimes a new API token may have (for forms)",
        errors=(401, 403),
        tag="tokens",
    ),
    Operation(
        "get",
        "/api/oauth/providers",
        "Configured login providers, for 'Continue with ...' buttons",
        response=ProviderList,
        auth=False,
        tag="oauth",
        store=False,
    ),
    Operation(
        "get",
        "/api/oauth/{provider}/login",
        "Start logging in with a provider: redirects the browser there",
        302,
        auth=False,
        errors=(404, 422),
        query=(
            ("next", {"type": "string", "description": "Where to land afterwards"}),
            (
                "handoff_challenge",
                {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]{43}$",
                    "description": "S256 challenge: hand the login to the page at next "
                    "(a #authgate_handoff code for POST /api/oauth/exchange) instead of cookies",
                },
            ),
        ),
        tag="oauth",
        # Whatever fails after the provider was found (the database included) redirects the
        # browser back with ?error=oauth_failed.
        store=False,
    ),
    Operation(
        "post",
        "/api/oauth/exchange",
        "Collect a handed-off provider login (code + verifier): sets the session cookies; "
        "401 mfa_required (or mfa_enrollment_required) with an mfa token, as a password login, "
        "for a user with a second factor",
        200,
        HandoffInput,
        LoginOut,
        auth=False,
        errors=(400, 401, 403, 413, 422),
        tag="oauth",
    ),
    Operation(
        "get",
        "/api/oauth/{provider}/callback",
        "The provider's redirect back: logs in (session cookies), then redirects to next; "
        "errors redirect with ?error=<code>; a user with a second factor is redirected to "
        "next#authgate_mfa=<token>&authgate_mfa_step=<code>&authgate_mfa_methods=<list> "
        "(no session; the token bound to the browser by the authgate_mfa cookie)",
        302,
        auth=False,
        query=(
            ("code", {"type": "string"}),
            ("state", {"type": "string"}),
            ("error", {"type": "string"}),
            ("iss", {"type": "string", "description": "The provider's issuer (RFC 9207)"}),
        ),
        tag="oauth",
        store=False,  # every failure redirects with ?error=<code>
    ),
    Operation(
        "post",
        "/api/oauth/{provider}/link",
        "Start linking a provider to the caller's account",
        200,
        response=OAuthLinkOut,
        errors=(401, 403, 404, 503),
        query=(("next", {"type": "string", "description": "Where to land afterwards"}),),
        tag="oauth",
    ),
    Operation(
        "get",
        "/api/auth/identities",
        "The caller's linked provider identities",
        response=IdentityList,
        errors=(401, 403),
        tag="oauth",
    ),
    Operation(
        "delete",
        "/api/auth/identities/{identity_id}",
        "Unlink an identity (refused if it is the last way to log in)",
        204,
        errors=(401, 403, 404, 409),
        tag="oauth",
    ),
    Operation(
        "post",
        "/api/auth/passkeys/register/options",
        "Start registering a passkey (recent authentication needed): creation options (a "
        "discoverable credential; the caller's passkeys excluded); a browser also gets the "
        "challenge's binding cookie",
        response=WebAuthnOptionsOut,
        errors=(400, 401, 403, 404),
        body_required=False,
        tag="passkeys",
    ),
    Operation(
        "post",
        "/api/auth/passkeys/register",
        "Finish registering: the credential navigator.credentials.create() made with those "
        "options, and a name",
        201,
        PasskeyRegisterInput,
        PasskeyEnvelope,
        errors=(400, 401, 403, 404, 409, 413, 422),
        tag="passkeys",
    ),
    Operation(
        "get",
        "/api/auth/passkeys",
        "The caller's passkeys",
        response=PasskeyList,
        errors=(401, 403),
        tag="passkeys",
    ),
    Operation(
        "patch",
        "/api/auth/passkeys/{passkey_id}",
        "Rename a passkey",
        200,
        PasskeyRenameInput,
        PasskeyEnvelope,
        errors=(400, 401, 403, 404, 413, 422),
        tag="passkeys",
    ),
    Operation(
        "delete",
        "/api/auth/passkeys/{passkey_id}",
        "Delete a passkey (recent authentication needed)",
        204,
        errors=(401, 403, 404),
        tag="passkeys",
    ),
    Operation(
        "post",
        "/api/auth/passkeys/login/options",
        "Start a login with a passkey, without a password or a user name: request options "
        "(no credentials listed, user verification required)",
        response=WebAuthnOptionsOut,
        auth=False,
        errors=(403, 404),
        body_required=False,
        tag="passkeys",
    ),
    Operation(
        "post",
        "/api/auth/passkeys/login",
        "Log in with the assertion navigator.credentials.get() made with those options: the "
        "answer of a login (tokens, session cookies)",
        200,
        PasskeyAssertionInput,
        LoginOut,
        auth=False,
        errors=(400, 401, 403, 413, 422, 429),
        tag="passkeys",
    ),
    Operation(
        "post",
        "/api/auth/passkeys/mfa/options",
        "The second step of a password login (mfa_required) with a passkey: request options "
        "listing the user's passkeys (spends one of the mfa token's attempts)",
        200,
        PasskeyMfaOptionsInput,
        WebAuthnOptionsOut,
        auth=False,
        errors=(400, 401, 403, 404, 413, 422),
        tag="passkeys",
    ),
    Operation(
        "post",
        "/api/auth/passkeys/mfa",
        "Finish the second step with the passkey's assertion: the answer of a login",
        200,
        PasskeyMfaInput,
        LoginOut,
        auth=False,
        errors=(400, 401, 403, 413, 422, 429),
        tag="passkeys",
    ),
    Operation(
        "post",
        "/api/auth/passkeys/reauthenticate/options",
        "Step-up with a passkey: request options listing the caller's passkeys",
        response=WebAuthnOptionsOut,
        errors=(401, 403, 404),
        body_required=False,
        tag="passkeys",
    ),
    Operation(
        "post",
        "/api/auth/passkeys/reauthenticate",
        "Finish the step-up with the assertion: a new access token whose auth_time is now "
        "(as POST /api/auth/reauthenticate)",
        200,
        PasskeyAssertionInput,
        RefreshOut,
        errors=(400, 401, 403, 413, 422, 429),
        tag="passkeys",
    ),
    Operation(
        "get",
        "/.well-known/webauthn",
        "WebAuthn Related Origin Requests: the origins that may use this RP ID's passkeys",
        response=RelatedOriginsOut,
        auth=False,
        errors=(404,),
        tag="meta",
        store=False,
    ),
)

_MODELS: tuple[type[BaseModel], ...] = (
    RegisterInput,
    LoginInput,
    RefreshInput,
    ProfileInput,
    PasswordChangeInput,
    UserAccessInput,
    UserEnvelope,
    LoginOut,
    RefreshOut,
    SessionList,
    AuditEventPage,
    UserPage,
    RoleList,
    UserMfaOut,
    ErrorOut,
    TenantInput,
    TenantList,
    TenantEnvelope,
    MemberAddInput,
    MemberRoleInput,
    MemberList,
    MemberEnvelope,
    ApiTokenCreateInput,
    ApiTokenCreated,
    ApiTokenList,
    ProviderList,
    OAuthLinkOut,
    IdentityList,
    HandoffInput,
    LinkTokenInput,
    ForgotPasswordInput,
    PasswordResetInput,
    VerificationResendInput,
    EmailChangeInput,
    MailRequestedOut,
    InvitationInput,
    InvitationEnvelope,
    InvitationList,
    InvitationPreviewOut,
    InvitationAcceptedOut,
    MfaStatusOut,
    TotpBeginInput,
    TotpConfirmInput,
    TotpSetupOut,
    RecoveryCodesOut,
    MfaVerifyInput,
    MfaRequiredOut,
    ReauthenticateInput,
    ReauthenticatedOut,
    PasskeyRegisterInput,
    PasskeyRenameInput,
    PasskeyAssertionInput,
    PasskeyMfaOptionsInput,
    PasskeyMfaInput,
    PasskeyEnvelope,
    PasskeyList,
    WebAuthnOptionsOut,
    RelatedOriginsOut,
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(op: Operation, path_schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if op.ok == 204:
        responses["204"] = {"description": "Done"}
    elif op.ok == 302:
        responses["302"] = {
            "description": "Redirect",
            "headers": {"Location": {"schema": {"type": "string"}}},
        }
    elif op.media:
        responses[str(op.ok)] = {
            "description": "OK",
            "content": {m: {"schema": {"type": "string", "contentMediaType": m}} for m in op.media},
        }
    else:
        ok: dict[str, Any] = {"description": "OK"}
        ok.update(_json(_ref(op.response) if op.response else {"type": "object"}))
        responses[str(op.ok)] = ok
    for status in sorted(_error_statuses(op)):
        responses[str(status)] = {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
    if op.path == READYZ_PATH:
        responses.update(_readiness_responses())
    doc: dict[str, Any] = {
        "summary": op.summary,
        "operationId": _operation_id(op),
        "tags": [op.tag],
        "responses": responses,
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": path_schemas[name]}
        for name in _path_params(op.path)
    ]
    if op.path == OAUTH_CALLBACK_PATH:  # any provider name: an unknown one redirects with ?error=
        params[0]["schema"] = {"type": "string", "pattern": PATH_ID_PATTERN}
    query = _query_from_model(op.query_model) if op.query_model is not None else op.query
    params += [{"name": name, "in": "query", "schema": schema} for name, schema in query]
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {"required": op.body_required, **_json(_ref(op.body))}
    if op.upload is not None:
        doc["requestBody"] = _upload_body(op.upload)
    if op.auth:
        doc["security"] = [{"bearer": []}, {"cookie": []}, *([{}] if op.anonymous else [])]
    else:
        doc["security"] = []
    return doc


def _readiness_responses() -> dict[str, Any]:
    """``/readyz``: its own body, ready or not, each check's result by name."""

    def body(status: str) -> dict[str, Any]:
        result = {"type": "string", "enum": ["ok", "failed", "timeout"]}
        return _json(
            {
                "type": "object",
                "required": ["status", "checks"],
                "properties": {
                    "status": {"const": status},
                    "checks": {"type": "object", "additionalProperties": result},
                },
            }
        )

    return {
        "200": {"description": "Ready", **body("ready")},
        "503": {"description": "Not ready: the failed checks are named", **body("not_ready")},
    }


def _upload_body(name: str) -> dict[str, Any]:
    """A form with the file in ``name``; other fields are allowed and not read, up to
    ``MAX_FORM_PARTS`` parts in all (one part each)."""
    schema = {
        "type": "object",
        "required": [name],
        "properties": {name: {"type": "string", "contentMediaType": "application/octet-stream"}},
        "additionalProperties": {"type": "string"},
        "maxProperties": MAX_FORM_PARTS,
    }
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": schema,
                "encoding": {name: {"contentType": "image/jpeg, image/png, image/gif"}},
            }
        },
    }


def _operation_id(op: Operation) -> str:
    words = [w for w in re.split(r"[^a-z0-9]+", op.path.lower()) if w]
    return "_".join([op.method, *words])


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _error_statuses(op: Operation) -> set[int]:
    """The operation's own errors; 404 wherever a path id may be unknown or hold control
    characters (refused before the view); 503 wherever the database is needed."""
    statuses = set(op.errors)
    if _path_params(op.path):
        statuses.add(404)
    if op.store:
        statuses.add(503)
    return statuses


def _query_from_model(model: type[BaseModel]) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Query parameters from a model's JSON schema; a parameter left out is its ``null``."""
    properties = model.model_json_schema()["properties"]
    params = []
    for name, schema in properties.items():
        schema = {k: v for k, v in schema.items() if k != "title"}
        branches = [b for b in schema.pop("anyOf", ()) if b != {"type": "null"}]
        if len(branches) == 1:
            schema.update(branches[0])
        if schema.get("default", ...) is None:
            del schema["default"]
        params.append((name, schema))
    return tuple(params)


def _path_schemas(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each path parameter's schema: an id (see ``PATH_ID_PATTERN``), an API token's id, or one
    of the configured provider names (another one is 404)."""
    schemas: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"type": "string", "pattern": PATH_ID_PATTERN}
    )
    schemas["token_id"] = {"type": "string", "pattern": TOKEN_ID_PATTERN}
    if settings.oauth_providers:
        schemas["provider"] = {"type": "string", "enum": sorted(settings.oauth_providers)}
    return schemas


def _error_responses() -> dict[str, Any]:
    return {
        name: {
            "description": description,
            **({"headers": headers} if headers else {}),
            **_json(_ref(ErrorOut)),
        }
        for name, description, headers in _ERRORS.values()
    }


def _token_input_schema(
    schema: dict[str, Any], settings: Settings, scopes: tuple[str, ...]
) -> None:
    """What a new API token may carry depends on the deployment: its scopes and lifetime."""
    properties = schema["properties"]
    if scopes:
        properties["scopes"]["items"] = {"type": "string", "enum": list(scopes)}
    for branch in properties["expires_in_days"]["anyOf"]:
        if branch.get("type") == "integer":
            branch["maximum"] = settings.api_token_max_ttl_days


@functools.lru_cache(maxsize=8)
def build_openapi(settings: Settings, scopes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The document for these settings and the API-token ``scopes`` they allow (built once:
    ``Settings`` is immutable)."""
    _, schemas = models_json_schema(
        [(m, "validation") for m in _MODELS], ref_template="#/components/schemas/{model}"
    )
    components = schemas.get("$defs", {})
    _token_input_schema(components["ApiTokenCreateInput"], settings, scopes)
    path_schemas = _path_schemas(settings)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        if op.path == METRICS_PATH and settings.metrics_mode == "off":
            continue  # not served
        paths.setdefault(op.path, {})[op.method] = _operation(op, path_schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "authgate", "version": __version__},
        "servers": [{"url": settings.public_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": _error_responses(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": settings.session_cookie_name},
            },
        },
    }
