"""``/api/users`` (administration of accounts: sessions, API tokens, linked identities) and
``/api/roles`` (the roles an admin can give); admin role, login sessions only."""

from __future__ import annotations

from flask import Blueprint, Response

from authgate.http.schemas import (
    UserAccessInput,
    UserListQuery,
    api_token_to_json,
    identity_to_json,
    session_to_json,
    user_to_json,
)
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required
from authgate.integrations.flask.requests import read_json, read_query
from authgate.service import ADMIN_ROLE
from authgate.store.records import UserStatus

blueprint = Blueprint("authgate_users", __name__, url_prefix="/api/users")
roles_blueprint = Blueprint("authgate_roles", __name__)


@roles_blueprint.get("/api/roles")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def list_roles() -> dict[str, object]:
    roles = get_extension().service.accounts.list_known_roles(authenticate_request())
    return {"roles": list(roles)}


@blueprint.get("")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def list_users() -> dict[str, object]:
    query = read_query(UserListQuery)
    users, total = get_extension().service.accounts.list_users(
        authenticate_request(), query=query.q, page=query.page, per_page=query.per_page
    )
    return {
        "users": [user_to_json(u) for u in users],
        "page": query.page,
        "per_page": query.per_page,
        "total": total,
    }


@blueprint.get("/<user_id>")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def get_user(user_id: str) -> dict[str, object]:
    user = get_extension().service.accounts.get_user(authenticate_request(), user_id)
    return {"user": user_to_json(user)}


@blueprint.patch("/<user_id>")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def update_user(user_id: str) -> dict[str, object]:
    data = read_json(UserAccessInput)
    user = get_extension().service.accounts.update_user_access(
        authenticate_request(),
        user_id,
        roles=data.roles,
        status=UserStatus(data.status) if data.status else None,
    )
    return {"user": user_to_json(user)}


@blueprint.delete("/<user_id>")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def delete_user(user_id: str) -> Response:
    get_extension().service.accounts.delete_user(authenticate_request(), user_id)
    return Response(status=204)


@blueprint.get("/<user_id>/tokens")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def list_user_tokens(user_id: str) -> dict[str, object]:
    tokens = get_extension().service.api_tokens.list_user_api_tokens(
        authenticate_request(), user_id
    )
    return {"tokens": [api_token_to_json(t) for t in tokens]}


@blueprint.delete("/<user_id>/tokens/<token_id>")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def revoke_user_token(user_id: str, token_id: str) -> Response:
    get_extension().service.api_tokens.revoke_user_api_token(
        authenticate_request(), user_id, token_id
    )
    return Response(status=204)


@blueprint.get("/<user_id>/sessions")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def list_user_sessions(user_id: str) -> dict[str, object]:
    sessions = get_extension().service.sessions.list_user_sessions(authenticate_request(), user_id)
    return {"sessions": [session_to_json(s, current=c) for s, c in sessions]}


@blueprint.delete("/<user_id>/sessions/<session_id>")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def revoke_user_session(user_id: str, session_id: str) -> Response:
    get_extension().service.sessions.revoke_user_session(
        authenticate_request(), user_id, session_id
    )
    return Response(status=204)


@blueprint.delete("/<user_id>/sessions")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def revoke_all_user_sessions(user_id: str) -> Response:
    get_extension().service.sessions.revoke_all_user_sessions(authenticate_request(), user_id)
    return Response(status=204)


@blueprint.get("/<user_id>/mfa")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def user_mfa(user_id: str) -> dict[str, object]:
    methods = get_extension().service.second_factors.admin_methods(authenticate_request(), user_id)
    return {"methods": methods}


@blueprint.delete("/<user_id>/mfa")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def remove_user_mfa(user_id: str) -> Response:
    get_extension().service.second_factors.admin_remove(authenticate_request(), user_id)
    return Response(status=204)


@blueprint.get("/<user_id>/identities")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def list_user_identities(user_id: str) -> dict[str, object]:
    identities = get_extension().service.oauth_logins.list_user_identities(
        authenticate_request(), user_id
    )
    return {"identities": [identity_to_json(i) for i in identities]}


@blueprint.delete("/<user_id>/identities/<identity_id>")
@token_required(roles=[ADMIN_ROLE], sessions_only=True)
def unlink_user_identity(user_id: str, identity_id: str) -> Response:
    get_extension().service.oauth_logins.unlink_user_identity(
        authenticate_request(), user_id, identity_id
    )
    return Response(status=204)
