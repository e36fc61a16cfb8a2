from __future__ import annotations

import subprocess
import sys

import pytest

from authgate.core.origins import (
    CookiePolicy,
    Origin,
    OriginAllowlist,
    classify_lookalike,
    derive_cookie_policy,
    explain_refused_origin,
    is_same_site,
    origin_of_url,
    parse_origin,
    site_of,
)

# --- parse_origin / serialize -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://app.example.com", Origin("https", "app.example.com", None)),
        ("http://localhost:4100", Origin("http", "localhost", 4100)),
        ("http://127.0.0.1:8086", Origin("http", "127.0.0.1", 8086)),
        ("http://[::1]:5173", Origin("http", "::1", 5173)),
        ("https://xn--bcher-kva.example", Origin("https", "xn--bcher-kva.example", None)),
        ("HTTPS://App.Example.COM", Origin("https", "app.example.com", None)),
        ("https://x.com:443", Origin("https", "x.com", None)),
        ("http://x.com:80", Origin("http", "x.com", None)),
        ("http://x.com:443", Origin("http", "x.com", 443)),
        ("https://x.com:80", Origin("https", "x.com", 80)),
        ("https://my_app.example.com", Origin("https", "my_app.example.com", None)),
    ],
)
def test_parse_origin_accepts_and_canonicalises(text: str, expected: Origin) -> None:
    assert parse_origin(text) == expected


@pytest.mark.parametrize(
    ("origin", "text"),
    [
        (Origin("https", "app.example.com", None), "https://app.example.com"),
        (Origin("http", "localhost", 4100), "http://localhost:4100"),
        (Origin("http", "::1", 8080), "http://[::1]:8080"),
        (Origin("https", "2001:db8::1", None), "https://[2001:db8::1]"),
        (Origin("HTTPS", "APP.Example.com", 443), "https://app.example.com"),
        (Origin("http", "x.com", 80), "http://x.com"),
    ],
)
def test_serialize_is_canonical(origin: Origin, text: str) -> None:
    assert origin.serialize() == text
    assert str(origin) == text
    assert origin.netloc == text.split("://", 1)[1]  # the Host header browsers send


@pytest.mark.parametrize(
    "text",
    [
        "https://app.example.com",
        "http://localhost:4100",
        "http://[2001:db8::1:0:0:1]:8443",
        "http://10.0.0.1",
    ],
)
def test_serialize_round_trips(text: str) -> None:
    assert parse_origin(text).serialize() == text


def test_ipv6_is_compressed_to_one_spelling() -> None:
    assert parse_origin("http://[0:0:0:0:0:0:0:1]").serialize() == "http://[::1]"
    assert parse_origin("https://[2001:DB8:0:0:1:0:0:1]") == parse_origin(
        "https://[2001:db8::1:0:0:1]"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "cannot be empty"),
        ("app.example.com", "no scheme"),
        ("ftp://example.com", "http:// or https://"),
        ("javascript://example.com", "http:// or https://"),
        ("https://example.com/", "ends with '/'"),
        ("https://example.com/app", "path"),
        ("https://example.com?x=1", "query or fragment"),
        ("https://example.com#top", "query or fragment"),
        ("https://user:pw@example.com", "user info"),
        ("*", "wildcard cannot be used with credentials"),
        ("https://*.example.com", "wildcard cannot be used with credentials"),
        ("https://.*\\.example\\.com", "wildcard"),
        ("https://(app|api).example.com", "regular expression"),
        ("https://app.example.com$", "regular expression"),
        ("null", "'null' cannot be allowed"),
        (" https://example.com", "whitespace"),
        ("https://example.com\n", "whitespace"),
        ("https://exa mple.com", "whitespace"),
        ("https://bücher.example", "xn--"),
        ("https://ex%61mple.com", "percent-encoding"),
        ("https://", "no host"),
        ("https://:443", "no host"),
        ("https://example.com:", "invalid port"),
        ("https://example.com:0", "port 0"),
        ("https://example.com:65536", "port 65536"),
        ("https://example.com:12a", "invalid port"),
        ("https://example.com:+443", "regular expression"),
        ("https://example.com.", "empty label"),
        ("https://.example.com", "empty label"),
        ("https://a..example.com", "empty label"),
        ("https://-app.example.com", "'-'"),
        ("https://a" + "b" * 63 + ".com", "longer than 63"),
        ("https://" + "a." * 127 + "com", "longer than 253"),
        ("https://exa!mple.com", "not allowed in a host name"),
        ("http://::1", "brackets"),
        ("http://[::1", "never closes"),
        ("http://[::1]x", "after ']'"),
        ("http://[not-ipv6]", "invalid IPv6"),
        ("http://[fe80::1%25eth0]", "percent-encoding"),
        ("http://1.2.3", "dotted IPv4"),
        ("http://256.0.0.1", "dotted IPv4"),
        ("http://0x7f.1", "dotted IPv4"),
        ("http://0x7f000001", "hexadecimal"),
    ],
)
def test_parse_origin_refuses_with_explanation(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_origin(text)
    assert fragment in str(info.value)


def test_parse_origin_error_mentions_expected_form() -> None:
    with pytest.raises(ValueError, match=r"scheme://host\[:port\]"):
        parse_origin("https://example.com/app")


def test_parse_origin_trailing_slash_error_suggests_fix() -> None:
    with pytest.raises(ValueError, match=r"Write it as https://example\.com\."):
        parse_origin("https://example.com/")


def test_parse_origin_refuses_non_strings() -> None:
    with pytest.raises(TypeError):
        parse_origin(b"https://example.com")  # type: ignore[arg-type]


def test_parse_origin_error_shortens_huge_input() -> None:
    with pytest.raises(ValueError) as info:
        parse_origin("https://example.com/" + "x" * 10_000)
    assert len(str(info.value)) < 400


# --- origin_of_url ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://app.example.com/login?next=/x#frag", "https://app.example.com"),
        ("https://app.example.com", "https://app.example.com"),
        ("https://app.example.com:443/", "https://app.example.com"),
        ("http://localhost:4100/", "http://localhost:4100"),
        ("HTTP://LOCALHOST:4100/a", "http://localhost:4100"),
        ("http://[::1]:8080/path", "http://[::1]:8080"),
        ("https://app.example.com?q=1", "https://app.example.com"),
    ],
)
def test_origin_of_url(url: str, expected: str) -> None:
    origin = origin_of_url(url)
    assert origin is not None
    assert origin.serialize() == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "null",
        "/relative/path",
        "//app.example.com/path",
        "app.example.com",
        "ftp://example.com/file",
        "javascript:alert(1)",
        "https:app.example.com",
        "https:/app.example.com",
        "https://user@app.example.com/",
        "https://evil.test\\@app.example.com/",
        "https://app.example.com:99999/",
        "https://[::1/",
        " https://app.example.com/",
        "https://app.example.com/\r\nX-Injected: 1",
        "https://bücher.example/",
        "https:///path",
    ],
)
def test_origin_of_url_returns_none_for_unusable_urls(url: str) -> None:
    assert origin_of_url(url) is None


def test_origin_of_url_returns_none_for_non_strings() -> None:
    assert origin_of_url(None) is None  # type: ignore[arg-type]
    assert origin_of_url(42) is None  # type: ignore[arg-type]


# --- sites -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "site"),
    [
        ("https://app.example.com", "https://example.com"),
        ("https://api.example.com:8443", "https://example.com"),
        ("https://example.com", "https://example.com"),
        ("https://a.b.example.co.uk", "https://example.co.uk"),
        ("https://me.github.io", "https://me.github.io"),
        ("https://github.io", "https://github.io"),
        ("http://localhost:4100", "http://localhost"),
        ("http://localhost", "http://localhost"),
        ("http://app.localhost:3000", "http://app.localhost"),
        ("http://127.0.0.1:8000", "http://127.0.0.1"),
        ("http://[::1]:8000", "http://[::1]"),
        ("http://app.example.com", "http://example.com"),
    ],
)
def test_site_of(origin: str, site: str) -> None:
    assert site_of(parse_origin(origin)) == site


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://localhost:4100", "http://localhost:8086", True),
        ("https://app.example.com", "https://api.example.com", True),
        ("https://example.com", "https://www.example.com", True),
        ("https://me.github.io", "https://api.example.com", False),
        ("https://a.github.io", "https://b.github.io", False),
        ("http://app.example.com", "https://app.example.com", False),
        ("http://localhost:4100", "http://127.0.0.1:4100", False),
        ("https://example.co.uk", "https://other.co.uk", False),
        ("https://app.example.com", "https://app.example.com.evil.test", False),
    ],
)
def test_is_same_site(a: str, b: str, same: bool) -> None:
    assert is_same_site(parse_origin(a), parse_origin(b)) is same
    assert is_same_site(parse_origin(b), parse_origin(a)) is same


# --- OriginAllowlist -----------------------------------------------------------------------


def test_allowlist_parses_canonicalises_and_deduplicates() -> None:
    allowlist = OriginAllowlist(
        ["https://App.Example.com:443", "http://localhost:4100", "https://app.example.com"]
    )
    assert allowlist.origins == (
        Origin("https", "app.example.com", None),
        Origin("http", "localhost", 4100),
    )
    assert allowlist.as_strings() == ("https://app.example.com", "http://localhost:4100")
    assert list(allowlist) == list(allowlist.origins)
    assert len(allowlist) == 2


def test_allowlist_allows_exact_origins_only() -> None:
    allowlist = OriginAllowlist(["https://app.example.com", "http://localhost:4100"])
    assert allowlist.allows("https://app.example.com")
    assert allowlist.allows("http://localhost:4100")
    assert not allowlist.allows("http://localhost:4101")
    assert not allowlist.allows("http://localhost")
    assert not allowlist.allows("https://api.example.com")


def test_allowlist_contains_accepts_strings_and_origins() -> None:
    allowlist = OriginAllowlist(["https://app.example.com"])
    assert "https://app.example.com" in allowlist
    assert Origin("https", "app.example.com", None) in allowlist
    assert "https://evil.test" not in allowlist
    assert Origin("https", "evil.test", None) not in allowlist
    assert 42 not in allowlist
    assert None not in allowlist


@pytest.mark.parametrize("entry", ["*", " * "])
def test_allowlist_refuses_wildcard(entry: str) -> None:
    with pytest.raises(ValueError, match="a wildcard cannot be used with credentials"):
        OriginAllowlist(["https://app.example.com", entry])


def test_allowlist_refuses_bad_entries_with_parse_message() -> None:
    with pytest.raises(ValueError, match="ends with '/'"):
        OriginAllowlist(["https://app.example.com/"])


def test_allowlist_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError, match="not a single string"):
        OriginAllowlist("https://app.example.com")


def test_allowlist_empty_allows_nothing() -> None:
    allowlist = OriginAllowlist([])
    assert allowlist.origins == ()
    assert not allowlist.allows("https://app.example.com")


def test_allowlist_equality_and_repr() -> None:
    a = OriginAllowlist(["https://app.example.com", "http://localhost:4100"])
    b = OriginAllowlist(["http://localhost:4100", "https://APP.example.com"])
    c = OriginAllowlist(["https://app.example.com"])
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert repr(c) == "OriginAllowlist(['https://app.example.com'])"


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "",
        "null",
        "*",
        "undefined",
        "https://",
        "https://app.example.com/",
        "https://app.example.com\x00",
        "\udcff",
        "https://[",
        "https://app.example.com:" + "9" * 50,
        "https://" + "a" * 100_000,
        b"https://app.example.com",
        42,
        ["https://app.example.com"],
    ],
)
def test_allowlist_allows_never_raises_on_garbage(garbage: object) -> None:
    allowlist = OriginAllowlist(["https://app.example.com"])
    assert allowlist.allows(garbage) is False  # type: ignore[arg-type]


# --- cookie policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("public_url", "origins"),
    [
        ("http://localhost:8086", ["http://localhost:4100"]),
        ("https://api.example.com/auth", ["https://app.example.com", "https://example.com"]),
        ("https://auth.example.com", []),
    ],
)
def test_cookie_policy_is_lax_when_everything_is_same_site(
    public_url: str, origins: list[str]
) -> None:
    policy = derive_cookie_policy(public_url, OriginAllowlist(origins))
    assert policy == CookiePolicy(
        samesite="Lax", secure=True, partitioned=False, cross_site_origins=()
    )


@pytest.mark.parametrize(
    ("public_url", "origins", "cross"),
    [
        (
            "https://api.example.com",
            ["https://app.example.com", "https://me.github.io"],
            ("https://me.github.io",),
        ),
        ("https://a.github.io", ["https://b.github.io"], ("https://b.github.io",)),
        ("https://app.example.com", ["http://app.example.com"], ("http://app.example.com",)),
        (
            "http://localhost:8086",
            ["http://127.0.0.1:4100", "http://localhost:4100"],
            ("http://127.0.0.1:4100",),
        ),
    ],
)
def test_cookie_policy_is_none_and_partitioned_when_any_origin_is_cross_site(
    public_url: str, origins: list[str], cross: tuple[str, ...]
) -> None:
    policy = derive_cookie_policy(public_url, OriginAllowlist(origins))
    assert policy == CookiePolicy(
        samesite="None", secure=True, partitioned=True, cross_site_origins=cross
    )


def test_cookie_policy_is_frozen() -> None:
    policy = derive_cookie_policy("https://a.example.com", OriginAllowlist([]))
    with pytest.raises(AttributeError):
        policy.samesite = "None"  # type: ignore[misc]


@pytest.mark.parametrize("public_url", ["", "auth.example.com", "ftp://auth.example.com"])
def test_cookie_policy_refuses_unusable_public_url(public_url: str) -> None:
    with pytest.raises(ValueError, match="not an absolute http"):
        derive_cookie_policy(public_url, OriginAllowlist([]))


# --- layering ------------------------------------------------------------------------------


def test_origins_and_csrf_import_no_framework() -> None:
    code = (
        "import sys, authgate.core.origins, authgate.core.csrf; "
        "bad = [m for m in ('flask', 'sqlalchemy', 'werkzeug') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


# --- look-alikes and "did you mean" --------------------------------------------------------

LOOKALIKE_ALLOWED = [parse_origin(o) for o in ("https://app.example.test", "http://localhost:4100")]


@pytest.mark.parametrize(
    ("text", "kind", "allowed"),
    [
        ("https://app.example.test.evil.test", "prefix", "https://app.example.test"),
        ("https://app.example.testing", "prefix", "https://app.example.test"),
        ("https://evilapp.example.test", "suffix", "https://app.example.test"),
        ("https://sub.app.example.test", "suffix", "https://app.example.test"),
        ("http://app.example.test", "scheme", "https://app.example.test"),
        ("https://app.example.test:8443", "port", "https://app.example.test"),
        ("https://xn--pp-6kc.example.test", "confusable", "https://app.example.test"),  # Cyrillic a
        ("https://xn--pp-8ka.example.test", "confusable", "https://app.example.test"),  # a-macron
        ("https://app.examp1e.test", "confusable", "https://app.example.test"),
        ("https://app.exarnple.test", "confusable", "https://app.example.test"),
        ("https://xn--pp-6kc.example.test.evil.test", "prefix", "https://app.example.test"),
        ("http://localhost:5173", "port", "http://localhost:4100"),
        ("https://localhost:4100", "scheme", "http://localhost:4100"),
        ("http://127.0.0.1:5173", "port", "http://localhost:4100"),
        ("http://localhost.evil.test:4100", "prefix", "http://localhost:4100"),
    ],
)
def test_classify_lookalike_names_the_kind_and_the_allowed_origin(
    text: str, kind: str, allowed: str
) -> None:
    found = classify_lookalike(parse_origin(text), LOOKALIKE_ALLOWED)

    assert found is not None
    assert (found.kind, str(found.allowed)) == (kind, allowed)
    assert found.describe()


@pytest.mark.parametrize(
    "text",
    [
        "https://app.example.test",
        "HTTPS://APP.example.test:443",
        "http://127.0.0.1:4100",  # the same machine: a near miss, not a look-alike
        "http://[::1]:4100",
        "https://evil.test",
        "https://api.example.test",
        "https://example.test",
        "http://10.0.0.1:4100",
    ],
)
def test_classify_lookalike_leaves_allowed_unrelated_and_loopback_aliases_alone(
    text: str,
) -> None:
    assert classify_lookalike(parse_origin(text), LOOKALIKE_ALLOWED) is None


def test_classify_lookalike_prefers_the_closest_allowed_origin() -> None:
    allowed = [parse_origin("http://localhost:8086"), parse_origin("http://localhost:4100")]

    found = classify_lookalike(parse_origin("https://localhost:4100"), allowed)

    assert found is not None and str(found.allowed) == "http://localhost:4100"


def test_refused_lookalike_gets_no_advice_to_allow_it() -> None:
    own = parse_origin("https://auth.example.test")
    allowlist = OriginAllowlist(["https://app.example.test"])

    refused = explain_refused_origin(
        parse_origin("https://app.example.test.evil.test"), own, allowlist
    )

    assert not refused.may_be_allowed
    assert refused.hint().startswith("Did you mean https://app.example.test? ")
    assert "look-alike" in refused.hint()
    assert "Do not add it to AUTHGATE_ORIGINS" in refused.hint()
    assert "Add " not in refused.advice()
    assert "open it at exactly https://app.example.test" in refused.advice()


def test_refused_loopback_alias_says_allowing_it_switches_the_cookies() -> None:
    own = parse_origin("http://localhost:8086")
    allowlist = OriginAllowlist(["http://localhost:4100"])

    refused = explain_refused_origin(parse_origin("http://127.0.0.1:4100"), own, allowlist)

    assert refused.may_be_allowed
    assert refused.hint().startswith("Did you mean http://localhost:4100?")
    assert refused.switches_cookies
    advice = refused.advice()
    assert "Add http://127.0.0.1:4100 to AUTHGATE_ORIGINS" in advice
    assert "from SameSite=Lax to SameSite=None; Secure; Partitioned" in advice
    assert "Opening the page at http://localhost:4100 instead keeps them first-party" in advice


def test_refused_same_site_origin_changes_no_cookie() -> None:
    own = parse_origin("https://auth.example.test")
    allowlist = OriginAllowlist(["https://app.example.test"])

    refused = explain_refused_origin(parse_origin("https://admin.example.test"), own, allowlist)

    assert refused.may_be_allowed and not refused.switches_cookies
    assert refused.hint() == ""
    assert "SameSite" not in refused.advice()


def test_refused_origin_when_cookies_are_already_cross_site_switches_nothing() -> None:
    own = parse_origin("https://auth.example.test")
    allowlist = OriginAllowlist(["https://app.other.test"])

    refused = explain_refused_origin(parse_origin("https://evil.test"), own, allowlist)

    assert not refused.switches_cookies
