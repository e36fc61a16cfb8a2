"""``AUTHGATE_SMTP_URL``: where mail goes and how it is protected on the way.

Three schemes, each saying exactly one thing about transport security:

- ``smtp://host[:25]`` — plain SMTP, for a relay on the same host or network (refused in
  production unless the host is loopback);
- ``smtp+starttls://host[:587]`` — STARTTLS required: a server that does not offer it is refused,
  and its certificate is verified;
- ``smtps://host[:465]`` — implicit TLS from the first byte, certificate verified.

``user:password@`` is optional; both are URL-decoded (``%40`` for ``@`` in a user name).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Literal
from urllib.parse import unquote, urlsplit

__all__ = [
    "SmtpEndpoint",
    "SmtpSecurity",
    "is_loopback_host",
    "parse_mail_address",
    "parse_smtp_url",
]

SmtpSecurity = Literal["plain", "starttls", "tls"]

_SCHEMES: dict[str, tuple[SmtpSecurity, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}


@dataclass(frozen=True, slots=True)
class SmtpEndpoint:
    """A parsed SMTP URL. ``password`` never appears in a repr."""

    security: SmtpSecurity
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    def describe(self) -> str:
        """The endpoint for logs and messages, without credentials: ``smtps://host:465``."""
        scheme = {"plain": "smtp", "starttls": "smtp+starttls", "tls": "smtps"}[self.security]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpEndpoint:
    """Parse ``url``; ``ValueError`` says what is wrong and what a valid one looks like."""
    example = "smtp+starttls://user:password@smtp.example.com:587"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"is not a URL such as {example}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(
            f"scheme {parts.scheme or '(none)'!r} is not one of smtp:// (plain, a local relay), "
            f"smtp+starttls:// (STARTTLS required) or smtps:// (implicit TLS); e.g. {example}"
        )
    if not parts.hostname:
        raise ValueError(f"names no host; e.g. {example}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"must not have a path, query or fragment; e.g. {example}")
    security, default_port = _SCHEMES[scheme]
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ValueError("has a password but no user name")
    return SmtpEndpoint(
        security=security,
        host=parts.hostname,
        port=port or default_port,
        username=username,
        password=password,
    )


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address: traffic that never leaves the machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_mail_address(value: str) -> tuple[str, str]:
    """``"Example <no-reply@example.com>"`` or ``no-reply@example.com`` -> ``(name, address)``;
    ``ValueError`` for anything else (a line break, no ``@``)."""
    if any(c in value for c in "\r\n\0"):
        raise ValueError("must be one line")
    name, address = parseaddr(value.strip())
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or " " in address:
        raise ValueError(
            f"{value!r} is not a mail address such as no-reply@example.com or "
            "'Example <no-reply@example.com>'"
        )
    return name, address
