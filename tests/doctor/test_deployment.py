"""``--url`` probes that need no authgate server: the plain-http redirect, TLS, HSTS,
look-alike origins (groups ``url``, ``url.tls``, ``url.redirect``, ``url.hsts``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from authgate.core.origins import OriginAllowlist, parse_origin
from authgate.doctor import (
    Finding,
    check_deployment,
    check_hsts,
    check_http_redirect,
    lookalike_origins,
)
from authgate.doctor.redirects import default_http_url
from authgate.proxy.nginx import DEFAULT_HSTS_MAX_AGE, NginxOptions, render_nginx_config
from tests.doctor.helpers import (
    PUBLIC,
    dev_settings,
    fake_server,
    json_findings,
    only,
    production_settings,
    run_cli,
)
from tests.helpers import free_port

HTTPS_ORIGIN = parse_origin("https://127.0.0.1:8443")


def redirect_finding(
    status: int, location: str | None, body: bytes | None = None, *, named: bool = False
) -> Finding:
    headers = [("Location", location)] if location else []
    with (
        fake_server(lambda method, path, h: (status, headers), body=body) as base,
        requests.Session() as s,
    ):
        return check_http_redirect(s, base + "/", HTTPS_ORIGIN, timeout=2, named=named)


def test_a_permanent_redirect_to_https_is_ok() -> None:
    finding = redirect_finding(301, "https://127.0.0.1:8443/")

    assert (finding.level, finding.check) == ("ok", "url.redirect.permanent")


def test_a_temporary_redirect_is_a_warning() -> None:
    finding = redirect_finding(302, "https://127.0.0.1:8443/")

    assert (finding.level, finding.check) == ("warning", "url.redirect.temporary")


def test_a_redirect_elsewhere_is_a_warning() -> None:
    finding = redirect_finding(308, "http://127.0.0.1:8443/")

    assert (finding.level, finding.check) == ("warning", "url.redirect.wrong_target")


def test_serving_plain_http_instead_of_redirecting_is_an_error() -> None:
    finding = redirect_finding(200, None)

    assert (finding.level, finding.check) == ("error", "url.redirect.serves_http")


def test_nothing_on_plain_http_is_a_missing_redirect() -> None:
    with requests.Session() as session:
        finding = check_http_redirect(
            session, f"http://127.0.0.1:{free_port()}/", HTTPS_ORIGIN, timeout=2
        )

    assert (finding.level, finding.check) == ("warning", "url.redirect.missing")
    assert "Connection refused" in finding.message
    assert "no redirect for users typing http://" in finding.message
    assert "--http-url" in finding.fix


# nginx's answer to plain http on its TLS port (a 400, not a site served over http).
NGINX_400 = (
    b"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>"
    b"\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP "
    b"request was sent to HTTPS port</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>"
)


def test_plain_http_refused_by_a_tls_port_named_with_http_url_is_not_serving_http() -> None:
    finding = redirect_finding(400, None, body=NGINX_400, named=True)

    assert (finding.level, finding.check) == ("ok", "url.redirect.tls_port")
    assert "--http-url" in finding.fix


def test_a_tls_port_on_the_default_port_80_is_a_missing_redirect() -> None:
    """`listen 80 ssl;` by mistake: whoever types http:// gets nginx's 400."""
    finding = redirect_finding(400, None, body=NGINX_400)

    assert (finding.level, finding.check) == ("warning", "url.redirect.not_redirected")
    assert "speaks TLS: it answers plain http with a 400" in finding.message
    assert "`listen 80;`, not `listen 80 ssl;`" in finding.fix


@pytest.mark.parametrize("status", [400, 404, 502])
def test_an_error_over_plain_http_is_a_missing_redirect_not_http_served(status: int) -> None:
    finding = redirect_finding(status, None, body=b"nope")

    assert (finding.level, finding.check) == ("warning", "url.redirect.not_redirected")
    assert f"answers {status}" in finding.message


def test_the_redirect_is_probed_on_port_80_by_default() -> None:
    assert default_http_url(parse_origin("https://auth.example.com:8443")) == (
        "http://auth.example.com/"
    )
    assert default_http_url(parse_origin("https://[::1]:8443")) == "http://[::1]/"


def test_a_port_serving_plain_http_fails_the_tls_handshake() -> None:
    with fake_server(lambda method, path, h: (200, [])) as base:
        findings = check_deployment(base.replace("http://", "https://"), None, timeout=2)

    (finding,) = findings  # a browser gets no further
    assert (finding.check, finding.level) == ("url.tls.handshake_failed", "error")
    assert "No TLS handshake with 127.0.0.1:" in finding.message


def test_a_bad_http_url_is_reported() -> None:
    (finding,) = check_deployment("https://127.0.0.1:8443", None, http_url="https://x.test/")

    assert (finding.check, finding.level) == ("url.invalid", "error")
    assert "--http-url" in finding.message


@pytest.mark.parametrize(
    ("header", "check", "level"),
    [
        (None, "url.hsts.missing", "warning"),
        ("max-age=300", "url.hsts.short", "warning"),
        ("includeSubDomains", "url.hsts.short", "warning"),
        ("max-age=31536000; includeSubDomains", "url.hsts.present", "ok"),
        ('max-age="63072000"', "url.hsts.present", "ok"),
    ],
)
def test_hsts(header: str | None, check: str, level: str) -> None:
    finding = check_hsts(header)

    assert (finding.check, finding.level) == (check, level)


@pytest.mark.parametrize("header", [None, "max-age=300"])
def test_the_hsts_fix_names_the_generated_nginx_configuration(
    tmp_path: Path, header: str | None
) -> None:
    """``authgate nginx`` does send HSTS: the fix must not say that authgate never sets it, and
    the value it recommends is the one the generated configuration sends."""
    fix = check_hsts(header).fix

    assert "does not set it" not in fix
    assert "`authgate nginx`" in fix
    assert f"max-age={DEFAULT_HSTS_MAX_AGE}" in fix
    assert check_hsts(f"max-age={DEFAULT_HSTS_MAX_AGE}").level == "ok"
    config = render_nginx_config(dev_settings(tmp_path, public_url=PUBLIC), NginxOptions())
    assert f"max-age={DEFAULT_HSTS_MAX_AGE}" in config


def test_an_unreachable_url_is_an_error() -> None:
    findings = check_deployment(f"http://127.0.0.1:{free_port()}", None, timeout=2)

    assert only(findings, "url.unreachable").level == "error"
    assert only(findings, "url.tls.plain_http_local").level == "ok"


def test_a_url_that_is_not_one_is_reported(runner: CliRunner, tmp_path: Path) -> None:
    result = run_cli(
        runner, ["--json", "--url", "auth.example.com"], {"AUTHGATE_INSTANCE_PATH": str(tmp_path)}
    )

    assert result.exit_code == 1
    assert json_findings(result)["url.invalid"].level == "error"


def test_lookalike_origins() -> None:
    origin = parse_origin("http://localhost:4100")

    assert lookalike_origins(origin, OriginAllowlist([str(origin)])) == [
        "http://localhost.evil.test:4100",
        "https://localhost:4100",
    ]
    both = OriginAllowlist([str(origin), "https://localhost:4100"])
    assert lookalike_origins(origin, both) == ["http://localhost.evil.test:4100"]
    assert lookalike_origins(parse_origin("https://[::1]:3000"), OriginAllowlist([])) == [
        "http://[::1]:3000"
    ]


def test_a_plain_http_url_in_production_is_an_error(tmp_path: Path) -> None:
    findings = check_deployment(
        f"http://127.0.0.1:{free_port()}", production_settings(tmp_path), timeout=2
    )

    assert only(findings, "url.tls.not_https").level == "error"
