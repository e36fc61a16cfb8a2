"""The audit trail through the HTTP API: every event type produced by its real action and found
through ``GET /api/audit`` (filtered by user, type and time, paged by a cursor that stays put
while events are inserted), and a user's own ``GET /api/auth/activity`` (SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from authgate.bootstrap import build_service
from authgate.core.audit import AuditQuery
from authgate.core.oauth import ExternalProfile
from authgate.core.user_imports import SourceRow
from authgate.service import AuthService
from tests.helpers import (
    PASSWORD,
    PROVIDERS,
    ScriptedProvider,
    StepClock,
    add_member,
    bearer,
    create_tenant,
    create_token,
    error_code,
    login,
    mailed_token,
    make_admin,
    make_app,
    make_settings,
    register,
)
from tests.integrations.flask.test_avatars_api import image_bytes, upload
from tests.integrations.flask.test_legacy_sessions import (  # noqa: F401 (fixtures)
    legacy_client,
    legacy_service,
    seed_token,
)
from tests.integrations.flask.test_oauth_views import start

NEW_PASSWORD = "a different passphrase 2"


def audit(client: FlaskClient, token: str, **params: Any) -> dict[str, Any]:
    response = client.get("/api/audit", query_string=params, headers=bearer(token))
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[return-value]


def all_events(client: FlaskClient, token: str, **params: Any) -> list[dict[str, Any]]:
    """Every page, newest first."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = audit(client, token, limit=200, **params, **({"cursor": cursor} if cursor else {}))
        events += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events


def only(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_]


def admin(client: FlaskClient, service: AuthService, email: str = "root@example.com") -> str:
    user = register(client, email)
    make_admin(service, user["id"])
    return login(client, email)


def test_the_events_of_an_account_s_life_are_recorded_and_found(
    client: FlaskClient, service: AuthService
) -> None:
    root = admin(client, service)
    ada = register(client, "ada@example.com")
    [created] = [
        e for e in only(all_events(client, root), "user.created") if e["user_id"] == ada["id"]
    ]
    assert created["outcome"] == "success"
    assert created["details"] == {"method": "password"}
    assert created["ip"] == "127.0.0.1" and created["request_id"]

    # login.succeeded / login.failed (a known user, an unknown one)
    token = login(client, "ada@example.com")
    assert (
        client.post(
            "/api/auth/login", json={"login": "ada@example.com", "password": "wrong password!"}
        ).status_code
        == 401
    )
    assert (
        client.post(
            "/api/auth/login", json={"login": "nobody@example.com", "password": "wrong password!"}
        ).status_code
        == 401
    )
    events = all_events(client, root)
    [succeeded] = [e for e in only(events, "login.succeeded") if e["user_id"] == ada["id"]]
    assert succeeded["actor"] == {"type": "user", "id": ada["id"]}
    assert succeeded["details"]["method"] == "password" and succeeded["details"]["session_id"]
    failed = only(events, "login.failed")
    assert {(e["user_id"], e["details"]["reason"], e["outcome"]) for e in failed} == {
        (ada["id"], "wrong_password", "failure"),
        (None, "unknown_user", "failure"),
    }
    assert all(e["actor"] == {"type": "user", "id": None} for e in failed)
    # Never a secret in an event: no password, no token.
    text = str(events)
    assert "wrong password!" not in text and PASSWORD not in text and token not in text

    # password.changed (the other sessions end with it)
    assert client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(token),
    ).status_code in (200, 204)
    [changed] = audit(client, root, type="password.changed")["events"]
    assert changed["user_id"] == ada["id"] and changed["actor"]["id"] == ada["id"]

    # session.revoked, sessions.revoked_all, logout
    other = login(client, "ada@example.com", NEW_PASSWORD)
    sessions = client.get("/api/auth/sessions", headers=bearer(token)).json["sessions"]
    other_id = next(s["id"] for s in sessions if not s["current"])
    assert client.delete(f"/api/auth/sessions/{other_id}", headers=bearer(token)).status_code == 204
    # Revoking it again changes nothing: no second event.
    assert client.delete(f"/api/auth/sessions/{other_id}", headers=bearer(token)).status_code == 404
    [revoked] = audit(client, root, type="session.revoked")["events"]
    assert revoked["details"]["session_id"] == other_id
    assert client.post("/api/auth/logout-all", headers=bearer(token)).status_code in (200, 204)
    [everywhere] = audit(client, root, type="sessions.revoked_all")["events"]
    assert everywhere["user_id"] == ada["id"] and everywhere["details"]["sessions"] >= 1
    del other
    token = login(client, "ada@example.com", NEW_PASSWORD)
    assert client.post("/api/auth/logout", headers=bearer(token)).status_code in (200, 204)
    [logout] = audit(client, root, type="logout")["events"]
    assert logout["user_id"] == ada["id"]

    # refresh.reuse_detected: a rotated refresh token presented again
    issued = client.post(
        "/api/auth/login", json={"login": "ada@example.com", "password": NEW_PASSWORD}
    ).json
    rotated = client.post("/api/auth/refresh", json={"refresh_token": issued["refresh_token"]})
    assert rotated.status_code == 200
    # Its successor used: no grace window for the first one (refresh.reuse_grace).
    successor = {"refresh_token": rotated.json["refresh_token"]}
    assert client.post("/api/auth/refresh", json=successor).status_code == 200
    replay = client.post("/api/auth/refresh", json={"refresh_token": issued["refresh_token"]})
    assert replay.status_code == 401
    [reuse] = audit(client, root, type="refresh.reuse_detected")["events"]
    assert reuse["user_id"] == ada["id"] and reuse["outcome"] == "failure"

    # avatar.changed
    token = login(client, "ada@example.com", NEW_PASSWORD)
    assert upload(client, image_bytes(), headers=bearer(token)).status_code == 200
    [avatar] = audit(client, root, type="avatar.changed")["events"]
    assert avatar["user_id"] == ada["id"] and avatar["details"] == {"removed": False}


def test_the_events_of_administration_are_recorded_and_found(
    client: FlaskClient, service: AuthService
) -> None:
    root = admin(client, service)
    root_id = service.store.find_user_by_login("root@example.com").id  # type: ignore[union-attr]
    bob = register(client, "bob@example.com")
    bob_token = login(client, "bob@example.com")

    # user.roles_changed / user.disabled / user.enabled: only what really changed
    patch = client.patch(
        f"/api/users/{bob['id']}", json={"roles": ["user", "admin"]}, headers=bearer(root)
    )
    assert patch.status_code == 200, patch.json
    client.patch(f"/api/users/{bob['id']}", json={"status": "disabled"}, headers=bearer(root))
    client.patch(f"/api/users/{bob['id']}", json={"status": "active"}, headers=bearer(root))
    client.patch(f"/api/users/{bob['id']}", json={"status": "active"}, headers=bearer(root))
    events = all_events(client, root, user_id=bob["id"])
    [roles] = only(events, "user.roles_changed")
    assert roles["actor"] == {"type": "user", "id": root_id}
    assert roles["details"] == {"before": ["user"], "after": ["user", "admin"]}
    assert len(only(events, "user.disabled")) == 1
    assert len(only(events, "user.enabled")) == 1  # the second "active" changed nothing
    client.patch(f"/api/users/{bob['id']}", json={"roles": ["user"]}, headers=bearer(root))

    # api_token.created / api_token.revoked
    bob_token = login(client, "bob@example.com")
    created = create_token(client, bob_token, name="ci")
    assert (
        client.delete(f"/api/tokens/{created['id']}", headers=bearer(bob_token)).status_code == 204
    )
    [made] = audit(client, root, type="api_token.created")["events"]
    assert made["details"]["token_id"] == created["id"] and made["details"]["name"] == "ci"
    assert created["token"] not in str(made)
    [gone] = audit(client, root, type="api_token.revoked")["events"]
    assert gone["user_id"] == bob["id"] and gone["tenant_id"] == made["tenant_id"]

    # tenant.created, member.added / role_changed / removed, tenant.deleted
    carol = register(client, "carol@example.com")
    tenant = create_tenant(client, bob_token, "Team")
    add_member(client, bob_token, tenant["id"], "carol@example.com", "member")
    assert (
        client.patch(
            f"/api/tenants/{tenant['id']}/members/{carol['id']}",
            json={"role": "admin"},
            headers=bearer(bob_token),
        ).status_code
        == 200
    )
    assert (
        client.delete(
            f"/api/tenants/{tenant['id']}/members/{carol['id']}", headers=bearer(bob_token)
        ).status_code
        == 204
    )
    assert (
        client.delete(f"/api/tenants/{tenant['id']}", headers=bearer(bob_token)).status_code == 204
    )
    trail = all_events(client, root)
    of_tenant = [e for e in trail if e["tenant_id"] == tenant["id"]]
    assert [e["type"] for e in reversed(of_tenant)] == [
        "tenant.created",
        "member.added",
        "member.role_changed",
        "member.removed",
        "tenant.deleted",
    ]
    role_change = only(of_tenant, "member.role_changed")[0]
    assert role_change["user_id"] == carol["id"]
    assert role_change["details"] == {"role": "admin", "before": "member"}

    # user.deleted
    assert client.delete(f"/api/users/{carol['id']}", headers=bearer(root)).status_code == 204
    [deleted] = audit(client, root, type="user.deleted")["events"]
    assert deleted["user_id"] == carol["id"] and deleted["actor"]["id"] == root_id


def test_the_mailed_flows_are_recorded(client: FlaskClient, service: AuthService) -> None:
    root = admin(client, service)
    ada = register(client, "ada@example.com")

    # email.verified
    token = mailed_token(service, "verify_email", "ada@example.com")
    assert client.post("/api/auth/email/verify", json={"token": token}).status_code in (200, 204)
    assert client.post("/api/auth/email/verify", json={"token": token}).status_code != 200
    [verified] = audit(client, root, type="email.verified")["events"]
    assert verified["user_id"] == ada["id"]

    # password.reset_requested (only for an account that exists) / password.reset
    assert (
        client.post("/api/auth/password/forgot", json={"email": "ada@example.com"}).status_code
        == 202
    )
    assert (
        client.post("/api/auth/password/forgot", json={"email": "ghost@example.com"}).status_code
        == 202
    )
    reset = mailed_token(service, "password_reset", "ada@example.com")
    [requested] = audit(client, root, type="password.reset_requested")["events"]
    assert requested["user_id"] == ada["id"]
    assert requested["ip"] == "127.0.0.1" and requested["request_id"]  # the request's, kept
    assert "ghost" not in str(all_events(client, root))
    reset_answer = client.post(
        "/api/auth/password/reset", json={"token": reset, "password": NEW_PASSWORD}
    )
    assert reset_answer.status_code in (200, 204)
    [done] = audit(client, root, type="password.reset")["events"]
    assert done["user_id"] == ada["id"]

    # email.change_requested / email.changed
    session = login(client, "ada@example.com", NEW_PASSWORD)
    asked = client.post(
        "/api/auth/email/change",
        json={"email": "ada@new.example.com", "password": NEW_PASSWORD},
        headers=bearer(session),
    )
    assert asked.status_code == 202, asked.json
    change = mailed_token(service, "email_change", "ada@new.example.com")
    confirmed = client.post("/api/auth/email/change/confirm", json={"token": change})
    assert confirmed.status_code in (200, 204)
    [requested_change] = audit(client, root, type="email.change_requested")["events"]
    assert requested_change["details"] == {"to": "ada@new.example.com"}
    [moved] = audit(client, root, type="email.changed")["events"]
    assert moved["details"] == {"from": "ada@example.com", "to": "ada@new.example.com"}

    # invitation.created / invitation.accepted
    tenant = create_tenant(client, session, "Team")
    invited = client.post(
        f"/api/tenants/{tenant['id']}/invitations",
        json={"email": "dan@example.com", "role": "member"},
        headers=bearer(session),
    )
    assert invited.status_code == 201, invited.json
    invitation = mailed_token(service, "invitation", "dan@example.com")
    dan = register(client, "dan@example.com")
    dan_session = login(client, "dan@example.com")
    accepted = client.post(
        "/api/invitations/accept", json={"token": invitation}, headers=bearer(dan_session)
    )
    assert accepted.status_code == 200, accepted.json
    [made] = audit(client, root, type="invitation.created")["events"]
    assert made["tenant_id"] == tenant["id"] and made["actor"]["id"] == ada["id"]
    [joined] = audit(client, root, type="invitation.accepted")["events"]
    assert joined["user_id"] == dan["id"] and joined["tenant_id"] == tenant["id"]
    assert joined["details"]["role"] == "member"


def test_a_throttled_login_is_recorded(client: FlaskClient, service: AuthService) -> None:
    root = admin(client, service)
    erin = register(client, "erin@example.com")
    answers = [
        client.post(
            "/api/auth/login", json={"login": "erin@example.com", "password": "not it at all"}
        ).status_code
        for _ in range(12)
    ]
    assert 429 in answers
    throttled = audit(client, root, type="login.throttled")["events"]
    assert throttled and all(e["user_id"] == erin["id"] for e in throttled)
    assert throttled[0]["outcome"] == "failure"
    assert throttled[0]["details"]["reason"] == "throttled"


def test_an_import_is_recorded_as_one_summary_per_batch(
    client: FlaskClient, service: AuthService
) -> None:
    root = admin(client, service)
    service.user_imports.import_users(
        [SourceRow(f"line {i}", {"email": f"u{i}@example.com"}) for i in range(3)]
    )
    [summary] = audit(client, root, type="user.imported")["events"]
    assert summary["details"] == {"users": 3, "created": 3}
    assert summary["actor"] == {"type": "system", "id": None}


# Filters and paging ----------------------------------------------------------------------------


def test_filters_by_user_type_and_time_range(
    client: FlaskClient, service: AuthService, clock: StepClock
) -> None:
    root = admin(client, service)
    ada = register(client, "ada@example.com")
    start = clock.now()
    clock.advance(3600)
    login(client, "ada@example.com")
    middle = clock.now()
    clock.advance(3600)
    login(client, "ada@example.com")
    root = login(client, "root@example.com")  # the first one has expired

    mine = all_events(client, root, user_id=ada["id"])
    assert {e["user_id"] for e in mine} == {ada["id"]}
    assert [e["type"] for e in mine] == ["login.succeeded", "login.succeeded", "user.created"]
    logins = all_events(client, root, type="login.succeeded", user_id=ada["id"])
    assert len(logins) == 2
    iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    early = all_events(client, root, user_id=ada["id"], until=iso(middle))
    assert [e["type"] for e in early] == ["login.succeeded", "user.created"]
    late = all_events(client, root, user_id=ada["id"], since=iso(middle))
    assert [e["type"] for e in late] == ["login.succeeded"]
    window = all_events(client, root, since=iso(start + timedelta(minutes=30)), until=iso(middle))
    assert [e["type"] for e in window] == ["login.succeeded"]
    # A time without a zone is UTC.
    naive = all_events(
        client, root, user_id=ada["id"], since=middle.replace(tzinfo=None).isoformat()
    )
    assert len(naive) == 1


def test_pages_are_stable_while_events_are_inserted(
    client: FlaskClient, service: AuthService
) -> None:
    root = admin(client, service)
    for _ in range(7):
        login(client, "root@example.com")
    first = audit(client, root, type="login.succeeded", limit=3)
    assert len(first["events"]) == 3 and first["next_cursor"]
    ids = [e["id"] for e in first["events"]]
    assert ids == sorted(ids, reverse=True)
    # New events arrive between two pages: the next page goes on where the first stopped.
    for _ in range(4):
        login(client, "root@example.com")
    second = audit(client, root, type="login.succeeded", limit=3, cursor=first["next_cursor"])
    assert len(second["events"]) == 3
    assert all(e["id"] < ids[-1] for e in second["events"])
    third = audit(client, root, type="login.succeeded", limit=3, cursor=second["next_cursor"])
    seen = ids + [e["id"] for e in second["events"]] + [e["id"] for e in third["events"]]
    assert len(seen) == len(set(seen)) == 8  # the 8 logins before the first page, each once
    assert third["next_cursor"] is None
    # The same cursor gives the same page, however many events came since.
    again = audit(client, root, type="login.succeeded", limit=3, cursor=first["next_cursor"])
    assert again["events"] == second["events"]


def test_bad_queries_are_clear_4xx(client: FlaskClient, service: AuthService) -> None:
    root = admin(client, service)
    for params in (
        {"cursor": "not-a-cursor"},
        {"cursor": "-1"},
        {"cursor": "0"},
        {"since": "yesterday"},
        {"since": "9999-12-31T23:59:59-14:00"},  # no UTC equivalent: not a database error
        {"until": "0001-01-01T00:00:00+14:00"},
        {"limit": "0"},
        {"limit": "201"},
        {"type": "login failed"},
        {"unknown": "1"},
    ):
        response = client.get("/api/audit", query_string=params, headers=bearer(root))
        assert response.status_code in (400, 422), (params, response.status_code)
        assert error_code(response)


def test_the_audit_trail_is_for_admins_with_a_login_session(
    client: FlaskClient, service: AuthService
) -> None:
    register(client, "ada@example.com")
    ada = login(client, "ada@example.com")
    assert client.application.test_client().get("/api/audit").status_code == 401
    assert client.get("/api/audit", headers=bearer(ada)).status_code == 403
    root = admin(client, service)
    api_token = create_token(client, root, name="script")["token"]
    assert client.get("/api/audit", headers=bearer(api_token)).status_code == 403
    assert client.get("/api/audit", headers=bearer(root)).status_code == 200


def test_activity_shows_a_user_only_their_own_security_events(
    client: FlaskClient, service: AuthService
) -> None:
    register(client, "ada@example.com")
    register(client, "bob@example.com")
    client.post("/api/auth/login", json={"login": "ada@example.com", "password": "wrong!"})
    ada = login(client, "ada@example.com")
    bob = login(client, "bob@example.com")
    create_tenant(client, ada, "Team")  # administration: not in the activity
    page = client.get("/api/auth/activity", headers=bearer(ada)).json
    assert [e["type"] for e in page["events"]] == [
        "login.succeeded",
        "login.failed",
        "user.created",
    ]
    assert page["next_cursor"] is None
    ada_id = page["events"][0]["user_id"]
    assert all(e["user_id"] == ada_id for e in page["events"])
    assert page["events"][0]["ip"] == "127.0.0.1"
    bob_page = client.get("/api/auth/activity", headers=bearer(bob)).json
    assert [e["type"] for e in bob_page["events"]] == ["login.succeeded", "user.created"]
    paged = client.get("/api/auth/activity", query_string={"limit": 1}, headers=bearer(ada)).json
    assert len(paged["events"]) == 1 and paged["next_cursor"]
    assert client.application.test_client().get("/api/auth/activity").status_code == 401


# Provider logins and the previous app's sessions -------------------------------------------------


@pytest.fixture
def oauth_service(tmp_path: Path, database_url: str, clock: StepClock) -> Iterator[AuthService]:
    settings = make_settings(tmp_path, database_url, oauth_providers=PROVIDERS)
    service = build_service(settings, clock=clock)
    service.oauth_logins.clients = {"corp": ScriptedProvider("corp")}  # type: ignore[assignment]
    yield service
    service.close()


def test_provider_logins_links_and_failures_are_recorded(oauth_service: AuthService) -> None:
    service = oauth_service
    client = make_app(service).test_client()
    root = admin(client, service)
    corp = service.oauth_logins.clients["corp"]
    assert isinstance(corp, ScriptedProvider)

    # A first login with the provider creates the user and logs them in.
    state = start(client, "corp")
    assert client.get("/api/oauth/corp/callback", query_string={"state": state, "code": "c1"})
    [created] = [
        e for e in only(all_events(client, root), "user.created") if e["details"].get("provider")
    ]
    assert created["details"] == {"method": "oauth", "provider": "corp"}
    logins = [
        e
        for e in only(all_events(client, root), "login.succeeded")
        if e["user_id"] == created["user_id"]
    ]
    assert logins[0]["details"]["method"] == "oauth" and logins[0]["details"]["provider"] == "corp"

    # A callback with a state nobody started.
    client.get("/api/oauth/corp/callback", query_string={"state": "forged", "code": "c2"})
    [failed] = audit(client, root, type="oauth.login_failed")["events"]
    assert failed["details"] == {"provider": "corp", "reason": "oauth_state_mismatch"}
    assert failed["outcome"] == "failure" and failed["user_id"] is None

    # A password user links an identity, then unlinks it.
    register(client, "bob@example.com")
    bob = login(client, "bob@example.com")
    corp.profile = ExternalProfile("sub-2", "bob@corp.example", True, "Bob", None)
    linking = client.post("/api/oauth/corp/link", headers=bearer(bob))
    assert linking.status_code == 200, linking.json
    state = parse_qs(urlsplit(linking.json["authorization_url"]).query)["state"][0]
    client.get("/api/oauth/corp/callback", query_string={"state": state, "code": "c3"})
    [linked] = audit(client, root, type="oauth.linked")["events"]
    bob_id = linked["user_id"]
    assert linked["actor"]["id"] == bob_id and linked["details"] == {"provider": "corp"}
    identity = client.get("/api/auth/identities", headers=bearer(bob)).json["identities"][0]
    gone = client.delete(f"/api/auth/identities/{identity['id']}", headers=bearer(bob))
    assert gone.status_code == 204
    [unlinked] = audit(client, root, type="oauth.unlinked")["events"]
    assert unlinked["user_id"] == bob_id
    assert unlinked["details"] == {"identity_id": identity["id"], "provider": "corp"}


def test_a_legacy_session_exchange_is_recorded(
    legacy_service: AuthService,  # noqa: F811 (the imported fixtures)
    legacy_client: FlaskClient,  # noqa: F811
) -> None:
    legacy_client.set_cookie("jwt", seed_token("toby"))
    assert legacy_client.get("/api/notes").status_code == 200
    [exchanged] = legacy_service.store.list_audit_events(
        AuditQuery(type="legacy_session.exchanged")
    )
    toby = legacy_service.store.find_user_by_login("toby")
    assert toby is not None and exchanged.user_id == toby.id
    assert exchanged.details["method"] == "legacy_session" and exchanged.details["session_id"]
    assert exchanged.ip == "127.0.0.1"
    assert seed_token("toby") not in str(exchanged)
