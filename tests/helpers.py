"""What the tests share that is not a fixture: constants, settings and apps built here, requests
made through the Flask test client, service-level shortcuts, and small encoders.

Fixtures stay in the conftest files (which import from here). The doctor tests have their own
``tests/doctor/helpers.py``, and the end-to-end tests (real servers) ``tests/e2e/helpers.py``.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from authgate import AuthGate, current_user, token_required
from authgate.backends.oauth_providers import ProviderInfo
from authgate.config import Settings
from authgate.core.clocks import SystemClock
from authgate.core.oauth import ExternalProfile, FlowSecrets, ResponseIssuer
from authgate.service import AuthService, ClientInfo, Principal
from authgate.store.records import UserRecord
from authgate.store.sqlalchemy.engines import events_engine

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
FRONTEND = "http://localhost:4100"
PUBLIC_URL = "http://localhost:8086"
# A key-encryption key for tests in production mode (AUTHGATE_KEY_ENCRYPTION_KEY).
KEY_ENCRYPTION_KEY = "FXhJLkGT6FKNr9vCvIzqq99xXvNmSGulpOgpO3NZIeI"
PASSWORD = "correct horse battery staple"
BROWSER = {"Origin": FRONTEND, "X-Requested-With": "fetch"}


def pg_base_url() -> str:
    return os.environ.get("AUTHGATE_TEST_DATABASE_URL", DEFAULT_PG_URL)


def free_port() -> int:
    """A port nothing listens on right now (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command_environment(instance_path: Path, database_url: str) -> dict[str, str]:
    """The environment of an ``authgate`` command a test runs (click's ``CliRunner``): an
    instance folder, the test database and the public URL, nothing else."""
    return {
        "AUTHGATE_INSTANCE_PATH": str(instance_path),
        "AUTHGATE_DATABASE_URL": database_url,
        "AUTHGATE_PUBLIC_URL": PUBLIC_URL,
    }


def clear_authgate_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every ``AUTHGATE_*`` variable but the test suite's own ``AUTHGATE_TEST_*``."""
    for name in list(os.environ):
        if name.startswith("AUTHGATE_") and not name.startswith("AUTHGATE_TEST_"):
            monkeypatch.delenv(name)


def b64url(data: bytes) -> str:
    """Base64url without padding, as in a JWT."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(segment: str) -> bytes:
    """The inverse of ``b64url``: the padding put back, then decoded."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


# Settings, clock, apps -----------------------------------------------------------------------


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "instance_path": tmp_path,
        "database_url": database_url,
        "public_url": PUBLIC_URL,
        "origins": (FRONTEND,),
    }
    values.update(overrides)
    return Settings(**values)


class StepClock(SystemClock):
    """Real time plus an offset that tests can move forward (no sleeping)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return super().now() + timedelta(seconds=self.offset)

    def timestamp(self) -> float:
        return super().timestamp() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def make_app(service: AuthService) -> Flask:
    app = Flask("testapp")
    app.config["TESTING"] = True
    AuthGate(app, service=service)

    @app.get("/api/notes")
    @token_required()
    def notes() -> dict[str, str]:
        return {"owner": current_user.email}

    @app.delete("/api/notes/<note_id>")
    @token_required(roles=["admin"])
    def delete_note(note_id: str) -> tuple[str, int]:
        return "", 204

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    return app


# Requests through the Flask test client ------------------------------------------------------


def register(
    client: FlaskClient, email: str = "ada@example.com", password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = client.post(
        "/api/auth/register", json={"email": email, "password": password, **extra}, headers=BROWSER
    )
    assert response.status_code == 201, response.json
    return response.json["user"]  # type: ignore[index,no-any-return]


def login(client: FlaskClient, login: str = "ada@example.com", password: str = PASSWORD) -> str:
    """Log in as a script (no Origin) and return the access token."""
    response = client.post("/api/auth/login", json={"login": login, "password": password})
    assert response.status_code == 200, response.json
    return response.json["access_token"]  # type: ignore[index,no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_code(response: Any) -> str:
    """The ``error.code`` of a test client's JSON error response."""
    return response.json["error"]["code"]  # type: ignore[no-any-return]


def make_admin(service: AuthService, user_id: str) -> None:
    from authgate.store.records import UserStatus

    service.store.update_access(
        user_id, roles=["user", "admin"], status=UserStatus.ACTIVE, now=service.clock.now()
    )
    service.cache.users.pop(user_id)


# Tenants and API tokens ---------------------------------------------------------------------

APP_SCOPES = ("chat:write", "chat:read")  # registered by the app, beside the built-in ones


def make_tenant_app(service: AuthService) -> Flask:
    """``make_app`` plus views declaring scopes, a resource, and tenant roles.

    Use with settings that register ``APP_SCOPES`` (``make_settings(..., api_token_scopes=...)``).
    """
    from authgate import current_principal, current_tenant

    app = make_app(service)

    @app.post("/api/chat")
    @token_required(scopes=["chat:write"])
    def chat() -> dict[str, Any]:
        token = current_principal.api_token
        return {"user": current_user.email, "token_id": token.id if token else None}

    @app.get("/dialogs/<dialog_id>")
    @token_required(resource=lambda dialog_id: f"dialog:{dialog_id}")
    def dialog(dialog_id: str) -> dict[str, str]:
        return {"dialog": dialog_id, "user": current_user.email}

    @app.get("/api/t/<tenant_id>/things")
    @token_required(tenant_roles=["admin", "owner"])
    def tenant_things(tenant_id: str) -> dict[str, str]:
        return {"tenant_id": current_tenant.tenant_id, "role": current_tenant.role.value}

    @app.get("/api/t/<tenant_id>/docs")
    @token_required(scopes=["read"])
    def tenant_docs(tenant_id: str) -> dict[str, str]:
        return {"tenant_id": current_tenant.tenant_id, "role": current_tenant.role.value}

    @app.get("/api/my-tenant")
    @token_required(tenant_roles=["owner", "admin", "member", "viewer"])
    def my_tenant() -> dict[str, str]:
        """No tenant in the URL: an API token's own tenant is the one in scope."""
        return {"tenant_id": current_tenant.tenant_id, "role": current_tenant.role.value}

    return app


def create_token(client: FlaskClient, session_token: str, **fields: Any) -> dict[str, Any]:
    """POST /api/tokens with a login session; the 201 body (with the one-time ``token``)."""
    body: dict[str, Any] = {"name": "script", "scopes": ["read"], **fields}
    response = client.post("/api/tokens", json=body, headers=bearer(session_token))
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[return-value]


def create_tenant(client: FlaskClient, session_token: str, name: str = "Team") -> dict[str, Any]:
    response = client.post("/api/tenants", json={"name": name}, headers=bearer(session_token))
    assert response.status_code == 201, response.json
    return response.json["tenant"]  # type: ignore[index,no-any-return]


def add_member(
    client: FlaskClient, session_token: str, tenant_id: str, email: str, role: str = "member"
) -> dict[str, Any]:
    response = client.post(
        f"/api/tenants/{tenant_id}/members",
        json={"email": email, "role": role},
        headers=bearer(session_token),
    )
    assert response.status_code == 201, response.json
    return response.json["member"]  # type: ignore[index,no-any-return]


def signed_in(client: FlaskClient, email: str) -> tuple[dict[str, Any], str]:
    """Register ``email`` and log in: ``(user, access token)``."""
    user = register(client, email)
    return user, login(client, email)


# The service called directly -----------------------------------------------------------------


def new_user(service: AuthService, email: str) -> UserRecord:
    return service.accounts.register(email=email, password=PASSWORD)


def session_of(service: AuthService, user: UserRecord) -> Principal:
    issued = service.sessions.login(user.email, PASSWORD, ClientInfo())
    return service.authenticate(issued.access_token, "bearer")


def token_of(service: AuthService, plaintext: str) -> Principal:
    return service.authenticate(plaintext, "bearer")


def personal_id(service: AuthService, user: UserRecord) -> str:
    tenant_id = service.store.personal_tenant_id(user.id)
    assert tenant_id is not None
    return tenant_id


@contextmanager
def count_sql(service: AuthService) -> Iterator[list[str]]:
    """SQL statements executed by this thread (the revocation poller runs in another).

    Not the ``BEGIN`` that opens a transaction on SQLite (``store/sqlalchemy/engines.py``):
    PostgreSQL's driver sends its own unseen, and a transaction that runs a query shows it."""
    statements: list[str] = []
    me = threading.get_ident()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == me and not statement.startswith("BEGIN"):
            statements.append(statement)

    engine = events_engine(service.store.engine)  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


# "Log in with ...": a provider client that answers what the test says ------------------------


class ScriptedProvider:
    """Says whoever ``profile`` is logged in, and counts the codes it was asked to exchange.
    Its ``issuer`` rule (RFC 9207) is that of a provider without a known issuer unless a test
    sets another."""

    def __init__(self, name: str) -> None:
        self.info = ProviderInfo(name, name.title())
        self.profile = ExternalProfile("sub-1", "ada@example.com", True, "Ada", None)
        self.issuer = ResponseIssuer(None)
        self.exchanged: list[str] = []

    def authorization_url(self, *, redirect_uri: str, flow: FlowSecrets) -> str:
        return f"https://idp.example/authorize?state={flow.state}"

    def response_issuer(self) -> ResponseIssuer:
        return self.issuer

    def fetch_profile(self, *, code: str, redirect_uri: str, flow: FlowSecrets) -> ExternalProfile:
        self.exchanged.append(code)
        return self.profile


PROVIDERS = {
    "corp": {"issuer": "https://idp.example", "client_id": "c", "client_secret": "s"},
    "trusted": {
        "issuer": "https://idp.example",
        "client_id": "c",
        "client_secret": "s",
        "trust_email": True,
    },
}


# Images ---------------------------------------------------------------------------------------


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims ``width`` x ``height`` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def has_ipv6_loopback() -> bool:
    """Whether this machine can listen on ``[::1]`` (some containers have no IPv6)."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


# Mail in the outbox --------------------------------------------------------------------------
#
# A sent (or given-up) mail keeps no body in the outbox: its link carries a live token. Without
# AUTHGATE_SMTP_URL the sender writes each mail as ``<instance>/mail/<time>-<kind>-<id>.eml``,
# so a sent mail's text is read from there.


def eml_mail(path: Path) -> dict[str, Any] | None:
    """A mail the development transport wrote: ``kind``, ``to``, ``subject``, ``text``,
    ``html``; None while the file is still being written."""
    from email import policy
    from email.message import EmailMessage
    from email.parser import BytesParser

    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    text, html = (message.get_body(preferencelist=(kind,)) for kind in ("plain", "html"))
    if not isinstance(text, EmailMessage) or not isinstance(html, EmailMessage):
        return None
    return {
        "kind": path.stem.split("-")[1],
        "to": str(message["To"]),
        "subject": str(message["Subject"]),
        "text": text.get_content(),
        "html": html.get_content(),
    }


def folder_mails(folder: Path) -> dict[str, dict[str, Any]]:
    """The mails the development transport wrote to ``folder`` (complete ones), by outbox id,
    oldest first."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name)):
        mail = eml_mail(path)
        if mail is not None:
            found[path.stem.rpartition("-")[2]] = mail
    return found


def queued_mails(service: AuthService, kind: str | None = None) -> list[dict[str, Any]]:
    """The mails in the outbox (after the background work queued so far has run), oldest
    first: ``kind``, ``to``, ``subject``, ``text``, ``html``; the bodies of one already sent
    from the ``.eml`` file the development transport wrote ("" if it went elsewhere)."""
    from sqlalchemy import select

    from authgate.store.sqlalchemy.models import OutboxMailRow

    service.tasks.wait_idle()
    query = select(OutboxMailRow).order_by(OutboxMailRow.created_at, OutboxMailRow.id)
    if kind is not None:
        query = query.where(OutboxMailRow.kind == kind)
    with service.store.engine.connect() as conn:
        rows = conn.execute(query).all()
    folder = service.settings.instance_path / "mail"
    mails = []
    for r in rows:
        mail = {"kind": r.kind, "to": r.recipient, "subject": r.subject}
        if r.body_text:
            mail.update(text=r.body_text, html=r.body_html)
        else:  # sent: its file was complete before the row was marked
            written = [eml_mail(path) for path in folder.glob(f"*-{r.id}.eml")]
            sent = written[0] if written and written[0] else {}
            mail.update(text=sent.get("text", ""), html=sent.get("html", ""))
        mails.append(mail)
    return mails


def token_in(text: str) -> str:
    """The token of the link in a mail's text (its ``#token=`` part)."""
    import re

    found = re.search(r"#token=([A-Za-z0-9_-]+)", text)
    assert found, f"no link with a token in: {text!r}"
    return found.group(1)


def mailed_token(service: AuthService, kind: str, to: str) -> str:
    """The token of the link in the latest ``kind`` mail to ``to``."""
    mails = [m for m in queued_mails(service, kind) if m["to"].casefold() == to.casefold()]
    assert mails, f"no {kind} mail to {to}"
    return token_in(mails[-1]["text"])
