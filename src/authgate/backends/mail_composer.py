"""``MailComposer``: mails rendered from templates, ready for the outbox.

Each kind of mail is three templates in ``mail_templates/``: ``<kind>.subject.txt`` (one line),
``<kind>.txt`` (the plain-text part) and ``<kind>.html`` (the HTML part, which extends
``_layout.html``). A deployment overrides any of them — or the layout — with a file of the same
name in ``<instance>/mail_templates/``. Templates are Jinja2: HTML is autoescaped (a user's name
cannot inject markup), text and subject are not; a value a template uses but the caller did not
pass is an error, not an empty string.

Every template sees ``app_name`` and ``app_url`` (the link base URL) and the caller's ``values``;
links expire after the period the caller states (``expires_in``), with the defaults of the
kinds authgate sends.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from pathlib import Path

import jinja2

from authgate.core.clocks import Clock
from authgate.errors import ConfigError
from authgate.store.records import OutgoingMail

__all__ = ["DEFAULT_VALUES", "KINDS", "PACKAGE_TEMPLATES", "SAMPLE_VALUES", "MailComposer"]

PACKAGE_TEMPLATES = Path(__file__).with_name("mail_templates")
KINDS = (
    "verify_email",
    "password_reset",
    "email_change",
    "email_change_notice",
    "invitation",
    "password_changed_notice",
    "mfa_removed",
    "test",
)
# What a template may assume when its caller does not say otherwise.
DEFAULT_VALUES: Mapping[str, Mapping[str, str]] = {
    "verify_email": {"name": "", "expires_in": "24 hours"},
    "password_reset": {"name": "", "expires_in": "30 minutes"},
    "email_change": {"name": "", "expires_in": "24 hours"},
    "email_change_notice": {"name": ""},
    "invitation": {"expires_in": "7 days", "inviter_name": "A member"},
    "password_changed_notice": {"name": ""},
    "mfa_removed": {"name": ""},
    "test": {},
}
# Values that let every template render, to check them (startup, ``authgate doctor``).
SAMPLE_VALUES: Mapping[str, str] = {
    "link": "https://example.test/link#token=sample",
    "name": "Sample User",
    "new_email": "new@example.test",
    "tenant_name": "Sample Team",
    "inviter_name": "Sample Inviter",
    "role": "member",
}
_KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
_SUBJECT_LENGTH = 300  # the outbox column


class MailComposer:
    """Renders ``OutgoingMail`` values; cheap to call from a request (templates are cached)."""

    def __init__(self, *, app_name: str, app_url: str, clock: Clock, override_dir: Path | None):
        self.app_name = app_name
        self.app_url = app_url
        self._clock = clock
        self.override_dir = override_dir
        searchpath = [str(PACKAGE_TEMPLATES)]
        if override_dir is not None:
            searchpath.insert(0, str(override_dir))
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(searchpath),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html",), default_for_string=False, default=False
            ),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            auto_reload=True,  # an edited override applies without a restart
        )
        self._env.globals.update(app_name=app_name, app_url=app_url)

    def compose(self, kind: str, *, to: str, values: Mapping[str, str]) -> OutgoingMail:
        """Render the mail ``kind`` to ``to``; ``ConfigError`` if a template is missing or
        broken (an override that does not render is the deployment's mistake to fix)."""
        if not _KIND_PATTERN.fullmatch(kind):
            raise ValueError(f"{kind!r} is not a mail kind")
        context = {**DEFAULT_VALUES.get(kind, {}), **values}
        subject = " ".join(self._render(f"{kind}.subject.txt", context).split())
        return OutgoingMail(
            id=secrets.token_hex(16),
            kind=kind,
            to=to,
            subject=subject[:_SUBJECT_LENGTH],
            text=self._render(f"{kind}.txt", context),
            html=self._render(f"{kind}.html", context),
            created_at=self._clock.now(),
        )

    def check_templates(self) -> None:
        """Render every kind once with sample values: ``ConfigError`` names the first template
        that does not render (a broken override is found at startup, not by a user)."""
        for kind in KINDS:
            self.compose(kind, to="someone@example.test", values=SAMPLE_VALUES)

    def template_source(self, name: str) -> Path:
        """The file ``name`` is read from: the override if there is one."""
        if self.override_dir is not None and (self.override_dir / name).is_file():
            return self.override_dir / name
        return PACKAGE_TEMPLATES / name

    def _render(self, name: str, context: Mapping[str, str]) -> str:
        try:
            return self._env.get_template(name).render(context)
        except jinja2.TemplateNotFound as e:
            raise ConfigError(
                f"The mail template {e.name} is missing (looked in "
                f"{', '.join(str(p) for p in self._searchpath())})."
            ) from None
        except jinja2.TemplateError as e:
            raise ConfigError(
                f"The mail template {self.template_source(name)} does not render: {e}"
            ) from None

    def _searchpath(self) -> list[Path]:
        return [p for p in (self.override_dir, PACKAGE_TEMPLATES) if p is not None]
