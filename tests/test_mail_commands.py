"""``authgate mail test`` against a real SMTP server process (success, and each failure explained
with its fix) and without SMTP; ``authgate mail deliver`` empties the outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from authgate.bootstrap import build_service
from authgate.cli import main
from authgate.config import load_settings
from authgate.store.records import OutgoingMail
from tests.helpers import clear_authgate_environment
from tests.mail_server import MailServer, MailServerCertificates

TO = "ops@example.test"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_authgate_environment(monkeypatch)


def mail_test(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["mail", "test", "--to", TO, *args], env=env)


def env_for(tmp_path: Path, server: MailServer, **changes: Any) -> dict[str, str]:
    values = {"AUTHGATE_INSTANCE_PATH": str(tmp_path), **server.environment()}
    values.update({f"AUTHGATE_{k.upper()}": str(v) for k, v in changes.items()})
    return values


def assert_failed(result: Result, *phrases: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "The test mail was not sent" in result.output
    for phrase in phrases:
        assert phrase in result.output


def test_a_test_mail_goes_through_starttls_with_auth(
    tmp_path: Path, start_mail_server: Callable[..., MailServer]
) -> None:
    server = start_mail_server("starttls", ("mailer", "secret"))

    result = mail_test(env_for(tmp_path, server, app_name="Example App"))

    assert result.exit_code == 0, result.output
    assert f"Accepted by smtp+starttls://127.0.0.1:{server.port}" in result.output
    assert "secret" not in result.output
    [received] = server.wait_for(1)
    assert received.to == [TO] and received.tls and received.authenticated_as == "mailer"
    assert received.subject == "Test mail from Example App"
    assert received.message["Message-ID"] in result.output


def test_a_refused_connection_is_explained(tmp_path: Path, mail_server: MailServer) -> None:
    mail_server.stop()
    assert_failed(
        mail_test(env_for(tmp_path, mail_server)),
        f"connection to smtp://127.0.0.1:{mail_server.port} refused",
        "Is the SMTP server running",
    )


def test_a_wrong_password_is_explained(
    tmp_path: Path, start_mail_server: Callable[..., MailServer]
) -> None:
    server = start_mail_server("tls", ("mailer", "secret"))
    result = mail_test(
        env_for(tmp_path, server, smtp_url=server.url.replace(":secret@", ":hunter2@"))
    )
    assert_failed(result, "refused the login", "user name and password in AUTHGATE_SMTP_URL")
    assert "hunter2" not in result.output


def test_an_untrusted_certificate_is_explained(
    tmp_path: Path, start_mail_server: Callable[..., MailServer]
) -> None:
    server = start_mail_server("starttls")
    other = MailServerCertificates(tmp_path / "other").ca_file
    assert_failed(
        mail_test(env_for(tmp_path, server, smtp_ca_file=other)),
        "is not trusted",
        "AUTHGATE_SMTP_CA_FILE",
    )


def test_a_server_without_starttls_is_refused(tmp_path: Path, mail_server: MailServer) -> None:
    url = mail_server.url.replace("smtp://", "smtp+starttls://")
    assert_failed(
        mail_test(env_for(tmp_path, mail_server, smtp_url=url)), "does not offer STARTTLS"
    )
    assert mail_server.messages() == []


def test_a_refused_recipient_is_explained(tmp_path: Path, mail_server: MailServer) -> None:
    result = CliRunner().invoke(
        main,
        ["mail", "test", "--to", "refuse-permanent@example.test"],
        env=env_for(tmp_path, mail_server),
    )
    assert_failed(result, "refused the recipient (550")


def test_without_smtp_the_test_mail_goes_to_the_instance_folder(tmp_path: Path) -> None:
    result = mail_test({"AUTHGATE_INSTANCE_PATH": str(tmp_path)})

    assert result.exit_code == 0, result.output
    assert "not sent: AUTHGATE_SMTP_URL is not set" in result.output
    assert len(list((tmp_path / "mail").glob("*-test-*.eml"))) == 1


def test_an_invalid_address_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["mail", "test", "--to", "not-an-address"],
        env={"AUTHGATE_INSTANCE_PATH": str(tmp_path)},
    )
    assert result.exit_code == 2 and "--to" in result.output


def test_missing_mail_from_is_a_settings_error(tmp_path: Path, mail_server: MailServer) -> None:
    env = env_for(tmp_path, mail_server)
    del env["AUTHGATE_MAIL_FROM"]

    result = mail_test(env)

    assert result.exit_code == 2
    assert "AUTHGATE_MAIL_FROM: is required when AUTHGATE_SMTP_URL is set" in result.output


def test_deliver_sends_what_waits_in_the_outbox(tmp_path: Path, mail_server: MailServer) -> None:
    env = env_for(tmp_path, mail_server)
    service = build_service(load_settings(environ=env))
    try:
        service.store.enqueue_mail(
            OutgoingMail(
                id="c" * 32,
                kind="test",
                to=TO,
                subject="Queued",
                text="queued\n",
                html="<p>queued</p>",
                created_at=datetime.now(UTC),
            )
        )
    finally:
        service.close()

    result = CliRunner().invoke(main, ["mail", "deliver"], env=env)

    assert result.exit_code == 0, result.output
    assert "Sent 1" in result.output and "0 mail(s) still waiting" in result.output
    assert [m.subject for m in mail_server.wait_for(1)] == ["Queued"]
