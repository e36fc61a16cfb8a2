"""Request bodies and response shapes, validated with pydantic; framework-free.

The same models produce the OpenAPI document, so the document cannot drift from what is checked.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import email_validator
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    RootModel,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic.config import JsonDict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from authgate.core.api_tokens import API_TOKEN_PREFIX
from authgate.core.audit import CURSOR_PATTERN, AuditEvent
from authgate.core.devices import describe_device
from authgate.core.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from authgate.core.roles import ROLE_PATTERN
from authgate.errors import BadRequestError, ValidationFailedError
from authgate.store.records import (
    ApiTokenRecord,
    IdentityRecord,
    InvitationRecord,
    MemberRecord,
    PasskeyRecord,
    SessionRecord,
    TenantRecord,
    TenantRole,
    UserRecord,
)

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$"

# The C0 control characters that no request string may hold (tab, newline and carriage return
# aside): ``check_input_shape`` refuses them (400) before any field is validated. The JSON schema
# of every free-text input string states the same rule as a ``pattern`` (ECMA-262 and Python
# alike), so that the OpenAPI document says exactly what is accepted; pydantic does not check it.
CONTROL_CHARACTER_RANGES = r"\x00-\x08\x0b\x0c\x0e-\x1f"
NO_CONTROL_CHARACTERS_PATTERN = rf"^[^{CONTROL_CHARACTER_RANGES}]*$"
# The whitespace ``strip_whitespace`` trims (Unicode White_Space), spelled out: ``\s`` means
# other sets in ECMA-262 and in Python.
TRIMMED_WHITESPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# What ``strip_whitespace`` with ``min_length=1`` accepts: at least one character that is not
# whitespace, and no control character.
NOT_BLANK_PATTERN = (
    rf"^[^{CONTROL_CHARACTER_RANGES}]*"
    rf"[^{TRIMMED_WHITESPACE}{CONTROL_CHARACTER_RANGES}]"
    rf"[^{CONTROL_CHARACTER_RANGES}]*$"
)


class SchemaPattern:
    """A ``pattern`` for the JSON schema only (``Annotated[str, ..., SchemaPattern(p)]``): for a
    rule that is checked otherwise (by ``check_input_shape``, or by trimming before the length
    check) but that the document must state."""

    def __init__(self, pattern: str):
        self.pattern = pattern

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        return json_schema


# Path ids, as the OpenAPI document states them. An API token's id is 16 base62 characters
# (``core/api_tokens.py``); any other id is one path segment without control characters. A
# segment that is no id answers 404 (unknown, or refused by ``integrations/flask/path_ids``).
TOKEN_ID_LENGTH = 16
TOKEN_ID_PATTERN = rf"^[0-9A-Za-z]{{{TOKEN_ID_LENGTH}}}$"
PATH_ID_PATTERN = rf"^[^/{CONTROL_CHARACTER_RANGES}]+$"

# An email address is checked by email-validator (through pydantic), which also refuses the
# special-use domains of RFC 6761 (``.test``, ``.local``, ...): said in the schema by a pattern
# beside ``format: email``, built from the library's own list (any letter case).
EMAIL_PATTERN = (
    r"^(?!.*@(?:[^@]*\.)?(?:"
    + "|".join(
        "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in name)
        for name in email_validator.SPECIAL_USE_DOMAIN_NAMES
    )
    + r")$)"
)

Email = Annotated[EmailStr, SchemaPattern(EMAIL_PATTERN)]
Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    SchemaPattern(NOT_BLANK_PATTERN),
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
Role = Annotated[str, StringConstraints(pattern=ROLE_PATTERN)]

# A new password: the JSON schema states the lengths the service enforces (pydantic lets one
# character more through, so that the service's own message says the limit); the rest of the
# policy (``find_password_problem``) cannot be said in JSON Schema, so the description says it.
NEW_PASSWORD_SCHEMA: JsonDict = {
    "minLength": MIN_PASSWORD_LENGTH,
    "maxLength": MAX_PASSWORD_LENGTH,
    "description": (
        f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters; not a common password, and "
        "not the email, its local part or the username (ignoring case): 422 otherwise."
    ),
}


class NotNull:
    """A field that may be left out but is never ``null``: ``Annotated[X | None, NotNull(...)]``.

    ``None`` stays the Python value of "left out"; a ``null`` sent for it is refused with
    ``message`` instead of silently meaning the same (for a PATCH, "unchanged"), and the field's
    JSON schema does not offer ``null``."""

    def __init__(self, message: str):
        self.message = message

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        message = self.message

        def refuse_null(value: object) -> object:
            if value is None:
                raise PydanticCustomError("null_refused", message)
            return value

        return core_schema.no_info_before_validator_function(refuse_null, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        branches = [b for b in json_schema.get("anyOf", ()) if b != {"type": "null"}]
        if len(branches) == 1:
            del json_schema["anyOf"]
            json_schema.update(branches[0])
        return json_schema


KEEP_WHEN_LEFT_OUT = NotNull("Cannot be null: leave the field out to keep the current value.")


def _drop_null_defaults(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A field that refuses ``null`` has no ``"default": null`` in its schema either."""
    properties = schema.get("properties", {})
    for name, info in model.model_fields.items():
        if any(isinstance(m, NotNull) for m in info.metadata) and name in properties:
            properties[name].pop("default", None)


def _refuse_control_characters(schema: object) -> None:
    """Give every free-text string of an input schema ``NO_CONTROL_CHARACTERS_PATTERN``: not
    those with a pattern of their own (which already leaves control characters out), a format
    (an email) or a fixed set of values."""
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "string" and not item.keys() & {
                "pattern",
                "format",
                "enum",
                "const",
            }:
                item["pattern"] = NO_CONTROL_CHARACTERS_PATTERN
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _input_json_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    _drop_null_defaults(schema, model)
    _refuse_control_characters(schema.get("properties", {}))


class Input(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_max_length=4096, json_schema_extra=_input_json_schema
    )


class RegisterInput(Input):
    email: Email = Field(max_length=254)
    password: str = Field(
        max_length=MAX_PASSWORD_LENGTH + 1, repr=False, json_schema_extra=NEW_PASSWORD_SCHEMA
    )
    name: Name | None = None
    username: Username | None = None
    invitation_token: str | None = Field(
        default=None,
        max_length=200,
        repr=False,
        description="The token of an invitation link to this address: the account starts "
        "verified (no verification mail). Any other token is ignored.",
    )


class LoginInput(Input):
    login: str = Field(min_length=1, max_length=320, description="Email or username.")
    password: Password = Field(repr=False)


class RefreshInput(Input):
    refresh_token: str | None = Field(
        default=None, max_length=200, description="For clients without cookies.", repr=False
    )


class ProfileInput(Input):
    name: Name | None = None
    username: Username | None = None


class PasswordChangeInput(Input):
    current_password: Password = Field(repr=False)
    new_password: str = Field(
        max_length=MAX_PASSWORD_LENGTH + 1, repr=False, json_schema_extra=NEW_PASSWORD_SCHEMA
    )


class UserAccessInput(Input):
    roles: Annotated[list[Role] | None, KEEP_WHEN_LEFT_OUT] = Field(default=None, max_length=32)
    status: Annotated[Literal["active", "disabled"] | None, KEEP_WHEN_LEFT_OUT] = None

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, value: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(value)) if value is not None else None


class UserListQuery(Input):
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=20, ge=1, le=100)
    q: str | None = Field(default=None, max_length=100)


AUDIT_TYPE_PATTERN = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"
_ISO_DATE_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_time(value: object) -> object:
    """Only an ISO 8601 date or time (pydantic alone would take a number as a timestamp)."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE_START.match(value)):
        return value
    raise ValueError("Use an ISO 8601 time, e.g. 2026-12-01 or 2026-12-01T08:00:00Z.")


def _in_utc(value: datetime) -> datetime:
    """The time in UTC (UTC if it names no zone); a time that has no UTC equivalent (year 9999
    at -14:00) is refused here, not left to fail in the database driver."""
    try:
        return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise ValueError("Use a time between the years 1 and 9999.") from None


IsoTime = Annotated[datetime, BeforeValidator(_iso_time), AfterValidator(_in_utc)]
AuditCursor = Annotated[
    str,
    Field(
        max_length=19,
        pattern=CURSOR_PATTERN,
        description="The next_cursor of the previous page (opaque).",
    ),
]


class AuditListQuery(Input):
    user_id: str | None = Field(default=None, min_length=1, max_length=64)
    type: str | None = Field(default=None, max_length=64, pattern=AUDIT_TYPE_PATTERN)
    since: IsoTime | None = Field(
        default=None, description="Events at or after this time (ISO 8601; UTC if no zone)."
    )
    until: IsoTime | None = Field(default=None, description="Events before this time.")
    cursor: AuditCursor | None = None
    limit: int = Field(default=50, ge=1, le=200)


class ActivityQuery(Input):
    cursor: AuditCursor | None = None
    limit: int = Field(default=20, ge=1, le=100)


TenantName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    SchemaPattern(NOT_BLANK_PATTERN),
]
TenantRoleName = Literal["owner", "admin", "member", "viewer"]


class TenantInput(Input):
    name: TenantName


class MemberAddInput(Input):
    email: Email = Field(max_length=254)
    role: TenantRoleName = "member"


class MemberRoleInput(Input):
    role: TenantRoleName


class ApiTokenCreateInput(Input):
    name: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
        SchemaPattern(NOT_BLANK_PATTERN),
    ]
    tenant_id: str | None = Field(default=None, max_length=32)
    scopes: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        min_length=1, max_length=32
    )
    resource: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    expires_in_days: int | None = Field(default=None, ge=1)


class HandoffInput(Input):
    code: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    code_verifier: Annotated[str, StringConstraints(min_length=43, max_length=128)]


# A mailed link's token (``#token=`` of the link), posted by the page the link opens.
LinkToken = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class LinkTokenInput(Input):
    token: LinkToken = Field(repr=False)


class ForgotPasswordInput(Input):
    email: Email = Field(max_length=254)


MfaToken = Annotated[str, StringConstraints(min_length=1, max_length=200)]
TotpCode = Annotated[str, StringConstraints(min_length=1, max_length=20)]
RecoveryCode = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class PasswordResetInput(Input):
    token: LinkToken = Field(repr=False)
    password: str = Field(
        max_length=MAX_PASSWORD_LENGTH + 1, repr=False, json_schema_extra=NEW_PASSWORD_SCHEMA
    )
    code: Annotated[TotpCode | None, NotNull("Cannot be null: leave the field out.")] = Field(
        default=None,
        repr=False,
        description="For an account with a second factor: a code of its authenticator app.",
    )
    recovery_code: Annotated[
        RecoveryCode | None, NotNull("Cannot be null: leave the field out.")
    ] = Field(default=None, repr=False, description="Or one of its recovery codes.")


class VerificationResendInput(Input):
    email: str = Field(
        min_length=1, max_length=320, description="What the login used: email (or username)."
    )
    password: Password = Field(repr=False)


class EmailChangeInput(Input):
    email: Email = Field(max_length=254, description="The new address.")
    password: Password = Field(repr=False, description="The current password.")


class InvitationInput(Input):
    email: Email = Field(max_length=254)
    role: TenantRoleName = "member"


# Second factors (docs/mfa.md) -----------------------------------------------------------------

# One of several alternatives (a code or a recovery code...): left out, never null.
_ALTERNATIVE = NotNull("Cannot be null: leave the field out.")


class TotpBeginInput(Input):
    password: Annotated[Password | None, _ALTERNATIVE] = Field(
        default=None, repr=False, description="The password (of a logged-in caller)."
    )
    mfa_token: Annotated[MfaToken | None, _ALTERNATIVE] = Field(
        default=None,
        repr=False,
        description="Instead of a session and password: the token of mfa_enrollment_required.",
    )


class TotpConfirmInput(Input):
    code: TotpCode = Field(repr=False, description="The 6 digits the app shows now.")
    mfa_token: Annotated[MfaToken | None, _ALTERNATIVE] = Field(
        default=None,
        repr=False,
        description="Instead of a session: the token of mfa_enrollment_required (completes the "
        "login: the answer is also a login's).",
    )


# A passkey assertion given where a code also does (the options come from the /passkeys paths).
_ASSERTION_ALTERNATIVE = (
    "Or a passkey: the PublicKeyCredential of navigator.credentials.get() as JSON (its "
    "toJSON()), for the options of {options}"
)


class MfaVerifyInput(Input):
    mfa_token: MfaToken = Field(repr=False)
    code: Annotated[TotpCode | None, _ALTERNATIVE] = Field(default=None, repr=False)
    recovery_code: Annotated[RecoveryCode | None, _ALTERNATIVE] = Field(default=None, repr=False)
    credential: Annotated[dict[str, Any] | None, _ALTERNATIVE] = Field(
        default=None,
        description=_ASSERTION_ALTERNATIVE.format(options="POST /api/auth/passkeys/mfa/options"),
    )


class ReauthenticateInput(Input):
    password: Annotated[Password | None, _ALTERNATIVE] = Field(default=None, repr=False)
    code: Annotated[TotpCode | None, _ALTERNATIVE] = Field(default=None, repr=False)
    credential: Annotated[dict[str, Any] | None, _ALTERNATIVE] = Field(
        default=None,
        description=_ASSERTION_ALTERNATIVE.format(
            options="POST /api/auth/passkeys/reauthenticate/options"
        ),
    )


class TotpSetupOut(BaseModel):
    secret: str = Field(description="Base32, for typing into the app by hand.")
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as a QR code: an inline <svg> element.")


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="Shown once: only their hashes are stored.")


class MfaStatusOut(BaseModel):
    totp: bool
    totp_pending: bool
    recovery_codes_left: int
    passkeys: int
    required: bool = Field(description="The caller's roles require a second factor.")


class MfaChallengeOut(BaseModel):
    token: str = Field(description="For POST /api/auth/mfa/verify; 5 minutes, 5 attempts.")
    methods: list[str] = Field(description='Among "totp", "passkey", "recovery_code".')


class UserMfaOut(BaseModel):
    methods: list[str] = Field(
        description='The second factors the user has on, among "totp", "passkey", '
        '"recovery_code" (recovery codes only beside another); empty: none.'
    )


class MfaRequiredOut(BaseModel):
    error: dict[str, str]
    mfa: MfaChallengeOut


class ReauthenticatedOut(BaseModel):
    user: UserOut
    access_token: str | None = Field(
        default=None, description="For bearer clients; a browser gets the session cookie."
    )
    token_type: Literal["Bearer"]
    expires_in: int


# Responses -------------------------------------------------------------------------------------


class UserOut(BaseModel):
    id: str
    email: str
    username: str | None
    name: str | None
    roles: list[str]
    status: Literal["active", "disabled"]
    email_verified: bool
    created_at: str = Field(description="ISO 8601, UTC")
    last_login_at: str | None = Field(description="ISO 8601, UTC")
    avatar_url: str | None


class UserEnvelope(BaseModel):
    user: UserOut


class LoginOut(BaseModel):
    user: UserOut
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    refresh_token: str | None = Field(
        default=None, description="Only for clients that asked for it in the body (no cookies)."
    )


class RefreshOut(BaseModel):
    user: UserOut
    access_token: str | None = Field(
        default=None, description="Only for a refresh by body; a cookie refresh sets the cookie."
    )
    token_type: Literal["Bearer"]
    expires_in: int
    refresh_token: str | None = Field(default=None, description="Only for a refresh by body.")


class SessionOut(BaseModel):
    id: str
    created_at: str
    last_seen_at: str
    expires_at: str
    user_agent: str | None
    device: str | None = Field(
        description='The user agent in words ("Chrome 156 on Linux"); null when unknown.'
    )
    ip: str | None
    current: bool


class SessionList(BaseModel):
    sessions: list[SessionOut]


class AuditActorOut(BaseModel):
    type: Literal["user", "cli", "system"] = Field(
        description="A user (``id`` their user id; null for an anonymous caller), a command "
        "of the ``authgate`` CLI, or authgate itself (background work)."
    )
    id: str | None


class AuditEventOut(BaseModel):
    id: int = Field(description="Monotonic: a later event has a larger id.")
    time: str
    type: str = Field(description="A dotted name, e.g. login.succeeded (see docs/audit.md).")
    outcome: Literal["success", "failure"]
    actor: AuditActorOut
    user_id: str | None = Field(description="The user the event is about.")
    tenant_id: str | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any] = Field(
        description="What changed; never a password, token, hash or secret."
    )


class AuditEventPage(BaseModel):
    events: list[AuditEventOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as ``cursor`` for the next (older) page; null on the last page. "
        "A page stays the same whatever is recorded meanwhile."
    )


class IdentityOut(BaseModel):
    id: str
    provider: str
    email: str | None = Field(description="What the provider last said; for display only.")
    linked_at: str
    last_login_at: str | None


class IdentityList(BaseModel):
    identities: list[IdentityOut]


class ProviderOut(BaseModel):
    name: str
    display_name: str


class ProviderList(RootModel[list[ProviderOut]]):
    pass


class OAuthLinkOut(BaseModel):
    authorization_url: str = Field(description="Send the browser here (top-level navigation).")


class RoleList(BaseModel):
    roles: list[str] = Field(
        description='The roles an admin can give: "user", "admin", then AUTHGATE_ROLES.'
    )


class UserPage(BaseModel):
    users: list[UserOut]
    page: int
    per_page: int
    total: int


class TenantOut(BaseModel):
    id: str
    name: str
    personal: bool
    role: TenantRoleName
    created_at: str


class TenantEnvelope(BaseModel):
    tenant: TenantOut


class TenantList(BaseModel):
    tenants: list[TenantOut]


class MemberOut(BaseModel):
    user_id: str
    email: str
    name: str | None
    role: TenantRoleName
    joined_at: str


class MemberEnvelope(BaseModel):
    member: MemberOut


class MemberList(BaseModel):
    members: list[MemberOut]


class ApiTokenOut(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="ag_ + id: safe to show; the secret is not derivable")
    tenant_id: str
    scopes: list[str]
    resource: str | None
    created_at: str
    expires_at: str
    last_used_at: str | None
    last_used_ip: str | None


class ApiTokenCreated(ApiTokenOut):
    token: str = Field(description="The secret token, shown this one time only")


class ApiTokenList(BaseModel):
    tokens: list[ApiTokenOut]


class MailRequestedOut(BaseModel):
    message: str = Field(description="The same for every outcome.")


class InvitationOut(BaseModel):
    id: str
    tenant_id: str
    email: str
    role: TenantRoleName
    inviter_name: str | None
    created_at: str
    expires_at: str


class InvitationEnvelope(BaseModel):
    invitation: InvitationOut


class InvitationList(BaseModel):
    invitations: list[InvitationOut]


class InvitationPreviewOut(BaseModel):
    tenant_name: str
    email: str
    role: TenantRoleName
    inviter_name: str | None
    expires_at: str


class InvitationAcceptedOut(BaseModel):
    tenant: TenantOut
    role: TenantRoleName


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


def format_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def audit_page_to_json(events: Sequence[AuditEvent], next_cursor: str | None) -> dict[str, Any]:
    return {"events": [event.as_json() for event in events], "next_cursor": next_cursor}


def user_to_json(user: UserRecord) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "username": user.username,
        "name": user.name,
        "roles": list(user.roles),
        "status": user.status.value,
        "email_verified": user.email_verified,
        "created_at": format_time(user.created_at),
        "last_login_at": format_time(user.last_login_at),
        "avatar_url": user.avatar_url,
    }


def identity_to_json(identity: IdentityRecord) -> dict[str, Any]:
    return {
        "id": identity.id,
        "provider": identity.provider,
        "email": identity.email,
        "linked_at": format_time(identity.linked_at),
        "last_login_at": format_time(identity.last_login_at),
    }


def tenant_to_json(tenant: TenantRecord, role: TenantRole) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "personal": tenant.personal,
        "role": role.value,
        "created_at": format_time(tenant.created_at),
    }


def member_to_json(member: MemberRecord) -> dict[str, Any]:
    return {
        "user_id": member.user_id,
        "email": member.email,
        "name": member.name,
        "role": member.role.value,
        "joined_at": format_time(member.created_at),
    }


def api_token_to_json(token: ApiTokenRecord) -> dict[str, Any]:
    """A token's public description: never its secret."""
    return {
        "id": token.id,
        "name": token.name,
        "prefix": f"{API_TOKEN_PREFIX}{token.id}",
        "tenant_id": token.tenant_id,
        "scopes": list(token.scopes),
        "resource": token.resource,
        "created_at": format_time(token.created_at),
        "expires_at": format_time(token.expires_at),
        "last_used_at": format_time(token.last_used_at),
        "last_used_ip": token.last_used_ip,
    }


def invitation_to_json(invitation: InvitationRecord) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "tenant_id": invitation.tenant_id,
        "email": invitation.email,
        "role": invitation.role.value,
        "inviter_name": invitation.inviter_name,
        "created_at": format_time(invitation.created_at),
        "expires_at": format_time(invitation.expires_at),
    }


def invitation_preview_to_json(invitation: InvitationRecord) -> dict[str, Any]:
    """What the invitation page shows before anyone logs in."""
    return {
        "tenant_name": invitation.tenant_name,
        "email": invitation.email,
        "role": invitation.role.value,
        "inviter_name": invitation.inviter_name,
        "expires_at": format_time(invitation.expires_at),
    }


def session_to_json(session: SessionRecord, *, current: bool) -> dict[str, Any]:
    return {
        "id": session.id,
        "created_at": format_time(session.created_at),
        "last_seen_at": format_time(session.last_seen_at),
        "expires_at": format_time(session.expires_at),
        "user_agent": session.user_agent,
        "device": describe_device(session.user_agent),
        "ip": session.ip,
        "current": current,
    }


M = TypeVar("M", bound=BaseModel)

_FIELD_MESSAGES = {
    "missing": "This field is required.",
    "extra_forbidden": "Unknown field.",
    "string_type": "Must be a string.",
    "list_type": "Must be a list.",
    "int_type": "Must be a whole number.",
    "int_parsing": "Must be a whole number.",
    "int_from_float": "Must be a whole number.",
    "bool_type": "Must be true or false.",
    "bool_parsing": "Must be true or false.",
}

# Messages with the limits of the failed constraint (pydantic's ``ctx``).
_LIMIT_MESSAGES = {
    "string_too_long": "Use at most {max_length} characters.",
    "too_long": "Give at most {max_length} items.",
    "greater_than_equal": "Must be at least {ge}.",
    "greater_than": "Must be more than {gt}.",
    "less_than_equal": "Must be at most {le}.",
    "less_than": "Must be less than {lt}.",
    "literal_error": "Must be {expected}.",
}

_INVALID_EMAIL = "Enter a valid email address. "

# Words for one field where the generic message would be vague.
_NAMED_FIELD_MESSAGES = {
    ("scopes", "too_short"): "Choose at least one scope.",
}

# What each pattern of an input allows, wherever it is used (a field or a list's items): every
# pattern in an input model has its words here (tests/test_schemas.py checks).
_PATTERN_MESSAGES = {
    USERNAME_PATTERN: (
        "Use 3 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit."
    ),
    ROLE_PATTERN: (
        "Use 1 to 32 lowercase letters, digits, '_', ':' or '-', starting with a lowercase letter."
    ),
    # In the JSON schema only (``check_input_shape`` and trimming do the checking): never the
    # words of a refusal today, but said plainly all the same.
    NO_CONTROL_CHARACTERS_PATTERN: "Do not use control characters.",
    EMAIL_PATTERN: "Use an address at a domain that can receive email.",
    NOT_BLANK_PATTERN: "This field cannot be empty.",
    AUDIT_TYPE_PATTERN: "Use an event type: lowercase words joined by '.', e.g. login.failed.",
    CURSOR_PATTERN: "Use the next_cursor of the previous page, as it was given.",
}

_INVALID_VALUE = "Invalid value."


def _field_message(error: Any) -> str:
    """Plain words for one pydantic error: never pydantic's own "List should have at least 1
    item after validation, not 0" or "String should match pattern '^...'"."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "null_refused":
        return str(error["msg"])
    if error.get("input", ...) is None and kind not in ("missing", "extra_forbidden"):
        return "Cannot be null."
    named = _NAMED_FIELD_MESSAGES.get((str(error["loc"][0]) if error["loc"] else "", kind))
    if named is not None and len(error["loc"]) == 1:
        return named
    if kind == "string_pattern_mismatch":
        return _PATTERN_MESSAGES.get(str(ctx.get("pattern")), _INVALID_VALUE)
    if kind in _FIELD_MESSAGES:
        return _FIELD_MESSAGES[kind]
    if kind in _LIMIT_MESSAGES:
        try:
            return _LIMIT_MESSAGES[kind].format(**ctx)
        except KeyError:
            pass
    if kind == "string_too_short":
        minimum = ctx.get("min_length", 1)
        if minimum == 1:
            return "This field cannot be empty."
        return f"Use at least {minimum} characters."
    if kind == "too_short":
        minimum = ctx.get("min_length", 1)
        return "Give at least one item." if minimum == 1 else f"Give at least {minimum} items."
    if kind != "value_error":
        return _INVALID_VALUE  # a kind of error not foreseen: no pydantic wording either
    # A ValueError's own text: an email check's reason (email-validator's words) or ours.
    message = re.sub(r"^Value error, ", "", str(error.get("msg", _INVALID_VALUE)))
    return re.sub(r"^value is not a valid email address: ", _INVALID_EMAIL, message)


# What a request's JSON may be, checked in one walk without recursion before anything else
# reads it: no authgate body nests objects or lists more than two levels (a list of scopes in
# the body), nor holds more than a few dozen fields and items (5 fields and 32 scopes at most).
MAX_INPUT_DEPTH = 32
MAX_INPUT_ENTRIES = 256
# At most this many fields are named in a validation_failed answer (the message says how many).
MAX_FIELD_ERRORS = 20

_CONTROL_CHARACTERS = re.compile(f"[{CONTROL_CHARACTER_RANGES}]")


def input_too_deep() -> BadRequestError:
    return BadRequestError(
        f"The request body is nested too deeply: at most {MAX_INPUT_DEPTH} levels."
    )


def has_control_characters(value: object) -> bool:
    """NUL and other C0 controls (tab, newline and carriage return aside) anywhere in a value:
    no field needs them, and some databases refuse NUL outright. Walked without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _CONTROL_CHARACTERS.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def check_input_shape(data: object) -> None:
    """Refuse (400) a body nested deeper than ``MAX_INPUT_DEPTH``, with more than
    ``MAX_INPUT_ENTRIES`` fields and list items in all, or with control characters; in one
    iterative walk that stops at the first problem, so a hostile body costs no more than a
    normal one before it is refused."""
    stack: list[tuple[object, int]] = [(data, 0)]
    entries = 0
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _CONTROL_CHARACTERS.search(value):
                raise BadRequestError("The request contains control characters.")
            continue
        children: Iterable[object]
        if isinstance(value, dict):
            children = itertools.chain(value.keys(), value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        depth += 1
        if depth > MAX_INPUT_DEPTH:
            raise input_too_deep()
        entries += len(value)
        if entries > MAX_INPUT_ENTRIES:
            raise BadRequestError(
                f"The request body has more than {MAX_INPUT_ENTRIES} fields and list items; "
                "no authgate request needs that many."
            )
        stack.extend((child, depth) for child in children)


def parse_input(model: type[M], data: object) -> M:
    """Validate ``data`` (parsed JSON or query args) into ``model`` or raise a 4xx ``AuthError``."""
    if not isinstance(data, dict):
        raise BadRequestError("The request body must be a JSON object.")
    check_input_shape(data)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise _validation_failed(e) from None


def _validation_failed(error: ValidationError) -> ValidationFailedError:
    """One message per field, the fields of the model before unknown ones, at most
    ``MAX_FIELD_ERRORS`` of them."""
    errors = sorted(error.errors(include_url=False), key=lambda e: e["type"] == "extra_forbidden")
    fields: dict[str, str] = {}
    for item in errors:
        name = ".".join(str(p) for p in item["loc"]) or "body"
        fields.setdefault(name, _field_message(item))
    if len(fields) <= MAX_FIELD_ERRORS:
        return ValidationFailedError(fields)
    shown = dict(itertools.islice(fields.items(), MAX_FIELD_ERRORS))
    return ValidationFailedError(
        shown, f"{len(fields)} fields are invalid; the first {MAX_FIELD_ERRORS} are listed."
    )


# Passkeys ------------------------------------------------------------------------------------

PasskeyName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    SchemaPattern(NOT_BLANK_PATTERN),
]
# A PublicKeyCredential as JSON (``PublicKeyCredential.toJSON()``, or authgate.js's encoding):
# binary fields base64url. Verified by the service; only its shape is checked here.
PASSKEY_CREDENTIAL_DESCRIPTION = (
    "The PublicKeyCredential of navigator.credentials.create()/get() as JSON (its toJSON(): "
    "id, rawId, type, response with base64url-encoded fields, clientExtensionResults)"
)


class PasskeyRegisterInput(Input):
    credential: dict[str, Any] = Field(description=PASSKEY_CREDENTIAL_DESCRIPTION)
    name: Annotated[
        PasskeyName | None,
        NotNull("Cannot be null: leave the field out for a default name."),
    ] = Field(default=None, description="A name to tell the passkey apart, e.g. 'Laptop'")


class PasskeyRenameInput(Input):
    name: PasskeyName


class PasskeyAssertionInput(Input):
    credential: dict[str, Any] = Field(description=PASSKEY_CREDENTIAL_DESCRIPTION)


class PasskeyMfaOptionsInput(Input):
    mfa_token: MfaToken = Field(repr=False, description="The token of the mfa_required answer")


class PasskeyMfaInput(Input):
    mfa_token: MfaToken = Field(repr=False, description="The token of the mfa_required answer")
    credential: dict[str, Any] = Field(description=PASSKEY_CREDENTIAL_DESCRIPTION)


class PasskeyOut(BaseModel):
    id: str
    name: str
    created_at: str
    last_used_at: str | None
    transports: list[str]
    backup_eligible: bool
    backed_up: bool
    aaguid: str


class PasskeyEnvelope(BaseModel):
    passkey: PasskeyOut


class PasskeyList(BaseModel):
    passkeys: list[PasskeyOut]


class WebAuthnOptionsOut(BaseModel):
    """PublicKeyCredentialCreationOptions or ...RequestOptions as JSON (binary fields
    base64url): for PublicKeyCredential.parseCreationOptionsFromJSON() /
    parseRequestOptionsFromJSON(), or authgate.js."""

    model_config = ConfigDict(extra="allow")
    challenge: str


class RelatedOriginsOut(BaseModel):
    origins: list[str]


def passkey_to_json(passkey: PasskeyRecord) -> dict[str, Any]:
    return {
        "id": passkey.id,
        "name": passkey.name,
        "created_at": format_time(passkey.created_at),
        "last_used_at": format_time(passkey.last_used_at),
        "transports": list(passkey.transports),
        "backup_eligible": passkey.backup_eligible,
        "backed_up": passkey.backed_up,
        "aaguid": passkey.aaguid,
    }
