"""The service's mail parts as ``build_service`` wires them: ``service.mail`` composes,
``service.mail_sender`` runs from ``start()`` to ``close()`` (again in a forked child), and without
SMTP mail lands in the instance folder and the log."""

from __future__ import annotations

import logging
import os
import time
import traceback
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import delete

from authgate.bootstrap import build_service
from authgate.errors import ConfigError
from authgate.service import AuthService
from authgate.store.sqlalchemy.models import OutboxMailRow
from tests.helpers import make_settings
from tests.mail_server import MailServer


def queue_and_notify(service: AuthService, to: str) -> str:
    mail = service.mail.compose(
        "password_reset", to=to, values={"link": "https://app.example.test/reset-password#token=t"}
    )
    service.store.enqueue_mail(mail)
    service.mail_sender.notify()
    return mail.id


def test_started_service_sends_queued_mail_at_once(tmp_path: Path, mail_server: MailServer) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'db'}", app_name="Example App", **mail_server.settings()
    )
    service = build_service(settings)
    try:
        service.start()
        mail_id = queue_and_notify(service, "ann@example.test")
        [received] = mail_server.wait_for(1, timeout=5)
        assert received.subject == "Reset your Example App password"
        assert received.message["Message-ID"] == f"<{mail_id}@example.test>"
        assert received.link() == "https://app.example.test/reset-password#token=t"
        assert service.mail_sender.is_running
    finally:
        service.close()
    assert not service.mail_sender.is_running


def test_a_forked_child_sends_with_its_own_thread(
    tmp_path: Path, mail_server: MailServer, pg_schema_url: str
) -> None:
    """As under ``gunicorn --preload``: the service started in the parent, a worker forked. (On
    PostgreSQL: SQLite's own locks must not cross a fork with connections open.)"""
    settings = make_settings(tmp_path, pg_schema_url, **mail_server.settings())
    service = build_service(settings)
    with service.store.engine.begin() as conn:  # the schema is shared by the session's tests
        conn.execute(delete(OutboxMailRow))
    try:
        service.start()
        pid = os.fork()
        if pid == 0:  # the child: the parent's thread does not exist here
            code = 1
            try:
                queue_and_notify(service, "child@example.test")
                mail_server.wait_for(1, timeout=10)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert ["child@example.test"] in [m.to for m in mail_server.messages()]
    finally:
        service.close()


def test_without_smtp_mail_is_logged_with_its_link_and_saved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = build_service(make_settings(tmp_path, f"sqlite:///{tmp_path / 'db'}"))
    try:
        service.start()
        with caplog.at_level(logging.INFO, logger="authgate.mail"):
            queue_and_notify(service, "dev@example.test")
            deadline = time.monotonic() + 5
            while not list((tmp_path / "mail").glob("*.eml")) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.1)
    finally:
        service.close()
    [eml] = (tmp_path / "mail").glob("*-password_reset-*.eml")
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and "reset-password#token=t" in text.get_content()
    assert "https://app.example.test/reset-password#token=t" in caplog.text
    assert service.store.count_pending_mails() == 0


def test_a_broken_template_override_is_refused_at_startup(tmp_path: Path) -> None:
    (tmp_path / "mail_templates").mkdir()
    (tmp_path / "mail_templates" / "invitation.html").write_text("{{ tenant_name | nosuchfilter }}")

    with pytest.raises(ConfigError) as caught:
        build_service(make_settings(tmp_path, f"sqlite:///{tmp_path / 'db'}"))

    assert str(tmp_path / "mail_templates" / "invitation.html") in str(caught.value)
