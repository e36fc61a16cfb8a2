"""Logging in with a provider (GitHub, Google, any OpenID Connect provider): the decisions.

The provider clients (``authgate.backends.oauth_providers``) talk HTTP and check the protocol;
here we decide which account a provider identity opens, when an identity may join an existing
account, and which flows are genuine. An identity is ``(provider, subject)``, never an
email address: an email only links accounts when both sides have verified it.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import KW_ONLY, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from email_validator import EmailNotValidError, validate_email

from authgate.core import audit as events
from authgate.core.oauth import (
    ExternalProfile,
    FlowSecrets,
    add_fragment,
    check_authorization_response_issuer,
    hash_flow_secret,
    is_handoff_challenge,
    new_flow_secrets,
    safe_redirect_target,
    verifier_matches,
)
from authgate.core.origins import parse_origin
from authgate.errors import (
    AccountDisabledError,
    AuthenticationRequiredError,
    AuthError,
    LastLoginMethodError,
    MfaRequiredError,
    NotFoundError,
    OAuthAccountExistsError,
    OAuthDeniedError,
    OAuthEmailMissingError,
    OAuthEmailUnverifiedError,
    OAuthError,
    OAuthHandoffInvalidError,
    OAuthIdentityTakenError,
    OAuthStateMismatchError,
    OAuthUnknownProviderError,
    UserExistsError,
    ValidationFailedError,
)
from authgate.http.routes import OAUTH_CALLBACK_PATH
from authgate.service.principals import ClientInfo, IssuedTokens, Principal
from authgate.store.records import (
    IdentityRecord,
    LoginHandoffRecord,
    OAuthFlowRecord,
    UserRecord,
)

if TYPE_CHECKING:
    from authgate.backends.auth_cache import AuthCache
    from authgate.backends.oauth_providers import ProviderClient, ProviderInfo
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.service.audit import Audit
    from authgate.service.authorization import Authorization
    from authgate.service.sessions import Sessions
    from authgate.store.protocols import Store

log = logging.getLogger("authgate.oauth")

# How long a browser may stay at the provider before the flow is forgotten.
OAUTH_FLOW_TTL_SECONDS = 600
# How long a finished login waits for the page on another site to collect it.
HANDOFF_TTL_SECONDS = 120
HANDOFF_FRAGMENT = "authgate_handoff"
# A provider login that must go on with a second factor: the page it lands on finds the mfa
# token (bound to the browser by the ``authgate_mfa`` cookie), which step it is, and the methods.
MFA_FRAGMENT = "authgate_mfa"
MFA_STEP_FRAGMENT = "authgate_mfa_step"
MFA_METHODS_FRAGMENT = "authgate_mfa_methods"


@dataclass(frozen=True, slots=True)
class OAuthStart:
    """Send the browser to ``authorization_url``, with ``binding`` in a short-lived cookie."""

    authorization_url: str
    binding: str = field(repr=False)
    max_age: int = OAUTH_FLOW_TTL_SECONDS


@dataclass(frozen=True, slots=True)
class OAuthOutcome:
    """Where the browser goes back to, and either a new login session, the second step it
    must go on with (``mfa``: its ``binding`` is the browser's ``authgate_mfa`` cookie), or
    what went wrong."""

    redirect_to: str
    issued: IssuedTokens | None = None
    error: AuthError | None = None
    mfa: MfaRequiredError | None = None


@dataclass(eq=False, repr=False)
class OAuthLogins:
    """The "Log in with ..." decisions; ``clients`` are the configured providers by name."""

    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    cache: AuthCache
    clients: dict[str, ProviderClient]
    sessions: Sessions
    authorization: Authorization
    audit: Audit

    def oauth_providers(self) -> list[ProviderInfo]:
        return [client.info for client in self.clients.values()]

    def _oauth_client(self, name: str) -> ProviderClient:
        client = self.clients.get(name)
        if client is None:
            raise OAuthUnknownProviderError()
        return client

    def oauth_redirect_uri(self, provider: str) -> str:
        """The callback URL to register at the provider."""
        return self.settings.public_url + OAUTH_CALLBACK_PATH.format(provider=provider)

    def redirect_target(self, requested: str | None) -> str:
        """``requested`` if it stays on our origin or an allowed one; the default otherwise."""
        own = parse_origin(self.settings.public_url)
        allowlist = self.settings.allowlist
        return (
            safe_redirect_target(requested, own_origin=own, allowlist=allowlist)
            or safe_redirect_target(
                self.settings.oauth_default_redirect, own_origin=own, allowlist=allowlist
            )
            or self.settings.public_url + "/"
        )

    def begin_oauth(
        self,
        provider: str,
        *,
        next_url: str | None,
        linking: Principal | None = None,
        handoff_challenge: str | None = None,
    ) -> OAuthStart:
        """Start a login (or, with ``linking``, link the provider to that user's account).

        With ``handoff_challenge`` the login is handed to the page at ``next`` rather than set
        as cookies during the redirect: a page on another site gets its cookies only from its
        own requests (browsers that block third-party cookies partition them by page)."""
        client = self._oauth_client(provider)
        if handoff_challenge is not None and (
            linking is not None or not is_handoff_challenge(handoff_challenge)
        ):
            raise ValidationFailedError(
                {"handoff_challenge": "Must be the base64url SHA-256 of a verifier (S256)."}
            )
        session_id = self.authorization.require_session(linking) if linking is not None else None
        flow = new_flow_secrets()
        url = client.authorization_url(redirect_uri=self.oauth_redirect_uri(provider), flow=flow)
        now = self.clock.now()
        self.store.create_oauth_flow(
            OAuthFlowRecord(
                state_hash=hash_flow_secret(flow.state),
                binding_hash=hash_flow_secret(flow.binding),
                provider=provider,
                nonce=flow.nonce,
                code_verifier=flow.code_verifier,
                redirect_to=self.redirect_target(next_url),
                user_id=linking.user.id if linking is not None else None,
                session_id=session_id,
                created_at=now,
                expires_at=now + timedelta(seconds=OAUTH_FLOW_TTL_SECONDS),
                handoff_challenge=handoff_challenge,
            ),
            now=now,
        )
        return OAuthStart(url, flow.binding)

    def finish_oauth(
        self,
        provider: str,
        *,
        binding: str | None,
        state: str | None,
        code: str | None,
        error: str | None,
        iss: str | None,
        client: ClientInfo,
    ) -> OAuthOutcome:
        """The browser is back from the provider. The flow must be this browser's, unused and
        recent, and the answer (success or error) must name the provider's issuer as ``iss``
        when the provider's metadata says it does (RFC 9207); then the code is exchanged, the
        identity verified, and the user logged in (or the identity linked)."""
        flow = (
            self.store.consume_oauth_flow(hash_flow_secret(state), now=self.clock.now())
            if (state and len(state) <= 512)
            else None
        )
        if (
            flow is None
            or binding is None
            or flow.provider != provider
            or not hmac.compare_digest(flow.binding_hash, hash_flow_secret(binding))
        ):
            mismatch = OAuthStateMismatchError()
            self._login_failed(provider, mismatch, client, user_id=None)
            return OAuthOutcome(self.redirect_target(None), error=mismatch)
        try:
            provider_client = self._oauth_client(provider)
            # Before anything of the answer is believed, its error included (RFC 9207 §2.4).
            check_authorization_response_issuer(iss, provider_client.response_issuer())
            if error is not None:
                raise OAuthDeniedError() if error == "access_denied" else OAuthError()
            if not code:
                raise OAuthError("The provider sent no login code.")
            secrets_ = FlowSecrets(state or "", flow.nonce, flow.code_verifier, binding)
            profile = provider_client.fetch_profile(
                code=code, redirect_uri=self.oauth_redirect_uri(provider), flow=secrets_
            )
            if flow.user_id is not None:
                self._link_identity(flow, profile)
                return OAuthOutcome(flow.redirect_to)
            generation = self.cache.users.generation
            user = self._user_for(provider, profile)
            if flow.handoff_challenge is not None:
                # The second factor, if due, is asked when the page collects the login.
                code = self._hand_off(user, provider, flow.handoff_challenge)
                return OAuthOutcome(add_fragment(flow.redirect_to, HANDOFF_FRAGMENT, code))
            try:
                self._gate(user, browser_binding=secrets.token_urlsafe(32))
            except MfaRequiredError as required:
                return OAuthOutcome(_mfa_fragment(flow.redirect_to, required), mfa=required)
            issued = self.sessions.open_session(
                user,
                client,
                generation=generation,
                method={"method": "oauth", "provider": provider},
            )
            return OAuthOutcome(flow.redirect_to, issued=issued)
        except AuthError as e:
            self._login_failed(provider, e, client, user_id=flow.user_id)
            return OAuthOutcome(flow.redirect_to, error=e)

    def _gate(self, user: UserRecord, *, browser_binding: str | None) -> None:
        """``MfaRequiredError`` (or ``MfaEnrollmentRequiredError``) when the user has a second
        factor (or its roles require one), as after a password: the provider's login is the
        first step (``amr`` ``fed``), completed at ``/api/auth/mfa/verify``."""
        if self.sessions.gate is not None:
            self.sessions.gate.before_session(
                user,
                login=user.email,
                password_hash=None,
                browser_binding=browser_binding,
                amr=("fed",),
            )

    def _login_failed(
        self, provider: str, error: AuthError, client: ClientInfo, *, user_id: str | None
    ) -> None:
        """A provider login (or link) that opened nothing; written on its own."""
        self.audit.record(
            self.audit.event(
                events.OAUTH_LOGIN_FAILED,
                actor=user_id,
                user_id=user_id,
                outcome="failure",
                details={"provider": provider[:64], "reason": error.code},
                context=self.audit.client_context(client),
            )
        )

    def _user_for(self, provider: str, profile: ExternalProfile) -> UserRecord:
        """The active user this identity logs in as (created or joined on first use)."""
        identity = self.store.find_identity(provider, profile.subject)
        if identity is not None:
            user = self.store.get_user(identity.user_id)
            email = _usable_email(profile.email)
            self.store.record_identity_login(identity.id, email=email, now=self.clock.now())
        else:
            user = self._account_for_new_identity(provider, profile)
        if user is None or not user.is_active:
            raise AccountDisabledError()
        return user

    def _hand_off(self, user: UserRecord, provider: str, challenge: str) -> str:
        code = secrets.token_urlsafe(32)
        now = self.clock.now()
        self.store.create_login_handoff(
            LoginHandoffRecord(
                code_hash=hash_flow_secret(code),
                user_id=user.id,
                challenge=challenge,
                provider=provider,
                expires_at=now + timedelta(seconds=HANDOFF_TTL_SECONDS),
            ),
            now=now,
        )
        return code

    def complete_handoff(
        self, code: str, verifier: str, client: ClientInfo, *, browser_binding: str | None = None
    ) -> IssuedTokens:
        """The page that started a handed-off login collects it: once, within two minutes, and
        only with the verifier whose challenge started it. A user with a second factor gets
        ``MfaRequiredError`` instead (bound to ``browser_binding``, the page's own cookie)."""
        generation = self.cache.users.generation
        handoff = self.store.consume_login_handoff(hash_flow_secret(code), now=self.clock.now())
        if handoff is None or not verifier_matches(verifier, handoff.challenge):
            raise OAuthHandoffInvalidError()
        user = self.store.get_user(handoff.user_id)
        if user is None or not user.is_active:
            raise AccountDisabledError()
        self._gate(user, browser_binding=browser_binding)
        return self.sessions.open_session(
            user,
            client,
            generation=generation,
            method={"method": "oauth", "provider": handoff.provider},
        )

    def _account_for_new_identity(self, provider: str, profile: ExternalProfile) -> UserRecord:
        """A new user, or an existing one when both sides have verified the same email.

        Only an address the provider has verified opens an account: an unverified one would
        occupy the address, and its real owner could then neither register nor log in with
        a provider that verified it. (An identity already linked logs in whatever its email.)"""
        email = _usable_email(profile.email)
        if email is None:
            raise OAuthEmailMissingError()
        if not profile.email_verified:
            raise OAuthEmailUnverifiedError()
        existing = self.store.find_user_by_email(email)
        if existing is not None:
            trusted = self.settings.oauth_providers[provider].trust_email
            if not (trusted and existing.email_verified):
                raise OAuthAccountExistsError()
            self.store.link_identity(
                existing.id,
                provider=provider,
                subject=profile.subject,
                email=email,
                now=self.clock.now(),
                audit=self.audit.event(
                    events.OAUTH_LINKED,
                    user_id=existing.id,
                    details={"provider": provider, "by": "verified_email"},
                ),
            )
            log.info("linked %s identity to user %s by verified email", provider, existing.id)
            return existing
        try:
            return self.store.create_user_with_identity(
                email=email,
                name=profile.name,
                avatar_url=self._external_avatar(profile.avatar_url),
                email_verified=True,
                roles=("user",),
                provider=provider,
                subject=profile.subject,
                now=self.clock.now(),
                audit=self.audit.event(
                    events.USER_CREATED, details={"method": "oauth", "provider": provider}
                ),
            )
        except UserExistsError:
            # Someone registered this email (or logged in with this identity) meanwhile.
            raise OAuthAccountExistsError() from None

    def _external_avatar(self, url: str | None) -> str | None:
        """A provider's picture URL, unless it points into our own avatar images (those are
        stored for one user by an upload, and removed when that user replaces theirs)."""
        if url is None or url.startswith(self.settings.public_url + "/"):
            return None
        return url

    def _link_identity(self, flow: OAuthFlowRecord, profile: ExternalProfile) -> None:
        """Link to the user who started the flow, if that login session is still alive."""
        session = self.store.get_session(flow.session_id or "")
        user = self.store.get_user(flow.user_id or "")
        if (
            session is None
            or user is None
            or session.user_id != user.id
            or not session.is_valid_at(self.clock.now())
            or not user.is_active
        ):
            raise AuthenticationRequiredError("Log in again, then link the provider.")
        existing = self.store.find_identity(flow.provider, profile.subject)
        if existing is not None:
            if existing.user_id != user.id:
                raise OAuthIdentityTakenError()
            return
        self.store.link_identity(
            user.id,
            provider=flow.provider,
            subject=profile.subject,
            email=_usable_email(profile.email),
            now=self.clock.now(),
            audit=self.audit.event(
                events.OAUTH_LINKED,
                actor=user.id,
                user_id=user.id,
                details={"provider": flow.provider},
            ),
        )

    def list_identities(self, principal: Principal) -> list[IdentityRecord]:
        self.authorization.require_session(principal)
        return self.store.list_identities(principal.user.id)

    def unlink_identity(self, principal: Principal, identity_id: str) -> None:
        self.authorization.require_session(principal)
        outcome = self.store.unlink_identity(
            principal.user.id,
            identity_id,
            login_providers=tuple(self.clients),
            audit=self.audit.event(
                events.OAUTH_UNLINKED,
                actor=principal,
                user_id=principal.user.id,
                details={"identity_id": identity_id},
            ),
        )
        if outcome == "not_found":
            raise NotFoundError("No such identity.")
        if outcome == "last_login_method":
            raise LastLoginMethodError()

    # An admin's view of a user's identities --------------------------------------------------

    def list_user_identities(self, actor: Principal, user_id: str) -> list[IdentityRecord]:
        self.authorization.require_admin(actor)
        if self.store.get_user(user_id) is None:
            raise NotFoundError("No such user.")
        return self.store.list_identities(user_id)

    def unlink_user_identity(self, actor: Principal, user_id: str, identity_id: str) -> None:
        """Unlink one of the user's identities (admins), unless it is the user's last way to
        log in (``LastLoginMethodError``, as for the user: disable the account instead)."""
        self.authorization.require_admin(actor)
        if self.store.get_user(user_id) is None:
            raise NotFoundError("No such user.")
        outcome = self.store.unlink_identity(
            user_id,
            identity_id,
            login_providers=tuple(self.clients),
            audit=self.audit.event(
                events.OAUTH_UNLINKED,
                actor=actor,
                user_id=user_id,
                details={"identity_id": identity_id},
            ),
        )
        if outcome == "not_found":
            raise NotFoundError("No such identity.")
        if outcome == "last_login_method":
            raise LastLoginMethodError()


def _mfa_fragment(url: str, required: MfaRequiredError) -> str:
    """``url#authgate_mfa=<token>&authgate_mfa_step=<code>&authgate_mfa_methods=<a,b>``: in the
    fragment, which no server log nor Referer sees (the token is worthless without the
    browser's cookie all the same)."""
    return add_fragment(
        url,
        MFA_FRAGMENT,
        required.token,
        (MFA_STEP_FRAGMENT, required.code),
        (MFA_METHODS_FRAGMENT, ",".join(required.methods)),
    )


def _usable_email(email: str | None) -> str | None:
    """The provider's email if it is a valid address (normalised), else None."""
    if not email or len(email) > 254:
        return None
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        return None
