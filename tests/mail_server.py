"""A real SMTP server for the tests: aiosmtpd in a process of its own, on a free 127.0.0.1 port.

``MailServer`` starts, stops and restarts it (on the same port, so a configured
``AUTHGATE_SMTP_URL`` stays right across an outage) in one of three modes:

- ``plain``: no TLS at all (a local relay);
- ``starttls``: STARTTLS offered and required before MAIL, with a certificate from a test CA
  (``trustme``) for 127.0.0.1 and localhost; point ``AUTHGATE_SMTP_CA_FILE`` at ``ca_file``;
- ``tls``: implicit TLS (smtps) with the same certificate.

With ``auth=("user", "password")`` AUTH (PLAIN and LOGIN, over TLS only) is required before MAIL.
Recipients whose local part starts with ``refuse-permanent`` get ``550``, with
``refuse-temporary`` ``450``. Every accepted message is written as a JSON file in ``maildir``
(envelope and raw data), read back with ``messages()`` / ``wait_for(count)``.

Run directly (``python tests/mail_server.py --port ... --maildir ...``) it is the server process.

    with MailServer(tmp_path, mode="starttls", auth=("ann", "secret")) as server:
        settings = make_settings(..., smtp_url=server.url, smtp_ca_file=server.ca_file,
                                 mail_from="Test <no-reply@example.test>")
        ...
        [mail] = server.wait_for(1)
        assert mail.to == ["ann@example.test"] and "token=" in mail.text
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import quote

Mode = Literal["plain", "starttls", "tls"]
HOST = "127.0.0.1"
_SCHEMES = {"plain": "smtp", "starttls": "smtp+starttls", "tls": "smtps"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ReceivedMail:
    """One message the server accepted."""

    mail_from: str
    to: list[str]
    raw: bytes
    authenticated_as: str | None
    tls: bool

    @property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(self.raw))

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return "" if part is None else cast(EmailMessage, part).get_content()

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return "" if part is None else cast(EmailMessage, part).get_content()

    def link(self) -> str:
        """The first http(s) link of the text part (the one a user would click)."""
        for word in self.text.split():
            if word.startswith(("http://", "https://")):
                return word
        raise AssertionError(f"no link in the mail {self.subject!r}:\n{self.text}")


class MailServerCertificates:
    """A test CA and a server certificate for 127.0.0.1 / localhost, as PEM files."""

    def __init__(self, folder: Path):
        import trustme

        folder.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = folder / "ca.pem"
        self.cert_file = folder / "server.pem"
        self.key_file = folder / "server.key"
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert.cert_chain_pems[0].write_to_path(str(self.cert_file))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(self.cert_file), append=True)
        cert.private_key_pem.write_to_path(str(self.key_file))


class MailServer:
    """aiosmtpd as a child process; a context manager that starts and (always) stops it."""

    def __init__(
        self,
        folder: Path,
        *,
        mode: Mode = "plain",
        auth: tuple[str, str] | None = None,
        port: int | None = None,
    ):
        self.folder = folder
        self.mode: Mode = mode
        self.auth = auth
        self.port = port or free_port()
        self.maildir = folder / f"smtp-{self.port}"
        self.maildir.mkdir(parents=True, exist_ok=True)
        self.certificates = MailServerCertificates(folder / "smtp-tls") if mode != "plain" else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log = folder / f"smtp-{self.port}.log"

    # Settings for the code under test --------------------------------------------------------

    @property
    def url(self) -> str:
        """``AUTHGATE_SMTP_URL`` for this server (with its credentials when AUTH is on)."""
        credentials = ""
        if self.auth is not None:
            credentials = f"{quote(self.auth[0], safe='')}:{quote(self.auth[1], safe='')}@"
        return f"{_SCHEMES[self.mode]}://{credentials}{HOST}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """``AUTHGATE_SMTP_CA_FILE`` (None in plain mode)."""
        return self.certificates.ca_file if self.certificates else None

    def settings(self) -> dict[str, Any]:
        """Settings keys (lower case) pointing at this server."""
        values: dict[str, Any] = {
            "smtp_url": self.url,
            "mail_from": "authgate tests <no-reply@example.test>",
            "smtp_timeout_seconds": 5.0,
        }
        if self.ca_file is not None:
            values["smtp_ca_file"] = self.ca_file
        return values

    def environment(self) -> dict[str, str]:
        """The same as ``AUTHGATE_*`` environment variables (for a server process)."""
        return {f"AUTHGATE_{k.upper()}": str(v) for k, v in self.settings().items()}

    # Lifecycle -------------------------------------------------------------------------------

    def start(self, *, timeout: float = 15.0) -> MailServer:
        if self.is_running:
            return self
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--port",
            str(self.port),
            "--mode",
            self.mode,
            "--maildir",
            str(self.maildir),
        ]
        if self.certificates is not None:
            command += ["--cert", str(self.certificates.cert_file)]
            command += ["--key", str(self.certificates.key_file)]
        env = dict(os.environ)
        if self.auth is not None:
            env["TEST_SMTP_AUTH"] = f"{self.auth[0]}:{self.auth[1]}"
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the SMTP server exited:\n{self._log.read_text()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the SMTP server did not listen on {self.port} within {timeout} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> MailServer:
        self.stop()
        return self.start()

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> MailServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # What arrived ----------------------------------------------------------------------------

    def messages(self) -> list[ReceivedMail]:
        """Every accepted message so far, in arrival order."""
        received = []
        for path in sorted(self.maildir.glob("*.json")):
            data = json.loads(path.read_text())
            received.append(
                ReceivedMail(
                    mail_from=data["mail_from"],
                    to=data["rcpt_tos"],
                    raw=data["data"].encode("utf-8", "surrogateescape"),
                    authenticated_as=data["login"],
                    tls=data["tls"],
                )
            )
        return received

    def wait_for(self, count: int, *, timeout: float = 15.0) -> list[ReceivedMail]:
        """The first ``count`` messages once that many arrived (AssertionError after
        ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.messages()
            if len(received) >= count:
                return received
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(received)} of {count} mails arrived in {timeout} s")
            time.sleep(0.05)

    def clear(self) -> None:
        for path in self.maildir.glob("*.json"):
            path.unlink()


# The server process --------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> None:  # pragma: no cover - runs in the child process
    import asyncio
    import ssl

    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

    maildir = Path(args.maildir)
    credentials = os.environ.get("TEST_SMTP_AUTH")

    class Handler:
        async def handle_RCPT(
            self,
            server: SMTP,
            session: Session,
            envelope: Envelope,
            address: str,
            rcpt_options: list[str],
        ) -> str:
            local = address.partition("@")[0]
            if local.startswith("refuse-permanent"):
                return "550 5.1.1 No such user here"
            if local.startswith("refuse-temporary"):
                return "450 4.2.0 Mailbox busy, try again later"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            data = envelope.original_content or b""
            login = session.login_data
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": data.decode("utf-8", "surrogateescape"),
                "login": login.decode() if isinstance(login, bytes) else None,
                "tls": session.ssl is not None or args.mode == "tls",
            }
            name = f"{time.time_ns():020d}-{uuid.uuid4().hex}"
            tmp = maildir / f"{name}.tmp"
            tmp.write_text(json.dumps(record))
            tmp.rename(maildir / f"{name}.json")
            return "250 Message accepted for delivery"

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        if credentials is not None and isinstance(data, LoginPassword):
            user, _, password = credentials.partition(":")
            if data.login == user.encode() and data.password == password.encode():
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)

    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    def factory() -> SMTP:
        return SMTP(
            Handler(),
            hostname="mail.test",
            tls_context=context if args.mode == "starttls" else None,
            require_starttls=args.mode == "starttls",
            authenticator=authenticator if credentials else None,
            auth_required=credentials is not None,
            auth_require_tls=args.mode != "tls",
        )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            factory,
            host=HOST,
            port=args.port,
            ssl=context if args.mode == "tls" else None,
            reuse_address=True,
        )
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(main())


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("plain", "starttls", "tls"), default="plain")
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    _serve(parser.parse_args())
