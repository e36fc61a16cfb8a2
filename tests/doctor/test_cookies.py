"""Cookies versus topology (group ``cookies``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from authgate.doctor import check_cookies, explain_origin
from tests.doctor.helpers import (
    CROSS_SITE,
    PUBLIC,
    SAME_SITE,
    checks,
    dev_settings,
    errors,
    only,
)


def test_a_same_site_frontend_gets_first_party_cookies(tmp_path: Path) -> None:
    findings = check_cookies(dev_settings(tmp_path, public_url=PUBLIC, origins=(SAME_SITE,)))

    finding = only(findings, "cookies.same_site")
    assert finding.level == "ok"
    assert "first-party" in finding.message
    assert "https://example.com" in finding.message


def test_a_cross_site_frontend_is_warned_about_third_party_cookie_blocking(
    tmp_path: Path,
) -> None:
    settings = dev_settings(tmp_path, public_url=PUBLIC, origins=(SAME_SITE, CROSS_SITE))

    findings = check_cookies(settings)

    cross = only(findings, "cookies.cross_site")
    assert cross.level == "warning"
    assert CROSS_SITE in cross.message
    assert "SameSite=None; Secure; Partitioned" in cross.message
    assert "block third-party cookies" in cross.message
    assert "https://api.other-example.org" in cross.fix
    # The same-site frontend is told why its cookies are SameSite=None too.
    assert (
        f"because of the cross-site origin(s) {CROSS_SITE}"
        in only(findings, "cookies.same_site").message
    )


@pytest.mark.parametrize("explain", ["cookies", "cors"])
def test_an_http_frontend_with_an_https_api_is_told_https_for_both(
    tmp_path: Path, explain: str
) -> None:
    """The fix must never be an API on plain http off localhost, which the cookie check itself
    reports as an error: following the advice gives a topology this check passes."""
    frontend = "http://app.example.com"
    settings = dev_settings(tmp_path, public_url=PUBLIC, origins=(frontend,))

    if explain == "cookies":
        fix = only(check_cookies(settings), "cookies.cross_site").fix
    else:
        fix = only(explain_origin(settings, frontend), "cors.cookie_third_party").fix

    assert "http://api.example.com" not in fix
    assert "https://app.example.com" in fix and "https://api.example.com" in fix
    followed = dev_settings(
        tmp_path, public_url="https://api.example.com", origins=("https://app.example.com",)
    )
    assert not errors(check_cookies(followed))
    assert only(check_cookies(followed), "cookies.same_site").level == "ok"


def test_an_http_localhost_frontend_may_keep_an_http_api_on_localhost(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, public_url=PUBLIC, origins=("http://localhost:4100",))

    fix = only(check_cookies(settings), "cookies.cross_site").fix

    assert "http://localhost too, with another port" in fix


def test_secure_cookies_over_plain_http_outside_localhost_are_an_error(tmp_path: Path) -> None:
    findings = check_cookies(dev_settings(tmp_path, public_url="http://192.168.1.20:8086"))

    finding = only(findings, "cookies.secure_over_http")
    assert finding.level == "error"
    assert "192.168.1.20" in finding.message
    local = check_cookies(dev_settings(tmp_path, public_url="http://localhost:8086"))
    assert "cookies.secure_over_http" not in checks(local)
