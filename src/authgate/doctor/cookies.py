"""Cookies versus topology: same-site or cross-site frontends, Secure over plain http (group
``cookies``)."""

from __future__ import annotations

from collections.abc import Sequence

from authgate.config import Settings
from authgate.core.origins import (
    Origin,
    derive_cookie_policy,
    is_ip_address,
    is_local_host,
    is_same_site,
    parse_origin,
    site_of,
)
from authgate.doctor.findings import Finding, error_finding, ok_finding, warning_finding

__all__ = [
    "check_cookies",
    "cookie_mode",
    "same_site_advice",
    "same_site_example",
    "secure_over_http_finding",
]


def check_cookies(settings: Settings) -> list[Finding]:
    """Cookies versus topology: same-site or cross-site frontends, Secure over plain http."""
    own = parse_origin(settings.public_url)
    policy = derive_cookie_policy(settings.public_url, settings.allowlist)
    mode = cookie_mode(policy.samesite, policy.partitioned)
    findings: list[Finding] = []
    if own.scheme == "http" and not is_local_host(own.host) and not settings.is_production:
        findings.append(secure_over_http_finding(own, "cookies.secure_over_http"))
    for origin in settings.allowlist:
        if origin == own:
            continue
        if is_same_site(origin, own):
            note = (
                ""
                if policy.samesite == "Lax"
                else f" (they are {mode} only because of the cross-site origin(s) "
                f"{', '.join(policy.cross_site_origins)})"
            )
            findings.append(
                ok_finding(
                    "cookies.same_site",
                    f"{origin} is same-site with the API ({site_of(own)}): its cookies are "
                    f"first-party{note}, and blocking third-party cookies does not affect them.",
                )
            )
        else:
            findings.append(_cross_site_warning(origin, own, policy.cross_site_origins))
    if not settings.origins:
        findings.append(
            ok_finding(
                "cookies.first_party", f"Cookies are {mode}, used by same-origin pages only."
            )
        )
    return findings


def cookie_mode(samesite: str, partitioned: bool) -> str:
    return f"SameSite={samesite}; Secure" + ("; Partitioned" if partitioned else "")


def secure_over_http_finding(own: Origin, check: str) -> Finding:
    return error_finding(
        check,
        f"The API is plain http on {own.host}, not localhost: browsers drop the Secure cookies "
        "it sets, so a login answers 200 but every later request is 401.",
        "Serve the API over https (for development `authgate tls dev` makes a certificate), "
        "or use http://localhost while developing.",
    )


def _cross_site_warning(origin: Origin, own: Origin, cross_site: Sequence[str]) -> Finding:
    scheme_note = "; http and https are different sites" if origin.scheme != own.scheme else ""
    also = ""
    if len(cross_site) > 1:
        also = f" The same holds for {', '.join(o for o in cross_site if o != str(origin))}."
    return warning_finding(
        "cookies.cross_site",
        f"{origin} (site {site_of(origin)}) is cross-site with the API (site {site_of(own)}"
        f"{scheme_note}): for pages there the session cookie is a third-party cookie, set "
        "SameSite=None; Secure; Partitioned (and so it is for every frontend). Browsers that "
        "block third-party cookies accept it only partitioned (Chrome, Edge, Firefox); Safari "
        f"and strict settings drop it, so logins from {origin} fail there.{also}",
        f"{same_site_advice(origin)}; then cookies are first-party. Or have that frontend use "
        "bearer tokens.",
    )


def same_site_example(origin: Origin) -> str:
    """Where the API would be same-site with ``origin``, as an example."""
    registrable = site_of(origin).partition("://")[2]
    if is_ip_address(origin.host) or "." not in registrable:  # an IP address, localhost
        return f"e.g. on {origin.scheme}://{origin.host} too, with another port"
    return f"e.g. {origin.scheme}://api.{registrable}"


def same_site_advice(origin: Origin) -> str:
    """How to make the cookies first-party for ``origin``, as the start of a fix.

    An API on plain http off localhost loses its Secure cookies, so for an http frontend that
    is not on localhost the advice is https for both, never http for the API."""
    if origin.scheme == "http" and not is_local_host(origin.host):
        secure = Origin("https", origin.host, None)
        return (
            f"Serve that frontend over https ({secure}) and the API on its site "
            f"({same_site_example(secure)}): an API on plain http off localhost loses its Secure "
            "cookies"
        )
    return f"Serve the API on the frontend's site ({same_site_example(origin)})"
