"""Passkeys in the service, with real WebAuthn responses (``tests.webauthn_authenticator``):
registration, usernameless login, and each check that refuses an assertion — the challenge
(single use, expiry, purpose, browser binding), the origin, the RP ID, user presence and
verification, the signature counter, the user handle, a disabled user."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from authgate.errors import (
    InvalidCredentialsError,
    NotFoundError,
    PasskeyExistsError,
    PasskeyInvalidError,
    RateLimitedError,
)
from authgate.service import AuthService
from authgate.service.passkeys import CHALLENGE_SECONDS, Ceremony
from authgate.service.principals import ClientInfo, Principal
from authgate.store.records import ChallengePurpose, PasskeyRecord, UserStatus
from tests.helpers import FRONTEND, PUBLIC_URL, StepClock, new_user, session_of
from tests.webauthn_authenticator import SoftAuthenticator

CLIENT = ClientInfo(user_agent="test", ip="203.0.113.9")


def _options(ceremony: Ceremony) -> dict[str, Any]:
    options: dict[str, Any] = json.loads(ceremony.options_json)
    return options


def _enroll(
    service: AuthService, principal: Principal, authenticator: SoftAuthenticator, **kw: Any
) -> PasskeyRecord:
    ceremony = service.passkeys.registration_options(principal, browser=True)
    credential = authenticator.create(_options(ceremony), **kw)
    return service.passkeys.register(principal, credential, "Laptop", binding=ceremony.binding)


@pytest.fixture
def ada(service: AuthService) -> Principal:
    return session_of(service, new_user(service, "ada@example.com"))


@pytest.fixture
def key() -> SoftAuthenticator:
    return SoftAuthenticator(rp_id="localhost", origin=PUBLIC_URL)


def _login(service: AuthService, key: SoftAuthenticator, **kw: Any) -> Any:
    ceremony = service.passkeys.login_options(browser=True, ip="203.0.113.9")
    credential = key.get(_options(ceremony), **kw)
    return service.passkeys.login(credential, binding=ceremony.binding, client=CLIENT)


def test_registration_options_ask_for_a_discoverable_credential(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    first = _enroll(service, ada, key)
    options = _options(service.passkeys.registration_options(ada, browser=False))
    assert options["rp"] == {"id": "localhost", "name": "authgate"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["user"]["name"] == "ada@example.com"
    assert options["excludeCredentials"] == [
        {"id": first.credential_id, "type": "public-key", "transports": ["internal"]}
    ]


def test_register_then_log_in_usernameless(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    passkey = _enroll(service, ada, key)
    assert passkey.name == "Laptop"
    assert passkey.credential_id == key.credential_id_b64
    assert passkey.sign_count == 0
    options = _options(service.passkeys.login_options(browser=False, ip="203.0.113.9"))
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"
    issued = _login(service, key)
    assert issued.user.id == ada.user.id
    principal = service.authenticate(issued.access_token, "bearer")
    assert principal.session_id == issued.session.id
    [stored] = service.passkeys.list_passkeys(ada)
    assert stored.sign_count == 1
    assert stored.last_used_at is not None


def test_a_frontend_origin_under_the_rp_id_is_accepted(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    _enroll(service, ada, key, origin=FRONTEND)
    assert _login(service, key, origin=FRONTEND).user.id == ada.user.id


def test_a_foreign_origin_or_rp_id_is_refused(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    with pytest.raises(PasskeyInvalidError):
        _enroll(service, ada, key, origin="https://evil.example")
    with pytest.raises(PasskeyInvalidError):
        _enroll(service, ada, key, rp_id="evil.example")
    _enroll(service, ada, key)
    with pytest.raises(InvalidCredentialsError):
        _login(service, key, origin="https://evil.example")
    with pytest.raises(InvalidCredentialsError):
        _login(service, key, rp_id="evil.example")


def test_the_same_credential_cannot_be_registered_twice(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    _enroll(service, ada, key)
    bob = session_of(service, new_user(service, "bob@example.com"))
    with pytest.raises(PasskeyExistsError):
        _enroll(service, bob, key)


def test_a_challenge_serves_once(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    _enroll(service, ada, key)
    ceremony = service.passkeys.login_options(browser=False, ip="203.0.113.9")
    credential = key.get(_options(ceremony))
    service.passkeys.login(credential, binding=None, client=CLIENT)
    replay = key.get(_options(ceremony))  # a fresh signature, a higher counter, the old challenge
    with pytest.raises(InvalidCredentialsError):
        service.passkeys.login(replay, binding=None, client=CLIENT)


def test_a_challenge_expires(
    service: AuthService, clock: StepClock, ada: Principal, key: SoftAuthenticator
) -> None:
    _enroll(service, ada, key)
    ceremony = service.passkeys.login_options(browser=False, ip="203.0.113.9")
    clock.advance(CHALLENGE_SECONDS + 1)
    with pytest.raises(InvalidCredentialsError):
        service.passkeys.login(key.get(_options(ceremony)), binding=None, client=CLIENT)


def test_an_unknown_challenge_is_refused(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    _enroll(service, ada, key)
    ceremony = service.passkeys.login_options(browser=False, ip="203.0.113.9")
    forged = key.get(_options(ceremony), challenge="A" * 43)
    with pytest.raises(InvalidCredentialsError):
        service.passkeys.login(forged, binding=None, client=CLIENT)


def test_a_browser_challenge_needs_that_browser(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    _enroll(service, ada, key)
    ceremony = service.passkeys.login_options(browser=True, ip="203.0.113.9")
    assert ceremony.binding
    for binding in (None, "another-browser"):
        fresh = service.passkeys.login_options(browser=True, ip="203.0.113.9")
        with pytest.raises(InvalidCredentialsError):
            service.passkeys.login(key.get(_options(fresh)), binding=binding, client=CLIENT)
    issued = service.passkeys.login(
        key.get(_options(ceremony)), binding=ceremony.binding, client=CLIENT
    )
    assert issued.user.id == ada.user.id


def test_registration_challenge_is_for_registration_and_its_user(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    bob = session_of(service, new_user(service, "bob@example.com"))
    ceremony = service.passkeys.registration_options(ada, browser=False)
    with pytest.raises(PasskeyInvalidError):
        service.passkeys.register(bob, key.create(_options(ceremony)), None, binding=None)
    _enroll(service, ada, key)
    # A challenge issued to the same user for another ceremony (step-up) registers nothing.
    other = _options(
        service.passkeys.assertion_options(ada.user, ChallengePurpose.REAUTHENTICATE, browser=False)
    )
    second = SoftAuthenticator(rp_id="localhost", origin=PUBLIC_URL)
    options = _options(service.passkeys.registration_options(ada, browser=False))
    with pytest.raises(PasskeyInvalidError):
        service.passkeys.register(
            ada, second.create(options, challenge=other["challenge"]), None, binding=None
        )


def test_user_verification_is_required_to_log_in(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    _enroll(service, ada, key, uv=False)  # registration only prefers it
    with pytest.raises(InvalidCredentialsError):
        _login(service, key, uv=False)
    with pytest.raises(InvalidCredentialsError):
        _login(service, key, up=False)
    assert _login(service, key).user.id == ada.user.id


def test_a_counter_that_goes_back_is_a_clone(
    service: AuthService,
    ada: Principal,
    key: SoftAuthenticator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _enroll(service, ada, key)
    _login(service, key, sign_count=5)
    with (
        caplog.at_level(logging.WARNING, logger="authgate"),
        pytest.raises(InvalidCredentialsError),
    ):
        _login(service, key, sign_count=5)
    assert "cloned authenticator" in caplog.text
    with pytest.raises(InvalidCredentialsError):
        _login(service, key, sign_count=3)
    [stored] = service.passkeys.list_passkeys(ada)
    assert stored.sign_count == 5
    assert _login(service, key, sign_count=6).user.id == ada.user.id


def test_an_authenticator_without_a_counter_keeps_zero(
    service: AuthService, ada: Principal
) -> None:
    key = SoftAuthenticator(rp_id="localhost", origin=PUBLIC_URL, counter_step=0, synced=True)
    passkey = _enroll(service, ada, key)
    assert passkey.backup_eligible and passkey.backed_up
    assert passkey.name == "Laptop"
    _login(service, key)
    _login(service, key)
    [stored] = service.passkeys.list_passkeys(ada)
    assert stored.sign_count == 0
    _login(service, key, sign_count=1)
    with pytest.raises(InvalidCredentialsError):  # 0 once a counter was seen: a regression
        _login(service, key, sign_count=0)


def test_the_user_handle_must_be_the_passkeys_user(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    _enroll(service, ada, key)
    with pytest.raises(InvalidCredentialsError):
        _login(service, key, user_handle=b"someone-else")
    with pytest.raises(InvalidCredentialsError):
        _login(service, key, user_handle=None)  # usernameless: the handle names the user


def test_a_disabled_user_cannot_log_in_with_a_passkey(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    _enroll(service, ada, key)
    service.store.update_access(ada.user.id, status=UserStatus.DISABLED, now=service.clock.now())
    with pytest.raises(InvalidCredentialsError):
        _login(service, key)


def test_failed_passkey_logins_are_throttled(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    _enroll(service, ada, key)
    with pytest.raises(RateLimitedError):
        for _ in range(200):
            with pytest.raises(InvalidCredentialsError):
                _login(service, key, origin="https://evil.example")


def test_rename_list_delete_are_the_users_own(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    passkey = _enroll(service, ada, key)
    bob = session_of(service, new_user(service, "bob@example.com"))
    with pytest.raises(NotFoundError):
        service.passkeys.rename(bob, passkey.id, "Mine now")
    with pytest.raises(NotFoundError):
        service.passkeys.delete(bob, passkey.id)
    assert service.passkeys.list_passkeys(bob) == []
    assert service.passkeys.rename(ada, passkey.id, "Phone").name == "Phone"
    service.passkeys.delete(ada, passkey.id)
    assert service.passkeys.list_passkeys(ada) == []
    with pytest.raises(InvalidCredentialsError):
        _login(service, key)


def test_passkeys_go_with_their_user(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    _enroll(service, ada, key)
    service.passkeys.login_options(browser=True, ip="203.0.113.9")
    service.store.delete_user(ada.user.id, now=service.clock.now())
    assert service.store.find_passkey(key.credential_id_b64) is None


def test_unknown_transports_are_dropped(
    service: AuthService, ada: Principal, key: SoftAuthenticator
) -> None:
    ceremony = service.passkeys.registration_options(ada, browser=False)
    credential = key.create(_options(ceremony))
    credential["response"]["transports"] = ["usb", "teleport", {"x": 1}, 7]
    passkey = service.passkeys.register(ada, credential, None, binding=None)
    assert passkey.transports == ("usb",)


def test_a_role_that_requires_a_factor_keeps_the_last_passkey(service: AuthService) -> None:
    """``AUTHGATE_MFA_REQUIRED_ROLES``: as with the authenticator app, the last passkey of such
    a user cannot be deleted (409); another factor left, it can."""
    from authgate.errors import ConflictError
    from tests.helpers import make_admin

    service.passkeys.settings = service.settings.model_copy(
        update={"mfa_required_roles": ("admin",)}
    )
    user = new_user(service, "root@example.com")
    make_admin(service, user.id)
    root = session_of(service, service.store.get_user(user.id))  # type: ignore[arg-type]
    first = _enroll(service, root, SoftAuthenticator(rp_id="localhost", origin=PUBLIC_URL))
    second = _enroll(service, root, SoftAuthenticator(rp_id="localhost", origin=PUBLIC_URL))
    service.passkeys.delete(root, first.id)
    with pytest.raises(ConflictError):
        service.passkeys.delete(root, second.id)
    assert [p.id for p in service.store.list_passkeys(user.id)] == [second.id]


def test_anonymous_login_options_spend_the_address_budget(service: AuthService) -> None:
    """Each answer stores a challenge: one address cannot flood the table."""
    per_ip = int(service.settings.login_rate_limit_per_ip.split()[0])
    for _ in range(per_ip):
        service.passkeys.login_options(browser=False, ip="203.0.113.7")
    with pytest.raises(RateLimitedError):
        service.passkeys.login_options(browser=False, ip="203.0.113.7")
    service.passkeys.login_options(browser=False, ip="198.51.100.1")  # another address
