"""Mail (group ``mail``): the SMTP settings, the link base URL, the templates, and the SMTP server
itself (a real aiosmtpd process: reachable, wrong password, untrusted certificate, down)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from authgate.doctor import check_mail
from tests.doctor.helpers import (
    dev_settings,
    errors,
    json_findings,
    production_keys,
    production_settings,
    run_cli,
)
from tests.doctor.helpers import only as only_finding
from tests.mail_server import MailServer

FROM = "Example <no-reply@example.test>"


def test_development_without_smtp_is_fine(tmp_path: Path) -> None:
    finding = only_finding(check_mail(dev_settings(tmp_path)), "mail.development")
    assert finding.level == "ok" and str(tmp_path / "mail") in finding.message


def test_production_without_smtp_is_a_warning(tmp_path: Path) -> None:
    finding = only_finding(check_mail(production_settings(tmp_path)), "mail.not_configured")
    assert finding.level == "warning" and "AUTHGATE_SMTP_URL" in finding.fix


def test_plain_smtp_to_another_host_warns_in_development_and_fails_production(
    tmp_path: Path,
) -> None:
    values = {"smtp_url": "smtp://relay.example.net", "mail_from": FROM}
    dev = only_finding(
        check_mail(dev_settings(tmp_path, **values), connect=False), "mail.plain_smtp"
    )
    assert dev.level == "warning" and "smtp+starttls://" in dev.fix
    prod = production_settings(tmp_path, **values)
    assert "mail.plain_smtp" in errors(check_mail(prod, connect=False))
    local = dev_settings(tmp_path, smtp_url="smtp://127.0.0.1:25", mail_from=FROM)
    assert only_finding(check_mail(local, connect=False), "mail.smtp").level == "ok"


def test_links_to_an_origin_that_may_not_call_the_api_are_a_warning(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, link_base_url="https://frontend.example.org/app")
    finding = only_finding(check_mail(settings), "mail.link_origin_not_allowed")
    assert "https://frontend.example.org" in finding.fix

    allowed = dev_settings(
        tmp_path,
        link_base_url="https://frontend.example.org/app",
        origins=("https://frontend.example.org",),
    )
    assert not [f for f in check_mail(allowed) if f.check.startswith("mail.link")]


def test_a_broken_template_override_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "mail_templates").mkdir()
    (tmp_path / "mail_templates" / "password_reset.txt").write_text("{{ link }\n")

    finding = only_finding(check_mail(dev_settings(tmp_path)), "mail.template_broken")

    assert "password_reset.txt" in finding.message


def test_a_working_template_override_is_listed(tmp_path: Path) -> None:
    (tmp_path / "mail_templates").mkdir()
    (tmp_path / "mail_templates" / "test.txt").write_text("Hello from {{ app_name }}\n")

    finding = only_finding(check_mail(dev_settings(tmp_path)), "mail.templates")

    assert finding.level == "ok" and "test.txt" in finding.message


def test_a_reachable_server_with_a_good_login_is_ok(
    tmp_path: Path, start_mail_server: Callable[..., MailServer]
) -> None:
    server = start_mail_server("starttls", ("mailer", "secret"))
    settings = dev_settings(tmp_path, **server.settings())

    finding = only_finding(check_mail(settings), "mail.smtp_reachable")

    assert finding.level == "ok"
    assert "STARTTLS" in finding.message and "mailer" in finding.message
    assert server.messages() == []  # nothing sent


def test_a_wrong_password_an_untrusted_certificate_and_a_stopped_server_are_errors(
    tmp_path: Path, start_mail_server: Callable[..., MailServer]
) -> None:
    server = start_mail_server("tls", ("mailer", "secret"))
    good = server.settings()

    wrong_password = {**good, "smtp_url": server.url.replace(":secret@", ":hunter2@")}
    finding = only_finding(
        check_mail(dev_settings(tmp_path, **wrong_password)), "mail.smtp_unreachable"
    )
    assert "refused the login" in finding.message and "hunter2" not in finding.message

    no_ca = {k: v for k, v in good.items() if k != "smtp_ca_file"}
    finding = only_finding(check_mail(dev_settings(tmp_path, **no_ca)), "mail.smtp_unreachable")
    assert "not trusted" in finding.message

    server.stop()
    finding = only_finding(check_mail(dev_settings(tmp_path, **good)), "mail.smtp_unreachable")
    assert "refused" in finding.message


def test_the_command_line_reports_the_mail_group(
    tmp_path: Path, runner: CliRunner, mail_server: MailServer
) -> None:
    env = {
        "AUTHGATE_INSTANCE_PATH": str(tmp_path),
        **mail_server.environment(),
    }
    result = run_cli(runner, ["--json"], env)

    findings = json_findings(result)
    assert findings["mail.smtp"].level == "ok"
    assert findings["mail.smtp_reachable"].level == "ok"


def test_production_plain_smtp_is_reported_once(tmp_path: Path) -> None:
    settings = production_settings(
        tmp_path,
        keys_dir=production_keys(tmp_path),
        smtp_url="smtp://relay.example.net",
        mail_from=FROM,
    )
    from authgate.doctor import check_production_refusals

    assert check_production_refusals(settings) == []  # reported by the mail group instead
