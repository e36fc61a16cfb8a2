"""Invitations: ``/api/tenants/<id>/invitations`` (owners and admins) and
``/api/invitations`` (the invited person)."""

from __future__ import annotations

from flask import Blueprint, Response

from authgate.http.schemas import (
    InvitationInput,
    LinkTokenInput,
    invitation_preview_to_json,
    invitation_to_json,
    tenant_to_json,
)
from authgate.integrations.flask.auth_views import guard_browser
from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.decorators import authenticate_request, token_required
from authgate.integrations.flask.requests import client_info, read_json
from authgate.store.records import TenantRole

blueprint = Blueprint("authgate_invitations", __name__)


@blueprint.post("/api/tenants/<tenant_id>/invitations")
@token_required()
def invite(tenant_id: str) -> tuple[dict[str, object], int]:
    data = read_json(InvitationInput)
    invitation = get_extension().service.invitations.invite(
        authenticate_request(),
        tenant_id,
        email=data.email,
        role=TenantRole(data.role),
        ip=client_info().ip,
    )
    return {"invitation": invitation_to_json(invitation)}, 201


@blueprint.get("/api/tenants/<tenant_id>/invitations")
@token_required()
def list_invitations(tenant_id: str) -> dict[str, object]:
    invitations = get_extension().service.invitations.list_invitations(
        authenticate_request(), tenant_id
    )
    return {"invitations": [invitation_to_json(i) for i in invitations]}


@blueprint.delete("/api/tenants/<tenant_id>/invitations/<invitation_id>")
@token_required()
def revoke_invitation(tenant_id: str, invitation_id: str) -> Response:
    get_extension().service.invitations.revoke_invitation(
        authenticate_request(), tenant_id, invitation_id
    )
    return Response(status=204)


@blueprint.post("/api/invitations/preview")
def preview_invitation() -> dict[str, object]:
    guard_browser()
    data = read_json(LinkTokenInput)
    invitation = get_extension().service.invitations.preview_invitation(data.token)
    return invitation_preview_to_json(invitation)


@blueprint.post("/api/invitations/accept")
@token_required(sessions_only=True)
def accept_invitation() -> dict[str, object]:
    data = read_json(LinkTokenInput)
    tenant, role = get_extension().service.invitations.accept_invitation(
        authenticate_request(), data.token
    )
    return {"tenant": tenant_to_json(tenant, role), "role": role.value}
