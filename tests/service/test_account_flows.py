"""The decisions of the mailed-link flows, asked of the service directly: where links point,
what a reset revokes, the throttles, and what a token stays bound to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from authgate.bootstrap import build_service
from authgate.errors import (
    EmailNotVerifiedError,
    InvalidAccountTokenError,
    RateLimitedError,
    TokenRevokedError,
)
from authgate.service import AuthService, ClientInfo
from authgate.service.recovery import address_for_log
from tests.helpers import (
    PASSWORD,
    StepClock,
    mailed_token,
    make_settings,
    new_user,
    queued_mails,
    session_of,
    token_of,
)

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def frontend_service(tmp_path: Path, database_url: str) -> Iterator[AuthService]:
    """Links land on a frontend on another origin, under a path; a tight per-IP mail budget."""
    settings = make_settings(
        tmp_path,
        database_url,
        link_base_url="https://app.example.com/account",
        mail_rate_limit_per_ip="3 per minute",
    )
    service = build_service(settings, clock=StepClock())
    yield service
    service.close()


def test_links_are_built_from_the_link_base_url(frontend_service: AuthService) -> None:
    new_user(frontend_service, "ada@example.com")
    (mail,) = queued_mails(frontend_service, "verify_email")
    assert "https://app.example.com/account/verify-email#token=agl_" in mail["text"]
    assert "https://app.example.com/account/verify-email#token=agl_" in mail["html"]


def test_forgot_is_throttled_per_ip_across_addresses(frontend_service: AuthService) -> None:
    recovery = frontend_service.recovery
    for n in range(3):
        recovery.request_password_reset(f"user{n}@example.com", ip="198.51.100.7")
    with pytest.raises(RateLimitedError) as refused:
        recovery.request_password_reset("other@example.com", ip="198.51.100.7")
    assert refused.value.retry_after >= 1
    recovery.request_password_reset("other@example.com", ip="203.0.113.9")  # another client


def test_a_reset_revokes_every_access_token_at_once(service: AuthService) -> None:
    user = new_user(service, "ada@example.com")
    issued = [service.sessions.login(user.email, PASSWORD, ClientInfo()) for _ in range(2)]
    for tokens in issued:
        service.authenticate(tokens.access_token, "bearer")  # cached as valid
    service.recovery.request_password_reset(user.email, ip=None)
    service.recovery.reset_password(
        mailed_token(service, "password_reset", user.email), NEW_PASSWORD
    )
    for tokens in issued:
        with pytest.raises(TokenRevokedError):
            service.authenticate(tokens.access_token, "bearer")
    assert service.store.get_user(user.id).email_verified  # type: ignore[union-attr]


def test_a_used_reset_token_is_refused_before_the_password_is_checked(
    service: AuthService,
) -> None:
    user = new_user(service, "ada@example.com")
    service.recovery.request_password_reset(user.email, ip=None)
    token = mailed_token(service, "password_reset", user.email)
    service.recovery.reset_password(token, NEW_PASSWORD)
    with pytest.raises(InvalidAccountTokenError):
        service.recovery.reset_password(token, "x")  # a weak password: still the token's error


def test_required_verification_applies_only_to_password_logins_of_unverified_users(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, email_verification="required")
    service = build_service(settings, clock=StepClock())
    try:
        user = new_user(service, "ada@example.com")
        with pytest.raises(EmailNotVerifiedError):
            service.sessions.login(user.email, PASSWORD, ClientInfo())
        assert service.store.list_sessions(user.id, now=service.clock.now()) == []
        service.email_addresses.verify_email(mailed_token(service, "verify_email", user.email))
        assert service.sessions.login(user.email, PASSWORD, ClientInfo()).access_token
    finally:
        service.close()


def test_a_verified_user_can_still_ask_and_is_told_so(service: AuthService) -> None:
    from authgate.errors import ConflictError
    from tests.helpers import session_of

    user = new_user(service, "ada@example.com")
    service.email_addresses.verify_email(mailed_token(service, "verify_email", user.email))
    principal = session_of(service, user)
    with pytest.raises(ConflictError):
        service.email_addresses.request_verification(principal, ip=None)


def test_a_reset_that_first_proves_the_address_leaves_the_squatter_no_way_back(
    service: AuthService,
) -> None:
    """Someone registered an address that is not theirs (unverified), made an API token and
    linked their own provider identity; the owner takes the account with "forgot password".
    The squatter's API token and identity must go with their sessions."""
    squatter = new_user(service, "ada@example.com")
    principal = session_of(service, squatter)
    api_token, _ = service.api_tokens.create_api_token(principal, name="backdoor", scopes=["read"])
    service.store.link_identity(
        squatter.id, provider="github", subject="squatter-42", email=None, now=service.clock.now()
    )
    token_of(service, api_token)  # works while the squatter holds the account

    service.recovery.request_password_reset("ada@example.com", ip=None)
    service.recovery.reset_password(
        mailed_token(service, "password_reset", "ada@example.com"), NEW_PASSWORD
    )
    with pytest.raises(TokenRevokedError):
        token_of(service, api_token)
    assert service.store.list_identities(squatter.id) == []
    assert service.store.find_identity("github", "squatter-42") is None


def test_a_reset_of_a_verified_address_keeps_api_tokens_and_identities(
    service: AuthService,
) -> None:
    """A forgotten password of an account whose address was proven is no change of owner: the
    user's scripts and linked logins keep working (only sessions end)."""
    user = new_user(service, "ada@example.com")
    service.email_addresses.verify_email(mailed_token(service, "verify_email", user.email))
    principal = session_of(service, user)
    api_token, _ = service.api_tokens.create_api_token(principal, name="ci", scopes=["read"])
    service.store.link_identity(
        user.id, provider="github", subject="ada-1", email=None, now=service.clock.now()
    )
    service.recovery.request_password_reset("ada@example.com", ip=None)
    service.recovery.reset_password(
        mailed_token(service, "password_reset", "ada@example.com"), NEW_PASSWORD
    )
    assert token_of(service, api_token).user.id == user.id
    assert len(service.store.list_identities(user.id)) == 1


def test_a_logged_address_shows_its_domain_and_a_short_hash_only() -> None:
    assert address_for_log(" Ada@Example.COM") == address_for_log("ada@example.com")
    assert address_for_log("ada@example.com").startswith("an address at example.com (sha256 ")
    assert address_for_log("ada@example.com") != address_for_log("bob@example.com")
    for odd in ("ada", "ada@", "ada@exa\nmple.com", "ada@exa mple.com"):
        label = address_for_log(odd)
        assert label.startswith("an address at ? (sha256 ") and "ada" not in label
