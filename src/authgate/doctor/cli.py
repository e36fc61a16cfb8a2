"""``authgate doctor`` and ``authgate doctor cors``: the command line of :mod:`authgate.doctor`.

Findings are printed grouped, one line each with its level, the fix indented below, then a
summary; ``--json`` prints them as one JSON document instead. The exit code is 1 when any finding
is an error, else 0. Unusable settings are findings too (never a traceback).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from authgate.doctor.cors_explainer import explain_origin, probe_origin
from authgate.doctor.findings import Finding, sort_findings
from authgate.doctor.probes import DEFAULT_TIMEOUT_SECONDS
from authgate.doctor.reports import render_findings, summarize_findings
from authgate.doctor.runner import run_doctor
from authgate.doctor.settings import load_doctor_settings

__all__ = ["doctor"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Options:
    url: str | None
    ca_file: Path | None
    as_json: bool
    production: bool
    timeout: float


def _report(findings: Sequence[Finding], options: _Options) -> int:
    """Print the findings; the exit code."""
    ordered = sort_findings(findings)
    errors = any(f.level == "error" for f in ordered)
    if options.as_json:
        document = {
            "ok": not errors,
            "summary": summarize_findings(ordered),
            "findings": [
                {
                    "level": f.level,
                    "check": f.check,
                    "group": f.group,
                    "message": f.message,
                    "fix": f.fix,
                }
                for f in ordered
            ],
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        # click.echo drops the colours when stdout is not a terminal.
        click.echo(render_findings(ordered, color=True))
    return 1 if errors else 0


def _common_options(function: F) -> F:
    options: list[Callable[[F], F]] = [
        click.option(
            "--url",
            help="Also probe the running deployment at this address, e.g. "
            "https://auth.example.com (TLS, redirect, HSTS, CORS).",
        ),
        click.option(
            "--ca-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Trust this CA for --url instead of the system store (e.g. the CA of "
            "`authgate tls dev`).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON."),
        click.option(
            "--timeout",
            type=click.FloatRange(0.1, 120),
            default=DEFAULT_TIMEOUT_SECONDS,
            show_default=True,
            help="Seconds to wait for each network probe.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@click.group("doctor", invoke_without_command=True)
@_common_options
@click.option(
    "--production",
    is_flag=True,
    help="Check as `authgate serve --production` runs (same as AUTHGATE_ENV=production).",
)
@click.option(
    "--http-url",
    metavar="URL",
    help="Probe the http->https redirect at this plain-http address "
    "[default: port 80 of --url's host, http://<host>/].",
)
@click.pass_context
def doctor(
    ctx: click.Context,
    url: str | None,
    ca_file: Path | None,
    as_json: bool,
    timeout: float,
    production: bool,
    http_url: str | None,
) -> None:
    """Check the settings (and, with --url, a running deployment); report each problem with
    its fix. Exit code 1 if any finding is an error."""
    options = _Options(url, ca_file, as_json, production, timeout)
    ctx.obj = options
    if ctx.invoked_subcommand is not None:
        return
    findings = run_doctor(
        os.environ,
        production=production,
        url=url,
        ca_file=ca_file,
        timeout=timeout,
        http_url=http_url,
    )
    ctx.exit(_report(findings, options))


@doctor.command("cors")
@click.option(
    "--origin",
    required=True,
    help="The frontend's origin, as its address bar shows it, e.g. https://app.example.com.",
)
@_common_options
@click.pass_context
def doctor_cors(
    ctx: click.Context,
    origin: str,
    url: str | None,
    ca_file: Path | None,
    as_json: bool,
    timeout: float,
) -> None:
    """What a browser does with a credentialed request from ORIGIN: the preflight, and whether
    the cookie is stored and sent. With --url, send the preflight to the deployment."""
    parent: _Options = ctx.obj
    options = _Options(
        url or parent.url,
        ca_file or parent.ca_file,
        as_json or parent.as_json,
        parent.production,
        timeout if timeout != DEFAULT_TIMEOUT_SECONDS else parent.timeout,
    )
    settings, findings = load_doctor_settings(os.environ, production=options.production)
    if settings is not None:
        findings += explain_origin(settings, origin)
    if options.url:
        findings += probe_origin(
            options.url, origin, settings, ca_file=options.ca_file, timeout=options.timeout
        )
    ctx.exit(_report(findings, options))
