"""How ``--url`` talks to a running deployment: one session, the URL, timeouts, errors in a line."""

from __future__ import annotations

import ssl
from pathlib import Path

import requests

from authgate.core.origins import Origin, origin_of_url
from authgate.doctor.findings import Finding, error_finding, first_line_of_error

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "effective_port",
    "parse_probe_url",
    "probe_session",
    "request_error_cause",
]

DEFAULT_TIMEOUT_SECONDS = 5.0


def probe_session(ca_file: Path | None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # talk to the deployment itself, not through a proxy
    session.verify = str(ca_file) if ca_file else True
    session.headers["User-Agent"] = "authgate-doctor"
    return session


def parse_probe_url(url: str) -> Origin | Finding:
    origin = origin_of_url(url)
    if origin is None:
        return error_finding(
            "url.invalid",
            f"--url {url!r} is not an absolute http(s) URL.",
            "Give the address browsers use, e.g. --url https://auth.example.com.",
        )
    return origin


def effective_port(origin: Origin) -> int:
    return origin.port or (443 if origin.scheme == "https" else 80)


def request_error_cause(error: requests.RequestException) -> str:
    """The root cause of a requests error, e.g. ``[Errno 111] Connection refused``."""
    reason: BaseException = error
    seen = {id(reason)}
    while not isinstance(reason, ssl.SSLError):
        cause = reason.__cause__ or reason.__context__
        if cause is None or id(cause) in seen:
            break
        seen.add(id(cause))
        reason = cause
    return first_line_of_error(reason)[:200]
