"""``MailComposer``: every kind of mail from the package templates, overrides from the instance
folder, HTML escaping, and a broken or incomplete template as a clear error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from authgate.backends.mail_composer import KINDS, PACKAGE_TEMPLATES, MailComposer
from authgate.core.clocks import FrozenClock
from authgate.errors import ConfigError

NOW = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
LINK = "https://app.example.test/reset-password#token=abc123"
VALUES = {
    "link": LINK,
    "name": "Ada",
    "new_email": "ada.new@example.test",
    "tenant_name": "Team Rocket",
    "inviter_name": "Grace",
    "role": "admin",
}
EXPIRIES = {
    "verify_email": "24 hours",
    "password_reset": "30 minutes",
    "email_change": "24 hours",
    "invitation": "7 days",
}


def composer(override_dir: Path | None = None) -> MailComposer:
    return MailComposer(
        app_name="Example App",
        app_url="https://app.example.test",
        clock=FrozenClock(NOW),
        override_dir=override_dir,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_text_and_html_with_the_app_name(kind: str) -> None:
    mail = composer().compose(kind, to="ada@example.test", values=VALUES)

    assert mail.kind == kind and mail.to == "ada@example.test"
    assert len(mail.id) == 32 and mail.created_at == NOW
    assert "\n" not in mail.subject and mail.subject.strip() == mail.subject
    for part in (mail.subject, mail.text, mail.html):
        assert "Example App" in part
    assert mail.html.lstrip().startswith("<!DOCTYPE html>")
    assert "{{" not in mail.text + mail.html + mail.subject


@pytest.mark.parametrize(("kind", "expiry"), EXPIRIES.items())
def test_links_are_visible_in_both_parts_with_their_expiry(kind: str, expiry: str) -> None:
    mail = composer().compose(kind, to="ada@example.test", values=VALUES)

    assert f"\n{LINK}\n" in mail.text  # on a line of its own: clickable in any mail client
    assert f'href="{LINK}"' in mail.html and f">{LINK}</a>" in mail.html
    assert f"expires in {expiry}" in mail.text and f"expires in {expiry}" in mail.html


def test_the_caller_states_the_expiry() -> None:
    mail = composer().compose(
        "password_reset", to="ada@example.test", values={**VALUES, "expires_in": "1 hour"}
    )
    assert "expires in 1 hour" in mail.text


def test_notices_carry_no_link() -> None:
    for kind in ("email_change_notice", "password_changed_notice"):
        mail = composer().compose(kind, to="ada@example.test", values=VALUES)
        assert "http" not in mail.text and "href" not in mail.html
    notice = composer().compose("email_change_notice", to="ada@example.test", values=VALUES)
    assert "ada.new@example.test" in notice.text


def test_values_are_escaped_in_html_but_not_in_text() -> None:
    values = {**VALUES, "name": '<script>alert("x")</script>', "tenant_name": "R&D <b>"}

    mail = composer().compose("invitation", to="ada@example.test", values=values)
    verify = composer().compose("verify_email", to="ada@example.test", values=values)

    assert "R&amp;D &lt;b&gt;" in mail.html and "R&D <b>" not in mail.html
    assert "&lt;script&gt;" in verify.html and "<script>" not in verify.html
    assert "R&D <b>" in mail.text and '<script>alert("x")</script>' in verify.text


def test_an_instance_override_replaces_a_template(tmp_path: Path) -> None:
    overrides = tmp_path / "mail_templates"
    overrides.mkdir()
    (overrides / "password_reset.subject.txt").write_text(
        "{{ app_name }}: new password for {{ name }}\n"
    )
    (overrides / "password_reset.html").write_text(
        '{% extends "_layout.html" %}{% block body %}<p>Hi {{ name }}</p>'
        '<a href="{{ link }}">go</a>{% endblock %}'
    )

    mail = composer(overrides).compose(
        "password_reset", to="ada@example.test", values={**VALUES, "name": "<Ada>"}
    )

    assert mail.subject == "Example App: new password for <Ada>"
    assert "<p>Hi &lt;Ada&gt;</p>" in mail.html  # the override is escaped too
    assert "Example App" in mail.html  # the package layout it extends
    assert "someone (hopefully you)" in mail.text  # not overridden: the package's


def test_a_missing_value_is_an_error_not_an_empty_link() -> None:
    with pytest.raises(ConfigError, match="link"):
        composer().compose("password_reset", to="ada@example.test", values={"name": "Ada"})


def test_a_broken_override_names_its_file(tmp_path: Path) -> None:
    (tmp_path / "test.txt").write_text("Hello {% if %}\n")

    with pytest.raises(ConfigError) as caught:
        composer(tmp_path).compose("test", to="ada@example.test", values={})

    assert str(tmp_path / "test.txt") in str(caught.value)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match="missing"):
        composer().compose("no_such_kind", to="ada@example.test", values={})
    with pytest.raises(ValueError):
        composer().compose("../etc/passwd", to="ada@example.test", values={})


def test_every_kind_has_its_three_templates_in_the_package() -> None:
    for kind in KINDS:
        for suffix in (".subject.txt", ".txt", ".html"):
            assert (PACKAGE_TEMPLATES / f"{kind}{suffix}").is_file()
