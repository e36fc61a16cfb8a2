"""Email addresses: proving one's address (verification) and moving to another (email change).

Every request that mails a link is throttled per address (or account) and per client IP
(``mail_rate_limit_*``); one that checks a password is throttled as a login is. An email change
also counts against the new address, with invitations (``MAIL_TO_ADDRESS``): nobody mails a
stranger's address more often than that address's budget.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING

from authgate.core import audit as events
from authgate.core.account_tokens import TokenPurpose, hash_account_token
from authgate.errors import (
    ConflictError,
    InvalidAccountTokenError,
    TokenRevokedError,
    UserExistsError,
    ValidationFailedError,
)
from authgate.service.mailed_links import MAIL_TO_ADDRESS, display_name
from authgate.store.records import RevocationKind, UserRecord

if TYPE_CHECKING:
    from authgate.backends.login_throttle import LoginThrottle
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.core.passwords import PasswordHasher
    from authgate.service.audit import Audit
    from authgate.service.authorization import Authorization
    from authgate.service.mailed_links import MailedLinks
    from authgate.service.principals import Principal
    from authgate.store.protocols import Store


@dataclass(eq=False, repr=False)
class EmailAddresses:
    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    hasher: PasswordHasher
    throttle: LoginThrottle
    feed: RevocationFeed
    authorization: Authorization
    links: MailedLinks
    audit: Audit

    # Verification ----------------------------------------------------------------------------

    def send_verification(self, user: UserRecord) -> None:
        """Mail ``user`` a link that proves their address (after registration)."""
        self.links.send(user, TokenPurpose.VERIFY_EMAIL, to=user.email)

    def request_verification(self, principal: Principal, *, ip: str | None) -> None:
        """The logged-in user asks for a (new) verification mail."""
        self.authorization.require_session(principal)
        user = self.store.get_user(principal.user.id)
        if user is None:
            raise TokenRevokedError()
        if user.email_verified:
            raise ConflictError("This email address is already verified.")
        self._spend("verify_email", user.email, ip)
        self.send_verification(user)

    def resend_verification(self, login: str, password: str, *, ip: str | None) -> None:
        """A user who may not log in until verified asks again, proving who they are with
        the login (email or username) and password they logged in with. Same answer whatever
        the outcome, same work and same throttle as a login: it tells nothing that the login
        does not (only a correct password learns the account is unverified, from the login's
        403)."""
        login = login.strip()
        user = self.store.find_user_by_login(login)
        with self.hasher.reserve():  # busy (503): refused before the throttle counts
            self.throttle.begin_attempt(login, ip)
            if user is None or user.password_hash is None:
                self.hasher.verify_dummy(password)
                ok = False
            else:
                ok = self.hasher.verify_password(password, user.password_hash).ok
        if user is None or user.password_hash is None:
            self.throttle.record_failure(login, ip)
            return
        if not ok:
            self.throttle.record_failure(login, ip)
            return
        self.throttle.record_success(login, ip)
        if user.is_active and not user.email_verified:
            self._spend("verify_email", user.email, ip)
            self.send_verification(user)

    def verify_email(self, token: str) -> UserRecord:
        user = self.store.verify_email_with_token(
            hash_account_token(token),
            now=self.clock.now(),
            audit=self.audit.event(events.EMAIL_VERIFIED),
        )
        if user is None:
            raise InvalidAccountTokenError()
        self.feed.announce([(RevocationKind.USER, user.id)])
        return user

    # Changing the address --------------------------------------------------------------------

    def request_email_change(
        self, principal: Principal, *, new_email: str, password: str, ip: str | None
    ) -> None:
        """Mail a confirmation link to ``new_email`` and a notice to the current address;
        nothing changes until the link is used. The password is checked (and throttled) as
        a login: a stolen session must not move the account to another address. Needs a
        recent authentication (step-up)."""
        self.authorization.require_session(principal)
        self.authorization.require_recent_authentication(principal)
        user = self.store.get_user(principal.user.id)
        if user is None:
            raise TokenRevokedError()
        if user.password_hash is None:
            raise ValidationFailedError(
                {"password": "This account has no password yet: set one (forgot password) first."}
            )
        attempt = f"user:{user.id}"
        with self.hasher.reserve():  # busy (503): refused before the throttle counts
            self.throttle.begin_attempt(attempt, ip)
            check = self.hasher.verify_password(password, user.password_hash)
        if not check.ok:
            self.throttle.record_failure(attempt, ip)
            raise ValidationFailedError({"password": "The password is incorrect."})
        self.throttle.record_success(attempt, ip)
        if new_email.casefold() == user.email.casefold():
            raise ValidationFailedError({"email": "This is already your email address."})
        if self.store.find_user_by_email(new_email) is not None:
            raise UserExistsError("Another account uses this email address.")
        self._spend("email_change", user.email, ip)
        self._spend(MAIL_TO_ADDRESS, new_email, ip)
        name = display_name(user)
        notice = self.links.compose(
            "email_change_notice", to=user.email, values={"name": name, "new_email": new_email}
        )
        self.links.send(
            user,
            TokenPurpose.EMAIL_CHANGE,
            to=new_email,
            values={"new_email": new_email},
            new_email=new_email,
            notice=notice,
            audit=self.audit.event(
                events.EMAIL_CHANGE_REQUESTED,
                actor=principal,
                user_id=user.id,
                details={"to": new_email},
            ),
        )

    def confirm_email_change(self, token: str) -> UserRecord:
        """Move the account to the address the link was mailed to (now verified); 409
        ``user_exists`` when another account took that address meanwhile."""
        user = self.store.change_email_with_token(
            hash_account_token(token),
            now=self.clock.now(),
            audit=self.audit.event(events.EMAIL_CHANGED),
        )
        if user is None:
            raise InvalidAccountTokenError()
        self.feed.announce([(RevocationKind.USER, user.id)])
        return user

    def _spend(self, purpose: str, address: str, ip: str | None) -> None:
        self.throttle.spend_request(
            purpose,
            address,
            ip,
            per_name=self.settings.mail_rate_limit_per_address,
            per_ip=self.settings.mail_rate_limit_per_ip,
        )
