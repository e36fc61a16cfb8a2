"""Recovering an account: "forgot password" mails a reset link; the link sets a new password.

The request answers the same for every address (202, same body), after the same work: the
throttle's count, then the lookup, token and mail run in the background (``BackgroundTasks``),
after the answer has left, so no timing tells a known address from an unknown one.

A reset revokes every session of the user at once (their refresh tokens with them, and their
access tokens through the revocation feed) and mails a notice to the address. A reset that is the
first proof of the address (someone else had registered it) also revokes the API tokens and
unlinks the provider identities its previous holder could come back with.

The background work cannot answer 503 when the database is down: it tries three times over
about eight seconds, then gives up with a warning that names the address only by its domain and
a short hash (an address is personal data). The user, who saw 202, asks again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Protocol

from authgate.core import audit as events
from authgate.core.account_tokens import TokenPurpose, hash_account_token
from authgate.core.audit import AuditContext
from authgate.core.passwords import find_password_problem
from authgate.errors import InvalidAccountTokenError, StoreUnavailableError, ValidationFailedError
from authgate.service.mailed_links import display_name
from authgate.store.records import RevocationKind, UserRecord


class ResetFactorCheck(Protocol):
    def check_for_reset(
        self, user_id: str, *, code: str | None, recovery_code: str | None, ip: str | None
    ) -> None: ...


if TYPE_CHECKING:
    from authgate.backends.background_tasks import BackgroundTasks
    from authgate.backends.login_throttle import LoginThrottle
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.core.passwords import PasswordHasher
    from authgate.service.audit import Audit
    from authgate.service.mailed_links import MailedLinks
    from authgate.store.protocols import Store

log = logging.getLogger("authgate.recovery")

# The waits between the attempts at a forgot-password request while the database is down.
RESET_RETRY_DELAYS_SECONDS = (2.0, 6.0)
_DOMAIN_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789.-"


def address_for_log(email: str) -> str:
    """An address as a log line may name it: its domain and a short hash of the whole (enough
    to tell two addresses apart or match a known one; not the address)."""
    folded = email.strip().casefold()
    digest = hashlib.sha256(folded.encode()).hexdigest()[:10]
    _, at, domain = folded.rpartition("@")
    if not at or not domain or len(domain) > 253 or domain.strip(_DOMAIN_CHARACTERS):
        domain = "?"  # the line stays one plain line whatever was typed
    return f"an address at {domain} (sha256 {digest})"


@dataclass(eq=False, repr=False)
class Recovery:
    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    hasher: PasswordHasher
    throttle: LoginThrottle
    feed: RevocationFeed
    tasks: BackgroundTasks
    links: MailedLinks
    audit: Audit
    # The account's second factor, asked before a reset (``SecondFactors.check_for_reset``);
    # set by ``AuthService``.
    second_factor: ResetFactorCheck | None = None
    retry_delays_seconds: tuple[float, ...] = RESET_RETRY_DELAYS_SECONDS

    def request_password_reset(self, email: str, *, ip: str | None) -> None:
        """Throttled per address and per IP (429 with ``retry_after``); then, off the request,
        a reset link for an active account with this address (or nothing at all)."""
        self.throttle.spend_request(
            "password_reset",
            email,
            ip,
            per_name=self.settings.mail_rate_limit_per_address,
            per_ip=self.settings.mail_rate_limit_per_ip,
        )
        # The request's context goes along: its event (for an existing account only, written
        # with the link it mails) is built on the background thread, which the answer does not
        # wait for.
        context = self.audit.context()
        self.tasks.submit(functools.partial(self._mail_reset_link, email, context))

    def _mail_reset_link(self, email: str, context: AuditContext | None = None) -> None:
        """On the background thread; retried while the database is unavailable."""
        attempts = len(self.retry_delays_seconds) + 1
        for attempt in range(1, attempts + 1):
            try:
                user = self.store.find_user_by_email(email)
                if user is not None and user.is_active:
                    audit = self.audit.event(
                        events.PASSWORD_RESET_REQUESTED, user_id=user.id, context=context
                    )
                    self.links.send(user, TokenPurpose.PASSWORD_RESET, to=user.email, audit=audit)
            except StoreUnavailableError as e:
                cause = type(e.__cause__ or e).__name__
                if attempt == attempts:
                    log.warning(
                        "forgot password for %s not handled: the database is unavailable (%s) "
                        "after %d attempts; no reset link was mailed",
                        address_for_log(email),
                        cause,
                        attempts,
                    )
                    return
                delay = self.retry_delays_seconds[attempt - 1]
                log.info(
                    "forgot password for %s: the database is unavailable (%s); trying again "
                    "in %g s (attempt %d of %d)",
                    address_for_log(email),
                    cause,
                    delay,
                    attempt,
                    attempts,
                )
                time.sleep(delay)
            else:
                if attempt > 1:
                    log.info(
                        "forgot password for %s handled at attempt %d",
                        address_for_log(email),
                        attempt,
                    )
                return

    def reset_password(
        self,
        token: str,
        new_password: str,
        *,
        code: str | None = None,
        recovery_code: str | None = None,
        ip: str | None = None,
    ) -> UserRecord:
        """Set a new password with a reset link's token (once, within 30 minutes, and only if
        neither the password nor the address changed since it was mailed). An account with a
        second factor also needs a ``code`` of its authenticator app or a ``recovery_code``:
        a reset link alone never opens it, nor turns its factor off."""
        token_hash = hash_account_token(token)
        found = self.store.find_account_token(
            token_hash, TokenPurpose.PASSWORD_RESET, now=self.clock.now()
        )
        if found is None:
            raise InvalidAccountTokenError()
        _, user = found
        # A second factor (issue 15) is checked here, before anything is changed or consumed:
        # a reset link alone must then not open an account that has one.
        problem = find_password_problem(
            new_password, context=[user.email, user.email.split("@", 1)[0], user.username or ""]
        )
        if problem:
            raise ValidationFailedError({"password": problem})
        if self.second_factor is not None:
            self.second_factor.check_for_reset(
                user.id, code=code, recovery_code=recovery_code, ip=ip
            )
        notice = self.links.compose(
            "password_changed_notice", to=user.email, values={"name": display_name(user)}
        )
        outcome = self.store.reset_password_with_token(
            token_hash,
            self.hasher.hash_password(new_password),
            now=self.clock.now(),
            notice=notice,
            audit=self.audit.event(events.PASSWORD_RESET, actor=user.id, user_id=user.id),
        )
        if outcome is None:  # used meanwhile by a concurrent request, or the account changed
            raise InvalidAccountTokenError()
        changed, revoked = outcome
        self.feed.announce([(RevocationKind.USER, changed.id), *revoked])
        self.links.mail_sender.notify()
        return changed
