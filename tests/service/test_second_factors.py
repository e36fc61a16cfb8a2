"""TOTP, recovery codes, the second step of a login and step-up, on SQLite and PostgreSQL.
Codes are computed with pyotp, as an authenticator app would."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select

from authgate.errors import (
    ConflictError,
    InvalidCredentialsError,
    InvalidMfaCodeError,
    InvalidMfaTokenError,
    MfaEnrollmentRequiredError,
    MfaRequiredError,
    RateLimitedError,
    ReauthenticationRequiredError,
    ValidationFailedError,
)
from authgate.service import AuthService, Principal
from authgate.service.principals import ClientInfo, IssuedTokens
from authgate.store.records import UserRecord
from authgate.store.sqlalchemy.models import TotpSecretRow
from tests.helpers import PASSWORD, StepClock, new_user, session_of

CLIENT = ClientInfo(user_agent="pytest", ip="192.0.2.7")


def code(service: AuthService, secret: str, *, later: float = 0) -> str:
    return pyotp.TOTP(secret).at(service.clock.timestamp() + later)


def enroll(service: AuthService, user: UserRecord) -> tuple[str, list[str]]:
    """TOTP on for ``user``; its secret and recovery codes. The clock then moves to the next
    step (the confirming code's step is used)."""
    principal = session_of(service, user)
    setup = service.second_factors.begin_totp(principal, PASSWORD, ip=None)
    codes = service.second_factors.confirm_totp(principal, code(service, setup.secret))
    advance(service, 30)
    return setup.secret, codes


def advance(service: AuthService, seconds: float) -> None:
    clock = service.clock
    assert isinstance(clock, StepClock)
    clock.advance(seconds)


def mfa_challenge(service: AuthService, user: UserRecord, binding: str | None = None) -> str:
    with pytest.raises(MfaRequiredError) as raised:
        service.sessions.login(user.email, PASSWORD, CLIENT, browser_binding=binding)
    return raised.value.token


def principal_of(service: AuthService, issued: IssuedTokens) -> Principal:
    return service.authenticate(issued.access_token, "bearer")


# Setting up ------------------------------------------------------------------------------------


def test_setup_is_pending_until_confirmed_and_the_secret_is_sealed(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    principal = session_of(service, user)
    setup = service.second_factors.begin_totp(principal, PASSWORD, ip=None)
    assert setup.otpauth_uri.startswith("otpauth://totp/")
    assert f"secret={setup.secret}" in setup.otpauth_uri
    assert setup.qr_svg.startswith("<svg")
    # Nothing is on yet: the password alone still logs in.
    service.sessions.login(user.email, PASSWORD, CLIENT)
    with service.store._reader() as db:  # type: ignore[attr-defined]
        sealed = db.scalar(select(TotpSecretRow.sealed_secret))
    assert setup.secret not in sealed
    box = service.second_factors.box
    assert box.open(sealed, context=f"totp:{user.id}").decode() == setup.secret
    from authgate.core.secret_boxes import SecretBoxError

    with pytest.raises(SecretBoxError):  # another user's row: the associated data differs
        box.open(sealed, context="totp:someone-else")
    codes = service.second_factors.confirm_totp(principal, code(service, setup.secret))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert service.second_factors.status(principal).totp


def test_setup_needs_the_password_and_a_right_code(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    principal = session_of(service, user)
    with pytest.raises(ValidationFailedError):
        service.second_factors.begin_totp(principal, "not the password", ip=None)
    setup = service.second_factors.begin_totp(principal, PASSWORD, ip=None)
    wrong = "000000" if code(service, setup.secret) != "000000" else "111111"
    with pytest.raises(InvalidMfaCodeError):
        service.second_factors.confirm_totp(principal, wrong)
    service.second_factors.confirm_totp(principal, code(service, setup.secret))
    with pytest.raises(ConflictError):  # one authenticator app at a time
        service.second_factors.begin_totp(principal, PASSWORD, ip=None)


# The second step of a login --------------------------------------------------------------------


def test_a_password_alone_opens_no_session(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    enroll(service, user)
    before = len(service.store.list_sessions(user.id, now=service.clock.now()))
    with pytest.raises(MfaRequiredError) as raised:
        service.sessions.login(user.email, PASSWORD, CLIENT)
    assert raised.value.methods == ["totp", "recovery_code"]
    assert len(service.store.list_sessions(user.id, now=service.clock.now())) == before
    with pytest.raises(InvalidCredentialsError):  # a wrong password says nothing of factors
        service.sessions.login(user.email, "wrong password", CLIENT)


def test_a_code_completes_the_login_with_its_amr(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    secret, _ = enroll(service, user)
    token = mfa_challenge(service, user)
    issued = service.second_factors.verify(
        token, browser_binding=None, client=CLIENT, code=code(service, secret)
    )
    claims = principal_of(service, issued).claims
    assert claims is not None
    assert claims.amr == ("pwd", "otp", "mfa")
    assert claims.auth_time is not None
    assert abs(claims.auth_time - service.clock.timestamp()) < 5


def test_a_totp_code_is_accepted_once(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    secret, _ = enroll(service, user)
    used = code(service, secret)
    service.second_factors.verify(
        mfa_challenge(service, user), browser_binding=None, client=CLIENT, code=used
    )
    token = mfa_challenge(service, user)
    with pytest.raises(InvalidMfaCodeError):  # the same code again, still inside its window
        service.second_factors.verify(token, browser_binding=None, client=CLIENT, code=used)
    advance(service, 30)
    service.second_factors.verify(
        token, browser_binding=None, client=CLIENT, code=code(service, secret)
    )


def test_the_code_of_setup_cannot_be_replayed_at_login(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    principal = session_of(service, user)
    setup = service.second_factors.begin_totp(principal, PASSWORD, ip=None)
    confirming = code(service, setup.secret)
    service.second_factors.confirm_totp(principal, confirming)
    token = mfa_challenge(service, user)
    with pytest.raises(InvalidMfaCodeError):
        service.second_factors.verify(token, browser_binding=None, client=CLIENT, code=confirming)


def test_a_recovery_code_works_once(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    _, codes = enroll(service, user)
    spoken = codes[3].upper().replace("-", " ")  # case, spaces and dashes do not matter
    service.second_factors.verify(
        mfa_challenge(service, user), browser_binding=None, client=CLIENT, recovery_code=spoken
    )
    with pytest.raises(InvalidMfaCodeError):
        service.second_factors.verify(
            mfa_challenge(service, user),
            browser_binding=None,
            client=CLIENT,
            recovery_code=codes[3],
        )
    principal = session_of_mfa(service, user, codes[4])
    assert service.second_factors.status(principal).recovery_codes_left == 8


def session_of_mfa(service: AuthService, user: UserRecord, recovery_code: str) -> Principal:
    issued = service.second_factors.verify(
        mfa_challenge(service, user),
        browser_binding=None,
        client=CLIENT,
        recovery_code=recovery_code,
    )
    return principal_of(service, issued)


def test_the_mfa_token_is_single_use(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    secret, codes = enroll(service, user)
    token = mfa_challenge(service, user)
    service.second_factors.verify(
        token, browser_binding=None, client=CLIENT, code=code(service, secret)
    )
    with pytest.raises(InvalidMfaTokenError):
        service.second_factors.verify(
            token, browser_binding=None, client=CLIENT, recovery_code=codes[0]
        )


def test_the_mfa_token_expires_after_five_minutes(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    _, codes = enroll(service, user)
    token = mfa_challenge(service, user)
    advance(service, 299)
    service.second_factors.verify(
        token, browser_binding=None, client=CLIENT, recovery_code=codes[0]
    )
    token = mfa_challenge(service, user)
    advance(service, 301)
    with pytest.raises(InvalidMfaTokenError):
        service.second_factors.verify(
            token, browser_binding=None, client=CLIENT, recovery_code=codes[1]
        )


def test_the_mfa_token_allows_five_attempts(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    _, codes = enroll(service, user)
    token = mfa_challenge(service, user)
    for _ in range(5):
        with pytest.raises(InvalidMfaCodeError):
            service.second_factors.verify(
                token, browser_binding=None, client=CLIENT, recovery_code="aaaa-aaaa-aaaa-aaaa"
            )
    with pytest.raises(InvalidMfaTokenError):  # the right code, too late
        service.second_factors.verify(
            token, browser_binding=None, client=CLIENT, recovery_code=codes[0]
        )


def test_a_browser_s_mfa_token_needs_its_cookie(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    _, codes = enroll(service, user)
    token = mfa_challenge(service, user, binding="the-browser-cookie")
    for stolen in (None, "another-browser"):
        for _ in range(6):  # refused without spending the challenge's attempts
            with pytest.raises(InvalidMfaTokenError):
                service.second_factors.verify(
                    token, browser_binding=stolen, client=CLIENT, recovery_code=codes[0]
                )
    service.second_factors.verify(
        token, browser_binding="the-browser-cookie", client=CLIENT, recovery_code=codes[0]
    )


def test_wrong_codes_count_against_the_account_throttle(service: AuthService) -> None:
    """10 per 5 minutes per account and address (the default login limit): the right
    password of each new login does not give the budget of wrong codes back."""
    user = new_user(service, "ada@example.com")
    _, codes = enroll(service, user)
    client = ClientInfo(ip="192.0.2.1")
    for _ in range(10):
        token = mfa_challenge(service, user)
        with pytest.raises(InvalidMfaCodeError):
            service.second_factors.verify(
                token, browser_binding=None, client=client, recovery_code="aaaa-aaaa-aaaa-aaaa"
            )
    token = mfa_challenge(service, user)
    with pytest.raises(RateLimitedError):
        service.second_factors.verify(
            token,
            browser_binding=None,
            client=client,
            recovery_code=codes[0],
        )


def test_a_password_change_meanwhile_defeats_the_pending_login(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    _, codes = enroll(service, user)
    token = mfa_challenge(service, user)
    service.store.revoke_user_sessions(user.id, now=service.clock.now())  # moves the epoch on
    with pytest.raises(InvalidCredentialsError):
        service.second_factors.verify(
            token, browser_binding=None, client=CLIENT, recovery_code=codes[0]
        )


def test_enrollment_required_by_role(service: AuthService, settings: object) -> None:
    service.second_factors.settings = service.settings.model_copy(
        update={"mfa_required_roles": ("admin",)}
    )
    user = new_user(service, "root@example.com")
    from tests.helpers import make_admin

    make_admin(service, user.id)
    with pytest.raises(MfaEnrollmentRequiredError) as raised:
        service.sessions.login(user.email, PASSWORD, CLIENT)
    token = raised.value.token
    with pytest.raises(InvalidMfaTokenError):  # an enrollment token is no login's
        service.second_factors.verify(
            token, browser_binding=None, client=CLIENT, recovery_code="aaaa-aaaa-aaaa-aaaa"
        )
    setup = service.second_factors.begin_totp_for_login(token, browser_binding=None)
    codes, issued = service.second_factors.confirm_totp_for_login(
        token, code(service, setup.secret), browser_binding=None, client=CLIENT
    )
    assert len(codes) == 10
    assert principal_of(service, issued).user.id == user.id
    advance(service, 30)
    with pytest.raises(MfaRequiredError):  # from now on: the second factor of every login
        service.sessions.login(user.email, PASSWORD, CLIENT)


# Step-up ---------------------------------------------------------------------------------------


def test_sensitive_actions_need_a_recent_authentication(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    principal = session_of(service, user)
    service.accounts.change_password(principal, PASSWORD, "another good passphrase 1")
    advance(service, 601)
    principal = service.authenticate(
        service.sessions.refresh(
            service.sessions.login(user.email, "another good passphrase 1", CLIENT).refresh_token
        ).access_token,
        "bearer",
    )
    # The refresh kept the login's auth_time: 601 s ago? No: this login is new.
    service.accounts.change_password(principal, "another good passphrase 1", PASSWORD)
    advance(service, 601)
    issued = service.sessions.refresh(
        service.sessions.login(user.email, PASSWORD, CLIENT).refresh_token
    )
    advance(service, 601)
    stale = service.authenticate(
        service.sessions.refresh(issued.refresh_token).access_token, "bearer"
    )
    with pytest.raises(ReauthenticationRequiredError):
        service.accounts.change_password(stale, PASSWORD, "another good passphrase 2")
    with pytest.raises(ReauthenticationRequiredError):
        service.email_addresses.request_email_change(
            stale, new_email="new@example.com", password=PASSWORD, ip=None
        )
    reissued = service.second_factors.reauthenticate(stale, password=PASSWORD, ip=None)
    fresh = principal_of(service, reissued)
    assert fresh.session_id == stale.session_id
    service.accounts.change_password(fresh, PASSWORD, "another good passphrase 2")


def test_refresh_keeps_the_auth_time(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    issued = service.sessions.login(user.email, PASSWORD, CLIENT)
    first = principal_of(service, issued).claims
    advance(service, 100)
    again = principal_of(service, service.sessions.refresh(issued.refresh_token)).claims
    assert first is not None and again is not None
    assert again.auth_time == first.auth_time and again.amr == ("pwd",)
    assert again.issued_at >= first.issued_at + 100


def test_turning_totp_off_and_new_codes_need_step_up(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    secret, codes = enroll(service, user)
    issued = service.second_factors.verify(
        mfa_challenge(service, user),
        browser_binding=None,
        client=CLIENT,
        code=code(service, secret),
    )
    advance(service, 601)
    stale = principal_of(service, service.sessions.refresh(issued.refresh_token))
    with pytest.raises(ReauthenticationRequiredError):
        service.second_factors.disable_totp(stale)
    with pytest.raises(ReauthenticationRequiredError):
        service.second_factors.regenerate_recovery_codes(stale)
    with pytest.raises(InvalidMfaCodeError):
        service.second_factors.reauthenticate(
            stale, code="000000" if code(service, secret) != "000000" else "111111", ip=None
        )
    fresh = principal_of(
        service, service.second_factors.reauthenticate(stale, code=code(service, secret), ip=None)
    )
    new_codes = service.second_factors.regenerate_recovery_codes(fresh)
    assert not set(new_codes) & set(codes)
    with pytest.raises(InvalidMfaCodeError):  # the old set died
        service.second_factors.verify(
            mfa_challenge(service, user),
            browser_binding=None,
            client=CLIENT,
            recovery_code=codes[5],
        )
    service.second_factors.disable_totp(fresh)
    service.sessions.login(user.email, PASSWORD, CLIENT)  # the password alone again


def test_an_admin_removes_every_factor_and_the_sessions(service: AuthService) -> None:
    admin = new_user(service, "root@example.com")
    from tests.helpers import make_admin, queued_mails

    make_admin(service, admin.id)
    user = new_user(service, "ada@example.com")
    enroll(service, user)
    actor = session_of(service, admin)
    service.second_factors.admin_remove(actor, user.id)
    assert service.store.list_sessions(user.id, now=service.clock.now()) == []
    service.sessions.login(user.email, PASSWORD, CLIENT)
    assert [m["to"] for m in queued_mails(service, "mfa_removed")] == [user.email]
    advance(service, 601)
    with pytest.raises(ReauthenticationRequiredError):
        service.second_factors.admin_remove(actor, user.id)


# A password reset ------------------------------------------------------------------------------

NEW_PASSWORD = "a completely new passphrase 9"


def test_a_reset_link_alone_does_not_open_an_account_with_a_factor(service: AuthService) -> None:
    from tests.helpers import mailed_token

    user = new_user(service, "ada@example.com")
    secret, codes = enroll(service, user)
    service.recovery.request_password_reset(user.email, ip=None)
    service.tasks.close()  # the link is mailed off the request: wait for it
    token = mailed_token(service, "password_reset", user.email)
    for attempt in ({}, {"code": "123456" if code(service, secret) != "123456" else "654321"}):
        with pytest.raises(InvalidMfaCodeError) as refused:
            service.recovery.reset_password(token, NEW_PASSWORD, **attempt)  # type: ignore[arg-type]
        assert refused.value.details == {"mfa_required": True, "methods": ["totp", "recovery_code"]}
    with pytest.raises(InvalidCredentialsError):  # nothing changed
        service.sessions.login(user.email, NEW_PASSWORD, CLIENT)
    service.recovery.reset_password(token, NEW_PASSWORD, recovery_code=codes[0])
    with pytest.raises(MfaRequiredError):  # the factor stays on
        service.sessions.login(user.email, NEW_PASSWORD, CLIENT)


def test_expired_mfa_tokens_are_pruned(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    enroll(service, user)
    mfa_challenge(service, user)
    assert service.second_factors.prune() == 0
    advance(service, 301)
    assert service.second_factors.prune() == 1


def stale_session(service: AuthService, user: UserRecord) -> Principal:
    """A session whose login is older than AUTHGATE_REAUTH_SECONDS (600), refreshed since."""
    issued = service.sessions.login(user.email, PASSWORD, CLIENT)
    advance(service, 601)
    return principal_of(service, service.sessions.refresh(issued.refresh_token))


def test_api_tokens_with_a_write_scope_need_step_up(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    stale = stale_session(service, user)
    service.api_tokens.create_api_token(stale, name="reader", scopes=["read", "tenants:read"])
    for scopes in (["write"], ["read", "tenants:write"]):
        with pytest.raises(ReauthenticationRequiredError):
            service.api_tokens.create_api_token(stale, name="writer", scopes=scopes)
    fresh = principal_of(
        service, service.second_factors.reauthenticate(stale, password=PASSWORD, ip=None)
    )
    service.api_tokens.create_api_token(fresh, name="writer", scopes=["write"])


def test_changing_someone_s_roles_needs_step_up(service: AuthService) -> None:
    from tests.helpers import make_admin

    admin = new_user(service, "root@example.com")
    make_admin(service, admin.id)
    user = new_user(service, "ada@example.com")
    stale = stale_session(service, admin)
    service.accounts.update_user_access(stale, user.id, roles=["user"], status=None)  # no change
    with pytest.raises(ReauthenticationRequiredError):
        service.accounts.update_user_access(stale, user.id, roles=["user", "admin"], status=None)
    fresh = principal_of(
        service, service.second_factors.reauthenticate(stale, password=PASSWORD, ip=None)
    )
    updated = service.accounts.update_user_access(
        fresh, user.id, roles=["user", "admin"], status=None
    )
    assert "admin" in updated.roles


def test_wrong_codes_from_many_addresses_share_the_account_s_budget(
    service: AuthService,
) -> None:
    """A holder of the password with many addresses: each address has its own login budget,
    but the codes checked for one account share one budget whatever their address."""
    user = new_user(service, "ada@example.com")
    _, codes = enroll(service, user)
    for n in range(10):
        client = ClientInfo(ip=f"198.51.100.{n}")
        token = mfa_challenge(service, user)
        with pytest.raises(InvalidMfaCodeError):
            service.second_factors.verify(
                token, browser_binding=None, client=client, recovery_code="aaaa-aaaa-aaaa-aaaa"
            )
    token = mfa_challenge(service, user)
    with pytest.raises(RateLimitedError):
        service.second_factors.verify(
            token,
            browser_binding=None,
            client=ClientInfo(ip="203.0.113.50"),
            recovery_code=codes[0],
        )
    # The same goes for the codes of a password reset (a mailed link and many addresses).
    with pytest.raises(RateLimitedError):
        service.second_factors.check_for_reset(
            user.id, code=None, recovery_code=codes[0], ip="203.0.113.51"
        )
