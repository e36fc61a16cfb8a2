"""Findings as text: grouped, one line each with its level, the fix indented below, a summary."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import click

from authgate.doctor.findings import Finding, sort_findings

__all__ = ["render_findings", "summarize_findings"]

_LABELS = {"error": ("error", "red"), "warning": ("warn", "yellow"), "ok": ("ok", "green")}
_INDENT = "  "
_LABEL_WIDTH = 6
_WIDTH = 100


def summarize_findings(findings: Sequence[Finding]) -> dict[str, int]:
    return {
        "errors": sum(f.level == "error" for f in findings),
        "warnings": sum(f.level == "warning" for f in findings),
        "ok": sum(f.level == "ok" for f in findings),
    }


def _wrap(text: str, first: str, rest: str) -> str:
    return textwrap.fill(
        text,
        width=_WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def render_findings(findings: Sequence[Finding], *, color: bool = False) -> str:
    """The findings as text: grouped, a level per line, the fix indented below, a summary."""
    lines: list[str] = []
    group: str | None = None
    pad = _INDENT + " " * _LABEL_WIDTH
    for finding in sort_findings(findings):
        if finding.group != group:
            group = finding.group
            if lines:
                lines.append("")
            lines.append(click.style(group, bold=True) if color else group)
        word, colour = _LABELS[finding.level]
        label = word.ljust(_LABEL_WIDTH)
        text = _wrap(finding.message, _INDENT + label, pad)
        if color:
            text = _INDENT + click.style(label, fg=colour) + text[len(_INDENT + label) :]
        lines.append(text)
        if finding.fix:
            prefix = "" if finding.level == "ok" else "fix: "
            lines.append(_wrap(prefix + finding.fix, pad, pad + " " * len(prefix)))
    counts = summarize_findings(findings)
    if lines:
        lines.append("")
    verdict = "problems found" if counts["errors"] else "no errors"
    lines.append(
        f"{counts['errors']} error(s), {counts['warnings']} warning(s), {counts['ok']} ok: "
        f"{verdict}."
    )
    return "\n".join(lines)
