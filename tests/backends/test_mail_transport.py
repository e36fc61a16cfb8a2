"""Mail transports against a real SMTP server process (aiosmtpd, ``tests/mail_server.py``): every
mode, AUTH, the certificate check, and each failure explained in words; the development folder."""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from authgate.backends.mail_transport import (
    MailDeliveryError,
    MailFolderTransport,
    SmtpTransport,
    build_mail_transport,
)
from authgate.core.smtp_urls import parse_smtp_url
from authgate.store.records import OutgoingMail
from tests.helpers import make_settings
from tests.mail_server import MailServer, MailServerCertificates

FROM = "Example App <no-reply@example.test>"
WHEN = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


def outgoing(to: str = "ann@example.test", mail_id: str = "a" * 32) -> OutgoingMail:
    return OutgoingMail(
        id=mail_id,
        kind="password_reset",
        to=to,
        subject="Reset your Example App password",
        text="Open https://app.example.test/reset-password#token=secret-token\n",
        html='<p><a href="https://app.example.test/reset-password#token=secret-token">Reset</a></p>',
        created_at=WHEN,
    )


def transport_for(
    server: MailServer, *, url: str | None = None, ca_file: Path | None = None, timeout: float = 5
) -> SmtpTransport:
    return SmtpTransport(
        parse_smtp_url(url or server.url),
        mail_from=FROM,
        ca_file=ca_file or server.ca_file,
        timeout_seconds=timeout,
    )


@pytest.mark.parametrize(
    ("mode", "auth"),
    [("plain", None), ("starttls", ("mailer", "p@ss:word/1")), ("tls", ("mailer", "secret"))],
)
def test_each_mode_delivers_a_multipart_mail(
    start_mail_server: Callable[..., MailServer], mode: str, auth: tuple[str, str] | None
) -> None:
    server = start_mail_server(mode, auth)

    transport_for(server).send(outgoing())

    [received] = server.wait_for(1)
    assert received.to == ["ann@example.test"]
    assert received.mail_from == "no-reply@example.test"
    assert received.tls is (mode != "plain")
    assert received.authenticated_as == (auth[0] if auth else None)
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["From"] == FROM
    assert message["To"] == "ann@example.test"
    assert message["Subject"] == "Reset your Example App password"
    assert parsedate_to_datetime(message["Date"]) == WHEN
    assert message["Message-ID"] == f"<{'a' * 32}@example.test>"
    assert received.link() == "https://app.example.test/reset-password#token=secret-token"
    assert 'href="https://app.example.test/reset-password#token=secret-token"' in received.html


def test_the_message_id_is_the_same_for_every_delivery_of_one_mail(
    mail_server: MailServer,
) -> None:
    transport = transport_for(mail_server)
    transport.send(outgoing())
    transport.send(outgoing())
    transport.send(outgoing(mail_id="b" * 32))

    ids = [m.message["Message-ID"] for m in mail_server.wait_for(3)]
    assert ids[0] == ids[1] != ids[2]


def test_a_wrong_password_is_explained(start_mail_server: Callable[..., MailServer]) -> None:
    server = start_mail_server("starttls", ("mailer", "right"))
    wrong = server.url.replace(":right@", ":wrong@")

    with pytest.raises(MailDeliveryError) as caught:
        transport_for(server, url=wrong).send(outgoing())

    assert "refused the login (535" in str(caught.value)
    assert "user name and password in AUTHGATE_SMTP_URL" in str(caught.value)
    assert caught.value.outage and not caught.value.permanent
    assert server.messages() == []


def test_a_certificate_from_another_ca_is_refused_and_explained(
    start_mail_server: Callable[..., MailServer], tmp_path: Path
) -> None:
    server = start_mail_server("tls", ("mailer", "secret"))
    other_ca = MailServerCertificates(tmp_path / "other-ca").ca_file

    for ca_file in (other_ca, None):  # another CA; the system's CAs
        transport = SmtpTransport(
            parse_smtp_url(server.url), mail_from=FROM, ca_file=ca_file, timeout_seconds=5
        )
        with pytest.raises(MailDeliveryError) as caught:
            transport.send(outgoing())
        assert "TLS certificate of smtps://127.0.0.1" in str(caught.value)
        assert "is not trusted" in str(caught.value)
        assert "AUTHGATE_SMTP_CA_FILE" in str(caught.value)
    assert server.messages() == []


def test_starttls_is_required_when_the_url_says_so(mail_server: MailServer) -> None:
    """A server (or a man in the middle) that does not offer STARTTLS gets nothing."""
    url = mail_server.url.replace("smtp://", "smtp+starttls://")

    with pytest.raises(MailDeliveryError) as caught:
        transport_for(mail_server, url=url).send(outgoing())

    assert "does not offer STARTTLS" in str(caught.value)
    assert mail_server.messages() == []


def test_credentials_are_never_sent_without_tls(
    start_mail_server: Callable[..., MailServer],
) -> None:
    server = start_mail_server("starttls", ("mailer", "secret"))
    plain = server.url.replace("smtp+starttls://", "smtp://")

    with pytest.raises(MailDeliveryError) as caught:
        transport_for(server, url=plain).send(outgoing())

    assert "offers no AUTH" in str(caught.value)


def test_implicit_tls_against_a_plain_server_is_explained(mail_server: MailServer) -> None:
    url = mail_server.url.replace("smtp://", "smtps://")

    with pytest.raises(MailDeliveryError) as caught:
        transport_for(mail_server, url=url).send(outgoing())

    assert "TLS handshake with smtps://" in str(caught.value)
    assert "smtp+starttls://" in str(caught.value)


def test_a_refused_connection_is_explained(mail_server: MailServer) -> None:
    mail_server.stop()

    with pytest.raises(MailDeliveryError) as caught:
        transport_for(mail_server).send(outgoing())

    assert f"connection to smtp://127.0.0.1:{mail_server.port} refused" in str(caught.value)
    assert "Is the SMTP server running" in str(caught.value)
    assert caught.value.outage


def test_a_recipient_refused_for_good_is_permanent_a_busy_one_temporary(
    mail_server: MailServer,
) -> None:
    transport = transport_for(mail_server)

    with pytest.raises(MailDeliveryError) as permanent:
        transport.send(outgoing(to="refuse-permanent@example.test"))
    with pytest.raises(MailDeliveryError) as temporary:
        transport.send(outgoing(to="refuse-temporary@example.test"))

    assert "refused the recipient (550" in str(permanent.value)
    assert permanent.value.permanent and not permanent.value.outage
    assert "refused the recipient (450" in str(temporary.value)
    assert not temporary.value.permanent and not temporary.value.outage
    assert mail_server.messages() == []


def test_check_logs_in_without_sending(start_mail_server: Callable[..., MailServer]) -> None:
    server = start_mail_server("starttls", ("mailer", "secret"))

    transport_for(server).check()

    with pytest.raises(MailDeliveryError):
        transport_for(server, url=server.url.replace(":secret@", ":nope@")).check()
    assert server.messages() == []


def test_without_smtp_mail_goes_to_the_instance_folder_and_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db'}")
    transport = build_mail_transport(settings)
    assert isinstance(transport, MailFolderTransport)

    with caplog.at_level(logging.INFO, logger="authgate.mail"):
        transport.send(outgoing())

    [path] = (tmp_path / "mail").glob("*.eml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert b"Message-ID: <" in path.read_bytes()
    [record] = [r for r in caplog.records if r.name == "authgate.mail"]
    assert record.levelno == logging.INFO
    logged = record.getMessage()
    assert "https://app.example.test/reset-password#token=secret-token" in logged
    assert str(path) in logged and "ann@example.test" in logged


def test_in_production_without_smtp_the_body_is_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    transport = MailFolderTransport(tmp_path / "mail", mail_from=FROM, log_bodies=False)

    with caplog.at_level(logging.INFO, logger="authgate.mail"):
        transport.send(outgoing())

    assert "secret-token" not in caplog.text
    assert "not sent: AUTHGATE_SMTP_URL is not set" in caplog.text
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
