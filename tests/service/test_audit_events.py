"""An audit event and the change it records commit or roll back together (a fault injected
between them), a change that did not happen writes no event, a protected request still runs no
SQL, old events are purged in batches, and ``AUTHGATE_AUDIT_LOG`` logs committed events only
(SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from authgate.core.audit import AuditEvent, AuditQuery, new_event
from authgate.errors import InvalidCredentialsError, InvalidMfaCodeError, StoreUnavailableError
from authgate.service import AuthService, ClientInfo
from authgate.store.records import UserStatus
from tests.helpers import PASSWORD, PUBLIC_URL, StepClock, count_sql, new_user, session_of
from tests.service.test_store_failures import failing_statement

AUDIT_INSERT = "INSERT INTO authgate_audit_events"
NEW_PASSWORD = "another good passphrase"


def events(service: AuthService, type_: str | None = None, **query: object) -> list[AuditEvent]:
    return service.store.list_audit_events(AuditQuery(type=type_, limit=1000, **query))  # type: ignore[arg-type]


# An event without its change, or a change without its event, cannot happen ------------------


def test_a_login_whose_event_fails_opens_no_session(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    with failing_statement(service, AUDIT_INSERT) as failed, pytest.raises(StoreUnavailableError):
        service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    assert failed
    assert service.store.list_sessions(ada.id, now=service.clock.now()) == []
    assert events(service, "login.succeeded") == []
    # Without the fault: the session and its event, together.
    issued = service.sessions.login("ada@example.com", PASSWORD, ClientInfo(ip="192.0.2.7"))
    [event] = events(service, "login.succeeded")
    assert event.details["session_id"] == issued.session.id and event.ip == "192.0.2.7"


def test_a_password_change_whose_event_fails_changes_nothing(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    me = session_of(service, ada)
    other = service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    with failing_statement(service, AUDIT_INSERT), pytest.raises(StoreUnavailableError):
        service.accounts.change_password(me, PASSWORD, NEW_PASSWORD)
    # The old password still works, the other session still lives, and no event says otherwise.
    service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    assert service.store.get_session(other.session.id).revoked_at is None  # type: ignore[union-attr]
    assert events(service, "password.changed") == []


def test_a_revocation_whose_event_fails_revokes_nothing(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    me = session_of(service, ada)
    other = service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    with (
        failing_statement(service, AUDIT_INSERT),
        pytest.raises(StoreUnavailableError),
    ):  # (fails once)
        service.sessions.revoke_session(me, other.session.id)
    with failing_statement(service, AUDIT_INSERT), pytest.raises(StoreUnavailableError):
        service.sessions.logout_all(me)
    assert service.store.get_session(other.session.id).revoked_at is None  # type: ignore[union-attr]
    assert service.store.read_revocations(0) == []  # nor was anything announced
    assert events(service, "session.revoked") == events(service, "sessions.revoked_all") == []


def test_a_tenant_whose_event_fails_is_not_created(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    me = session_of(service, ada)
    with failing_statement(service, AUDIT_INSERT), pytest.raises(StoreUnavailableError):
        service.tenants.create_tenant(me, "Team")
    assert [t.name for t, _ in service.store.list_user_tenants(ada.id)] == ["Personal"]


def test_an_event_whose_change_fails_after_it_is_not_kept(service: AuthService) -> None:
    """The other way round: the event is written first and the change's own statement fails."""
    ada = new_user(service, "ada@example.com")
    me = session_of(service, ada)
    with (
        failing_statement(service, "INSERT INTO authgate_api_tokens") as failed,
        pytest.raises(StoreUnavailableError),
    ):
        service.api_tokens.create_api_token(me, name="ci", scopes=["read"])
    assert failed
    assert events(service, "api_token.created") == []
    assert service.store.list_api_tokens(ada.id) == []
    # Disabling: the roles' and the status' events are written, then the revocation log fails.
    bob = new_user(service, "bob@example.com")
    with (
        failing_statement(service, "INSERT INTO authgate_revocations"),
        pytest.raises(StoreUnavailableError),
    ):
        service.accounts.set_user_access(
            bob.id, roles=["user", "editor"], status=UserStatus.DISABLED
        )
    assert events(service, "user.roles_changed") == events(service, "user.disabled") == []
    still = service.store.get_user(bob.id)
    assert still is not None and still.is_active and still.roles == ("user",)


def test_what_did_not_happen_writes_no_event(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    me = session_of(service, ada)
    now = service.clock.now()
    event = new_event("login.succeeded", time=now, context=service.audit.context())
    # A login the store refuses (all sessions revoked since the user was read): nothing.
    refused = service.store.create_session(
        user_id=ada.id,
        session_epoch=ada.session_epoch + 99,
        refresh_token_hash="0" * 64,
        expires_at=now + timedelta(days=1),
        user_agent=None,
        ip=None,
        now=now,
        audit=event,
    )
    assert refused is None
    # A revocation that finds nothing to revoke; a disabled account disabled again.
    assert not service.store.revoke_session("nope", user_id=ada.id, now=now, audit=event)
    service.accounts.set_user_access(ada.id, roles=None, status=UserStatus.ACTIVE)
    service.accounts.set_user_access(ada.id, roles=["user"], status=None)
    assert [e.type for e in events(service)] == ["login.succeeded", "user.created"]
    del me


def test_a_login_refused_for_revoked_sessions_is_a_failure_event(
    service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = new_user(service, "ada@example.com")
    real = service.store.find_user_by_login

    def stale(login: str):  # type: ignore[no-untyped-def]
        user = real(login)
        service.store.revoke_user_sessions(ada.id, now=service.clock.now())  # meanwhile
        return user

    monkeypatch.setattr(service.store, "find_user_by_login", stale)
    with pytest.raises(InvalidCredentialsError):
        service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    assert events(service, "login.succeeded") == []
    [failed] = events(service, "login.failed")
    assert failed.details["reason"] == "sessions_revoked" and failed.user_id == ada.id


def test_a_protected_request_still_runs_no_sql(service: AuthService) -> None:
    ada = new_user(service, "ada@example.com")
    issued = service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    service.authenticate(issued.access_token, "bearer")  # warms the process's cache
    with count_sql(service) as statements:
        for _ in range(3):
            service.authenticate(issued.access_token, "bearer")
    assert statements == []
    del ada


def test_the_login_s_event_rides_on_its_transaction(service: AuthService) -> None:
    """One more INSERT in the login's one transaction, nothing else (issue 17 counts these);
    on PostgreSQL one more ``WITH`` clause of the login's one statement."""
    new_user(service, "ada@example.com")
    with count_sql(service) as statements:
        service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    if service.settings.resolved_database_url.startswith("postgresql"):
        assert statements[-1].startswith("WITH"), statements
        assert statements[-1].count(AUDIT_INSERT) == 1, statements[-1]
        assert not any(AUDIT_INSERT in s for s in statements[:-1])
        return
    audit_inserts = [s for s in statements if s.startswith(AUDIT_INSERT)]
    assert len(audit_inserts) == 1
    assert statements[-1].startswith(AUDIT_INSERT)  # after the session's and refresh token's


def test_details_never_carry_a_secret() -> None:
    from datetime import UTC, datetime

    for key in ("password", "token", "refresh_token", "secret", "password_hash", "Token"):
        with pytest.raises(ValueError, match="may not carry"):
            AuditEvent(type="x.y", time=datetime.now(UTC), details={key: "s3cret"})


# Retention -------------------------------------------------------------------------------------


def test_old_events_are_purged_in_batches(service: AuthService, clock: StepClock) -> None:
    for i in range(25):
        new_user(service, f"u{i}@example.com")
    clock.advance(400 * 86400)  # past the default 365 days
    new_user(service, "fresh@example.com")
    assert (
        service.store.purge_audit_events(
            older_than=clock.now() - timedelta(days=365), batch=10, max_batches=2
        )
        == 20
    )  # two short transactions, then it stops (the server's periodic purge)
    assert len(events(service, "user.created")) == 6
    assert service.audit.purge() == 5
    [left] = events(service)
    assert left.type == "user.created"


def test_ids_never_come_back_after_a_purge_emptied_the_table(
    service: AuthService, clock: StepClock
) -> None:
    new_user(service, "ada@example.com")
    [first] = events(service)
    clock.advance(400 * 86400)
    assert service.audit.purge() == 1
    assert events(service) == []
    new_user(service, "bob@example.com")
    [second] = events(service)
    assert second.id > first.id  # a cursor or a follower at ``first`` still sees it


def test_retention_zero_keeps_events_forever(
    service: AuthService, clock: StepClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_user(service, "ada@example.com")
    clock.advance(4000 * 86400)
    monkeypatch.setattr(
        service.audit, "settings", service.settings.model_copy(update={"audit_retention_days": 0})
    )
    assert service.audit.purge() == 0
    assert len(events(service)) == 1


def test_the_revocation_poller_purges_with_its_other_pruning(service: AuthService) -> None:
    assert service.audit.purge_some in service.feed.housekeeping


# The log line (AUTHGATE_AUDIT_LOG) -------------------------------------------------------------


def test_committed_events_are_logged_as_json_lines(
    service: AuthService, caplog: pytest.LogCaptureFixture
) -> None:
    from authgate.bootstrap import log_audit_event

    service.store.audit_listener = log_audit_event  # type: ignore[attr-defined]
    caplog.set_level(logging.INFO, logger="authgate.audit")
    ada = new_user(service, "ada@example.com")
    with failing_statement(service, AUDIT_INSERT), pytest.raises(StoreUnavailableError):
        service.sessions.login("ada@example.com", PASSWORD, ClientInfo())
    service.sessions.login("ada@example.com", PASSWORD, ClientInfo(ip="192.0.2.1"))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authgate.audit"]
    assert [line["type"] for line in lines] == ["user.created", "login.succeeded"]
    assert lines[1]["user_id"] == ada.id and lines[1]["ip"] == "192.0.2.1"
    assert isinstance(lines[1]["id"], int) and lines[1]["id"] > lines[0]["id"]
    assert PASSWORD not in caplog.text


def test_an_unknown_name_that_may_be_a_password_is_not_kept(service: AuthService) -> None:
    new_user(service, "ada@example.com")
    for login in ("correct horse battery", "P@ssw0rd!", "nobody@example.com", "ada@example.com"):
        with pytest.raises(InvalidCredentialsError):
            service.sessions.login(login, "wrong password", ClientInfo())
    failed = {e.details["reason"]: e for e in events(service, "login.failed")}
    logins = sorted(e.details.get("login", "-") for e in events(service, "login.failed"))
    assert logins == ["-", "-", "ada@example.com", "nobody@example.com"]
    assert "correct horse" not in str(events(service))
    assert "P@ssw0rd" not in str(events(service))
    assert set(failed) == {"unknown_user", "wrong_password"}


def test_audit_log_setting_turns_the_log_line_on(tmp_path: Path, database_url: str) -> None:
    from authgate.bootstrap import build_service, log_audit_event
    from tests.helpers import make_settings

    off = build_service(make_settings(tmp_path / "off", database_url))
    on = build_service(make_settings(tmp_path / "on", database_url, audit_log=True))
    try:
        assert off.store.audit_listener is None  # type: ignore[attr-defined]
        assert on.store.audit_listener is log_audit_event  # type: ignore[attr-defined]
    finally:
        off.close()
        on.close()


# Second factors (issue 15) ---------------------------------------------------------------------


def test_second_factor_actions_are_recorded(service: AuthService) -> None:
    from tests.helpers import make_admin
    from tests.service.test_second_factors import (
        CLIENT,
        advance,
        code,
        enroll,
        mfa_challenge,
        principal_of,
    )

    admin = new_user(service, "root@example.com")
    make_admin(service, admin.id)
    ada = new_user(service, "ada@example.com")
    secret, recovery = enroll(service, ada)
    [enabled] = events(service, "mfa.totp_enabled")
    assert enabled.user_id == ada.id and enabled.actor_id == ada.id

    token = mfa_challenge(service, ada)
    wrong = "000000" if code(service, secret) != "000000" else "111111"
    with pytest.raises(InvalidMfaCodeError):
        service.second_factors.verify(token, browser_binding=None, client=CLIENT, code=wrong)
    issued = service.second_factors.verify(
        token, browser_binding=None, client=CLIENT, code=code(service, secret)
    )
    [failed] = events(service, "mfa.failed")
    assert failed.outcome == "failure" and failed.user_id == ada.id and failed.ip == "192.0.2.7"
    [verified] = events(service, "mfa.verified")
    assert verified.details == {"purpose": "login", "method": "otp"}
    [login] = [e for e in events(service, "login.succeeded") if e.user_id == ada.id][:1]
    assert login.details["second_factor"] == "otp"

    fresh = principal_of(service, issued)
    service.second_factors.regenerate_recovery_codes(fresh)
    [regenerated] = events(service, "mfa.recovery_codes_regenerated")
    assert regenerated.details == {"codes": len(recovery)}
    advance(service, 601)
    stale = principal_of(service, service.sessions.refresh(issued.refresh_token))
    again = principal_of(
        service, service.second_factors.reauthenticate(stale, code=code(service, secret), ip=None)
    )
    [reauth] = events(service, "reauthenticated")
    assert reauth.details["method"] == "otp" and reauth.user_id == ada.id
    service.second_factors.disable_totp(again)
    [disabled] = events(service, "mfa.totp_disabled")
    assert disabled.actor_id == ada.id

    enroll(service, ada)
    root = session_of(service, admin)
    service.second_factors.admin_remove(root, ada.id)
    [reset] = events(service, "mfa.reset_by_admin")
    assert reset.actor_id == admin.id and reset.user_id == ada.id
    assert reset.details["sessions_revoked"] >= 1
    # None of the codes or the secret ever reached the trail.
    text = str(events(service))
    assert secret not in text and not any(c in text for c in recovery)


def test_passkey_actions_are_recorded(service: AuthService) -> None:
    from tests.service.test_passkeys import _enroll, _login
    from tests.webauthn_authenticator import SoftAuthenticator

    ada = session_of(service, new_user(service, "ada@example.com"))
    key = SoftAuthenticator(rp_id="localhost", origin=PUBLIC_URL)
    passkey = _enroll(service, ada, key)
    [registered] = events(service, "passkey.registered")
    assert registered.user_id == ada.user.id
    assert registered.details == {"passkey_id": passkey.id, "name": passkey.name}
    issued = _login(service, key)
    [login] = [e for e in events(service, "login.succeeded") if e.details["method"] == "passkey"]
    assert login.details["session_id"] == issued.session.id
    service.passkeys.delete(ada, passkey.id)
    [removed] = events(service, "passkey.removed")
    assert removed.details == {"passkey_id": passkey.id} and removed.actor_id == ada.user.id


def test_the_follower_returns_an_event_that_commits_after_a_later_id(
    tmp_path: Path, pg_schema_url: str
) -> None:
    """``audit tail``: on PostgreSQL ids are handed out at insert and seen at commit, so event
    N may become visible after N + 1; the follower still returns it, once. (SQLite runs one
    writer at a time: its ids always commit in order.)"""
    from authgate.bootstrap import build_service
    from authgate.core.audit import SYSTEM
    from authgate.store.sqlalchemy.audit import write_audit
    from tests.helpers import make_settings

    service = build_service(make_settings(tmp_path, pg_schema_url))
    try:
        service.store.record_audit(
            new_event("user.created", time=service.clock.now(), context=SYSTEM)
        )
        follower = service.audit.follow()

        def event(name: str) -> AuditEvent:
            return new_event(
                "user.created", time=service.clock.now(), context=SYSTEM, details={"name": name}
            )

        with service.store._writer.begin() as slow:  # type: ignore[attr-defined]
            write_audit(slow, event("slow"))  # id N, not committed yet
            service.store.record_audit(event("quick"))  # id N + 1, committed
            assert [e.details["name"] for e in follower.poll()] == ["quick"]
        assert [e.details["name"] for e in follower.poll()] == ["slow"]
        assert follower.poll() == []
    finally:
        service.close()
