"""Origins that resemble an allowed one must never pass.

Guards against the classic mistakes: prefix/suffix/substring or regex matching of origins
(``https://.*\\.example\\.com`` matches ``https://example.com.evil.test``), reflecting any origin,
trusting ``null``, and URL-parser confusion via user info.
"""

from __future__ import annotations

import re

import pytest

from authgate.core.csrf import check_csrf
from authgate.core.origins import (
    Origin,
    OriginAllowlist,
    classify_lookalike,
    explain_refused_origin,
    origin_of_url,
    parse_origin,
)
from authgate.errors import CsrfFailedError

ALLOWED = "https://app.example.com"
ALLOWLIST = OriginAllowlist([ALLOWED, "http://localhost:4100", "http://[::1]:5173"])


@pytest.mark.parametrize(
    "lookalike",
    [
        "https://app.example.com.evil.test",
        "https://app.example.com.",
        "https://evilapp.example.com",
        "https://app-example.com",
        "https://appXexample.com",
        "https://app.example.co",
        "https://app.example.comm",
        "https://pp.example.com",
        "https://sub.app.example.com",
        "https://example.com",
        "https://app.example.com:444",
        "https://app.example.com:8443",
        "http://app.example.com",
        "http://app.example.com:443",
        "wss://app.example.com",
        "https://app.example.com@evil.test",
        "https://evil.test@app.example.com",
        "https://evil.test#@app.example.com",
        "https://evil.test?.app.example.com",
        "https://evil.test/app.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://app.example.com%2eevil.test",
        "https://app.example.com\\.evil.test",
        "https://xn--pp-8ka.example.com",
        "https://\u0430pp.example.com",  # Cyrillic small a
        " https://app.example.com",
        "https://app.example.com ",
        "https://app.example.com\t",
        "https://app.example.com, https://evil.test",
        "https://app.example.com https://evil.test",
        "null",
        "NULL",
        "",
        "*",
        "https://*",
        "http://localhost:41000",
        "http://localhost:410",
        "http://localhost",
        "http://127.0.0.1:4100",
        "http://localhost.evil.test:4100",
        "https://localhost:4100",
        "http://[::1]",
        "http://[::2]:5173",
        "http://[::1]:51730",
    ],
)
def test_lookalike_origin_is_not_allowed(lookalike: str) -> None:
    assert not ALLOWLIST.allows(lookalike)
    with pytest.raises(CsrfFailedError):
        check_csrf(
            method="POST",
            origin=lookalike or None,
            referer=None,
            has_csrf_header=True,
            own_origin=parse_origin("https://auth.example.com"),
            allowlist=ALLOWLIST,
        )


@pytest.mark.parametrize(
    "same",
    [
        "https://app.example.com",
        "HTTPS://APP.EXAMPLE.COM",
        "https://App.Example.Com:443",
        "http://localhost:4100",
        "http://LOCALHOST:4100",
        "http://[::1]:5173",
        "http://[0:0:0:0:0:0:0:1]:5173",
    ],
)
def test_canonical_spellings_of_an_allowed_origin_are_allowed(same: str) -> None:
    assert ALLOWLIST.allows(same)


def test_uppercase_host_is_normalised_at_configuration() -> None:
    allowlist = OriginAllowlist(["HTTPS://APP.Example.COM"])
    assert allowlist.as_strings() == ("https://app.example.com",)
    assert allowlist.allows("https://app.example.com")


def test_default_port_is_normalised() -> None:
    assert parse_origin("https://x.com:443") == parse_origin("https://x.com")
    assert parse_origin("http://x.com:80") == parse_origin("http://x.com")
    assert parse_origin("https://x.com:80") != parse_origin("https://x.com")
    assert OriginAllowlist(["https://x.com:443"]).allows("https://x.com")
    assert OriginAllowlist(["https://x.com"]).allows("https://x.com:443")
    assert not OriginAllowlist(["https://x.com"]).allows("http://x.com:443")


def test_ipv6_origins() -> None:
    origin = parse_origin("http://[::1]:8080")
    assert origin == Origin("http", "::1", 8080)
    assert origin.serialize() == "http://[::1]:8080"
    allowlist = OriginAllowlist(["https://[2001:db8::1]"])
    assert allowlist.allows("https://[2001:0db8:0000:0000:0000:0000:0000:0001]")
    assert not allowlist.allows("https://[2001:db8::2]")
    assert not allowlist.allows("https://2001:db8::1")


@pytest.mark.parametrize(
    "entry",
    [
        "https://.*\\.example\\.com",
        "https://*.example.com",
        "https://app\\.example\\.com",
        "^https://app.example.com$",
        "https://app.example.com$",
        "https://(app|api).example.com",
        "https://app.example.com|https://evil.test",
        "https://app[0-9].example.com",
        "https://app.example.com/.*",
        "https://app.example.(com|org)",
        "https://app.example.com{1}",
        "https://app?.example.com",
        "https://ap+.example.com",
        "/https:\\/\\/app\\.example\\.com/",
        "r'https://app.example.com'",
    ],
)
def test_regex_like_entries_are_refused_at_parse(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_origin(entry)
    with pytest.raises(ValueError):
        OriginAllowlist([entry])


@pytest.mark.parametrize("entry", ["*", "https://*.example.com", "http://*"])
def test_wildcards_are_refused_with_credentials_message(entry: str) -> None:
    with pytest.raises(ValueError, match="a wildcard cannot be used with credentials"):
        OriginAllowlist([entry])


def test_null_cannot_be_allowed() -> None:
    with pytest.raises(ValueError, match="null"):
        OriginAllowlist(["null"])
    assert not OriginAllowlist([ALLOWED]).allows("null")


@pytest.mark.parametrize(
    "entry",
    [
        "https://app.example.com/",
        "https://app.example.com//",
        "https://app.example.com/app",
        "https://app.example.com/?",
        "https://app.example.com?",
        "https://app.example.com#",
    ],
)
def test_trailing_slash_and_paths_are_refused(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_origin(entry)


@pytest.mark.parametrize(
    "entry",
    [
        "https://a.com@evil.test",
        "https://user:pass@app.example.com",
        "https://@app.example.com",
        "https://app.example.com:443@evil.test",
    ],
)
def test_userinfo_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="user info"):
        parse_origin(entry)


def test_userinfo_in_referer_gives_no_origin() -> None:
    # urllib would say the host is evil.test; a browser never sends credentials in Referer.
    assert origin_of_url("https://app.example.com@evil.test/") is None
    assert origin_of_url("https://evil.test\\@app.example.com/") is None


def test_referer_lookalike_is_not_trusted() -> None:
    with pytest.raises(
        CsrfFailedError, match=re.escape("Origin https://app.example.com.evil.test is not allowed.")
    ):
        check_csrf(
            method="POST",
            origin=None,
            referer="https://app.example.com.evil.test/https://app.example.com/",
            has_csrf_header=True,
            own_origin=parse_origin("https://auth.example.com"),
            allowlist=ALLOWLIST,
        )


@pytest.mark.parametrize(
    "lookalike",
    [
        "https://app.example.com.evil.test",
        "https://evilapp.example.com",
        "https://sub.app.example.com",
        "https://app.example.comm",
        "https://app.example.com:444",
        "http://app.example.com",
        "http://app.example.com:443",
        "https://xn--pp-8ka.example.com",
        "https://xn--pp-6kc.example.com",
        "http://localhost:41000",
        "https://localhost:4100",
        "http://localhost.evil.test:4100",
        "http://[::1]:51730",
    ],
)
def test_a_parseable_lookalike_is_classified_and_never_advised(lookalike: str) -> None:
    """Every look-alike an origin parser accepts is named as one, and no explanation of the
    refusal advises allowing it (``doctor cors`` and ``/api/auth/diagnose`` build on this)."""
    origin = parse_origin(lookalike)
    own = parse_origin("https://auth.example.com")

    assert classify_lookalike(origin, ALLOWLIST) is not None
    refused = explain_refused_origin(origin, own, ALLOWLIST)
    assert not refused.may_be_allowed
    assert "look-alike" in refused.hint()
    assert "AUTHGATE_ORIGINS=" not in refused.advice()
    assert f"Add {origin}" not in refused.advice()
