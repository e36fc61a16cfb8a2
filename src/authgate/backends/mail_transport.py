"""How a rendered mail leaves the process: over SMTP, or (development) into a folder and the log.

``SmtpTransport`` speaks SMTP with ``smtplib``: plain (a local relay), STARTTLS (required: a server
that does not offer it is refused) or implicit TLS, the certificate verified against the system's
CAs or ``AUTHGATE_SMTP_CA_FILE``, optional AUTH. Every failure is translated into a
``MailDeliveryError`` that says in words what happened and what to do, and whether it is the
server's condition (an *outage*: nothing can be sent now), this mail's alone and worth retrying,
or this mail's for good (a *permanent* 5xx refusal of its recipient or content).

``MailFolderTransport`` (no SMTP URL, i.e. development) writes each mail as an ``.eml`` file under
``<instance>/mail/`` (0600) and logs its text part — with the link — as one readable block, so
that whoever runs ``scripts/serve`` can click it from the console.
"""

from __future__ import annotations

import contextlib
import logging
import os
import smtplib
import socket
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Literal, Protocol

from authgate.config import Settings
from authgate.core.smtp_urls import SmtpEndpoint, parse_mail_address
from authgate.store.records import OutgoingMail

__all__ = [
    "MailDeliveryError",
    "MailFolderTransport",
    "MailTransport",
    "SmtpTransport",
    "build_mail_transport",
    "build_message",
]

log = logging.getLogger("authgate.mail")


class MailDeliveryError(Exception):
    """A mail was not delivered. ``str()`` says why and what to do (for logs and the CLI; never
    for an HTTP client). ``outage``: the server cannot take any mail now (unreachable, TLS,
    authentication, sender refused); ``permanent``: this mail will never be accepted."""

    def __init__(self, message: str, *, outage: bool, permanent: bool = False):
        super().__init__(message)
        self.outage = outage
        self.permanent = permanent


class MailTransport(Protocol):
    def send(self, mail: OutgoingMail) -> None:
        """Deliver ``mail`` or raise ``MailDeliveryError``."""
        ...

    def describe(self) -> str:
        """Where mail goes, without secrets: ``smtps://smtp.example.com:465``."""
        ...


def message_id(mail: OutgoingMail, mail_from: str) -> str:
    """The same for every delivery of one outbox mail: a duplicate is recognisable."""
    domain = parse_mail_address(mail_from)[1].rpartition("@")[2]
    return f"<{mail.id}@{domain}>"


def build_message(mail: OutgoingMail, *, mail_from: str) -> EmailMessage:
    """``mail`` as a multipart/alternative message (text, then HTML)."""
    name, address = parse_mail_address(mail_from)
    message = EmailMessage()
    message["From"] = Address(display_name=name, addr_spec=address) if name else address
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(mail.created_at)
    message["Message-ID"] = message_id(mail, mail_from)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


class SmtpTransport:
    """One SMTP connection per mail (login mails are few; a connection is never left stale)."""

    def __init__(
        self,
        endpoint: SmtpEndpoint,
        *,
        mail_from: str,
        ca_file: Path | None = None,
        timeout_seconds: float = 10.0,
    ):
        self.endpoint = endpoint
        self.mail_from = mail_from
        self._envelope_from = parse_mail_address(mail_from)[1]
        self._ca_file = ca_file
        self._timeout = timeout_seconds

    def describe(self) -> str:
        return self.endpoint.describe()

    def send(self, mail: OutgoingMail) -> None:
        message = build_message(mail, mail_from=self.mail_from)
        with self._errors_explained(), self.connect() as smtp:
            smtp.send_message(message, from_addr=self._envelope_from, to_addrs=[mail.to])

    def check(self) -> None:
        """Connect, greet, secure and log in, send nothing: ``MailDeliveryError`` if any fails."""
        with self._errors_explained(), self.connect() as smtp:
            smtp.noop()

    def tls_context(self) -> ssl.SSLContext:
        cafile = str(self._ca_file) if self._ca_file else None
        return ssl.create_default_context(cafile=cafile)

    def connect(self) -> smtplib.SMTP:
        """A connection, greeted, secured as the URL says, logged in (raw smtplib errors)."""
        endpoint = self.endpoint
        smtp: smtplib.SMTP
        if endpoint.security == "tls":
            smtp = smtplib.SMTP_SSL(
                endpoint.host, endpoint.port, timeout=self._timeout, context=self.tls_context()
            )
        else:
            smtp = smtplib.SMTP(endpoint.host, endpoint.port, timeout=self._timeout)
        try:
            smtp.ehlo()
            if endpoint.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise MailDeliveryError(
                        f"{endpoint.describe()} does not offer STARTTLS, and smtp+starttls:// "
                        "requires it (mail is never sent unencrypted). Use smtps:// if the "
                        "server speaks TLS from the start (usually port 465), or the server's "
                        "STARTTLS port (usually 587).",
                        outage=True,
                    )
                smtp.starttls(context=self.tls_context())
                smtp.ehlo()
            if endpoint.username:
                if not smtp.has_extn("auth"):
                    raise MailDeliveryError(
                        f"{endpoint.describe()} offers no AUTH (login) on this connection, but "
                        "AUTHGATE_SMTP_URL has a user name. Many servers offer AUTH only over "
                        "TLS: use smtp+starttls:// or smtps://, or drop the credentials for a "
                        "relay that needs none.",
                        outage=True,
                    )
                smtp.login(endpoint.username, endpoint.password or "")
        except BaseException:
            _close_quietly(smtp)
            raise
        return smtp

    def _errors_explained(self) -> _SmtpErrors:
        return _SmtpErrors(self.endpoint, self._timeout)


class _SmtpErrors:
    """Translates what ``smtplib``, ``ssl`` and sockets raise into ``MailDeliveryError``."""

    def __init__(self, endpoint: SmtpEndpoint, timeout: float):
        self.endpoint = endpoint
        self.timeout = timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> Literal[False]:
        if error is None or isinstance(error, MailDeliveryError):
            return False
        if isinstance(error, Exception):
            translated = explain_smtp_error(error, self.endpoint, timeout=self.timeout)
            if translated is not None:
                raise translated from error
        return False


def explain_smtp_error(
    error: Exception, endpoint: SmtpEndpoint, *, timeout: float
) -> MailDeliveryError | None:
    """``error`` in words, with the fix; None for an error that is not about sending mail."""
    where = endpoint.describe()
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(error.recipients.values()), (0, b""))
        permanent = 500 <= code < 600
        return MailDeliveryError(
            f"{where} refused the recipient ({code} {_text(reply)}): "
            + (
                "the address does not accept mail; giving up on this mail."
                if permanent
                else "a temporary refusal; trying again later."
            ),
            outage=False,
            permanent=permanent,
        )
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return MailDeliveryError(
            f"{where} refused the login ({error.smtp_code} {_text(error.smtp_error)}): check "
            "the user name and password in AUTHGATE_SMTP_URL (URL-encode special characters, "
            "e.g. %40 for @), and that the account may send mail.",
            outage=True,
        )
    if isinstance(error, smtplib.SMTPSenderRefused):
        return MailDeliveryError(
            f"{where} refused the sender {error.sender} ({error.smtp_code} "
            f"{_text(error.smtp_error)}): AUTHGATE_MAIL_FROM must be an address this server "
            "(and this login) may send as.",
            outage=True,
        )
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return MailDeliveryError(f"{where} does not support what was asked: {error}", outage=True)
    if isinstance(error, smtplib.SMTPDataError | smtplib.SMTPResponseException):
        code = error.smtp_code
        permanent = isinstance(error, smtplib.SMTPDataError) and 500 <= code < 600
        return MailDeliveryError(
            f"{where} answered {code} {_text(error.smtp_error)}"
            + ("; the server refuses this mail, giving up on it." if permanent else "."),
            outage=not isinstance(error, smtplib.SMTPDataError),
            permanent=permanent,
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        return MailDeliveryError(
            f"the TLS certificate of {where} is not trusted ({error.verify_message}): if the "
            "server uses a private CA, set AUTHGATE_SMTP_CA_FILE to its certificate (PEM); "
            "otherwise fix the server's certificate and host name. Mail is never sent to an "
            "unverified server.",
            outage=True,
        )
    if isinstance(error, ssl.SSLError):
        return MailDeliveryError(
            f"the TLS handshake with {where} failed ({error.reason or error}): check the scheme "
            "— smtps:// is TLS from the first byte (usually port 465), smtp+starttls:// "
            "upgrades a plain connection (usually port 587).",
            outage=True,
        )
    if isinstance(error, ConnectionRefusedError):
        return MailDeliveryError(
            f"connection to {where} refused: nothing listens there. Is the SMTP server "
            "running, and are host and port in AUTHGATE_SMTP_URL right?",
            outage=True,
        )
    if isinstance(error, socket.gaierror):
        return MailDeliveryError(
            f"the host {endpoint.host} of AUTHGATE_SMTP_URL is not found ({error.strerror}).",
            outage=True,
        )
    if isinstance(error, TimeoutError):
        return MailDeliveryError(
            f"{where} did not answer within {timeout:g} s: a firewall may drop the "
            "connection, or the server expects another scheme (smtps:// for implicit TLS, "
            "smtp+starttls:// or smtp:// for a plain start).",
            outage=True,
        )
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return MailDeliveryError(
            f"{where} closed the connection unexpectedly ({error or 'no reason given'}): if it "
            "expects TLS from the first byte (usually port 465), use smtps://.",
            outage=True,
        )
    if isinstance(error, smtplib.SMTPException | OSError):
        return MailDeliveryError(f"sending through {where} failed: {error}", outage=True)
    return None


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:200]


def _close_quietly(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()


class MailFolderTransport:
    """Development delivery: an ``.eml`` file per mail, and the text part in the log."""

    def __init__(self, folder: Path, *, mail_from: str, log_bodies: bool = True):
        self.folder = folder
        self.mail_from = mail_from
        self._log_bodies = log_bodies

    def describe(self) -> str:
        return f"the folder {self.folder} (no AUTHGATE_SMTP_URL)"

    def send(self, mail: OutgoingMail) -> None:
        message = build_message(mail, mail_from=self.mail_from)
        stamp = mail.created_at.strftime("%Y%m%dT%H%M%S")
        path = self.folder / f"{stamp}-{mail.kind}-{mail.id}.eml"
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(message.as_bytes())
        except OSError as e:
            raise MailDeliveryError(
                f"could not write the mail to {path}: {e.strerror}", outage=True
            ) from e
        if self._log_bodies:
            bar = "-" * 72
            log.info(
                "mail to %s (not sent: no AUTHGATE_SMTP_URL), saved as %s\n%s\nSubject: %s\n\n%s%s",
                mail.to,
                path,
                bar,
                mail.subject,
                mail.text.rstrip() + "\n",
                bar,
            )
        else:
            log.warning(
                "%s mail to %s written to %s, not sent: AUTHGATE_SMTP_URL is not set",
                mail.kind,
                mail.to,
                path,
            )


def build_mail_transport(settings: Settings) -> MailTransport:
    """SMTP when ``AUTHGATE_SMTP_URL`` is set; otherwise the instance's ``mail/`` folder (whose
    log shows each mail's text, with its link, in development only)."""
    endpoint = settings.smtp_endpoint
    if endpoint is None:
        return MailFolderTransport(
            settings.instance_path / "mail",
            mail_from=settings.resolved_mail_from,
            log_bodies=not settings.is_production,
        )
    return SmtpTransport(
        endpoint,
        mail_from=settings.resolved_mail_from,
        ca_file=settings.smtp_ca_file,
        timeout_seconds=settings.smtp_timeout_seconds,
    )
