"""Tenant invitations through the JSON API: who invites with which role, who accepts, once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from authgate.bootstrap import build_service
from authgate.service import AuthService
from tests.helpers import (
    BROWSER,
    PASSWORD,
    PUBLIC_URL,
    StepClock,
    add_member,
    bearer,
    create_tenant,
    error_code,
    login,
    mailed_token,
    make_app,
    make_settings,
    queued_mails,
    register,
    signed_in,
)


def invite(
    client: FlaskClient,
    access: str,
    tenant_id: str,
    email: str,
    role: str = "member",
    *,
    ip: str = "127.0.0.1",
) -> Any:
    return client.post(
        f"/api/tenants/{tenant_id}/invitations",
        json={"email": email, "role": role},
        headers=bearer(access),
        environ_base={"REMOTE_ADDR": ip},
    )


def accept(client: FlaskClient, access: str, token: str) -> Any:
    return client.post("/api/invitations/accept", json={"token": token}, headers=bearer(access))


def test_an_invited_address_registers_through_the_link_and_joins(
    client: FlaskClient, service: AuthService
) -> None:
    """Decided: the invitation link proves the address, so a user who registers with it and
    accepts right away joins, and their address counts as verified from then on."""
    _, owner = signed_in(client, "owner@example.com")
    tenant = create_tenant(client, owner, "Team")
    response = invite(client, owner, tenant["id"], "bob@example.com", "admin")
    assert response.status_code == 201, response.json
    invitation = response.json["invitation"]
    assert (invitation["email"], invitation["role"]) == ("bob@example.com", "admin")
    (mail,) = queued_mails(service, "invitation")
    assert mail["to"] == "bob@example.com" and "Team" in mail["subject"] + mail["text"]
    assert f"{PUBLIC_URL}/invitation#token=" in mail["text"]
    token = mailed_token(service, "invitation", "bob@example.com")

    preview = client.post("/api/invitations/preview", json={"token": token}, headers=BROWSER)
    assert preview.status_code == 200
    assert preview.json["tenant_name"] == "Team" and preview.json["role"] == "admin"
    assert preview.json["email"] == "bob@example.com"

    bob = register(client, "bob@example.com")
    assert bob["email_verified"] is False
    bob_access = login(client, "bob@example.com")
    joined = accept(client, bob_access, token)
    assert joined.status_code == 200, joined.json
    assert joined.json["tenant"]["id"] == tenant["id"] and joined.json["role"] == "admin"
    members = client.get(f"/api/tenants/{tenant['id']}/members", headers=bearer(owner)).json
    assert {m["email"]: m["role"] for m in members["members"]}["bob@example.com"] == "admin"
    assert client.get("/api/auth/me", headers=bearer(bob_access)).json["user"]["email_verified"]

    again = accept(client, bob_access, token)
    assert again.status_code == 400 and error_code(again) == "invalid_or_expired_token"
    assert client.get(f"/api/tenants/{tenant['id']}/invitations", headers=bearer(owner)).json == {
        "invitations": []
    }


# Registering through the link where verification is required ----------------------------------


@pytest.fixture
def strict(tmp_path: Path, database_url: str) -> Iterator[tuple[FlaskClient, AuthService]]:
    """A deployment with AUTHGATE_EMAIL_VERIFICATION=required."""
    settings = make_settings(tmp_path, database_url, email_verification="required")
    service = build_service(settings, clock=StepClock())
    yield make_app(service).test_client(), service
    service.close()


@pytest.fixture
def invited(strict: tuple[FlaskClient, AuthService]) -> tuple[FlaskClient, AuthService, str, str]:
    """bob@example.com invited to a team tenant: ``(client, service, tenant id, token)``."""
    client, service = strict
    register(client, "owner@example.com")
    verification = mailed_token(service, "verify_email", "owner@example.com")
    assert client.post("/api/auth/email/verify", json={"token": verification}).status_code == 200
    owner = login(client, "owner@example.com")
    tenant = create_tenant(client, owner, "Team")
    assert invite(client, owner, tenant["id"], "bob@example.com").status_code == 201
    return client, service, tenant["id"], mailed_token(service, "invitation", "bob@example.com")


def _verification_mails_to(service: AuthService, address: str) -> int:
    return sum(
        m["to"].casefold() == address.casefold() for m in queued_mails(service, "verify_email")
    )


def _open_invitations(service: AuthService, tenant_id: str) -> list[str]:
    return [i.email for i in service.store.list_invitations(tenant_id, now=service.clock.now())]


def test_registering_with_the_invitations_token_verifies_the_invited_address(
    invited: tuple[FlaskClient, AuthService, str, str],
) -> None:
    """Required verification: the invitee registers through the link (the address compared
    ignoring case), logs in at once without a verification mail, then accepts."""
    client, service, tenant_id, token = invited
    bob = register(client, "Bob@Example.com", invitation_token=token)
    assert bob["email_verified"] is True
    assert _verification_mails_to(service, "Bob@Example.com") == 0
    assert _open_invitations(service, tenant_id) == ["bob@example.com"]  # not accepted yet

    access = login(client, "Bob@Example.com")
    joined = accept(client, access, token)
    assert joined.status_code == 200, joined.json
    assert joined.json["tenant"]["id"] == tenant_id and joined.json["role"] == "member"
    assert _open_invitations(service, tenant_id) == []


def test_the_token_of_an_invitation_to_another_address_verifies_nothing(
    invited: tuple[FlaskClient, AuthService, str, str],
) -> None:
    client, service, tenant_id, token = invited
    eve = register(client, "eve@example.com", invitation_token=token)
    assert eve["email_verified"] is False
    assert _verification_mails_to(service, "eve@example.com") == 1
    refused = client.post(
        "/api/auth/login", json={"login": "eve@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 403 and error_code(refused) == "email_not_verified"
    assert _open_invitations(service, tenant_id) == ["bob@example.com"]


def test_a_dead_invitation_token_registers_as_without_one(
    invited: tuple[FlaskClient, AuthService, str, str],
) -> None:
    """Unknown, empty, revoked: the same 201 and the same shape as a registration without a
    token, unverified, with its verification mail; nothing tells the token was refused."""
    client, service, tenant_id, token = invited
    (invitation_id,) = [
        i.id for i in service.store.list_invitations(tenant_id, now=service.clock.now())
    ]
    assert service.store.revoke_invitation(tenant_id, invitation_id, now=service.clock.now())
    plain = client.post(
        "/api/auth/register",
        json={"email": "carol@example.com", "password": PASSWORD},
        headers=BROWSER,
    )
    for n, dead in enumerate(["agl_nothing", "", token, None]):
        address = "bob@example.com" if dead == token else f"guest{n}@example.com"
        response = client.post(
            "/api/auth/register",
            json={"email": address, "password": PASSWORD, "invitation_token": dead},
            headers=BROWSER,
        )
        assert response.status_code == plain.status_code == 201, response.json
        assert response.json["user"].keys() == plain.json["user"].keys()
        assert response.json["user"]["email_verified"] is False
        assert _verification_mails_to(service, address) == 1
        refused = client.post("/api/auth/login", json={"login": address, "password": PASSWORD})
        assert error_code(refused) == "email_not_verified"


def test_only_the_invited_address_may_accept(client: FlaskClient, service: AuthService) -> None:
    _, owner = signed_in(client, "owner@example.com")
    tenant = create_tenant(client, owner)
    invite(client, owner, tenant["id"], "bob@example.com")
    token = mailed_token(service, "invitation", "bob@example.com")
    _, eve = signed_in(client, "eve@example.com")
    response = accept(client, eve, token)
    assert response.status_code == 403 and error_code(response) == "invitation_email_mismatch"
    assert accept(client, "", token).status_code == 401


def test_roles_cannot_exceed_the_inviters(client: FlaskClient, service: AuthService) -> None:
    _, owner = signed_in(client, "owner@example.com")
    tenant = create_tenant(client, owner)
    _, admin = signed_in(client, "admin@example.com")
    _, member = signed_in(client, "member@example.com")
    add_member(client, owner, tenant["id"], "admin@example.com", "admin")
    add_member(client, owner, tenant["id"], "member@example.com", "member")

    assert invite(client, owner, tenant["id"], "a@example.com", "owner").status_code == 201
    assert invite(client, admin, tenant["id"], "b@example.com", "admin").status_code == 201
    refused = invite(client, admin, tenant["id"], "c@example.com", "owner")
    assert refused.status_code == 403 and error_code(refused) == "insufficient_role"
    assert invite(client, member, tenant["id"], "d@example.com").status_code == 403
    _, outsider = signed_in(client, "out@example.com")
    assert invite(client, outsider, tenant["id"], "e@example.com").status_code == 404
    assert invite(client, owner, tenant["id"], "member@example.com").status_code == 409


def test_a_personal_tenant_has_no_invitations(client: FlaskClient) -> None:
    _, owner = signed_in(client, "owner@example.com")
    personal = client.get("/api/tenants", headers=bearer(owner)).json["tenants"][0]
    assert personal["personal"] is True
    assert invite(client, owner, personal["id"], "bob@example.com").status_code == 409


def test_a_revoked_invitation_opens_nothing(client: FlaskClient, service: AuthService) -> None:
    _, owner = signed_in(client, "owner@example.com")
    tenant = create_tenant(client, owner)
    created = invite(client, owner, tenant["id"], "bob@example.com").json["invitation"]
    token = mailed_token(service, "invitation", "bob@example.com")
    listed = client.get(f"/api/tenants/{tenant['id']}/invitations", headers=bearer(owner)).json
    assert [i["id"] for i in listed["invitations"]] == [created["id"]]

    path = f"/api/tenants/{tenant['id']}/invitations/{created['id']}"
    assert client.delete(path, headers=bearer(owner)).status_code == 204
    assert client.delete(path, headers=bearer(owner)).status_code == 404
    _, bob = signed_in(client, "bob@example.com")
    assert error_code(accept(client, bob, token)) == "invalid_or_expired_token"
    preview = client.post("/api/invitations/preview", json={"token": token})
    assert error_code(preview) == "invalid_or_expired_token"


def test_an_invitation_dies_when_its_inviter_may_no_longer_grant_it(
    client: FlaskClient, service: AuthService
) -> None:
    _, owner = signed_in(client, "owner@example.com")
    tenant = create_tenant(client, owner)
    admin_user, admin = signed_in(client, "admin@example.com")
    add_member(client, owner, tenant["id"], "admin@example.com", "admin")
    invite(client, admin, tenant["id"], "bob@example.com", "admin")
    token = mailed_token(service, "invitation", "bob@example.com")
    demoted = client.patch(
        f"/api/tenants/{tenant['id']}/members/{admin_user['id']}",
        json={"role": "member"},
        headers=bearer(owner),
    )
    assert demoted.status_code == 200
    _, bob = signed_in(client, "bob@example.com")
    assert error_code(accept(client, bob, token)) == "invalid_or_expired_token"


def test_an_invitation_expires_after_7_days(
    client: FlaskClient, service: AuthService, clock: StepClock
) -> None:
    _, owner = signed_in(client, "owner@example.com")
    tenant = create_tenant(client, owner)
    invite(client, owner, tenant["id"], "bob@example.com")
    token = mailed_token(service, "invitation", "bob@example.com")
    register(client, "bob@example.com")
    clock.advance(7 * 86400)
    bob = login(client, "bob@example.com")
    assert error_code(accept(client, bob, token)) == "invalid_or_expired_token"


# The mail throttle ---------------------------------------------------------------------------


@pytest.fixture
def throttled(tmp_path: Path, database_url: str) -> Iterator[tuple[FlaskClient, AuthService]]:
    """A deployment whose mail budgets are small: 2 mails per address, 3 per client."""
    settings = make_settings(
        tmp_path,
        database_url,
        mail_rate_limit_per_address="2 per 15 minutes",
        mail_rate_limit_per_ip="3 per 15 minutes",
    )
    service = build_service(settings, clock=StepClock())
    yield make_app(service).test_client(), service
    service.close()


def _assert_rate_limited(response: Any) -> None:
    assert response.status_code == 429 and error_code(response) == "rate_limited", response.json
    assert int(response.headers["Retry-After"]) >= 1


def test_an_address_gets_only_so_many_invitations_whoever_sends_them(
    throttled: tuple[FlaskClient, AuthService],
) -> None:
    client, service = throttled
    owners = [signed_in(client, f"owner{n}@example.com")[1] for n in range(3)]
    tenants = [create_tenant(client, owner)["id"] for owner in owners]
    for n in range(2):
        sent = invite(client, owners[n], tenants[n], "carol@example.com", ip=f"198.51.100.{n}")
        assert sent.status_code == 201, sent.json

    _assert_rate_limited(
        invite(client, owners[2], tenants[2], "CAROL@example.com", ip="198.51.100.9")
    )

    assert [m["to"] for m in queued_mails(service, "invitation")] == ["carol@example.com"] * 2
    other = invite(client, owners[2], tenants[2], "dave@example.com", ip="198.51.100.9")
    assert other.status_code == 201, other.json


def test_an_inviting_user_sends_only_so_many_invitations_from_any_address(
    throttled: tuple[FlaskClient, AuthService],
) -> None:
    client, _ = throttled
    _, owner = signed_in(client, "owner@example.com")
    tenant = create_tenant(client, owner)["id"]
    for n in range(3):
        sent = invite(client, owner, tenant, f"guest{n}@example.com", ip=f"198.51.100.{n}")
        assert sent.status_code == 201, sent.json

    _assert_rate_limited(invite(client, owner, tenant, "guest9@example.com", ip="198.51.100.9"))

    _, admin = signed_in(client, "admin@example.com")
    add_member(client, owner, tenant, "admin@example.com", "admin")
    other = invite(client, admin, tenant, "guest9@example.com", ip="198.51.100.9")
    assert other.status_code == 201, other.json  # another inviter, same client address


def test_invitations_and_email_changes_share_the_budget_of_the_address_they_mail(
    throttled: tuple[FlaskClient, AuthService],
) -> None:
    client, service = throttled
    _, owner = signed_in(client, "owner@example.com")
    tenant = create_tenant(client, owner)["id"]
    assert invite(client, owner, tenant, "new@example.com", ip="198.51.100.1").status_code == 201
    accesses = [signed_in(client, f"user{n}@example.com")[1] for n in range(2)]

    def change(access: str, ip: str) -> Any:
        return client.post(
            "/api/auth/email/change",
            json={"email": "new@example.com", "password": PASSWORD},
            headers=bearer(access),
            environ_base={"REMOTE_ADDR": ip},
        )

    assert change(accesses[0], "198.51.100.2").status_code == 202
    _assert_rate_limited(change(accesses[1], "198.51.100.3"))
    assert [m["to"] for m in queued_mails(service, "email_change")] == ["new@example.com"]
