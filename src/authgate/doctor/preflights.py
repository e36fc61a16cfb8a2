"""CORS preflights against the deployment, read from raw header lists: a repeated
``Access-Control-Allow-Origin`` is an error that joined headers would hide (group ``url.cors``)."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from authgate.core.origins import Origin, OriginAllowlist
from authgate.doctor.findings import Finding, error_finding, ok_finding
from authgate.doctor.probes import DEFAULT_TIMEOUT_SECONDS, request_error_cause

__all__ = [
    "FIX_PROXY_CORS",
    "LOOKALIKE_SUFFIX",
    "PREFLIGHT_HEADERS",
    "PREFLIGHT_PATH",
    "PreflightAnswer",
    "check_lookalikes",
    "check_preflight",
    "lookalike_origins",
    "preflight_problem",
    "send_preflight",
]

PREFLIGHT_PATH = "/api/auth/login"
PREFLIGHT_HEADERS = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,x-requested-with",
}
LOOKALIKE_SUFFIX = ".evil.test"
FIX_PROXY_CORS = (
    "Let authgate alone answer CORS from AUTHGATE_ORIGINS: remove Access-Control-* headers added "
    "by the proxy in front (e.g. nginx `add_header Access-Control-Allow-Origin ...`)."
)


@dataclass(frozen=True, slots=True)
class PreflightAnswer:
    """A preflight's answer, with every occurrence of the CORS headers (never joined)."""

    status: int
    allow_origin: tuple[str, ...]
    allow_credentials: tuple[str, ...]
    allow_methods: str
    allow_headers: str

    def describe(self) -> str:
        origins = " | ".join(self.allow_origin) if self.allow_origin else "(none)"
        credentials = " | ".join(self.allow_credentials) if self.allow_credentials else "(none)"
        return (
            f"HTTP {self.status}, Access-Control-Allow-Origin: {origins}, "
            f"Access-Control-Allow-Credentials: {credentials}"
        )


def send_preflight(
    session: requests.Session,
    base_url: str,
    origin: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> PreflightAnswer:
    """The preflight a browser sends before a credentialed JSON POST (raises on network errors)."""
    response = session.options(
        base_url + PREFLIGHT_PATH,
        headers={"Origin": origin, **PREFLIGHT_HEADERS},
        timeout=timeout,
        allow_redirects=False,
    )
    raw = response.raw.headers
    return PreflightAnswer(
        status=response.status_code,
        allow_origin=tuple(raw.getlist("Access-Control-Allow-Origin")),
        allow_credentials=tuple(raw.getlist("Access-Control-Allow-Credentials")),
        allow_methods=response.headers.get("Access-Control-Allow-Methods", ""),
        allow_headers=response.headers.get("Access-Control-Allow-Headers", ""),
    )


def preflight_problem(answer: PreflightAnswer, origin: str) -> tuple[str, str, str] | None:
    """``(name, what the browser does, fix)`` when the answer fails a credentialed request."""
    values = [part.strip() for value in answer.allow_origin for part in value.split(",")]
    if len(values) > 1:
        return (
            "duplicate_allow_origin",
            f"Access-Control-Allow-Origin came {len(values)} times ({' | '.join(values)}): "
            "browsers reject a response with more than one value, even identical ones, and "
            "every request from this frontend fails ('Failed to fetch').",
            "Two layers add CORS headers (usually the proxy and authgate). " + FIX_PROXY_CORS,
        )
    if not values:
        return (
            "preflight_refused",
            "No Access-Control-Allow-Origin came back: the browser blocks every credentialed "
            "request from this frontend ('Failed to fetch', 'blocked by CORS policy').",
            "The running server does not allow this origin: restart it with the current "
            "AUTHGATE_ORIGINS, and check that the proxy forwards OPTIONS requests and the "
            "Origin header unchanged.",
        )
    if values[0] != origin:
        return (
            "wrong_allow_origin",
            f"Access-Control-Allow-Origin is {values[0]!r}, not {origin}: the browser refuses "
            "the response ('*' is never accepted with credentials).",
            FIX_PROXY_CORS,
        )
    if [value.strip() for value in answer.allow_credentials] != ["true"]:
        return (
            "no_credentials",
            "Access-Control-Allow-Credentials: true is missing (or repeated): the browser "
            "refuses credentialed requests, so no cookie is sent or stored.",
            FIX_PROXY_CORS,
        )
    if not 200 <= answer.status < 300:
        return (
            "preflight_status",
            f"The preflight answered HTTP {answer.status}: browsers need a 2xx answer.",
            "Let OPTIONS requests reach authgate (an auth layer or rule in the proxy may "
            "refuse them).",
        )
    return None


def check_preflight(
    session: requests.Session,
    base_url: str,
    origin: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Finding:
    """A preflight from the allowed ``origin`` must get exactly one, matching, credentialed
    ``Access-Control-Allow-Origin``."""
    try:
        answer = send_preflight(session, base_url, origin, timeout=timeout)
    except requests.RequestException as e:
        return error_finding(
            "url.cors.unreachable",
            f"The preflight from {origin} got no answer ({request_error_cause(e)}).",
            "Check that the server runs and answers OPTIONS requests.",
        )
    problem = preflight_problem(answer, origin)
    if problem is None:
        return ok_finding(
            "url.cors.preflight",
            f"A preflight from {origin} gets exactly one Access-Control-Allow-Origin: {origin} "
            "with credentials: browsers let that frontend call with cookies.",
        )
    name, what, fix = problem
    return error_finding(f"url.cors.{name}", f"Preflight from {origin}: {what}", fix)


def lookalike_origins(origin: Origin, allowlist: OriginAllowlist) -> list[str]:
    """Origins an exact allowlist must refuse although they resemble ``origin``."""
    other_scheme = "http" if origin.scheme == "https" else "https"
    candidates = [Origin(other_scheme, origin.host, origin.port)]
    if ":" not in origin.host:  # not an IPv6 address
        candidates.insert(0, Origin(origin.scheme, origin.host + LOOKALIKE_SUFFIX, origin.port))
    return [str(candidate) for candidate in candidates if candidate not in allowlist]


def check_lookalikes(
    session: requests.Session,
    base_url: str,
    origin: Origin,
    allowlist: OriginAllowlist,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> list[Finding]:
    """Look-alikes of an allowed origin (``<host>.evil.test``, the other scheme) get no CORS."""
    findings: list[Finding] = []
    refused: list[str] = []
    for lookalike in lookalike_origins(origin, allowlist):
        try:
            answer = send_preflight(session, base_url, lookalike, timeout=timeout)
        except requests.RequestException as e:
            findings.append(
                error_finding(
                    "url.cors.unreachable",
                    f"The preflight from {lookalike} got no answer ({request_error_cause(e)}).",
                    "Check that the server runs and answers OPTIONS requests.",
                )
            )
            continue
        if answer.allow_origin:
            findings.append(
                error_finding(
                    "url.cors.lookalike_allowed",
                    f"A preflight from {lookalike}, which is not allowed, got "
                    f"Access-Control-Allow-Origin: {' | '.join(answer.allow_origin)}: something "
                    "reflects origins it should refuse, so other sites can read your users' data "
                    "with their cookies.",
                    "Remove origin reflection from the proxy (nginx `add_header "
                    "Access-Control-Allow-Origin $http_origin`) or from CORS middleware with "
                    "default settings; authgate compares origins exactly.",
                )
            )
        else:
            refused.append(lookalike)
    if refused and not findings:
        findings.append(
            ok_finding(
                "url.cors.lookalikes_refused",
                f"Look-alikes of {origin} ({', '.join(refused)}) get no CORS headers.",
            )
        )
    return findings
