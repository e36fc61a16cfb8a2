"""Passkeys (WebAuthn, with py_webauthn): register, list, rename, delete; log in without a
password (discoverable credentials, usernameless); and the assertions the second step of a
login and step-up reauthentication accept.

Every ceremony starts with options holding a fresh challenge, stored by its hash for
``CHALLENGE_SECONDS`` with what it was issued for (and to whom). The response names its
challenge (in ``clientDataJSON``); the challenge is deleted as it is looked up, so it serves
once. A browser's challenge is also bound to it: the options answer sets a cookie holding a
random binding whose hash the challenge keeps, and the response is accepted only with it, so a
challenge cannot be answered from another browser.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import KW_ONLY, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from authgate.core import audit as events
from authgate.core.second_factors import hash_secret_token
from authgate.errors import (
    ConflictError,
    EmailNotVerifiedError,
    InvalidCredentialsError,
    InvalidMfaTokenError,
    NotFoundError,
    PasskeyInvalidError,
    PasskeysUnavailableError,
)
from authgate.service.second_factors import MFA_MAX_ATTEMPTS
from authgate.store.records import (
    ChallengePurpose,
    MfaChallengeRecord,
    MfaPurpose,
    PasskeyRecord,
    UserRecord,
    WebAuthnChallengeRecord,
)

# py_webauthn (with cbor2, pyOpenSSL and pyasn1, ~4 MB) is imported by the ceremonies that use
# it, not here: a process that serves no passkey ceremony never loads it.
if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

    from authgate.backends.login_throttle import LoginThrottle
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.service.authorization import Authorization
    from authgate.service.principals import ClientInfo, IssuedTokens, Principal
    from authgate.service.second_factors import SecondFactors
    from authgate.service.sessions import Sessions
    from authgate.store.protocols import Store

log = logging.getLogger("authgate")

CHALLENGE_SECONDS = 300
# The browser waits this long for the user (the options' ``timeout``), less than the challenge.
CEREMONY_TIMEOUT_MS = 240_000
MAX_PASSKEYS_PER_USER = 20
# RFC 8176: "hwk" proof of possession of a hardware-protected key, "user" user presence and
# verification (the authenticator's PIN or biometric).
PASSKEY_AMR = ("hwk", "user")


@dataclass(frozen=True, slots=True)
class Ceremony:
    """Options for the browser (JSON text, as ``navigator.credentials`` wants them once
    decoded) and, for a browser, the binding to set as a cookie for ``max_age`` seconds."""

    options_json: str
    binding: str | None = field(default=None, repr=False)
    max_age: int = CHALLENGE_SECONDS


def _digest(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def _user_handle(user_id: str) -> bytes:
    """The WebAuthn user handle: the user's random id, no personal data."""
    return user_id.encode()


def _client_challenge(credential: dict[str, Any]) -> bytes:
    """The challenge the response answers, from its ``clientDataJSON`` (verified afterwards:
    the signature covers it)."""
    from webauthn.helpers import base64url_to_bytes

    try:
        response = credential["response"]
        client_data = json.loads(base64url_to_bytes(response["clientDataJSON"]))
        return base64url_to_bytes(client_data["challenge"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise PasskeyInvalidError() from None


@dataclass(frozen=True, slots=True)
class VerifiedUse:
    passkey: PasskeyRecord
    user_verified: bool

    @property
    def amr(self) -> tuple[str, ...]:
        """RFC 8176: "hwk" (a hardware-bound key), "user" when the authenticator verified
        the user (PIN, biometric)."""
        return ("hwk", "user") if self.user_verified else ("hwk",)


@dataclass(eq=False, repr=False)
class Passkeys:
    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    throttle: LoginThrottle
    sessions: Sessions
    authorization: Authorization
    second_factors: SecondFactors

    def __post_init__(self) -> None:
        self.origins = self.settings.webauthn

    @property
    def rp_id(self) -> str:
        if self.origins.rp_id is None:
            raise PasskeysUnavailableError()
        return self.origins.rp_id

    # Challenges -------------------------------------------------------------------------------

    def _new_challenge(
        self, purpose: ChallengePurpose, user_id: str | None, *, browser: bool
    ) -> tuple[bytes, str | None]:
        _ = self.rp_id  # passkeys unavailable: nothing stored
        now = self.clock.now()
        challenge = secrets.token_bytes(32)
        binding = secrets.token_urlsafe(32) if browser else None
        self.store.create_webauthn_challenge(
            WebAuthnChallengeRecord(
                challenge_hash=_digest(challenge),
                purpose=purpose,
                user_id=user_id,
                binding_hash=_digest(binding) if binding else None,
                created_at=now,
                expires_at=now + timedelta(seconds=CHALLENGE_SECONDS),
            ),
            now=now,
        )
        return challenge, binding

    def _take_challenge(
        self,
        credential: dict[str, Any],
        purpose: ChallengePurpose,
        *,
        user_id: str | None,
        binding: str | None,
    ) -> bytes:
        """Consume the challenge the response answers: ``PasskeyInvalidError`` unless it was
        issued for ``purpose`` (to ``user_id``), is unused, unexpired and, if it was issued to
        a browser, presented with that browser's binding."""
        challenge = _client_challenge(credential)
        found = self.store.consume_webauthn_challenge(_digest(challenge), now=self.clock.now())
        if (
            found is None
            or found.purpose is not purpose
            or found.user_id != user_id
            or not _binding_matches(found.binding_hash, binding)
        ):
            raise PasskeyInvalidError()
        return challenge

    # Registration -----------------------------------------------------------------------------

    def registration_options(self, principal: Principal, *, browser: bool) -> Ceremony:
        """Creation options for the caller (a login session): a discoverable credential, the
        user's passkeys excluded (an authenticator holding one says so instead of making
        another)."""
        from webauthn import generate_registration_options, options_to_json
        from webauthn.helpers.structs import (
            AuthenticatorSelectionCriteria,
            ResidentKeyRequirement,
            UserVerificationRequirement,
        )

        self.authorization.require_session(principal)
        user = principal.user
        existing = self.store.list_passkeys(user.id)
        if len(existing) >= MAX_PASSKEYS_PER_USER:
            raise PasskeyInvalidError(
                f"An account has at most {MAX_PASSKEYS_PER_USER} passkeys: delete one first."
            )
        challenge, binding = self._new_challenge(
            ChallengePurpose.REGISTER, user.id, browser=browser
        )
        options = generate_registration_options(
            rp_id=self.rp_id,
            rp_name=self.settings.resolved_webauthn_rp_name,
            user_id=_user_handle(user.id),
            user_name=user.username or user.email,
            user_display_name=user.name or user.email,
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                require_resident_key=True,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[_descriptor(p) for p in existing],
        )
        return Ceremony(options_to_json(options), binding)

    def register(
        self,
        principal: Principal,
        credential: dict[str, Any],
        name: str | None,
        *,
        binding: str | None,
    ) -> PasskeyRecord:
        from webauthn import verify_registration_response
        from webauthn.helpers import bytes_to_base64url
        from webauthn.helpers.exceptions import WebAuthnException
        from webauthn.helpers.structs import AuthenticatorTransport, CredentialDeviceType

        self.authorization.require_session(principal)
        user = principal.user
        challenge = self._take_challenge(
            credential, ChallengePurpose.REGISTER, user_id=user.id, binding=binding
        )
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=list(self.origins.expected),
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as error:
            log.info("passkey registration refused for user %s: %s", user.id, error)
            raise PasskeyInvalidError() from None
        synced = verified.credential_device_type is CredentialDeviceType.MULTI_DEVICE
        response = credential.get("response")
        transports = response.get("transports") if isinstance(response, dict) else None
        passkey = PasskeyRecord(
            id=secrets.token_hex(12),
            user_id=user.id,
            credential_id=bytes_to_base64url(verified.credential_id),
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=tuple(
                t
                for t in (transports if isinstance(transports, list) else [])
                if isinstance(t, str) and t in {known.value for known in AuthenticatorTransport}
            ),
            name=name or _default_name(synced),
            aaguid=verified.aaguid,
            backup_eligible=synced,
            backed_up=verified.credential_backed_up,
            created_at=self.clock.now(),
        )
        audit = self.sessions.audit
        self.store.add_passkey(
            passkey,
            audit=audit.event(
                events.PASSKEY_REGISTERED,
                actor=passkey.user_id,
                user_id=passkey.user_id,
                details={"passkey_id": passkey.id, "name": passkey.name},
            ),
        )
        return passkey

    # Management -------------------------------------------------------------------------------

    def list_passkeys(self, principal: Principal) -> list[PasskeyRecord]:
        self.authorization.require_session(principal)
        return self.store.list_passkeys(principal.user.id)

    def rename(self, principal: Principal, passkey_id: str, name: str) -> PasskeyRecord:
        self.authorization.require_session(principal)
        renamed = self.store.rename_passkey(principal.user.id, passkey_id, name)
        if renamed is None:
            raise NotFoundError("No such passkey.")
        return renamed

    def delete(self, principal: Principal, passkey_id: str) -> None:
        self.authorization.require_session(principal)
        self._keep_a_required_factor(principal.user, passkey_id)
        audit = self.sessions.audit.event(
            events.PASSKEY_REMOVED,
            actor=principal,
            user_id=principal.user.id,
            details={"passkey_id": passkey_id},
        )
        if not self.store.delete_passkey(principal.user.id, passkey_id, audit=audit):
            raise NotFoundError("No such passkey.")

    def _keep_a_required_factor(self, user: UserRecord, passkey_id: str) -> None:
        """A user whose roles require a second factor (``AUTHGATE_MFA_REQUIRED_ROLES``) cannot
        delete their last one (``ConflictError``), as with the authenticator app."""
        if not any(role in self.settings.mfa_required_roles for role in user.roles):
            return
        totp = self.store.get_totp(user.id)
        if totp is not None and totp.confirmed_at is not None:
            return
        others = [p for p in self.store.list_passkeys(user.id) if p.id != passkey_id]
        if not others:
            raise ConflictError("Your role requires a second factor: keep this passkey.")

    # Authentication ---------------------------------------------------------------------------

    def login_options(self, *, browser: bool, ip: str | None) -> Ceremony:
        """Request options for a usernameless login: no credentials listed (the authenticator
        offers the passkeys it holds for the RP ID), user verification required.

        Anyone may ask, and each answer stores a challenge: the client's address spends one
        request of the login budget per address (``RateLimitedError`` when used up)."""
        from webauthn import generate_authentication_options, options_to_json
        from webauthn.helpers.structs import UserVerificationRequirement

        where = ip or "unknown"
        self.throttle.spend_request(
            "passkey_options",
            where,
            ip,
            per_name=self.settings.login_rate_limit_per_ip,
            per_ip=self.settings.login_rate_limit_per_ip,
        )
        challenge, binding = self._new_challenge(ChallengePurpose.LOGIN, None, browser=browser)
        options = generate_authentication_options(
            rp_id=self.rp_id,
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT_MS,
            allow_credentials=[],
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return Ceremony(options_to_json(options), binding)

    def assertion_options(
        self, user: UserRecord, purpose: ChallengePurpose, *, browser: bool
    ) -> Ceremony:
        """Request options for a known user (the second step of a login, or reauthentication):
        their passkeys listed. ``NotFoundError`` when they have none."""
        from webauthn import generate_authentication_options, options_to_json
        from webauthn.helpers.structs import UserVerificationRequirement

        passkeys = self.store.list_passkeys(user.id)
        if not passkeys:
            raise NotFoundError("This account has no passkey.")
        challenge, binding = self._new_challenge(purpose, user.id, browser=browser)
        options = generate_authentication_options(
            rp_id=self.rp_id,
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT_MS,
            allow_credentials=[_descriptor(p) for p in passkeys],
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return Ceremony(options_to_json(options), binding)

    def login(
        self, credential: dict[str, Any], *, binding: str | None, client: ClientInfo
    ) -> IssuedTokens:
        """Log in with a discoverable passkey. One answer (``invalid_credentials``) for every
        refusal — unknown passkey, bad signature, stale challenge, disabled user — and each
        refusal spends an attempt of the client address's login budget."""
        key = "passkey:" + _digest(str(credential.get("id", "")))[:32]
        self.throttle.begin_attempt(key, client.ip)
        generation = self.sessions.cache.users.generation
        try:
            passkey = self.verify_assertion(
                credential,
                ChallengePurpose.LOGIN,
                user_id=None,
                binding=binding,
                require_user_verification=True,
            )
            user = self.store.get_user(passkey.user_id)
            if user is None or not user.is_active:
                raise PasskeyInvalidError()
        except PasskeyInvalidError:
            self.throttle.record_failure(key, client.ip)
            audit = self.sessions.audit
            audit.record(
                audit.event(
                    events.LOGIN_FAILED,
                    outcome="failure",
                    details={"reason": "passkey_refused", "method": "passkey"},
                    context=audit.client_context(client),
                )
            )
            raise InvalidCredentialsError("The passkey could not be verified.") from None
        self.throttle.record_success(key, client.ip)
        if self.settings.email_verification == "required" and not user.email_verified:
            raise EmailNotVerifiedError()
        return self.sessions.open_session(
            user, client, generation=generation, method={"method": "passkey"}, amr=PASSKEY_AMR
        )

    def verify_assertion(
        self,
        credential: dict[str, Any],
        purpose: ChallengePurpose,
        *,
        user_id: str | None,
        binding: str | None,
        require_user_verification: bool,
    ) -> PasskeyRecord:
        return self._verify(
            credential,
            purpose,
            user_id=user_id,
            binding=binding,
            require_user_verification=require_user_verification,
        ).passkey

    def _verify(
        self,
        credential: dict[str, Any],
        purpose: ChallengePurpose,
        *,
        user_id: str | None,
        binding: str | None,
        require_user_verification: bool,
    ) -> VerifiedUse:
        """Check an assertion against a challenge issued for ``purpose`` (to ``user_id``;
        None: usernameless) and record the use. ``PasskeyInvalidError`` for any refusal; a
        signature counter that did not move forward (a cloned authenticator) is logged."""
        from webauthn import verify_authentication_response
        from webauthn.helpers.exceptions import WebAuthnException

        challenge = self._take_challenge(credential, purpose, user_id=user_id, binding=binding)
        credential_id = credential.get("id")
        passkey = self.store.find_passkey(credential_id) if isinstance(credential_id, str) else None
        if passkey is None or (user_id is not None and passkey.user_id != user_id):
            raise PasskeyInvalidError()
        if not _user_handle_matches(credential, passkey, required=user_id is None):
            raise PasskeyInvalidError()
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=list(self.origins.expected),
                credential_public_key=passkey.public_key,
                # The counter is checked below, once the signature is known to be good.
                credential_current_sign_count=0,
                require_user_verification=require_user_verification,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as error:
            log.info("passkey %s refused: %s", passkey.id, error)
            raise PasskeyInvalidError() from None
        new_count = verified.new_sign_count
        moved_on = new_count > passkey.sign_count or new_count == passkey.sign_count == 0
        recorded = moved_on and self.store.record_passkey_use(
            passkey.id,
            sign_count=new_count,
            backed_up=verified.credential_backed_up,
            now=self.clock.now(),
        )
        if not recorded:
            log.warning(
                "passkey %s of user %s refused: its signature counter went from %d to %d "
                "(a cloned authenticator?)",
                passkey.id,
                passkey.user_id,
                passkey.sign_count,
                new_count,
            )
            raise PasskeyInvalidError()
        return VerifiedUse(passkey, verified.user_verified)

    # The second step of a password login, and step-up -----------------------------------------

    def mfa_options(self, mfa_token: str, *, mfa_binding: str | None, browser: bool) -> Ceremony:
        """Request options for the user of a login waiting for its second factor (the mfa
        token of ``mfa_required``, with its browser's binding): their passkeys listed. Asking
        spends one of the token's attempts, as a wrong code does."""
        challenge = self.store.attempt_mfa_challenge(
            hash_secret_token(mfa_token),
            browser_hash=hash_secret_token(mfa_binding) if mfa_binding else None,
            max_attempts=MFA_MAX_ATTEMPTS,
            now=self.clock.now(),
        )
        user = self.store.get_user(challenge.user_id) if challenge else None
        if challenge is None or challenge.purpose is not MfaPurpose.LOGIN or user is None:
            raise InvalidMfaTokenError()
        return self.assertion_options(user, ChallengePurpose.SECOND_FACTOR, browser=browser)

    def complete_mfa_login(
        self,
        mfa_token: str,
        credential: dict[str, Any],
        *,
        mfa_binding: str | None,
        binding: str | None,
        client: ClientInfo,
    ) -> IssuedTokens:
        """Finish a password login with a passkey as its second factor (the login's session,
        ``amr`` pwd + hwk); a refused assertion is a wrong code (``invalid_code``)."""

        def check(challenge: MfaChallengeRecord) -> str | None:
            try:
                self.verify_assertion(
                    credential,
                    ChallengePurpose.SECOND_FACTOR,
                    user_id=challenge.user_id,
                    binding=binding,
                    require_user_verification=False,
                )
            except PasskeyInvalidError:
                return None
            return "hwk"

        return self.second_factors.complete_login(
            mfa_token, browser_binding=mfa_binding, client=client, check=check
        )

    def reauthentication_options(self, principal: Principal, *, browser: bool) -> Ceremony:
        self.authorization.require_session(principal)
        return self.assertion_options(
            principal.user, ChallengePurpose.REAUTHENTICATE, browser=browser
        )

    def reauthenticate(
        self,
        principal: Principal,
        credential: dict[str, Any],
        *,
        binding: str | None,
        ip: str | None,
    ) -> IssuedTokens:
        """Step-up with a passkey: the session's ``auth_time`` becomes now (a new access
        token). A refused assertion spends an attempt of the user's login budget."""
        self.authorization.require_session(principal)
        attempt = f"user:{principal.user.id}"
        self.throttle.begin_attempt(attempt, ip)
        try:
            used = self._verify(
                credential,
                ChallengePurpose.REAUTHENTICATE,
                user_id=principal.user.id,
                binding=binding,
                require_user_verification=False,
            )
        except PasskeyInvalidError:
            self.throttle.record_failure(attempt, ip)
            raise
        self.throttle.record_success(attempt, ip)
        issued = self.sessions.reissue_access_token(principal, amr=used.amr)
        self.second_factors.record_reauthentication(principal, method="passkey")
        return issued

    def has_passkeys(self, user_id: str) -> bool:
        return bool(self.store.list_passkeys(user_id))


def _binding_matches(binding_hash: str | None, binding: str | None) -> bool:
    if binding_hash is None:
        return True  # issued to a client that is no browser
    return binding is not None and hmac.compare_digest(binding_hash, _digest(binding))


def _user_handle_matches(
    credential: dict[str, Any], passkey: PasskeyRecord, *, required: bool
) -> bool:
    """A discoverable credential names its user (required in a usernameless login, where
    the options named nobody); it must be the passkey's."""
    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, dict) else None
    if not handle:
        return not required
    from webauthn.helpers import base64url_to_bytes

    try:
        return hmac.compare_digest(base64url_to_bytes(handle), _user_handle(passkey.user_id))
    except (ValueError, TypeError):
        return False


def _descriptor(passkey: PasskeyRecord) -> PublicKeyCredentialDescriptor:
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

    return PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(passkey.credential_id),
        transports=[AuthenticatorTransport(t) for t in passkey.transports],
    )


def _default_name(synced: bool) -> str:
    return "Synced passkey" if synced else "Passkey"
