"""The account decisions of "Log in with ...", with a provider client that answers what each test
says (the protocol itself is tested end to end against a real OpenID Provider in tests/e2e)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from authgate.bootstrap import build_service
from authgate.core.oauth import ExternalProfile, ResponseIssuer
from authgate.errors import InvalidMfaTokenError, LastLoginMethodError, MfaRequiredError
from authgate.service import AuthService, ClientInfo
from authgate.service.oauth_logins import OAuthOutcome
from authgate.store.records import UserRecord
from tests.helpers import (
    PROVIDERS,
    PUBLIC_URL,
    ScriptedProvider,
    StepClock,
    mailed_token,
    make_admin,
    make_settings,
)


@pytest.fixture
def oauth_service(
    tmp_path: Path, database_url: str, clock: StepClock
) -> Iterator[tuple[AuthService, dict[str, ScriptedProvider]]]:
    settings = make_settings(tmp_path, database_url, oauth_providers=PROVIDERS)
    service = build_service(settings, clock=clock)
    providers = {name: ScriptedProvider(name) for name in PROVIDERS}
    service.oauth_logins.clients = dict(providers)  # type: ignore[arg-type]
    yield service, providers
    service.close()


def finish(
    service: AuthService,
    provider: str,
    *,
    iss: str | None = None,
    error: str | None = None,
    next_url: str | None = None,
) -> OAuthOutcome:
    start = service.oauth_logins.begin_oauth(provider, next_url=next_url)
    state = parse_qs(urlsplit(start.authorization_url).query)["state"][0]
    return service.oauth_logins.finish_oauth(
        provider,
        binding=start.binding,
        state=state,
        code=None if error else "c",
        error=error,
        iss=iss,
        client=ClientInfo(),
    )


def log_in(service: AuthService, provider: str) -> tuple[UserRecord | None, str | None]:
    outcome = finish(service, provider)
    if outcome.issued is None:
        assert outcome.error is not None
        return None, outcome.error.code
    return outcome.issued.user, None


def verified_password_user(service: AuthService, email: str) -> UserRecord:
    """A password account whose email is verified by the link its registration mailed."""
    service.accounts.register(email=email, password="correct horse battery staple")
    return service.email_addresses.verify_email(mailed_token(service, "verify_email", email))


def test_a_picture_pointing_into_our_own_avatars_is_not_taken(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    """Else a new account could name another user's avatar file as its own, then delete it."""
    service, providers = oauth_service
    providers["corp"].profile = ExternalProfile(
        "sub-pic", "pic@example.com", True, "Pic", f"{PUBLIC_URL}/avatars/someone-elses.png"
    )

    user, error = log_in(service, "corp")

    assert error is None and user is not None
    assert user.avatar_url is None


def test_an_external_picture_is_kept(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    service, providers = oauth_service
    providers["corp"].profile = ExternalProfile(
        "sub-ext", "ext@example.com", True, "Ext", "https://avatars.idp.example/ext.png"
    )

    user, _ = log_in(service, "corp")

    assert user is not None and user.avatar_url == "https://avatars.idp.example/ext.png"


def test_a_generic_oidc_provider_does_not_join_accounts_by_email_unless_trusted(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    service, providers = oauth_service
    existing = verified_password_user(service, "grace@example.com")
    for name in ("corp", "trusted"):
        providers[name].profile = ExternalProfile(
            f"{name}-grace", "grace@example.com", True, "Grace", None
        )

    untrusted_user, untrusted_error = log_in(service, "corp")
    trusted_user, trusted_error = log_in(service, "trusted")

    assert untrusted_user is None and untrusted_error == "oauth_account_exists"
    assert trusted_error is None and trusted_user is not None
    assert trusted_user.id == existing.id


def test_github_and_google_are_trusted_for_email_by_default(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'x.db'}",
        oauth_providers={
            "github": {"client_id": "a", "client_secret": "b"},
            "google": {"client_id": "a", "client_secret": "b"},
            "corp": PROVIDERS["corp"],
        },
    )

    trusted = {name: p.trust_email for name, p in settings.oauth_providers.items()}

    assert trusted == {"github": True, "google": True, "corp": False}


def test_an_absurd_email_at_a_later_login_is_not_stored(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    service, providers = oauth_service
    providers["corp"].profile = ExternalProfile("sub-long", "long@example.com", True, "L", None)
    first, _ = log_in(service, "corp")
    providers["corp"].profile = ExternalProfile(
        "sub-long", "x" * 400 + "@example.com", True, "L", None
    )

    again, error = log_in(service, "corp")

    assert error is None and again is not None and first is not None
    assert again.id == first.id
    (identity,) = service.store.list_identities(first.id)
    assert identity.email is None


def test_an_identity_of_a_provider_no_longer_configured_is_no_way_to_log_in(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    """Ada has a corp and a trusted identity; trusted is then removed from the configuration.
    Unlinking corp would leave her with no way to log in: refused."""
    service, providers = oauth_service
    for name in ("corp", "trusted"):
        providers[name].profile = ExternalProfile(f"{name}-ada", "ada@example.com", True, "A", None)
    outcome = finish(service, "corp")
    assert outcome.issued is not None
    service.oauth_logins.clients = {"corp": providers["corp"]}  # type: ignore[dict-item]
    principal = service.authenticate(outcome.issued.access_token, "cookie")
    ada = outcome.issued.user
    service.store.link_identity(
        ada.id, provider="trusted", subject="trusted-ada", email=None, now=service.clock.now()
    )
    corp, trusted = service.oauth_logins.list_identities(principal)

    with pytest.raises(LastLoginMethodError):
        service.oauth_logins.unlink_identity(principal, corp.id)
    service.oauth_logins.unlink_identity(
        principal, trusted.id
    )  # the removed provider's identity may go

    assert [i.provider for i in service.oauth_logins.list_identities(principal)] == ["corp"]


# The issuer of the answer (RFC 9207) --------------------------------------------------------

IDP = "https://idp.example"
ADVERTISED = ResponseIssuer(IDP, required=True)  # its metadata says it always sends iss
NOT_ADVERTISED = ResponseIssuer(IDP, required=False)


@pytest.mark.parametrize("rule", [ADVERTISED, NOT_ADVERTISED], ids=["advertised", "not-advertised"])
def test_an_answer_naming_another_issuer_is_refused_before_the_code_is_exchanged(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]], rule: ResponseIssuer
) -> None:
    service, providers = oauth_service
    providers["corp"].issuer = rule

    outcome = finish(service, "corp", iss="https://evil.example.test", next_url="/account")

    assert outcome.issued is None
    assert outcome.error is not None and outcome.error.code == "oauth_issuer_mismatch"
    assert "evil" not in outcome.error.message  # the sent value is never repeated (or logged)
    assert providers["corp"].exchanged == []  # no token request was made
    assert outcome.redirect_to == f"{PUBLIC_URL}/account"  # this browser's flow: to its next


def test_an_answer_without_iss_is_refused_when_the_provider_says_it_always_sends_one(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    service, providers = oauth_service
    providers["corp"].issuer = ADVERTISED

    outcome = finish(service, "corp", iss=None)

    assert outcome.issued is None
    assert outcome.error is not None and outcome.error.code == "oauth_issuer_mismatch"
    assert providers["corp"].exchanged == []


@pytest.mark.parametrize(
    ("rule", "iss"),
    [(ADVERTISED, IDP), (NOT_ADVERTISED, IDP), (NOT_ADVERTISED, None)],
    ids=["advertised-sent", "not-advertised-sent", "not-advertised-absent"],
)
def test_an_answer_naming_the_providers_issuer_or_none_it_need_not_logs_in(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
    rule: ResponseIssuer,
    iss: str | None,
) -> None:
    service, providers = oauth_service
    providers["corp"].issuer = rule

    outcome = finish(service, "corp", iss=iss)

    assert outcome.error is None and outcome.issued is not None
    assert providers["corp"].exchanged == ["c"]


def test_an_error_answer_naming_another_issuer_is_not_taken_for_the_providers(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    """RFC 9207 §2.4: an error response is not from the provider either, unless its iss says so."""
    service, providers = oauth_service
    providers["corp"].issuer = ADVERTISED

    forged = finish(service, "corp", iss="https://evil.example.test", error="access_denied")
    missing = finish(service, "corp", iss=None, error="access_denied")
    genuine = finish(service, "corp", iss=IDP, error="access_denied")

    assert forged.error is not None and forged.error.code == "oauth_issuer_mismatch"
    assert missing.error is not None and missing.error.code == "oauth_issuer_mismatch"
    assert genuine.error is not None and genuine.error.code == "oauth_denied"


def test_a_provider_without_a_known_issuer_ignores_any_iss(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    """GitHub: no issuer identifier to compare with (documented in oauth.md)."""
    service, providers = oauth_service
    providers["corp"].issuer = ResponseIssuer(None)

    outcome = finish(service, "corp", iss="https://evil.example.test")

    assert outcome.error is None and outcome.issued is not None


# The real owner of an address -----------------------------------------------------------------


def test_an_unverified_provider_email_opens_no_account_and_leaves_the_address_free(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    service, providers = oauth_service
    providers["trusted"].profile = ExternalProfile(
        "sub-carol", "carol@example.com", False, "Carol?", None
    )

    user, error = log_in(service, "trusted")

    assert user is None and error == "oauth_email_unverified"
    assert service.store.find_user_by_email("carol@example.com") is None
    owner = service.accounts.register(email="carol@example.com", password="a fine passphrase")
    assert owner.email == "carol@example.com"


def test_a_provider_account_gets_a_verified_address(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    service, providers = oauth_service
    providers["corp"].profile = ExternalProfile("sub-v", "vic@example.com", True, "Vic", None)
    user, _ = log_in(service, "corp")
    assert user is not None and user.email_verified


def test_an_address_verified_by_its_link_joins_a_trusted_providers_verified_login(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    """Both sides verified: the local owner proved the address with the mailed link, the
    provider (trusted for email) says it verified it too."""
    service, providers = oauth_service
    service.accounts.register(email="hal@example.com", password="correct horse battery staple")
    providers["trusted"].profile = ExternalProfile("sub-hal", "hal@example.com", True, "Hal", None)
    assert log_in(service, "trusted") == (None, "oauth_account_exists")  # not verified yet

    token = mailed_token(service, "verify_email", "hal@example.com")
    local = service.email_addresses.verify_email(token)
    user, error = log_in(service, "trusted")

    assert error is None and user is not None and user.id == local.id
    assert [i.provider for i in service.store.list_identities(local.id)] == ["trusted"]


# A second factor after the provider's login ------------------------------------------------------


def _fragment(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).fragment).items()}


def _provider_user_with_totp(
    service: AuthService, providers: dict[str, ScriptedProvider]
) -> tuple[UserRecord, str]:
    """A verified password account with an authenticator app on, whose verified email the
    trusted provider vouches for too (its login joins the account)."""
    from tests.service.test_second_factors import enroll

    user = verified_password_user(service, "ada@example.com")
    secret, _ = enroll(service, user)
    providers["trusted"].profile = ExternalProfile("t-ada", "ada@example.com", True, "Ada", None)
    return user, secret


def test_a_provider_login_of_a_user_with_a_second_factor_opens_no_session_until_its_code(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    from tests.service.test_second_factors import code

    service, providers = oauth_service
    user, secret = _provider_user_with_totp(service, providers)
    sessions_before = len(service.store.list_sessions(user.id, now=service.clock.now()))

    outcome = finish(service, "trusted", next_url="/account")

    assert outcome.issued is None and outcome.error is None and outcome.mfa is not None
    assert outcome.mfa.code == "mfa_required" and outcome.mfa.binding
    assert len(service.store.list_sessions(user.id, now=service.clock.now())) == sessions_before
    # The browser goes on to its page with the token in the fragment, never in the query.
    parts = urlsplit(outcome.redirect_to)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{PUBLIC_URL}/account"
    assert parts.query == ""
    fragment = _fragment(outcome.redirect_to)
    assert fragment == {
        "authgate_mfa": outcome.mfa.token,
        "authgate_mfa_step": "mfa_required",
        "authgate_mfa_methods": "totp,recovery_code",
    }
    factors = service.second_factors
    with pytest.raises(InvalidMfaTokenError):  # bound to the browser the callback answered
        factors.verify(
            outcome.mfa.token, browser_binding="another", client=ClientInfo(), code="000000"
        )

    issued = factors.verify(
        outcome.mfa.token,
        browser_binding=outcome.mfa.binding,
        client=ClientInfo(),
        code=code(service, secret),
    )

    assert issued.user.id == user.id
    claims = service.authenticate(issued.access_token, "bearer").claims
    assert claims is not None and claims.amr == ("fed", "otp", "mfa")
    from tests.service.test_audit_events import events

    (succeeded,) = [e for e in events(service, "login.succeeded") if e.details.get("second_factor")]
    assert (succeeded.details["method"], succeeded.details["second_factor"]) == ("oauth", "otp")


def test_a_handed_off_provider_login_asks_for_the_second_factor_when_collected(
    oauth_service: tuple[AuthService, dict[str, ScriptedProvider]],
) -> None:
    import base64
    import hashlib

    from tests.service.test_second_factors import code

    service, providers = oauth_service
    user, secret = _provider_user_with_totp(service, providers)
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    start = service.oauth_logins.begin_oauth(
        "trusted", next_url="/", handoff_challenge=challenge.rstrip(b"=").decode()
    )
    state = parse_qs(urlsplit(start.authorization_url).query)["state"][0]
    outcome = service.oauth_logins.finish_oauth(
        "trusted",
        binding=start.binding,
        state=state,
        code="c",
        error=None,
        iss=None,
        client=ClientInfo(),
    )
    handoff = _fragment(outcome.redirect_to)["authgate_handoff"]

    with pytest.raises(MfaRequiredError) as raised:
        service.oauth_logins.complete_handoff(
            handoff, verifier, ClientInfo(), browser_binding="page-binding"
        )

    assert raised.value.methods == ["totp", "recovery_code"]
    issued = service.second_factors.verify(
        raised.value.token,
        browser_binding="page-binding",
        client=ClientInfo(),
        code=code(service, secret),
    )
    assert issued.user.id == user.id


def test_a_provider_login_of_a_role_that_requires_a_factor_goes_to_enrollment(
    tmp_path: Path, database_url: str, clock: StepClock
) -> None:
    settings = make_settings(
        tmp_path, database_url, oauth_providers=PROVIDERS, mfa_required_roles=["admin"]
    )
    service = build_service(settings, clock=clock)
    try:
        providers = {name: ScriptedProvider(name) for name in PROVIDERS}
        service.oauth_logins.clients = dict(providers)  # type: ignore[arg-type]
        first, _ = log_in(service, "corp")  # a new account: a plain user, in
        assert first is not None
        make_admin(service, first.id)

        outcome = finish(service, "corp")

        assert outcome.issued is None and outcome.mfa is not None
        assert outcome.mfa.code == "mfa_enrollment_required"
        assert _fragment(outcome.redirect_to)["authgate_mfa_step"] == "mfa_enrollment_required"
        setup = service.second_factors.begin_totp_for_login(
            outcome.mfa.token, browser_binding=outcome.mfa.binding
        )
        import pyotp

        codes, issued = service.second_factors.confirm_totp_for_login(
            outcome.mfa.token,
            pyotp.TOTP(setup.secret).at(clock.timestamp()),
            browser_binding=outcome.mfa.binding,
            client=ClientInfo(),
        )
        assert len(codes) == 10 and issued.user.id == first.id
    finally:
        service.close()
