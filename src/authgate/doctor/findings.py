"""Findings: what every check returns, and the order their groups are reported in.

A check never raises: :func:`run_guarded` turns a bug in one into a ``<group>.check_failed``
finding.
Check ids are ``<group>.<name>`` (``origins.http_in_production``, ``url.tls.expired``); the group
is everything before the last dot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GROUP_ORDER",
    "Finding",
    "Level",
    "error_finding",
    "first_line_of_error",
    "ok_finding",
    "run_guarded",
    "sort_findings",
    "warning_finding",
]

Level = Literal["error", "warning", "ok"]

# The order groups are reported in; unknown groups come last.
GROUP_ORDER = (
    "settings",
    "production",
    "public_url",
    "secrets",
    "origins",
    "cookies",
    "oauth",
    "database",
    "clock",
    "redis",
    "mail",
    "avatars",
    "legacy",
    "url.tls",
    "url",
    "url.public_url",
    "url.server",
    "url.redirect",
    "url.hsts",
    "url.cors",
    "cors",
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of a check: an ``error`` (exit code 1), a ``warning`` or ``ok``.

    ``fix`` says what to do (for an ``ok`` finding, a hint such as how to rotate keys).
    """

    level: Level
    check: str
    message: str
    fix: str = ""

    @property
    def group(self) -> str:
        return self.check.rpartition(".")[0] or self.check


def error_finding(check: str, message: str, fix: str = "") -> Finding:
    return Finding("error", check, message, fix)


def warning_finding(check: str, message: str, fix: str = "") -> Finding:
    return Finding("warning", check, message, fix)


def ok_finding(check: str, message: str, fix: str = "") -> Finding:
    return Finding("ok", check, message, fix)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Grouped in :data:`GROUP_ORDER`, keeping the order of the checks within a group."""

    def rank(finding: Finding) -> int:
        group = finding.group
        return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)

    return sorted(findings, key=rank)


def first_line_of_error(error: BaseException | None) -> str:
    text_ = str(error or "").strip()
    return text_.splitlines()[0] if text_ else type(error).__name__


def run_guarded(group: str, check: Callable[[], list[Finding]]) -> list[Finding]:
    """Run one check; a bug in it becomes a finding instead of a traceback."""
    try:
        return check()
    except Exception as e:
        return [
            error_finding(
                f"{group}.check_failed",
                f"The {group} check itself failed ({type(e).__name__}: {first_line_of_error(e)}).",
                "The other checks still ran; please report this failure.",
            )
        ]
