"""The mail settings: SMTP URL, sender, CA file, app name and link base URL — validated at
startup with the fix in the message; production refuses plain SMTP to another host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from authgate.config import Settings, load_settings
from authgate.errors import ConfigError
from tests.helpers import KEY_ENCRYPTION_KEY

FROM = "Example <no-reply@example.com>"


def load(**values: str) -> Settings:
    return load_settings({f"AUTHGATE_{k.upper()}": v for k, v in values.items()}, environ={})


def production(tmp_path: Path, **values: str) -> dict[str, str]:
    return {
        "env": "production",
        "public_url": "https://auth.example.com",
        "database_url": f"sqlite:///{tmp_path / 'db'}",
        "keys_dir": str(tmp_path),
        "key_encryption_key": KEY_ENCRYPTION_KEY,
        **values,
    }


def test_defaults_without_smtp() -> None:
    settings = load_settings(environ={})
    assert settings.smtp_url is None and settings.smtp_endpoint is None
    assert settings.app_name == "authgate"
    assert settings.link_base_url == settings.public_url == "http://localhost:8086"
    assert settings.resolved_mail_from == "authgate <no-reply@localhost>"


def test_an_smtp_url_is_parsed_and_kept_secret() -> None:
    settings = load_settings(
        {
            "AUTHGATE_SMTP_URL": "smtp+starttls://mailer:hunter2@smtp.example.com",
            "AUTHGATE_MAIL_FROM": FROM,
        },
        environ={},
    )
    endpoint = settings.smtp_endpoint
    assert endpoint is not None
    assert (endpoint.security, endpoint.port, endpoint.password) == ("starttls", 587, "hunter2")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert settings.mail_from == FROM


def test_mail_from_is_required_with_smtp() -> None:
    with pytest.raises(ConfigError) as caught:
        load(smtp_url="smtps://smtp.example.com")
    assert "AUTHGATE_MAIL_FROM: is required when AUTHGATE_SMTP_URL is set" in str(caught.value)
    assert "AUTHGATE_MAIL_FROM='Example <no-reply@example.com>'" in str(caught.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"smtp_url": "http://x", "mail_from": FROM}, "AUTHGATE_SMTP_URL: scheme 'http'"),
        ({"mail_from": "nobody"}, "AUTHGATE_MAIL_FROM: 'nobody' is not a mail address"),
        ({"smtp_ca_file": "/no/such/ca.pem"}, "AUTHGATE_SMTP_CA_FILE: /no/such/ca.pem is not"),
        ({"app_name": "Two\nlines"}, "AUTHGATE_APP_NAME: must be one line"),
        ({"link_base_url": "ftp://app.example.com"}, "AUTHGATE_LINK_BASE_URL: must be an absolute"),
        ({"link_base_url": "https://app.example.com/?x=1"}, "must not have a query or fragment"),
        ({"link_base_url": "https://app.example.com/#t"}, "must not have a query or fragment"),
        ({"link_base_url": "https://u:p@app.example.com"}, "AUTHGATE_LINK_BASE_URL: Origin"),
    ],
)
def test_invalid_mail_settings_say_what_to_fix(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(**values)


def test_the_link_base_url_may_carry_a_path() -> None:
    settings = load(link_base_url="HTTPS://App.Example.com:443/portal/")
    assert settings.link_base_url == "https://app.example.com/portal"
    assert load(port="9000").link_base_url == "http://localhost:9000"


def test_production_refuses_plain_smtp_to_another_host(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(**production(tmp_path, smtp_url="smtp://relay.example.net", mail_from=FROM))
    assert "AUTHGATE_SMTP_URL is plain smtp:// to relay.example.net" in str(caught.value)
    assert "smtp+starttls://" in str(caught.value)


@pytest.mark.parametrize(
    "url", ["smtp://127.0.0.1:25", "smtp://localhost", "smtps://relay.example.net"]
)
def test_production_accepts_a_local_relay_or_tls(tmp_path: Path, url: str) -> None:
    load(**production(tmp_path, smtp_url=url, mail_from=FROM))


def test_production_refuses_plain_http_links(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=re.escape("AUTHGATE_LINK_BASE_URL is http://app.example.com")
    ):
        load(**production(tmp_path, link_base_url="http://app.example.com"))
