"""What the server sees through its proxy (groups ``url.server`` and ``url.public_url``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import requests

from authgate.config import Settings
from authgate.core.diagnostics import plain_http_cookie_problem
from authgate.doctor import Finding, check_deployment
from authgate.doctor.server_reports import check_server_report
from tests.doctor.helpers import PUBLIC, checks, fake_server, only


def answer_json(
    method: str, path: str, headers: Mapping[str, str]
) -> tuple[int, list[tuple[str, str]]]:
    return 200, [("Content-Type", "application/json")]


def server_findings(
    tmp_path: Path, report: dict[str, Any], public_url: str, *, public_url_probed: bool = True
) -> list[Finding]:
    """check_server_report against a server whose every answer (/api/auth/diagnose included) is
    ``report``, with settings whose public URL is ``public_url``."""
    settings = Settings(instance_path=tmp_path, public_url=public_url)
    body = json.dumps(report).encode()
    with fake_server(answer_json, body=body) as base, requests.Session() as session:
        return check_server_report(
            session, base, settings, timeout=2, public_url_probed=public_url_probed
        )


def deployment_findings(tmp_path: Path, report: dict[str, Any], public_url: str) -> list[Finding]:
    """check_deployment of that server (at http://127.0.0.1:<port>, not ``public_url``)."""
    settings = Settings(instance_path=tmp_path, public_url=public_url)
    with fake_server(answer_json, body=json.dumps(report).encode()) as base:
        return check_deployment(base, settings, timeout=2)


def report_of(base_port_url: str, **values: Any) -> dict[str, Any]:
    return {"scheme": "https", "host": "", "public_url": base_port_url, "findings": [], **values}


# What authgate behind a proxy with AUTHGATE_TRUSTED_PROXIES=0 says about itself.
SCHEME_PROBLEM = (
    f"The server sees http:// but its public URL is {PUBLIC}: behind a reverse proxy, set "
    "AUTHGATE_TRUSTED_PROXIES to the number of proxies so that X-Forwarded-Proto/-For/-Host "
    "are trusted."
)
COOKIE_PROBLEM = (
    "No session cookie arrived: not logged in yet, or the request was made without "
    "credentials: 'include'."
)


def test_the_servers_own_problems_are_reported(tmp_path: Path) -> None:
    report = report_of(
        PUBLIC,
        scheme="http",
        host="auth.example.com",
        findings=[{"kind": "scheme", "message": SCHEME_PROBLEM}],
    )

    findings = server_findings(tmp_path, report, PUBLIC)

    finding = only(findings, "url.server.problem")
    assert finding.level == "warning"
    assert finding.message == f"The server says: {SCHEME_PROBLEM}"
    assert finding.fix.startswith("Set AUTHGATE_TRUSTED_PROXIES to the number of proxies")
    assert "url.server.view" not in checks(findings)


@pytest.mark.parametrize(
    ("kind", "fix"),
    [
        ("origin", "Send the requests from a page on an origin in AUTHGATE_ORIGINS"),
        ("cookie", "Log in first and send requests with credentials: 'include'"),
    ],
)
def test_each_server_problem_gets_the_fix_of_its_kind(tmp_path: Path, kind: str, fix: str) -> None:
    report = report_of(
        PUBLIC, host="auth.example.com", findings=[{"kind": kind, "message": "what it says"}]
    )

    finding = only(server_findings(tmp_path, report, PUBLIC), "url.server.problem")

    assert finding.message == "The server says: what it says"
    assert finding.fix.startswith(fix)
    assert "AUTHGATE_TRUSTED_PROXIES" not in finding.fix


def test_a_server_explaining_a_lost_cookie_by_plain_http_gets_that_fix(tmp_path: Path) -> None:
    public = "http://auth.example.test"
    message = plain_http_cookie_problem(public)
    assert message is not None
    report = report_of(public, host="auth.example.test", scheme="http")
    report["findings"] = [{"kind": "cookie", "message": message}]

    finding = only(server_findings(tmp_path, report, public), "url.server.problem")

    assert finding.message == f"The server says: {message}"
    assert "https" in finding.fix and "cookies.secure_over_http" in finding.fix
    assert "credentials" not in finding.fix


def test_a_server_problem_of_an_unknown_kind_gets_no_borrowed_fix(tmp_path: Path) -> None:
    report = report_of(
        PUBLIC, host="auth.example.com", findings=[{"kind": "later", "message": "news"}]
    )

    finding = only(server_findings(tmp_path, report, PUBLIC), "url.server.problem")

    assert (finding.message, finding.fix) == ("The server says: news", "")


def test_a_server_seeing_another_host_is_reported(tmp_path: Path) -> None:
    report = report_of(PUBLIC, host="127.0.0.1:8086")  # the proxy's own Host, not the public one

    finding = only(server_findings(tmp_path, report, PUBLIC), "url.server.wrong_host")

    assert finding.level == "warning"
    assert "'127.0.0.1:8086', not 'auth.example.com'" in finding.message


def test_the_public_host_with_its_port_is_the_right_host(tmp_path: Path) -> None:
    public = "https://[::1]:8443"

    findings = server_findings(tmp_path, report_of(public, host="[::1]:8443"), public)

    assert only(findings, "url.server.view").level == "ok"


def test_what_the_server_sees_is_not_judged_off_the_public_url(tmp_path: Path) -> None:
    """Probing gunicorn directly: it sees http and its own address, rightly; the cookie problem
    does not depend on the address and is still reported."""
    report = report_of(
        PUBLIC,
        scheme="http",
        host="localhost:8086",
        findings=[
            {"kind": "cookie", "message": COOKIE_PROBLEM},
            {"kind": "scheme", "message": SCHEME_PROBLEM},
        ],
    )

    findings = server_findings(tmp_path, report, PUBLIC, public_url_probed=False)

    assert [(f.check, f.level) for f in findings] == [
        ("url.server.problem", "warning"),
        ("url.server.not_judged", "ok"),
    ]
    assert findings[0].message == f"The server says: {COOKIE_PROBLEM}"
    assert "sees http://localhost:8086: not judged, as --url is not the public URL" in (
        findings[1].message
    )


def test_a_url_other_than_the_public_url_skips_the_servers_host_and_scheme(
    tmp_path: Path,
) -> None:
    """One cause, one finding: --url is not the public URL (url.public_url.differs), not also a
    proxy to trust and a proxy passing the wrong host."""
    report = report_of(
        PUBLIC,
        scheme="http",
        host="127.0.0.1:8086",
        findings=[{"kind": "scheme", "message": SCHEME_PROBLEM}],
    )
    findings = deployment_findings(tmp_path, report, PUBLIC)

    server = [(f.check, f.level) for f in findings if f.group in ("url.public_url", "url.server")]
    assert server == [("url.public_url.differs", "warning"), ("url.server.not_judged", "ok")]


def test_a_server_running_with_another_public_url_is_reported(tmp_path: Path) -> None:
    report = report_of("https://old.example.com", host="old.example.com")

    findings = server_findings(tmp_path, report, "https://auth.example.com")

    finding = only(findings, "url.server.other_settings")
    assert finding.level == "warning"
    assert "https://old.example.com" in finding.message


def test_a_url_other_than_the_public_url_is_pointed_out(tmp_path: Path) -> None:
    findings = deployment_findings(tmp_path, report_of(PUBLIC), PUBLIC)

    finding = only(findings, "url.public_url.differs")
    assert finding.level == "warning"
    assert f"is not AUTHGATE_PUBLIC_URL ({PUBLIC})" in finding.message
    assert f"--url {PUBLIC}" in finding.fix


def test_a_server_without_a_diagnose_report_is_pointed_out(tmp_path: Path) -> None:
    with fake_server(lambda method, path, h: (200, [])) as base:
        findings = check_deployment(base, Settings(instance_path=tmp_path), timeout=2)

    finding = only(findings, "url.server.no_report")
    assert finding.level == "warning"
    assert "/api/auth/diagnose gave no report" in finding.message
