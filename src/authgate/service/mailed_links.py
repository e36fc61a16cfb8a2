"""Mailed links: a single-use token and the mail that carries its link, queued together.

The token and its mail are written in one transaction (the outbox row commits with the token or
not at all); the sender is woken right after the commit. Links are built from
``settings.link_base_url`` only, never from a request, and carry the token in the fragment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING

from authgate.core.account_tokens import (
    TOKEN_LIFETIMES,
    TokenPurpose,
    new_account_token,
    password_fingerprint,
)
from authgate.http.routes import (
    CONFIRM_EMAIL_CHANGE_PAGE,
    INVITATION_PAGE,
    RESET_PASSWORD_PAGE,
    VERIFY_EMAIL_PAGE,
)
from authgate.store.records import AccountTokenRecord, OutgoingMail, UserRecord

if TYPE_CHECKING:
    from authgate.backends.mail_composer import MailComposer
    from authgate.backends.mail_sender import OutboxSender
    from authgate.config import Settings
    from authgate.core.audit import AuditEvent
    from authgate.core.clocks import Clock
    from authgate.service.audit import Audit
    from authgate.store.protocols import Store

LINK_PAGES = {
    TokenPurpose.VERIFY_EMAIL: VERIFY_EMAIL_PAGE,
    TokenPurpose.PASSWORD_RESET: RESET_PASSWORD_PAGE,
    TokenPurpose.EMAIL_CHANGE: CONFIRM_EMAIL_CHANGE_PAGE,
    TokenPurpose.INVITATION: INVITATION_PAGE,
}


# The throttle's purpose for mails a user has sent to an address that is not (yet) theirs — an
# invitation, an email change's confirmation: counted per receiving address, whoever sends.
MAIL_TO_ADDRESS = "mail_to"


def display_name(user: UserRecord) -> str:
    """How a mail greets the user (the templates greet "Hello," without a name)."""
    return user.name or ""


@dataclass(eq=False, repr=False)
class MailedLinks:
    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    mail: MailComposer
    mail_sender: OutboxSender
    audit: Audit

    def link(self, purpose: TokenPurpose, token: str) -> str:
        return f"{self.settings.link_base_url}{LINK_PAGES[purpose]}#token={token}"

    def send(
        self,
        user: UserRecord,
        purpose: TokenPurpose,
        *,
        to: str,
        values: Mapping[str, str] | None = None,
        new_email: str | None = None,
        notice: OutgoingMail | None = None,
        audit: AuditEvent | None = None,
    ) -> None:
        """Issue a ``purpose`` token bound to ``user`` as read (its email and password now) and
        mail its link to ``to`` (the mail kind is named after the purpose); ``notice`` is
        queued in the same transaction."""
        token, token_hash = new_account_token()
        now = self.clock.now()
        record = AccountTokenRecord(
            token_hash=token_hash,
            purpose=purpose,
            user_id=user.id,
            email=user.email,
            password_fingerprint=password_fingerprint(user.password_hash),
            created_at=now,
            expires_at=now + TOKEN_LIFETIMES[purpose],
            new_email=new_email,
        )
        mail = self.compose(
            purpose.value,
            to=to,
            values={
                "name": display_name(user),
                "link": self.link(purpose, token),
                **(values or {}),
            },
        )
        self.store.create_account_token(record, mail, notice=notice, audit=audit)
        self.mail_sender.notify()

    def new_token(self, purpose: TokenPurpose) -> tuple[str, str, str]:
        """A token not bound to a user (an invitation's): ``(plaintext, hash, link)``."""
        token, token_hash = new_account_token()
        return token, token_hash, self.link(purpose, token)

    def compose(self, kind: str, *, to: str, values: Mapping[str, str]) -> OutgoingMail:
        return self.mail.compose(kind, to=to, values=values)

    def send_notice(self, kind: str, *, to: str, values: Mapping[str, str]) -> None:
        """A mail that goes with no other change."""
        self.store.enqueue_mail(self.compose(kind, to=to, values=values))
        self.mail_sender.notify()
