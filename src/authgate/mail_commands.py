"""``authgate mail``: send a test mail through the configured server, deliver the outbox now.

``authgate mail test --to ADDRESS`` sends directly (not through the outbox), as the server would,
and explains a failure in words with its fix; it exits 1 when the mail was not accepted.
"""

from __future__ import annotations

import click

from authgate.backends.mail_transport import (
    MailDeliveryError,
    MailFolderTransport,
    build_mail_transport,
    message_id,
)
from authgate.bootstrap import build_mail_composer, build_service
from authgate.config import load_settings
from authgate.core.clocks import SystemClock
from authgate.core.smtp_urls import parse_mail_address

__all__ = ["mail"]


class MailNotSent(click.ClickException):
    exit_code = 1


@click.group()
def mail() -> None:
    """Mail delivery: a test mail, the outbox."""


@mail.command("test")
@click.option("--to", "to", required=True, metavar="ADDRESS", help="Where to send the test mail.")
def mail_test(to: str) -> None:
    """Send a test mail to ADDRESS now, through AUTHGATE_SMTP_URL (without it: into the
    instance's mail/ folder), and say what went wrong if it was not accepted."""
    try:
        address = parse_mail_address(to)[1]
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--to") from None
    settings = load_settings()
    transport = build_mail_transport(settings)
    composed = build_mail_composer(settings, SystemClock()).compose("test", to=address, values={})
    where = transport.describe()
    click.echo(f"Sending a test mail to {address} through {where} ...")
    try:
        transport.send(composed)
    except MailDeliveryError as e:
        raise MailNotSent(f"The test mail was not sent: {e}") from None
    if isinstance(transport, MailFolderTransport):
        click.echo(
            f"Written to {transport.folder} (not sent: AUTHGATE_SMTP_URL is not set, as in "
            "development). Set AUTHGATE_SMTP_URL and AUTHGATE_MAIL_FROM to send mail."
        )
        return
    click.echo(
        f"Accepted by {where} (Message-ID {message_id(composed, settings.resolved_mail_from)}). "
        "If it does not arrive, look in the spam folder and at the server's log for that "
        "Message-ID."
    )


@mail.command("deliver")
def mail_deliver() -> None:
    """Send the outbox's due mails now (the server does this by itself every few seconds)."""
    settings = load_settings()
    service = build_service(settings)
    try:
        report = service.mail_sender.deliver_due()
        pending = service.store.count_pending_mails()
    finally:
        service.close()
    click.echo(
        f"Sent {report.sent}, to retry later {report.retrying}, given up {report.given_up}; "
        f"{pending} mail(s) still waiting."
    )
    if report.error:
        raise MailNotSent(f"Delivery stopped: {report.error}")
