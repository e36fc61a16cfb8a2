"""The mailed-link flows end to end: gunicorn (two workers) on PostgreSQL, sending through a real
SMTP server process. Register → the verification mail arrives → verify; forgot → the reset mail
arrives → reset → every old session is dead in every worker → log in with the new password."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.helpers import (
    NO_REDIS_BOUND_SECONDS,
    Server,
    error_code,
    login_script,
    register,
    server_group,
    time_until_status,
    unique_email,
)
from tests.helpers import BROWSER, PASSWORD
from tests.mail_server import MailServer, ReceivedMail

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    with MailServer(tmp_path_factory.mktemp("smtp-flows"), mode="plain") as server:
        yield server


@pytest.fixture(scope="module")
def server(smtp: MailServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with server_group("postgresql", tmp_path_factory) as group:
        (started,) = group.start(workers=2, **{k: str(v) for k, v in smtp.settings().items()})
        yield started


def mail_to(
    smtp: MailServer, address: str, subject_word: str, timeout: float = 20.0
) -> ReceivedMail:
    """The first mail that arrived for ``address`` whose subject has ``subject_word``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for mail in smtp.messages():
            if address in mail.to and subject_word.casefold() in mail.subject.casefold():
                return mail
        time.sleep(0.05)
    arrived = [(m.to, m.subject) for m in smtp.messages()]
    raise AssertionError(f"no mail about {subject_word!r} for {address}: {arrived}")


def token_of(mail: ReceivedMail, page: str, server: Server) -> str:
    link = mail.link()
    prefix = f"{server.env['AUTHGATE_PUBLIC_URL']}{page}#token="
    assert link.startswith(prefix), link
    return link.removeprefix(prefix)


def test_register_verify_then_forgot_reset_and_log_in(server: Server, smtp: MailServer) -> None:
    email = unique_email("flows")
    register(server, email)

    verification = mail_to(smtp, email, "confirm your email")
    assert "text/html" in verification.raw.decode(errors="replace")
    token = token_of(verification, "/verify-email", server)
    verified = server.post("/api/auth/email/verify", json={"token": token}, headers=BROWSER)
    assert verified.status_code == 200, verified.text
    assert verified.json()["user"]["email_verified"] is True
    reused = server.post("/api/auth/email/verify", json={"token": token}, headers=BROWSER)
    assert error_code(reused) == "invalid_or_expired_token"

    old = login_script(server, email)
    me = lambda: server.get(  # noqa: E731
        "/api/auth/me", headers={"Authorization": f"Bearer {old['access_token']}"}
    )
    assert me().status_code == 200

    forgot = server.post("/api/auth/password/forgot", json={"email": email}, headers=BROWSER)
    assert forgot.status_code == 202
    reset_token = token_of(mail_to(smtp, email, "reset"), "/reset-password", server)
    started = time.perf_counter()
    reset = server.post(
        "/api/auth/password/reset",
        json={"token": reset_token, "password": NEW_PASSWORD},
        headers=BROWSER,
    )
    assert reset.status_code == 204, reset.text

    time_until_status(me, since=started, bound=NO_REDIS_BOUND_SECONDS)
    refresh = server.post("/api/auth/refresh", json={"refresh_token": old["refresh_token"]})
    assert refresh.status_code == 401
    stale = server.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    assert stale.status_code == 401
    assert login_script(server, email, NEW_PASSWORD)["access_token"]
    mail_to(smtp, email, "password was changed")  # the notice that the password changed


def test_forgot_for_an_unknown_address_sends_nothing(server: Server, smtp: MailServer) -> None:
    known, unknown = unique_email("known"), unique_email("unknown")
    register(server, known)
    answers = [
        server.post("/api/auth/password/forgot", json={"email": e}, headers=BROWSER)
        for e in (unknown, known)
    ]
    assert answers[0].status_code == answers[1].status_code == 202
    assert answers[0].content == answers[1].content
    mail_to(smtp, known, "reset")  # arrives; the unknown address's would have come first
    assert not [m for m in smtp.messages() if unknown in m.to]
