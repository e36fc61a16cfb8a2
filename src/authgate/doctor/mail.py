"""Mail: the SMTP settings, the links in mails, the templates, and the SMTP server (group ``mail``).

With ``AUTHGATE_SMTP_URL`` set, the server is contacted as a delivery would: connect, EHLO,
STARTTLS or implicit TLS with the certificate verified, and the login — no mail is sent (that is
``authgate mail test``).
"""

from __future__ import annotations

from authgate.backends.mail_composer import KINDS, SAMPLE_VALUES, MailComposer
from authgate.backends.mail_transport import MailDeliveryError, SmtpTransport
from authgate.bootstrap import build_mail_composer
from authgate.config import Settings
from authgate.core.clocks import SystemClock
from authgate.core.origins import origin_of_url, parse_origin
from authgate.doctor.findings import Finding, error_finding, ok_finding, warning_finding
from authgate.errors import ConfigError

__all__ = ["check_mail", "check_mail_templates"]


def check_mail(settings: Settings, *, connect: bool = True, timeout: float = 5.0) -> list[Finding]:
    findings = [*_check_sending(settings), *_check_links(settings)]
    findings += check_mail_templates(build_mail_composer(settings, SystemClock()))
    endpoint = settings.smtp_endpoint
    if endpoint is not None and connect:
        findings.append(_check_server(settings, timeout))
    return findings


def _check_sending(settings: Settings) -> list[Finding]:
    endpoint = settings.smtp_endpoint
    if endpoint is None:
        folder = settings.instance_path / "mail"
        if settings.is_production:
            return [
                warning_finding(
                    "mail.not_configured",
                    "AUTHGATE_SMTP_URL is not set: verification, password-reset and invitation "
                    f"mails are not sent, only written to {folder}.",
                    "Set AUTHGATE_SMTP_URL (e.g. smtp+starttls://user:password@smtp.example.com"
                    ":587) and AUTHGATE_MAIL_FROM, then run `authgate mail test --to you@...`.",
                )
            ]
        return [
            ok_finding(
                "mail.development",
                f"AUTHGATE_SMTP_URL is not set: mails are logged (with their links) and written "
                f"to {folder}, not sent — fine for development.",
            )
        ]
    where = endpoint.describe()
    if endpoint.security == "plain" and not endpoint.is_loopback:
        fix = (
            "Use smtp+starttls:// or smtps:// (your provider's TLS port), or a relay on this "
            "host (smtp://127.0.0.1:25) that forwards over TLS."
        )
        message = (
            f"AUTHGATE_SMTP_URL is plain smtp:// to {endpoint.host}: mails with password-reset "
            "links cross the network unencrypted"
        )
        if settings.is_production:
            return [error_finding("mail.plain_smtp", message + " (production refuses it).", fix)]
        return [warning_finding("mail.plain_smtp", message + ".", fix)]
    security = {
        "plain": "plain SMTP to a relay on this host",
        "starttls": "STARTTLS required, certificate verified",
        "tls": "implicit TLS, certificate verified",
    }[endpoint.security]
    return [
        ok_finding(
            "mail.smtp", f"Mail is sent through {where} ({security}) as {settings.mail_from}."
        )
    ]


def _check_links(settings: Settings) -> list[Finding]:
    base = settings.link_base_url
    origin = origin_of_url(base)
    if base == settings.public_url or origin is None:
        return []
    findings: list[Finding] = []
    if settings.is_production and origin.scheme != "https":
        findings.append(
            error_finding(
                "mail.link_base_url_http",
                f"AUTHGATE_LINK_BASE_URL is {base}: links in mails carry single-use tokens and "
                "must be https (production refuses it).",
                "Set AUTHGATE_LINK_BASE_URL to the https address of your frontend.",
            )
        )
    own = parse_origin(settings.public_url)
    if origin != own and not settings.allowlist.allows(origin.serialize()):
        findings.append(
            warning_finding(
                "mail.link_origin_not_allowed",
                f"Links in mails point to {base}, but {origin.serialize()} is not in "
                "AUTHGATE_ORIGINS: the pages there cannot post the token to authgate.",
                f"Add {origin.serialize()} to AUTHGATE_ORIGINS (or unset AUTHGATE_LINK_BASE_URL "
                "to use authgate's own pages).",
            )
        )
    return findings


def check_mail_templates(composer: MailComposer) -> list[Finding]:
    """Render every kind of mail once: an override that does not render is found now, not
    when a user asks for a password reset."""
    findings: list[Finding] = []
    for kind in KINDS:
        try:
            composer.compose(kind, to="someone@example.test", values=SAMPLE_VALUES)
        except ConfigError as e:
            findings.append(
                error_finding(
                    "mail.template_broken",
                    str(e),
                    "Fix or remove the override in "
                    f"{composer.override_dir}; `authgate doctor` renders every template.",
                )
            )
    overridden = sorted(
        path.name
        for path in (composer.override_dir.glob("*") if composer.override_dir else [])
        if path.is_file()
    )
    if not findings and overridden:
        findings.append(
            ok_finding(
                "mail.templates",
                f"Mail templates overridden from {composer.override_dir}: "
                f"{', '.join(overridden)}; every kind of mail renders.",
            )
        )
    return findings


def _check_server(settings: Settings, timeout: float) -> Finding:
    endpoint = settings.smtp_endpoint
    assert endpoint is not None
    transport = SmtpTransport(
        endpoint,
        mail_from=settings.resolved_mail_from,
        ca_file=settings.smtp_ca_file,
        timeout_seconds=min(timeout, settings.smtp_timeout_seconds),
    )
    try:
        transport.check()
    except MailDeliveryError as e:
        return error_finding(
            "mail.smtp_unreachable",
            f"Mail cannot be sent: {e}",
            "Fix AUTHGATE_SMTP_URL / AUTHGATE_SMTP_CA_FILE or the server, then try "
            "`authgate mail test --to you@example.com`. Meanwhile mails wait in the outbox.",
        )
    steps = {
        "plain": "connects",
        "starttls": "connects and upgrades with STARTTLS",
        "tls": "connects over TLS",
    }[endpoint.security]
    login = f" and accepts the login of {endpoint.username}" if endpoint.username else ""
    return ok_finding("mail.smtp_reachable", f"{endpoint.describe()} {steps}{login}.")
