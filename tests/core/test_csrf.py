from __future__ import annotations

import pytest

from authgate.core.csrf import CSRF_HEADERS, SAFE_METHODS, check_csrf
from authgate.core.origins import OriginAllowlist, parse_origin
from authgate.errors import AuthError, CsrfFailedError

OWN = parse_origin("https://auth.example.com")
ALLOWLIST = OriginAllowlist(["https://app.example.com", "http://localhost:4100"])


def run(
    *,
    method: str = "POST",
    origin: str | None = None,
    referer: str | None = None,
    has_csrf_header: bool = True,
) -> None:
    check_csrf(
        method=method,
        origin=origin,
        referer=referer,
        has_csrf_header=has_csrf_header,
        own_origin=OWN,
        allowlist=ALLOWLIST,
    )


def fails(message: str, **kwargs: object) -> CsrfFailedError:
    with pytest.raises(CsrfFailedError) as info:
        run(**kwargs)  # type: ignore[arg-type]
    assert info.value.message == message
    return info.value


def test_constants() -> None:
    assert frozenset({"GET", "HEAD", "OPTIONS"}) == SAFE_METHODS
    assert CSRF_HEADERS == ("X-Requested-With", "X-Origin")


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "get", "Head"])
def test_safe_methods_pass_without_anything(method: str) -> None:
    run(method=method, origin="https://evil.test", has_csrf_header=False)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "post", "TRACE", "PROPFIND"])
def test_unsafe_methods_are_checked(method: str) -> None:
    fails("Origin https://evil.test is not allowed.", method=method, origin="https://evil.test")


@pytest.mark.parametrize(
    "origin", ["https://auth.example.com", "https://app.example.com", "http://localhost:4100"]
)
def test_own_or_allowlisted_origin_with_header_passes(origin: str) -> None:
    run(origin=origin)


def test_own_origin_passes_with_default_port_spelled_out() -> None:
    run(origin="https://auth.example.com:443")


def test_foreign_origin_fails() -> None:
    error = fails("Origin https://evil.test is not allowed.", origin="https://evil.test")
    assert error.code == "csrf_failed"
    assert error.status == 403
    assert isinstance(error, AuthError)


def test_foreign_origin_fails_even_with_header() -> None:
    fails(
        "Origin https://api.example.com is not allowed.",
        origin="https://api.example.com",
        has_csrf_header=True,
    )


def test_allowed_origin_without_header_fails() -> None:
    fails(
        "The request must carry an X-Requested-With or X-Origin header.",
        origin="https://app.example.com",
        has_csrf_header=False,
    )


def test_own_origin_without_header_fails() -> None:
    fails(
        "The request must carry an X-Requested-With or X-Origin header.",
        origin="https://auth.example.com",
        has_csrf_header=False,
    )


def test_origin_is_reported_before_missing_header() -> None:
    fails(
        "Origin https://evil.test is not allowed.",
        origin="https://evil.test",
        has_csrf_header=False,
    )


def test_null_origin_fails() -> None:
    error = fails(
        "The request's Origin is null (a sandboxed or privacy-restricted context); "
        "it cannot be trusted.",
        origin="null",
        referer="https://app.example.com/page",
    )
    assert error.code == "csrf_failed"


def test_no_origin_and_no_referer_fails() -> None:
    fails("The request has no Origin or Referer header.")
    fails("The request has no Origin or Referer header.", origin="", referer="")


@pytest.mark.parametrize("origin", [None, ""])
def test_referer_is_used_when_origin_is_absent_or_empty(origin: str | None) -> None:
    run(origin=origin, referer="https://app.example.com/settings?tab=1")
    fails(
        "Origin https://evil.test is not allowed.",
        origin=origin,
        referer="https://evil.test/attack.html",
    )


def test_referer_origin_also_needs_the_header() -> None:
    fails(
        "The request must carry an X-Requested-With or X-Origin header.",
        referer="https://app.example.com/settings",
        has_csrf_header=False,
    )


def test_origin_header_wins_over_referer() -> None:
    fails(
        "Origin https://evil.test is not allowed.",
        origin="https://evil.test",
        referer="https://app.example.com/",
    )
    run(origin="https://app.example.com", referer="https://evil.test/")


@pytest.mark.parametrize(
    "referer", ["/relative", "null", "ftp://app.example.com/", "https://u@app.example.com/"]
)
def test_unusable_referer_fails(referer: str) -> None:
    fails("The request's Referer header is not a valid http(s) URL.", referer=referer)


@pytest.mark.parametrize(
    "origin",
    ["https://app.example.com/", "*", "https://app.example.com\r\n", "x" * 10_000],
)
def test_malformed_origin_fails_without_echoing_it(origin: str) -> None:
    fails("The request's Origin header is not a valid origin.", origin=origin)


def test_lookalike_origin_fails_and_is_called_a_lookalike() -> None:
    fails(
        "Origin https://app.example.com.evil.test is not allowed. Did you mean "
        "https://app.example.com? https://app.example.com.evil.test is a look-alike of it: its "
        "host app.example.com.evil.test only starts with the allowed host app.example.com: it "
        "is another host, which anyone can register. Do not add it to AUTHGATE_ORIGINS.",
        origin="https://app.example.com.evil.test",
    )


def test_loopback_alias_of_an_allowed_origin_is_pointed_out() -> None:
    error = fails(
        "Origin http://127.0.0.1:4100 is not allowed. Did you mean http://localhost:4100? "
        "Scheme, host and port must match exactly (localhost is not 127.0.0.1).",
        origin="http://127.0.0.1:4100",
    )
    assert error.code == "csrf_failed"
