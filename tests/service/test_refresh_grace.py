"""The refresh reuse grace window (``AUTHGATE_REFRESH_REUSE_GRACE_SECONDS``): a refresh token
presented again shortly after its rotation, its successor unused (the response was lost), is
rotated again and the session stays; anything else is still a reuse that revokes the session
(SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from authgate.bootstrap import build_service
from authgate.core.audit import AuditEvent, AuditQuery
from authgate.core.refresh_tokens import hash_refresh_token
from authgate.errors import AuthError, InvalidTokenError, TokenRevokedError
from authgate.service import AuthService, ClientInfo
from authgate.service.principals import IssuedTokens
from authgate.store.sqlalchemy.models import RefreshTokenRow
from tests.helpers import PASSWORD, StepClock, make_settings, new_user

GRACE = 10  # the default


def _login(service: AuthService) -> IssuedTokens:
    new_user(service, "ada@example.com")
    return service.sessions.login("ada@example.com", PASSWORD, ClientInfo())


def _live_tokens(service: AuthService, session_id: str) -> list[str]:
    """The hashes of the session's refresh tokens that may still be presented."""
    engine = service.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(RefreshTokenRow.token_hash).where(
                    RefreshTokenRow.session_id == session_id, RefreshTokenRow.used_at.is_(None)
                )
            )
        )


def _token_count(service: AuthService, session_id: str) -> int:
    engine = service.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        count = conn.scalar(select(func.count()).where(RefreshTokenRow.session_id == session_id))
    return int(count or 0)


def _session_live(service: AuthService, session_id: str) -> bool:
    session = service.store.get_session(session_id)
    return session is not None and session.is_valid_at(service.clock.now())


def _events(service: AuthService, type_: str) -> list[AuditEvent]:
    return service.store.list_audit_events(AuditQuery(type=type_, limit=100))


def test_a_retry_within_the_window_rotates_again_and_the_session_stays(
    service: AuthService, clock: StepClock
) -> None:
    issued = _login(service)
    sid = issued.session.id
    lost = service.sessions.refresh(issued.refresh_token)  # its response never arrived
    clock.advance(GRACE - 1)
    retried = service.sessions.refresh(issued.refresh_token)
    assert retried.session.id == sid
    assert retried.refresh_token not in (lost.refresh_token, issued.refresh_token)
    assert _session_live(service, sid)
    # One live token: the retry's; the lost successor was spent.
    assert _live_tokens(service, sid) == [hash_refresh_token(retried.refresh_token)]
    assert service.authenticate(retried.access_token, "bearer").session_id == sid
    [event] = _events(service, "refresh.reuse_grace")
    assert event.details == {"session_id": sid}
    assert event.user_id == issued.user.id
    assert _events(service, "refresh.reuse_detected") == []
    # The client goes on with the retry's token as usual.
    following = service.sessions.refresh(retried.refresh_token)
    assert _live_tokens(service, sid) == [hash_refresh_token(following.refresh_token)]


def test_the_successor_killed_by_a_grace_rotation_is_a_reuse(service: AuthService) -> None:
    issued = _login(service)
    sid = issued.session.id
    lost = service.sessions.refresh(issued.refresh_token)
    service.sessions.refresh(issued.refresh_token)
    with pytest.raises(TokenRevokedError):
        service.sessions.refresh(lost.refresh_token)
    assert not _session_live(service, sid)
    assert len(_events(service, "refresh.reuse_detected")) == 1


def test_a_retry_after_the_successor_was_used_revokes_the_session(service: AuthService) -> None:
    issued = _login(service)
    sid = issued.session.id
    successor = service.sessions.refresh(issued.refresh_token)
    service.sessions.refresh(successor.refresh_token)  # the successor was delivered and used
    with pytest.raises(TokenRevokedError):
        service.sessions.refresh(issued.refresh_token)
    assert not _session_live(service, sid)
    assert _events(service, "refresh.reuse_grace") == []


def test_a_grace_rotation_s_token_used_then_the_old_one_again_is_a_reuse(
    service: AuthService,
) -> None:
    issued = _login(service)
    sid = issued.session.id
    service.sessions.refresh(issued.refresh_token)
    retried = service.sessions.refresh(issued.refresh_token)
    service.sessions.refresh(retried.refresh_token)
    with pytest.raises(TokenRevokedError):
        service.sessions.refresh(issued.refresh_token)
    assert not _session_live(service, sid)


def test_a_retry_after_the_window_revokes_the_session(
    service: AuthService, clock: StepClock
) -> None:
    issued = _login(service)
    sid = issued.session.id
    service.sessions.refresh(issued.refresh_token)
    clock.advance(GRACE + 1)
    with pytest.raises(TokenRevokedError):
        service.sessions.refresh(issued.refresh_token)
    assert not _session_live(service, sid)


def test_the_grant_of_a_grace_window_does_not_restart_it(
    service: AuthService, clock: StepClock
) -> None:
    """Each retry is measured from the first rotation: retrying cannot stretch the window."""
    issued = _login(service)
    sid = issued.session.id
    service.sessions.refresh(issued.refresh_token)
    clock.advance(GRACE - 2)
    service.sessions.refresh(issued.refresh_token)
    clock.advance(3)
    with pytest.raises(TokenRevokedError):
        service.sessions.refresh(issued.refresh_token)
    assert not _session_live(service, sid)


def test_a_retry_after_logout_rotates_nothing(service: AuthService) -> None:
    issued = _login(service)
    sid = issued.session.id
    service.sessions.refresh(issued.refresh_token)
    service.sessions.logout(service.authenticate(issued.access_token, "bearer"))
    with pytest.raises((InvalidTokenError, TokenRevokedError)):
        service.sessions.refresh(issued.refresh_token)
    assert _token_count(service, sid) == 2  # the login's and its successor's: no new one
    assert _events(service, "refresh.reuse_grace") == []


def test_a_retry_after_all_sessions_were_revoked_rotates_nothing(service: AuthService) -> None:
    issued = _login(service)
    sid = issued.session.id
    service.sessions.refresh(issued.refresh_token)
    service.sessions.logout_all(service.authenticate(issued.access_token, "bearer"))
    with pytest.raises((InvalidTokenError, TokenRevokedError)):
        service.sessions.refresh(issued.refresh_token)
    assert not _session_live(service, sid)
    assert _token_count(service, sid) == 2
    assert _events(service, "refresh.reuse_grace") == []


def test_concurrent_retries_leave_one_live_token(service: AuthService) -> None:
    issued = _login(service)
    sid = issued.session.id
    service.sessions.refresh(issued.refresh_token)
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def retry() -> None:
        start.wait()
        try:
            outcomes.append(service.sessions.refresh(issued.refresh_token).refresh_token)
        except AuthError as e:
            outcomes.append(type(e).__name__)

    threads = [threading.Thread(target=retry) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(o.startswith("agr_") for o in outcomes), outcomes
    assert _session_live(service, sid)
    live = _live_tokens(service, sid)
    assert len(live) == 1
    assert live[0] in {hash_refresh_token(o) for o in outcomes}


def test_grace_zero_is_the_strict_rotation(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, refresh_reuse_grace_seconds=0)
    service = build_service(settings, clock=StepClock())
    try:
        issued = _login(service)
        service.sessions.refresh(issued.refresh_token)
        with pytest.raises(TokenRevokedError):
            service.sessions.refresh(issued.refresh_token)
        assert not _session_live(service, issued.session.id)
        engine = service.store.engine  # type: ignore[attr-defined]
        with engine.connect() as conn:
            superseded = conn.scalar(
                select(func.count()).where(RefreshTokenRow.superseded_at.is_not(None))
            )
        assert superseded == 0
    finally:
        service.close()
