"""``doctor cors`` and the CORS probes of a misconfigured deployment (groups ``cors`` and
``url.cors``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from authgate.config import Settings
from authgate.doctor import Finding, check_deployment, check_preflight, explain_origin, probe_origin
from tests.doctor.helpers import (
    CROSS_SITE,
    PUBLIC,
    SAME_SITE,
    Responder,
    checks,
    dev_settings,
    errors,
    fake_server,
    only,
    production_settings,
    run_cli,
)
from tests.helpers import free_port

# doctor cors ---------------------------------------------------------------------------------


def cors_cli(runner: CliRunner, tmp_path: Path, origin: str, **settings: str) -> Result:
    env = {"AUTHGATE_INSTANCE_PATH": str(tmp_path)}
    env.update({f"AUTHGATE_{name.upper()}": value for name, value in settings.items()})
    return run_cli(runner, ["cors", "--origin", origin], env)


def test_cors_same_site_allowed_origin_gets_first_party_cookies(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = cors_cli(runner, tmp_path, SAME_SITE, public_url=PUBLIC, origins=SAME_SITE)

    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert f"authgate answers Access-Control-Allow-Origin: {SAME_SITE}" in out
    assert "SameSite=Lax; Secure" in out
    assert "is first-party" in out
    assert "Blocking third-party cookies does not affect it" in out


def test_cors_cross_site_origin_explains_partitioned_and_third_party_blocking(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = cors_cli(runner, tmp_path, CROSS_SITE, public_url=PUBLIC, origins=CROSS_SITE)

    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "third-party cookie, set SameSite=None; Secure; Partitioned" in out
    assert "Safari" in out
    assert "https://api.other-example.org" in out


def test_cors_origin_not_allowed_explains_failed_to_fetch_and_the_fix(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = cors_cli(runner, tmp_path, CROSS_SITE, public_url=PUBLIC, origins=SAME_SITE)

    assert result.exit_code == 1
    out = " ".join(result.stdout.split())
    assert "TypeError: Failed to fetch" in out
    assert f"fix: AUTHGATE_ORIGINS={SAME_SITE},{CROSS_SITE} and restart authgate." in out
    assert "cookie" in out  # what happens to cookies is said too


def test_cors_near_miss_is_pointed_out(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, origins=("http://localhost:4100",))

    finding = only(explain_origin(settings, "http://127.0.0.1:4100"), "cors.not_allowed")

    assert "Did you mean http://localhost:4100?" in finding.message


def test_cors_loopback_alias_fix_says_the_cookies_switch_to_partitioned(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = cors_cli(
        runner,
        tmp_path,
        "http://127.0.0.1:4100",
        public_url="http://localhost:8086",
        origins="http://localhost:4100",
    )

    assert result.exit_code == 1
    out = " ".join(result.stdout.split())
    assert "Did you mean http://localhost:4100?" in out
    assert "AUTHGATE_ORIGINS=http://localhost:4100,http://127.0.0.1:4100 and restart" in out
    assert "switches every authgate cookie from SameSite=Lax to SameSite=None; Secure; " in out
    assert "Opening the page at http://localhost:4100 instead keeps them first-party" in out


def test_cors_same_site_origin_fix_says_nothing_about_cookies(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, public_url=PUBLIC, origins=(SAME_SITE,))

    finding = only(explain_origin(settings, "https://admin.example.com"), "cors.not_allowed")

    assert "SameSite" not in finding.fix


def test_cors_lookalike_is_called_out_and_never_advised(runner: CliRunner, tmp_path: Path) -> None:
    result = cors_cli(
        runner,
        tmp_path,
        "https://app.example.test.evil.test",
        public_url="https://auth.example.test",
        origins="https://app.example.test",
    )

    assert result.exit_code == 1
    out = " ".join(result.stdout.split())
    assert "Did you mean https://app.example.test?" in out
    assert "is a look-alike of it" in out
    assert "Do not add it to AUTHGATE_ORIGINS" in out
    assert "AUTHGATE_ORIGINS=" not in out
    assert "app.example.test.evil.test and restart" not in out


@pytest.mark.parametrize(
    "lookalike",
    [
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://evilapp.example.com",
        "https://xn--pp-6kc.example.com",
    ],
)
def test_cors_every_kind_of_lookalike_gets_no_allowlist_fix(tmp_path: Path, lookalike: str) -> None:
    settings = dev_settings(tmp_path, public_url=PUBLIC, origins=(SAME_SITE,))

    finding = only(explain_origin(settings, lookalike), "cors.lookalike")

    assert finding.level == "error"
    assert "look-alike" in finding.message
    assert "AUTHGATE_ORIGINS=" not in finding.fix
    assert SAME_SITE in finding.fix


def test_cors_http_origin_with_an_https_api(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, public_url=PUBLIC, origins=("http://app.example.com",))

    findings = explain_origin(settings, "http://app.example.com")

    third_party = only(findings, "cors.cookie_third_party")
    assert "http and https are different sites" in third_party.message
    assert not errors(findings)


def test_cors_https_origin_with_a_plain_http_api_is_mixed_content(tmp_path: Path) -> None:
    settings = dev_settings(
        tmp_path, public_url="http://192.168.1.20:8086", origins=("https://app.example.com",)
    )

    findings = explain_origin(settings, "https://app.example.com")

    assert only(findings, "cors.mixed_content").level == "error"
    assert only(findings, "cors.cookie_insecure").level == "error"


def test_cors_invalid_origin(tmp_path: Path) -> None:
    finding = only(explain_origin(dev_settings(tmp_path), "localhost:4100"), "cors.origin_invalid")

    assert "address bar" in finding.fix


def test_cors_own_origin_is_same_origin(tmp_path: Path) -> None:
    findings = explain_origin(dev_settings(tmp_path, public_url=PUBLIC), PUBLIC + ":443")

    assert [f.check for f in findings] == ["cors.same_origin"]


def test_cors_http_origin_not_allowed_in_production_says_so(tmp_path: Path) -> None:
    finding = only(
        explain_origin(production_settings(tmp_path), "http://admin.example.com"),
        "cors.not_allowed",
    )

    assert "Production refuses http origins" in finding.fix


# CORS probes of a misconfigured deployment ---------------------------------------------------

FRONTEND_ORIGIN = "http://localhost:4100"


def cors_answer(status: int, allow_origin: list[str], allow_credentials: list[str]) -> Responder:
    """A server answering preflights from :data:`FRONTEND_ORIGIN` with these values (the
    look-alikes get nothing), and 200 to anything else."""

    def respond(
        method: str, path: str, headers: Mapping[str, str]
    ) -> tuple[int, list[tuple[str, str]]]:
        if method == "OPTIONS" and headers.get("Origin") == FRONTEND_ORIGIN:
            return status, [
                *(("Access-Control-Allow-Origin", value) for value in allow_origin),
                *(("Access-Control-Allow-Credentials", value) for value in allow_credentials),
            ]
        return (204 if method == "OPTIONS" else 200), []

    return respond


def probe_cors(tmp_path: Path, respond: Responder) -> list[Finding]:
    settings = Settings(instance_path=tmp_path, origins=(FRONTEND_ORIGIN,))
    with fake_server(respond) as base:
        return check_deployment(base, settings, timeout=2)


def test_a_wildcard_allow_origin_is_an_error(tmp_path: Path) -> None:
    # nginx `add_header Access-Control-Allow-Origin *` with authgate's headers hidden
    findings = probe_cors(tmp_path, cors_answer(204, ["*"], ["true"]))

    finding = only(findings, "url.cors.wrong_allow_origin")
    assert finding.level == "error"
    assert "Access-Control-Allow-Origin is '*', not http://localhost:4100" in finding.message
    assert "url.cors.preflight" not in checks(findings)


def test_a_preflight_without_credentials_is_an_error(tmp_path: Path) -> None:
    findings = probe_cors(tmp_path, cors_answer(204, [FRONTEND_ORIGIN], []))

    finding = only(findings, "url.cors.no_credentials")
    assert finding.level == "error"
    assert "Access-Control-Allow-Credentials: true is missing" in finding.message


def test_repeated_credentials_headers_are_an_error(tmp_path: Path) -> None:
    findings = probe_cors(tmp_path, cors_answer(204, [FRONTEND_ORIGIN], ["true", "true"]))

    assert only(findings, "url.cors.no_credentials").level == "error"


def test_a_preflight_404_through_a_proxy_is_an_error(tmp_path: Path) -> None:
    # A proxy adding CORS headers (`always`) to a 404 from a location that does not forward
    # OPTIONS: the headers are right, the status is not.
    findings = probe_cors(tmp_path, cors_answer(404, [FRONTEND_ORIGIN], ["true"]))

    finding = only(findings, "url.cors.preflight_status")
    assert finding.level == "error"
    assert "answered HTTP 404" in finding.message
    assert "OPTIONS" in finding.fix


def test_a_preflight_without_an_answer_is_an_error() -> None:
    with requests.Session() as session:
        finding = check_preflight(
            session, f"http://127.0.0.1:{free_port()}", FRONTEND_ORIGIN, timeout=2
        )

    assert (finding.check, finding.level) == ("url.cors.unreachable", "error")
    assert f"The preflight from {FRONTEND_ORIGIN} got no answer" in finding.message
    assert "Connection refused" in finding.message


def test_doctor_cors_url_says_when_the_server_allows_what_the_settings_do_not(
    tmp_path: Path,
) -> None:
    def reflect(
        method: str, path: str, headers: Mapping[str, str]
    ) -> tuple[int, list[tuple[str, str]]]:
        origin = headers.get("Origin", "")
        return 204, [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
        ]

    settings = Settings(instance_path=tmp_path, origins=(FRONTEND_ORIGIN,))
    with fake_server(reflect) as base:
        findings = probe_origin(base, "https://other.test", settings, timeout=2)

    finding = only(findings, "cors.server_disagrees")
    assert finding.level == "warning"
    assert "it allows this origin although your settings do not" in finding.message
    assert "Restart authgate with the current settings" in finding.fix
