"""``Strict-Transport-Security`` keeps browsers on https (group ``url.hsts``)."""

from __future__ import annotations

from authgate.doctor.findings import Finding, ok_finding, warning_finding

__all__ = ["HSTS_MIN_MAX_AGE_SECONDS", "check_hsts"]

HSTS_MIN_MAX_AGE_SECONDS = 180 * 86400


def _hsts_max_age(value: str) -> int | None:
    for directive in value.split(";"):
        name, _, argument = directive.strip().partition("=")
        if name.strip().lower() == "max-age":
            argument = argument.strip().strip('"')
            return int(argument) if argument.isdigit() else None
    return None


def check_hsts(value: str | None) -> Finding:
    """The ``Strict-Transport-Security`` header of an https response."""
    fix = (
        "Send it from the TLS terminator. The nginx configuration `authgate nginx` generates "
        "sends `Strict-Transport-Security: max-age=63072000` (two years; `--hsts-max-age`), "
        "so this usually means another proxy terminates TLS or the configuration in use is "
        "not the generated one: regenerate it, or add `add_header Strict-Transport-Security "
        '"max-age=63072000" always;` to your own. (The authgate application leaves the header '
        "to the TLS terminator.)"
    )
    if not value:
        return warning_finding(
            "url.hsts.missing",
            "No Strict-Transport-Security header: browsers keep trying plain http first, where "
            "an attacker on the network can intercept the visit.",
            fix,
        )
    max_age = _hsts_max_age(value)
    if max_age is None or max_age < HSTS_MIN_MAX_AGE_SECONDS:
        return warning_finding(
            "url.hsts.short",
            f"Strict-Transport-Security is {value!r}: a max-age under "
            f"{HSTS_MIN_MAX_AGE_SECONDS // 86400} days protects little.",
            fix,
        )
    return ok_finding("url.hsts.present", f"Strict-Transport-Security: {value}.")
