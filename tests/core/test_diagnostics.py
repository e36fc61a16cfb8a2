"""``diagnose_request``: the explanation of a scheme the server did not expect."""

from __future__ import annotations

from authgate.core.diagnostics import RequestView, diagnose_request
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
