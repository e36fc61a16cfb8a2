"""``authgate doctor cors``: what a browser does with one origin, in plain words (group ``cors``).

From the settings (:func:`explain_origin`) and, with ``--url``, from the deployment's real answer
(:func:`probe_origin`).
"""

from __future__ import annotations

from pathlib import Path

import requests

from authgate.config import Settings
from authgate.core.origins import (
    Origin,
    derive_cookie_policy,
    explain_refused_origin,
    is_local_host,
    is_same_site,
    parse_origin,
    site_of,
)
from authgate.doctor.cookies import cookie_mode, same_site_advice, secure_over_http_finding
from authgate.doctor.findings import Finding, error_finding, ok_finding, warning_finding
from authgate.doctor.preflights import (
    FIX_PROXY_CORS,
    PreflightAnswer,
    preflight_problem,
    send_preflight,
)
from authgate.doctor.probes import (
    DEFAULT_TIMEOUT_SECONDS,
    parse_probe_url,
    probe_session,
    request_error_cause,
)

__all__ = ["explain_origin", "probe_origin"]


def explain_origin(settings: Settings, origin_text: str) -> list[Finding]:
    """What a browser does with a credentialed request from ``origin_text``, from the settings."""
    try:
        origin = parse_origin(origin_text.strip())
    except ValueError as e:
        return [
            error_finding(
                "cors.origin_invalid",
                f"{origin_text!r} is not an origin a browser sends: {e}",
                "Copy scheme://host[:port] from the frontend's address bar (no path, no "
                "trailing slash).",
            )
        ]
    own = parse_origin(settings.public_url)
    if origin == own:
        return [
            ok_finding(
                "cors.same_origin",
                f"{origin} is the API's own origin: requests are same-origin, so there is no "
                "preflight and no CORS; the cookies are first-party and sent with every request.",
            )
        ]
    findings = [_explain_preflight(settings, origin, own)]
    if findings[0].level == "error":
        return findings
    findings += _explain_transport(origin, own)
    findings.append(_explain_cookie(settings, origin, own))
    return findings


def _explain_preflight(settings: Settings, origin: Origin, own: Origin) -> Finding:
    allowed = list(settings.origins)
    if origin in settings.allowlist:
        return ok_finding(
            "cors.allowed",
            f"{origin} is in AUTHGATE_ORIGINS. The browser first sends a preflight (OPTIONS); "
            f"authgate answers Access-Control-Allow-Origin: {origin} and "
            "Access-Control-Allow-Credentials: true, allowing the headers Authorization, "
            "Content-Type, X-Requested-With and X-Origin (any other request header fails the "
            "preflight). Then the browser sends the request with cookies and lets the page "
            "read the answer.",
        )
    refused = explain_refused_origin(origin, own, settings.allowlist)
    hint = f" {refused.hint()}" if refused.hint() else ""
    if refused.lookalike is not None:
        return error_finding(
            "cors.lookalike",
            f"{origin} is not in AUTHGATE_ORIGINS, so the browser blocks its requests "
            "('TypeError: Failed to fetch', 'blocked by CORS policy') and no cookie is sent or "
            f"stored.{hint}",
            refused.advice(),
        )
    production_note = ""
    if settings.is_production and origin.scheme == "http":
        production_note = " Production refuses http origins: serve that frontend over https."
    consequence = refused.cookie_consequence()
    return error_finding(
        "cors.not_allowed",
        f"{origin} is not in AUTHGATE_ORIGINS, so the preflight (OPTIONS) gets no "
        "Access-Control-Allow-Origin. The browser then blocks the request: fetch() rejects "
        "with 'TypeError: Failed to fetch' and the console says 'blocked by CORS policy'. No "
        "cookie is sent or stored, and the page cannot read any answer (only GET "
        f"/api/auth/diagnose tells it why).{hint}",
        f"AUTHGATE_ORIGINS={','.join([*allowed, str(origin)])} and restart authgate."
        + (f" {consequence}" if consequence else "")
        + production_note,
    )


def _explain_transport(origin: Origin, own: Origin) -> list[Finding]:
    if own.scheme != "http" or is_local_host(own.host):
        return []
    findings = [secure_over_http_finding(own, "cors.cookie_insecure")]
    if origin.scheme == "https":
        findings.insert(
            0,
            error_finding(
                "cors.mixed_content",
                f"{origin} is an https page and the API is plain http: the browser blocks the "
                "request before it leaves (mixed content), and fetch() rejects with "
                "'Failed to fetch'.",
                "Serve the API over https.",
            ),
        )
    return findings


def _explain_cookie(settings: Settings, origin: Origin, own: Origin) -> Finding:
    policy = derive_cookie_policy(settings.public_url, settings.allowlist)
    mode = cookie_mode(policy.samesite, policy.partitioned)
    if is_same_site(origin, own):
        why = (
            ""
            if policy.samesite == "Lax"
            else f" (SameSite=None only because {', '.join(policy.cross_site_origins)} "
            "is cross-site)"
        )
        return ok_finding(
            "cors.cookie_first_party",
            f"{origin} and the API are the same site ({site_of(own)}), so the session cookie "
            f"({settings.session_cookie_name}; {mode}{why}) is first-party: the browser "
            "stores it when the login call uses credentials: 'include', and sends it with every "
            "later call that does. Blocking third-party cookies does not affect it.",
        )
    scheme_note = " (the schemes differ: http and https are different sites)"
    return warning_finding(
        "cors.cookie_third_party",
        f"{origin} (site {site_of(origin)}) and the API (site {site_of(own)}) are different "
        f"sites{scheme_note if origin.scheme != own.scheme else ''}, so the session cookie is a "
        f"third-party cookie, set {mode}. Chrome, Edge and Firefox store it partitioned "
        f"(CHIPS): kept for pages on {site_of(origin)} and sent back on their calls with "
        "credentials: 'include'. Browsers that block all third-party cookies (Safari by "
        "default, or strict settings) drop it: the login answers 200, the next call 401.",
        f"{same_site_advice(origin)}; then the cookie is first-party in every browser. Or "
        "use bearer tokens.",
    )


def probe_origin(
    url: str,
    origin_text: str,
    settings: Settings | None,
    *,
    ca_file: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> list[Finding]:
    """Send the preflight from ``origin_text`` to the deployment at ``url``; report the real
    headers, and what the server itself says (``GET /api/auth/diagnose``)."""
    base = parse_probe_url(url)
    if isinstance(base, Finding):
        return [base]
    base_url = str(base)
    with probe_session(ca_file) as session:
        try:
            answer = send_preflight(session, base_url, origin_text, timeout=timeout)
        except requests.RequestException as e:
            return [
                error_finding(
                    "cors.unreachable",
                    f"{base_url} does not answer ({request_error_cause(e)}).",
                    "Check the URL, and that the server runs.",
                )
            ]
        findings = [_probe_finding(answer, origin_text, settings, base_url)]
        findings += _server_view(session, base_url, origin_text, timeout)
    return findings


def _probe_finding(
    answer: PreflightAnswer, origin: str, settings: Settings | None, base_url: str
) -> Finding:
    said = f"{base_url} answered the preflight from {origin} with {answer.describe()}"
    problem = preflight_problem(answer, origin)
    allowed_by_settings = settings is not None and origin in settings.allowlist
    if problem is None:
        if settings is not None and not allowed_by_settings:
            return warning_finding(
                "cors.server_disagrees",
                said + ": it allows this origin although your settings do not, so it runs "
                "with other settings (or something in front of it answers CORS).",
                "Restart authgate with the current settings; " + FIX_PROXY_CORS,
            )
        return ok_finding("cors.server_preflight", said + ": the browser will send the request.")
    name, what, fix = problem
    if allowed_by_settings and name == "preflight_refused":
        fix = (
            "Your settings allow this origin but the running server does not: restart it with "
            "the current AUTHGATE_ORIGINS (check the environment it really runs with)."
        )
    return error_finding(f"cors.{name}", f"{said}. {what}", fix)


def _server_view(
    session: requests.Session, base_url: str, origin: str, timeout: float
) -> list[Finding]:
    try:
        response = session.get(
            base_url + "/api/auth/diagnose", headers={"Origin": origin}, timeout=timeout
        )
        report = response.json()
        mode = report["cookie_mode"]
        cookie = cookie_mode(str(mode["samesite"]), bool(mode["partitioned"]))
        allowed, same_site = report["origin_allowed"], report["same_site"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return [
            warning_finding(
                "cors.server_view",
                f"{base_url}/api/auth/diagnose gave no report: not authgate, or a proxy does "
                "not forward it.",
                "Forward /api/ to authgate.",
            )
        ]
    return [
        ok_finding(
            "cors.server_view",
            f"The server itself says: origin allowed: {_yes_no(allowed)}, same site as the "
            f"API: {_yes_no(same_site)}, session cookie {mode.get('name', '?')}: {cookie}.",
        )
    ]


def _yes_no(value: object) -> str:
    if value is None:
        return "n/a"
    return "yes" if value else "no"
