"""``AUTHGATE_SMTP_URL`` parsing: the three schemes, their default ports, URL-decoded
credentials that never print, and clear errors."""

from __future__ import annotations

import pytest

from authgate.core.smtp_urls import (
    SmtpEndpoint,
    is_loopback_host,
    parse_mail_address,
    parse_smtp_url,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1", SmtpEndpoint("plain", "127.0.0.1", 25)),
        ("smtp://relay:2525", SmtpEndpoint("plain", "relay", 2525)),
        ("smtp+starttls://smtp.example.com", SmtpEndpoint("starttls", "smtp.example.com", 587)),
        ("SMTPS://smtp.example.com", SmtpEndpoint("tls", "smtp.example.com", 465)),
        ("smtps://[::1]:1465", SmtpEndpoint("tls", "::1", 1465)),
        (
            "smtp+starttls://us%40er:p%3Aw%2Fd@smtp.example.com:2587",
            SmtpEndpoint("starttls", "smtp.example.com", 2587, "us@er", "p:w/d"),
        ),
    ],
)
def test_valid_urls(url: str, expected: SmtpEndpoint) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://smtp.example.com", "scheme 'http' is not one of"),
        ("smtp.example.com:25", "is not one of"),
        ("smtps://", "names no host"),
        ("smtp://relay/path", "must not have a path"),
        ("smtp://relay?x=1", "must not have a path"),
        ("smtp://relay:99999", "is not a URL"),
        ("smtp://:secret@relay", "a password but no user name"),
    ],
)
def test_invalid_urls_say_why(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_smtp_url(url)


def test_the_password_never_prints() -> None:
    endpoint = parse_smtp_url("smtps://mailer:hunter2@smtp.example.com")
    assert "hunter2" not in repr(endpoint)
    assert endpoint.describe() == "smtps://smtp.example.com:465"
    assert parse_smtp_url("smtps://[::1]").describe() == "smtps://[::1]:465"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
        ("relay", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_mail_addresses() -> None:
    assert parse_mail_address("Example <no-reply@example.com>") == (
        "Example",
        "no-reply@example.com",
    )
    assert parse_mail_address("no-reply@example.com") == ("", "no-reply@example.com")
    for bad in ("no-reply", "Example <>", "a@b\r\nBcc: x@y", "@example.com"):
        with pytest.raises(ValueError):
            parse_mail_address(bad)
