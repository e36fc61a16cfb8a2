"""``/api/tenants``: the caller's tenants and their members."""

from __future__ import annotations

from flask import Blueprint, Response

from authgate.http.schemas import (
    MemberAddInput,
    MemberRoleInput,
    TenantInput,
    member_to_json,
    tenant_to_json,
)
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required
from authgate.integrations.flask.requests import read_json
from authgate.store.records import TenantRole

blueprint = Blueprint("authgate_tenants", __name__, url_prefix="/api/tenants")


@blueprint.get("")
@token_required()
def list_tenants() -> dict[str, object]:
    tenants = get_extension().service.tenants.list_tenants(authenticate_request())
    return {"tenants": [tenant_to_json(t, role) for t, role in tenants]}


@blueprint.post("")
@token_required(sessions_only=True)
def create_tenant() -> tuple[dict[str, object], int]:
    data = read_json(TenantInput)
    tenant = get_extension().service.tenants.create_tenant(authenticate_request(), data.name)
    return {"tenant": tenant_to_json(tenant, TenantRole.OWNER)}, 201


@blueprint.get("/<tenant_id>")
@token_required()
def get_tenant(tenant_id: str) -> dict[str, object]:
    tenant, role = get_extension().service.tenants.get_tenant(authenticate_request(), tenant_id)
    return {"tenant": tenant_to_json(tenant, role)}


@blueprint.patch("/<tenant_id>")
@token_required()
def rename_tenant(tenant_id: str) -> dict[str, object]:
    data = read_json(TenantInput)
    tenant, role = get_extension().service.tenants.rename_tenant(
        authenticate_request(), tenant_id, data.name
    )
    return {"tenant": tenant_to_json(tenant, role)}


@blueprint.delete("/<tenant_id>")
@token_required()
def delete_tenant(tenant_id: str) -> Response:
    get_extension().service.tenants.delete_tenant(authenticate_request(), tenant_id)
    return Response(status=204)


@blueprint.get("/<tenant_id>/members")
@token_required()
def list_members(tenant_id: str) -> dict[str, object]:
    members = get_extension().service.tenants.list_members(authenticate_request(), tenant_id)
    return {"members": [member_to_json(m) for m in members]}


@blueprint.post("/<tenant_id>/members")
@token_required()
def add_member(tenant_id: str) -> tuple[dict[str, object], int]:
    data = read_json(MemberAddInput)
    member = get_extension().service.tenants.add_member(
        authenticate_request(), tenant_id, email=data.email, role=TenantRole(data.role)
    )
    return {"member": member_to_json(member)}, 201


@blueprint.patch("/<tenant_id>/members/<user_id>")
@token_required()
def set_member_role(tenant_id: str, user_id: str) -> dict[str, object]:
    data = read_json(MemberRoleInput)
    member = get_extension().service.tenants.set_member_role(
        authenticate_request(), tenant_id, user_id, TenantRole(data.role)
    )
    return {"member": member_to_json(member)}


@blueprint.delete("/<tenant_id>/members/<user_id>")
@token_required()
def remove_member(tenant_id: str, user_id: str) -> Response:
    get_extension().service.tenants.remove_member(authenticate_request(), tenant_id, user_id)
    return Response(status=204)
