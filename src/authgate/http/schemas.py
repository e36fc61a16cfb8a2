"""Request bodies and response shapes, validated with pydantic; framework-free.

The same models produce the OpenAPI document, so the document cannot drift from what is checked.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    RootModel,
    StringConstraints,
    ValidationError,
    field_validator,
)

from authgate.core.api_tokens import API_TOKEN_PREFIX
from authgate.core.passwords import MAX_PASSWORD_LENGTH
from authgate.errors import BadRequestError, ValidationFailedError
from authgate.store.records import (
    ApiTokenRecord,
    IdentityRecord,
    MemberRecord,
    SessionRecord,
    TenantRecord,
    TenantRole,
    UserRecord,
)

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$"
ROLE_PATTERN = r"^[a-z][a-z0-9_:-]{0,31}$"

Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
Role = Annotated[str, StringConstraints(pattern=ROLE_PATTERN)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=4096)


class RegisterInput(Input):
    email: EmailStr = Field(max_length=254)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH + 1, repr=False)
    name: Name | None = None
    username: Username | None = None


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
    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH + 1, repr=False)


class UserAccessInput(Input):
    roles: list[Role] | None = Field(default=None, max_length=32)
    status: Literal["active", "disabled"] | None = None

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, value: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(value)) if value is not None else None


class UserListQuery(Input):
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=20, ge=1, le=100)
    q: str | None = Field(default=None, max_length=100)


TenantName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
TenantRoleName = Literal["owner", "admin", "member", "viewer"]


class TenantInput(Input):
    name: TenantName


class MemberAddInput(Input):
    email: EmailStr = Field(max_length=254)
    role: TenantRoleName = "member"


class MemberRoleInput(Input):
    role: TenantRoleName


class ApiTokenCreateInput(Input):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    tenant_id: str | None = Field(default=None, max_length=32)
    scopes: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        min_length=1, max_length=32
    )
    resource: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    expires_in_days: int | None = Field(default=None, ge=1)


class HandoffInput(Input):
    code: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    code_verifier: Annotated[str, StringConstraints(min_length=43, max_length=128)]


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
    ip: str | None
    current: bool


class SessionList(BaseModel):
    sessions: list[SessionOut]


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


def session_to_json(session: SessionRecord, *, current: bool) -> dict[str, Any]:
    return {
        "id": session.id,
        "created_at": format_time(session.created_at),
        "last_seen_at": format_time(session.last_seen_at),
        "expires_at": format_time(session.expires_at),
        "user_agent": session.user_agent,
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
}

_INVALID_VALUE = "Invalid value."


def _field_message(error: Any) -> str:
    """Plain words for one pydantic error: never pydantic's own "List should have at least 1
    item after validation, not 0" or "String should match pattern '^...'"."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
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


def has_control_characters(value: object) -> bool:
    """NUL and other C0 controls (tab, newline and carriage return aside) anywhere in a value:
    no field needs them, and some databases refuse NUL outright."""
    if isinstance(value, str):
        return any(ord(c) < 32 and c not in "\t\n\r" for c in value)
    if isinstance(value, dict):
        return any(has_control_characters(k) or has_control_characters(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_control_characters(v) for v in value)
    return False


def parse_input(model: type[M], data: object) -> M:
    """Validate ``data`` (parsed JSON or query args) into ``model`` or raise a 4xx ``AuthError``."""
    if not isinstance(data, dict):
        raise BadRequestError("The request body must be a JSON object.")
    if has_control_characters(data):
        raise BadRequestError("The request contains control characters.")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        fields: dict[str, str] = {}
        for error in e.errors():
            name = ".".join(str(p) for p in error["loc"]) or "body"
            fields.setdefault(name, _field_message(error))
        raise ValidationFailedError(fields) from None
