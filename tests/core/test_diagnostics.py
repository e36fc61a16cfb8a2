"""``diagnose_request``: the explanation of a scheme the server did not expect, of Secure cookies
dropped over plain http, and of the API called at another loopback name than its public URL."""

from __future__ import annotations

import pytest

from authgate.core.diagnostics import RequestView, diagnose_request, plain_http_cookie_problem
from authgate.core.origins import CookiePolicy, OriginAllowlist


def _scheme_finding(*, trusted_proxies: int) -> str:
    view = RequestView(
        origin=None,
        session_cookie=False,
        refresh_cookie=False,
        scheme="http",
        host="api.example.com",
        client_ip="10.0.0.2",
    )
    report = diagnose_request(
        view,
        public_url="https://api.example.com",
        allowlist=OriginAllowlist(["https://app.example.com"]),
        cookie_policy=CookiePolicy("Lax", secure=True, partitioned=False, cross_site_origins=()),
        cookie_name="authgate_session",
        trusted_proxies=trusted_proxies,
    )
    (message,) = [f["message"] for f in report["findings"] if f["kind"] == "scheme"]
    return str(message)


def test_without_trusted_proxies_the_fix_is_to_trust_them() -> None:
    message = _scheme_finding(trusted_proxies=0)
    assert message.startswith("The server sees http:// but its public URL is https://")
    assert "set AUTHGATE_TRUSTED_PROXIES to the number of proxies" in message


def test_with_trusted_proxies_the_fix_is_the_proxys_forwarded_proto() -> None:
    message = _scheme_finding(trusted_proxies=1)
    assert "AUTHGATE_TRUSTED_PROXIES is 1" in message
    assert "X-Forwarded-Proto" in message
    assert "set AUTHGATE_TRUSTED_PROXIES to" not in message


def _report(
    public_url: str, *, origin: str | None, host: str, sec_fetch_site: str | None = None
) -> dict[str, object]:
    view = RequestView(
        origin=origin,
        session_cookie=False,
        refresh_cookie=False,
        scheme=public_url.split(":", 1)[0],
        host=host,
        client_ip="127.0.0.1",
        sec_fetch_site=sec_fetch_site,
    )
    return diagnose_request(
        view,
        public_url=public_url,
        allowlist=OriginAllowlist(["http://localhost:4100", "http://www.example.test"]),
        cookie_policy=CookiePolicy("Lax", secure=True, partitioned=False, cross_site_origins=()),
        cookie_name="authgate_session",
    )


def _cookie_finding(report: dict[str, object]) -> str:
    findings = report["findings"]
    assert isinstance(findings, list)
    (message,) = [f["message"] for f in findings if f["kind"] == "cookie"]
    return str(message)


@pytest.mark.parametrize("origin", [None, "http://www.example.test"])
def test_plain_http_off_localhost_names_the_dropped_secure_cookie(origin: str | None) -> None:
    """Same-origin calls send no Origin header: the cause is named for them too."""
    report = _report("http://app.example.test", origin=origin, host="app.example.test")
    message = _cookie_finding(report)
    assert "plain http on app.example.test, not localhost" in message
    assert "Secure cookies" in message
    assert "authgate tls dev" in message
    assert "credentials: 'include'" not in message
    assert "third-party" not in message


@pytest.mark.parametrize("public_url", ["http://localhost:8086", "https://app.example.test"])
def test_https_or_localhost_have_no_plain_http_problem(public_url: str) -> None:
    assert plain_http_cookie_problem(public_url) is None
    report = _report(public_url, origin=None, host=public_url.split("//")[1])
    assert report["findings"] == []  # a same-origin call without a cookie: not logged in yet


def test_the_api_called_at_another_loopback_name_is_named_with_the_fix() -> None:
    """The page at localhost:4100 calls the API as 127.0.0.1:8086 (public URL localhost:8086):
    by Origin it looks same-site, but the browser says cross-site, and that is reported."""
    report = _report(
        "http://localhost:8086",
        origin="http://localhost:4100",
        host="127.0.0.1:8086",
        sec_fetch_site="cross-site",
    )
    assert report["same_site"] is False
    message = _cookie_finding(report)
    assert "the API was called as 127.0.0.1:8086 but its public URL is http://localhost:8086" in (
        message
    )
    assert "Sec-Fetch-Site: cross-site" in message
    assert "createClient({ baseUrl: 'http://localhost:8086' })" in message
    assert "credentials: 'include'" not in message


def test_at_the_public_urls_own_name_the_generic_cookie_message_stays() -> None:
    report = _report(
        "http://localhost:8086",
        origin="http://localhost:4100",
        host="localhost:8086",
        sec_fetch_site="same-site",
    )
    assert report["same_site"] is True
    assert _cookie_finding(report).startswith("No session cookie arrived: not logged in yet")


def test_a_script_probing_another_loopback_name_is_not_told_off() -> None:
    """No Origin and no Fetch Metadata: not a browser (e.g. `authgate doctor --url`)."""
    report = _report("http://localhost:8086", origin=None, host="127.0.0.1:8086")
    assert report["findings"] == []
