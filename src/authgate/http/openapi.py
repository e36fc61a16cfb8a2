"""The OpenAPI 3.1 document, built from the same pydantic models that validate requests."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from authgate.config import Settings
from authgate.http.schemas import (
    ApiTokenCreated,
    ApiTokenCreateInput,
    ApiTokenList,
    ErrorOut,
    HandoffInput,
    IdentityList,
    LoginInput,
    LoginOut,
    MemberAddInput,
    MemberEnvelope,
    MemberList,
    MemberRoleInput,
    OAuthLinkOut,
    PasswordChangeInput,
    ProfileInput,
    ProviderList,
    RefreshInput,
    RefreshOut,
    RegisterInput,
    SessionList,
    TenantEnvelope,
    TenantInput,
    TenantList,
    UserAccessInput,
    UserEnvelope,
    UserPage,
)
from authgate.version import __version__

_ERROR_TEXT = {
    400: "Malformed request",
    401: "No valid credential",
    403: "Not allowed (CSRF, role)",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    422: "Invalid fields",
    429: "Too many failed attempts (see Retry-After)",
    503: "Unavailable",
}


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
    # Media types of a non-JSON 200 response (an image).
    media: tuple[str, ...] = ()


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post",
        "/api/auth/register",
        "Create an account",
        201,
        RegisterInput,
        UserEnvelope,
        auth=False,
        errors=(400, 403, 409, 422),
    ),
    Operation(
        "post",
        "/api/auth/login",
        "Log in with email or username and password",
        200,
        LoginInput,
        LoginOut,
        auth=False,
        errors=(400, 401, 403, 422, 429),
    ),
    Operation(
        "post",
        "/api/auth/refresh",
        "Rotate the refresh token (cookie or body)",
        200,
        RefreshInput,
        RefreshOut,
        auth=False,
        errors=(400, 401, 403),
    ),
    Operation(
        "post", "/api/auth/logout", "Revoke this session and clear cookies", 204, errors=(401, 403)
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
        errors=(400, 401, 403, 409, 422),
    ),
    Operation(
        "post",
        "/api/auth/password",
        "Change password; other sessions are revoked",
        204,
        PasswordChangeInput,
        errors=(400, 401, 403, 422, 429),
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
        "An avatar image (public, immutable)",
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
        "/api/users",
        "List users (admin)",
        200,
        None,
        UserPage,
        errors=(401, 403, 422),
        query=(
            ("page", {"type": "integer", "minimum": 1, "default": 1}),
            ("per_page", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
            ("q", {"type": "string", "maxLength": 100}),
        ),
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
        "Set roles and status (admin)",
        200,
        UserAccessInput,
        UserEnvelope,
        errors=(400, 401, 403, 404, 422),
        tag="users",
    ),
    Operation(
        "delete",
        "/api/users/{user_id}",
        "Delete a user (admin)",
        204,
        errors=(401, 403, 404, 409),
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
                (400, 401, 403, 422),
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
                (400, 401, 403, 404, 422),
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
                (400, 401, 403, 404, 409, 422),
                "tenants",
            ),
            (
                "patch",
                "/api/tenants/{tenant_id}/members/{user_id}",
                "Change a member's role",
                200,
                MemberRoleInput,
                MemberEnvelope,
                (400, 401, 403, 404, 409, 422),
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
                "/api/tokens",
                "Create an API token; the secret is shown once",
                201,
                ApiTokenCreateInput,
                ApiTokenCreated,
                (400, 401, 403, 404, 422),
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
                (401, 403),
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
        "get",
        "/.well-known/jwks.json",
        "Public keys of the access-token signing keys",
        auth=False,
        tag="meta",
    ),
    Operation(
        "get", "/healthz", "200 when the database answers", auth=False, errors=(503,), tag="meta"
    ),
    Operation("get", "/api/openapi.json", "This document", auth=False, tag="meta"),
    Operation(
        "get",
        "/api/auth/diagnose",
        "What the server saw of this request (Origin allowed? session cookie? scheme?) and "
        "the problems found, each with its fix; readable from any origin without credentials",
        auth=False,
        tag="meta",
    ),
    Operation(
        "get",
        "/authgate.js",
        "The JavaScript client (an ES module; any origin may import it)",
        auth=False,
        tag="meta",
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
                    "description": "S256 challenge: hand the login to the page at next "
                    "(a #authgate_handoff code for POST /api/oauth/exchange) instead of cookies",
                },
            ),
        ),
        tag="oauth",
    ),
    Operation(
        "post",
        "/api/oauth/exchange",
        "Collect a handed-off provider login (code + verifier): sets the session cookies",
        200,
        HandoffInput,
        LoginOut,
        auth=False,
        errors=(400, 403, 422),
        tag="oauth",
    ),
    Operation(
        "get",
        "/api/oauth/{provider}/callback",
        "The provider's redirect back: logs in (session cookies), then redirects to next; "
        "errors redirect with ?error=<code>",
        302,
        auth=False,
        query=(
            ("code", {"type": "string"}),
            ("state", {"type": "string"}),
            ("error", {"type": "string"}),
        ),
        tag="oauth",
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
    UserPage,
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
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(op: Operation) -> dict[str, Any]:
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
            "content": {m: {"schema": {"contentMediaType": m}} for m in op.media},
        }
    else:
        ok: dict[str, Any] = {"description": "OK"}
        ok.update(_json(_ref(op.response) if op.response else {"type": "object"}))
        responses[str(op.ok)] = ok
    for status in op.errors:
        responses[str(status)] = {"description": _ERROR_TEXT[status], **_json(_ref(ErrorOut))}
    doc: dict[str, Any] = {
        "summary": op.summary,
        "operationId": _operation_id(op),
        "tags": [op.tag],
        "responses": responses,
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_params(op.path)
    ]
    params += [{"name": name, "in": "query", "schema": schema} for name, schema in op.query]
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {"required": op.body is not RefreshInput, **_json(_ref(op.body))}
    if op.upload is not None:
        doc["requestBody"] = _upload_body(op.upload)
    if op.auth:
        doc["security"] = [{"bearer": []}, {"cookie": []}]
    else:
        doc["security"] = []
    return doc


def _upload_body(name: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": [name],
        "properties": {name: {"type": "string", "contentMediaType": "application/octet-stream"}},
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


@functools.lru_cache(maxsize=8)
def build_openapi(settings: Settings) -> dict[str, Any]:
    """The document for these settings (built once: ``Settings`` is immutable)."""
    _, schemas = models_json_schema(
        [(m, "validation") for m in _MODELS], ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "authgate", "version": __version__},
        "servers": [{"url": settings.public_url}],
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": settings.session_cookie_name},
            },
        },
    }
