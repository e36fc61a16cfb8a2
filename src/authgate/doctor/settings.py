"""The settings ``authgate serve`` would use, loaded without refusing them (group ``settings``)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from authgate.config import ENV_PREFIX, Environment, Settings, load_settings
from authgate.doctor.findings import Finding, error_finding
from authgate.doctor.origins import check_raw_origins
from authgate.errors import ConfigError

__all__ = ["load_doctor_settings"]

_FIX_SETTING = "Correct this setting (docs/configuration.md), then run `authgate doctor` again."


def _toml_value(environ: Mapping[str, str], key: str) -> object:
    path = environ.get(ENV_PREFIX + "CONFIG")
    if not path:
        return None
    try:
        with Path(path).open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return None  # load_settings reports it
    section = data.get("authgate", data)
    return section.get(key) if isinstance(section, dict) else None


def _raw_origins(environ: Mapping[str, str]) -> list[object] | None:
    """The configured origin entries before validation (``None`` if not configured)."""
    value: object = environ.get(ENV_PREFIX + "ORIGINS")
    if value is None:
        value = _toml_value(environ, "origins")
    if value is None:
        return None
    if isinstance(value, str):
        return list(value.replace(",", " ").split())
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _config_error_findings(error: ConfigError) -> list[Finding]:
    lines = [line.strip().removeprefix("- ") for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]  # "Invalid settings:" and the like
    return [error_finding("settings.invalid", line, _FIX_SETTING) for line in lines]


def load_doctor_settings(
    environ: Mapping[str, str] | None = None, *, production: bool = False
) -> tuple[Settings | None, list[Finding]]:
    """The settings ``authgate serve`` would use, without refusing them.

    Bad origin entries are reported (and left out so the rest can be checked); production
    refusals are left to the checks; any other ``ConfigError`` becomes ``settings.invalid``
    findings and no settings.
    """
    environ = os.environ if environ is None else environ
    overrides: dict[str, str] = {}
    if production:
        overrides[ENV_PREFIX + "ENV"] = Environment.PRODUCTION.value
    findings: list[Finding] = []
    raw = _raw_origins(environ)
    if raw is not None:
        findings, good = check_raw_origins(raw)
        if findings:
            overrides[ENV_PREFIX + "ORIGINS"] = " ".join(good)
    try:
        return load_settings(overrides, environ=environ), findings
    except ConfigError as e:
        refused = e
    try:
        relaxed = load_settings(
            {**overrides, ENV_PREFIX + "ENV": Environment.DEVELOPMENT.value}, environ=environ
        )
    except ConfigError as e:
        return None, [*findings, *_config_error_findings(e)]
    candidate = relaxed.model_copy(update={"env": Environment.PRODUCTION})
    try:
        candidate.raise_if_unsafe()
    except ConfigError as e:
        if str(e) == str(refused):  # refused only for production problems: the checks tell them
            return candidate, findings
    return None, [*findings, *_config_error_findings(refused)]
