"""Second factors: TOTP and recovery codes, the second step of a login, step-up
(reauthentication) and their administration. See docs/mfa.md.

A login of a user with a second factor stops after its password (``Sessions.login`` asks
``before_session``): it gets an *mfa token* (random, stored as its SHA-256, 5 minutes, 5 attempts,
single use; for a browser bound to it by an HttpOnly cookie) instead of a session. The login
completes in ``complete_login`` — one method for every kind of second factor: it is handed a
check of the factor (a TOTP code, a recovery code, or — from the passkeys part — an assertion)
and opens the session with the password's session epoch, rehash and ``amr``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from authgate.core import audit as events
from authgate.core.second_factors import (
    hash_recovery_code,
    hash_secret_token,
    matching_step,
    new_recovery_codes,
    new_secret_token,
    new_totp_secret,
    otpauth_uri,
    qr_svg,
)
from authgate.errors import (
    BadRequestError,
    ConflictError,
    InvalidMfaCodeError,
    InvalidMfaTokenError,
    MfaEnrollmentRequiredError,
    MfaRequiredError,
    NotFoundError,
    TokenRevokedError,
    ValidationFailedError,
)
from authgate.service.mailed_links import display_name
from authgate.service.principals import ClientInfo, IssuedTokens, Principal
from authgate.store.records import (
    MfaChallengeRecord,
    MfaPurpose,
    RevocationKind,
    TotpRecord,
    UserRecord,
)

if TYPE_CHECKING:
    from authgate.backends.login_throttle import LoginThrottle
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.core.passwords import PasswordHasher
    from authgate.core.secret_boxes import SecretBox
    from authgate.service.authorization import Authorization
    from authgate.service.mailed_links import MailedLinks
    from authgate.service.sessions import Sessions
    from authgate.store.protocols import Store

MFA_TOKEN_SECONDS = 300
MFA_MAX_ATTEMPTS = 5
TOTP = "totp"
PASSKEY = "passkey"
RECOVERY_CODE = "recovery_code"

# A check of a second factor for a login: the RFC 8176 ``amr`` name of the method that passed
# ("otp", "hwk"...), or None when it failed.
FactorCheck = Callable[[MfaChallengeRecord], str | None]


@dataclass(frozen=True, slots=True)
class TotpSetup:
    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True, slots=True)
class MfaStatus:
    totp: bool
    totp_pending: bool
    recovery_codes_left: int
    passkeys: int
    required: bool  # the user's roles require a second factor

    @property
    def enabled(self) -> bool:
        return self.totp or self.passkeys > 0


@dataclass(eq=False, repr=False)
class SecondFactors:
    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    hasher: PasswordHasher
    throttle: LoginThrottle
    feed: RevocationFeed
    box: SecretBox
    sessions: Sessions
    authorization: Authorization
    links: MailedLinks

    # What a user has ---------------------------------------------------------------------------

    def methods(self, user_id: str) -> list[str]:
        """The second factors a login of this user can complete with; empty: none is on."""
        totp, passkeys, codes = self.store.second_factor_counts(user_id)
        methods: list[str] = []
        if totp:
            methods.append(TOTP)
        if passkeys:
            methods.append(PASSKEY)
        if methods and codes:
            methods.append(RECOVERY_CODE)
        return methods

    def status(self, principal: Principal) -> MfaStatus:
        self.authorization.require_session(principal)
        user = principal.user
        totp = self.store.get_totp(user.id)
        return MfaStatus(
            totp=totp is not None and totp.confirmed_at is not None,
            totp_pending=totp is not None and totp.confirmed_at is None,
            recovery_codes_left=self.store.count_recovery_codes(user.id),
            passkeys=len(self.store.list_passkeys(user.id)),
            required=self._requires_factor(user),
        )

    def _requires_factor(self, user: UserRecord) -> bool:
        return any(role in self.settings.mfa_required_roles for role in user.roles)

    # The gate of a password login --------------------------------------------------------------

    def before_session(
        self,
        user: UserRecord,
        *,
        login: str,
        password_hash: str | None,
        browser_binding: str | None,
        amr: Sequence[str] = ("pwd",),
    ) -> None:
        """Called by ``Sessions.login`` after a right password (and by ``OAuthLogins`` after a
        provider's login, ``amr`` ``("fed",)``): ``MfaRequiredError`` when the user has a second
        factor, ``MfaEnrollmentRequiredError`` when its roles require one it has not set up;
        nothing (a session may open) otherwise. ``amr`` is what the first step proved."""
        methods = self.methods(user.id)
        if methods:
            purpose, error = MfaPurpose.LOGIN, MfaRequiredError
        elif self._requires_factor(user):
            purpose, error, methods = MfaPurpose.ENROLL, MfaEnrollmentRequiredError, [TOTP]
        else:
            return
        token, token_hash = new_secret_token()
        now = self.clock.now()
        self.store.create_mfa_challenge(
            MfaChallengeRecord(
                token_hash=token_hash,
                user_id=user.id,
                purpose=purpose,
                browser_hash=hash_secret_token(browser_binding) if browser_binding else None,
                # Wrong codes count against the account's own budget of the login throttle —
                # one a right password does not give back — and against the client's address.
                throttle_key=f"mfa:{user.id}",
                session_epoch=user.session_epoch,
                amr=tuple(amr),
                password_hash=password_hash,
                attempts=0,
                created_at=now,
                expires_at=now + timedelta(seconds=MFA_TOKEN_SECONDS),
            )
        )
        raise error(token, methods, binding=browser_binding)

    def prune(self) -> int:
        """Delete expired mfa tokens (housekeeping of the revocation follower)."""
        return self.store.prune_mfa_challenges(now=self.clock.now())

    # Completing a login ------------------------------------------------------------------------

    def verify(
        self,
        mfa_token: str,
        *,
        browser_binding: str | None,
        client: ClientInfo,
        code: str | None = None,
        recovery_code: str | None = None,
    ) -> IssuedTokens:
        """``POST /api/auth/mfa/verify``: the login's session, for a TOTP or a recovery code."""
        if (code is None) == (recovery_code is None):
            raise BadRequestError("Give a code or a recovery code (one of them).")

        def check(challenge: MfaChallengeRecord) -> str | None:
            if code is not None:
                return "otp" if self._use_totp_code(challenge.user_id, code) else None
            assert recovery_code is not None
            return "otp" if self._use_recovery_code(challenge.user_id, recovery_code) else None

        return self.complete_login(
            mfa_token, browser_binding=browser_binding, client=client, check=check
        )

    def complete_login(
        self,
        mfa_token: str,
        *,
        browser_binding: str | None,
        client: ClientInfo,
        check: FactorCheck,
        purpose: MfaPurpose = MfaPurpose.LOGIN,
    ) -> IssuedTokens:
        """Spend an attempt of the challenge, check the factor (a wrong one counts against
        the login throttle of the account and the client's address), consume the challenge and
        open the session. ``InvalidMfaTokenError`` for a token unknown, expired, used, out of
        attempts or bound to another browser; ``InvalidMfaCodeError`` for a wrong factor."""
        challenge = self._attempt(mfa_token, browser_binding, purpose)
        self._spend_code_check(challenge.user_id, client.ip)
        self.throttle.begin_attempt(challenge.throttle_key, client.ip)
        method = check(challenge)
        if method is None:
            self.throttle.record_failure(challenge.throttle_key, client.ip)
            self._record(events.MFA_FAILED, challenge.user_id, client, purpose=purpose.value)
            raise InvalidMfaCodeError()
        self.throttle.record_success(challenge.throttle_key, client.ip)
        self._record(
            events.MFA_VERIFIED, challenge.user_id, client, purpose=purpose.value, method=method
        )
        return self._finish(challenge, client, method)

    def _record(
        self, type: str, user_id: str, client: ClientInfo | None = None, **details: str
    ) -> None:
        """An attempt with a factor, which changes nothing itself: written on its own (the
        session a verified factor opens has its own ``login.succeeded``)."""
        audit = self.sessions.audit
        audit.record(
            audit.event(
                type,
                actor=user_id if type != events.MFA_FAILED else None,
                user_id=user_id,
                outcome="failure" if type == events.MFA_FAILED else "success",
                details=details,
                context=audit.client_context(client) if client is not None else None,
            )
        )

    def _attempt(
        self, mfa_token: str, browser_binding: str | None, purpose: MfaPurpose
    ) -> MfaChallengeRecord:
        challenge = self.store.attempt_mfa_challenge(
            hash_secret_token(mfa_token),
            browser_hash=hash_secret_token(browser_binding) if browser_binding else None,
            max_attempts=MFA_MAX_ATTEMPTS,
            now=self.clock.now(),
        )
        if challenge is None or challenge.purpose is not purpose:
            raise InvalidMfaTokenError()
        return challenge

    def _finish(
        self, challenge: MfaChallengeRecord, client: ClientInfo, method: str
    ) -> IssuedTokens:
        if not self.store.finish_mfa_challenge(challenge.token_hash):
            raise InvalidMfaTokenError()  # a concurrent request completed it first
        user = self.store.get_user(challenge.user_id)
        if user is None:
            raise InvalidMfaTokenError()
        amr = (*challenge.amr, method, "mfa")
        return self.sessions.open_verified_session(
            user,
            client,
            session_epoch=challenge.session_epoch,
            password_hash=challenge.password_hash,
            amr=amr,
            method={"method": _first_step(challenge.amr), "second_factor": method},
        )

    def _spend_code_check(self, user_id: str, ip: str | None) -> None:
        """Every check of a second factor spends one of the account's own budget, from
        whichever address (``RateLimitedError`` when used up). The login throttle counts per
        account *and address*: alone, it would let a holder of the password (or of a reset
        link) with many addresses guess 6-digit codes without bound."""
        self.throttle.spend_request(
            "second_factor",
            user_id,
            ip,
            per_name=self.settings.login_rate_limit_per_account,
            per_ip=self.settings.login_rate_limit_per_ip,
        )

    def _use_totp_code(self, user_id: str, code: str) -> bool:
        totp = self.store.get_totp(user_id)
        if totp is None or totp.confirmed_at is None:
            return False
        step = matching_step(self._secret(totp), code, now=self.clock.timestamp())
        return step is not None and self.store.use_totp_step(user_id, step)

    def _use_recovery_code(self, user_id: str, code: str) -> bool:
        code_hash = hash_recovery_code(code)
        return code_hash is not None and self.store.use_recovery_code(user_id, code_hash)

    def _secret(self, totp: TotpRecord) -> str:
        return self.box.open(totp.sealed_secret, context=f"totp:{totp.user_id}").decode()

    # Setting TOTP up ---------------------------------------------------------------------------

    def begin_totp(self, principal: Principal, password: str, *, ip: str | None) -> TotpSetup:
        """A new secret, pending until confirmed with a code; the password (throttled like a
        login) proves a stolen session alone cannot add a factor."""
        self.authorization.require_session(principal)
        user = self._current_user(principal)
        self._check_password(user, password, ip)
        return self._begin(user)

    def begin_totp_for_login(self, mfa_token: str, *, browser_binding: str | None) -> TotpSetup:
        """Enrollment required by role: the enrollment mfa token stands for the password."""
        challenge = self._attempt(mfa_token, browser_binding, MfaPurpose.ENROLL)
        user = self.store.get_user(challenge.user_id)
        if user is None:
            raise InvalidMfaTokenError()
        return self._begin(user)

    def _begin(self, user: UserRecord) -> TotpSetup:
        secret = new_totp_secret()
        sealed = self.box.seal(secret.encode(), context=f"totp:{user.id}")
        if not self.store.begin_totp(user.id, sealed, now=self.clock.now()):
            raise ConflictError("An authenticator app is set up already: turn it off first.")
        uri = otpauth_uri(secret, account=user.email, issuer=self.settings.app_name)
        return TotpSetup(secret=secret, otpauth_uri=uri, qr_svg=qr_svg(uri))

    def confirm_totp(self, principal: Principal, code: str) -> list[str]:
        """Turn the pending secret on with a code from the app; the new recovery codes (shown
        once: stored hashed)."""
        self.authorization.require_session(principal)
        return self._confirm(principal.user.id, code)

    def confirm_totp_for_login(
        self, mfa_token: str, code: str, *, browser_binding: str | None, client: ClientInfo
    ) -> tuple[list[str], IssuedTokens]:
        """Enrollment required by role: confirming completes the login."""
        codes: list[str] = []

        def check(challenge: MfaChallengeRecord) -> str | None:
            try:
                codes.extend(self._confirm(challenge.user_id, code))
            except InvalidMfaCodeError:
                return None
            return "otp"

        issued = self.complete_login(
            mfa_token,
            browser_binding=browser_binding,
            client=client,
            check=check,
            purpose=MfaPurpose.ENROLL,
        )
        return codes, issued

    def _confirm(self, user_id: str, code: str) -> list[str]:
        totp = self.store.get_totp(user_id)
        if totp is None or totp.confirmed_at is not None:
            raise ConflictError("Start setting up an authenticator app first.")
        step = matching_step(self._secret(totp), code, now=self.clock.timestamp())
        if step is None:
            raise InvalidMfaCodeError()
        codes = new_recovery_codes()
        hashes = [h for h in map(hash_recovery_code, codes) if h is not None]
        if not self.store.confirm_totp(
            user_id,
            sealed_secret=totp.sealed_secret,
            step=step,
            code_hashes=hashes,
            now=self.clock.now(),
            audit=self.sessions.audit.event(
                events.MFA_TOTP_ENABLED, actor=user_id, user_id=user_id
            ),
        ):
            raise ConflictError("The setup changed meanwhile: start again.")
        return codes

    # Changes that need a recent authentication -------------------------------------------------

    def disable_totp(self, principal: Principal) -> None:
        self.require_recent(principal)
        if self._requires_factor(principal.user) and not self.store.list_passkeys(
            principal.user.id
        ):
            raise ConflictError("Your role requires a second factor: keep this one.")
        audit = self.sessions.audit.event(
            events.MFA_TOTP_DISABLED, actor=principal, user_id=principal.user.id
        )
        if not self.store.delete_totp(principal.user.id, audit=audit):
            raise NotFoundError("No authenticator app is set up.")

    def regenerate_recovery_codes(self, principal: Principal) -> list[str]:
        self.require_recent(principal)
        if not self.methods(principal.user.id):
            raise ConflictError("Set up a second factor first.")
        codes = new_recovery_codes()
        hashes = [h for h in map(hash_recovery_code, codes) if h is not None]
        self.store.replace_recovery_codes(
            principal.user.id,
            hashes,
            now=self.clock.now(),
            audit=self.sessions.audit.event(
                events.MFA_RECOVERY_CODES_REGENERATED,
                actor=principal,
                user_id=principal.user.id,
                details={"codes": len(hashes)},
            ),
        )
        return codes

    def require_recent(self, principal: Principal) -> None:
        """``ReauthenticationRequiredError`` unless the caller's session proved who it is within
        ``AUTHGATE_REAUTH_SECONDS`` (the access token's ``auth_time``)."""
        self.authorization.require_recent_authentication(principal)

    # Step-up -----------------------------------------------------------------------------------

    def reauthenticate(
        self,
        principal: Principal,
        *,
        password: str | None = None,
        code: str | None = None,
        ip: str | None,
    ) -> IssuedTokens:
        """Prove it is still the user (password, or a TOTP code when one is set up): the
        session's ``auth_time`` becomes now, in a new access token."""
        self.authorization.require_session(principal)
        if (password is None) == (code is None):
            raise BadRequestError("Give your password or a code (one of them).")
        user = self._current_user(principal)
        if password is not None:
            self._check_password(user, password, ip)
            amr: Sequence[str] = ("pwd",)
        else:
            assert code is not None
            attempt = f"user:{user.id}"
            self._spend_code_check(user.id, ip)
            self.throttle.begin_attempt(attempt, ip)
            if not self._use_totp_code(user.id, code):
                self.throttle.record_failure(attempt, ip)
                raise InvalidMfaCodeError()
            self.throttle.record_success(attempt, ip)
            amr = ("otp",)
        issued = self.sessions.reissue_access_token(principal, amr=amr)
        self.record_reauthentication(principal, method=amr[0])
        return issued

    def record_reauthentication(self, principal: Principal, *, method: str) -> None:
        """``reauthenticated``: the session proved again who it is (a step-up; no change
        stored with it, so written on its own)."""
        audit = self.sessions.audit
        audit.record(
            audit.event(
                events.REAUTHENTICATED,
                actor=principal,
                user_id=principal.user.id,
                details={"method": method, "session_id": principal.session_id or ""},
            )
        )

    def _current_user(self, principal: Principal) -> UserRecord:
        user = self.store.get_user(principal.user.id)
        if user is None or not user.is_active:
            raise TokenRevokedError()
        return user

    def _check_password(self, user: UserRecord, password: str, ip: str | None) -> None:
        if user.password_hash is None:
            raise ValidationFailedError({"password": "This account has no password."})
        attempt = f"user:{user.id}"
        with self.hasher.reserve():  # busy (503): refused before the throttle counts
            self.throttle.begin_attempt(attempt, ip)
            check = self.hasher.verify_password(password, user.password_hash)
        if not check.ok:
            self.throttle.record_failure(attempt, ip)
            raise ValidationFailedError({"password": "The password is incorrect."})
        self.throttle.record_success(attempt, ip)

    # The reset flow ----------------------------------------------------------------------------

    def check_for_reset(
        self, user_id: str, *, code: str | None, recovery_code: str | None, ip: str | None
    ) -> None:
        """A password reset of an account with a second factor needs it too: a mailed link
        alone never takes the account (``InvalidMfaCodeError``, ``details.mfa_required``).
        Wrong codes count against the login throttle like those of a login."""
        methods = self.methods(user_id)
        if not methods:
            return
        ok = False
        if code is not None or recovery_code is not None:
            attempt = f"mfa:{user_id}"
            self._spend_code_check(user_id, ip)
            self.throttle.begin_attempt(attempt, ip)
            if code is not None and TOTP in methods:
                ok = self._use_totp_code(user_id, code)
            elif recovery_code is not None:
                ok = self._use_recovery_code(user_id, recovery_code)
            if ok:
                self.throttle.record_success(attempt, ip)
            else:
                self.throttle.record_failure(attempt, ip)
                self._record(events.MFA_FAILED, user_id, purpose="password_reset")
        if not ok:
            raise InvalidMfaCodeError(
                "This account has a second factor: give a code from the authenticator app or a "
                "recovery code with the new password.",
                details={"mfa_required": True, "methods": methods},
            )

    # Administration ----------------------------------------------------------------------------

    def admin_methods(self, actor: Principal, user_id: str) -> list[str]:
        """``GET /api/users/{id}/mfa``: the second factors a user has on (admins)."""
        self.authorization.require_admin(actor)
        if self.store.get_user(user_id) is None:
            raise NotFoundError("No such user.")
        return self.methods(user_id)

    def admin_remove(self, actor: Principal, user_id: str) -> UserRecord:
        """``DELETE /api/users/{id}/mfa``: an admin, recently authenticated."""
        self.authorization.require_admin(actor)
        self.require_recent(actor)
        return self.remove_all(user_id, actor=actor)

    def remove_all(self, user_id: str, *, actor: Principal | None = None) -> UserRecord:
        """Every factor of the user off and its sessions revoked; the user told by mail (when
        mail is configured: else the development mail folder)."""
        user = self.store.get_user(user_id)
        if user is None:
            raise NotFoundError("No such user.")
        revoked = self.store.remove_second_factors(
            user_id,
            now=self.clock.now(),
            audit=self.sessions.audit.event(
                events.MFA_RESET_BY_ADMIN, actor=actor, user_id=user_id
            ),
        )
        if revoked is None:
            raise NotFoundError("No such user.")
        self.feed.announce((RevocationKind.SESSION, sid) for sid in revoked)
        self.links.send_notice("mfa_removed", to=user.email, values={"name": display_name(user)})
        return user


def _first_step(amr: Sequence[str]) -> str:
    """The ``login.succeeded`` method of a login's first step, from the ``amr`` it proved."""
    return "oauth" if "fed" in amr else "password"


def same_binding(expected_hash: str | None, binding: str | None) -> bool:
    """Whether ``binding`` is the browser binding stored as ``expected_hash`` (constant time)."""
    if expected_hash is None:
        return True
    return binding is not None and hmac.compare_digest(hash_secret_token(binding), expected_hash)
