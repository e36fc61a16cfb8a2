"""``authgate doctor --url`` and ``doctor cors --url`` against running deployments.

The real server runs under gunicorn, over plain http and over https (gunicorn's own TLS, with
certificates from the development CA of ``authgate.proxy.tls`` or made here with a short or past
validity). What a misconfigured proxy would answer (a repeated ``Access-Control-Allow-Origin``,
any origin reflected) comes from small fake servers.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from authgate.cli import main
from authgate.config import Settings
from authgate.doctor import Finding, check_deployment, check_tls_certificate
from authgate.proxy.tls import ensure_dev_ca, issue_dev_certificate
from tests.doctor.helpers import fake_server, only
from tests.e2e.helpers import Server, ServerGroup, server_group
from tests.helpers import FRONTEND, clear_authgate_environment, free_port

OTHER_FRONTEND = "http://localhost:5173"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_authgate_environment(monkeypatch)


def levels(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.level for f in findings}


# Certificates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    ca: Path


def issue_certificate(
    directory: Path, name: str, *, not_before: datetime, not_after: datetime
) -> Certificate:
    """A certificate for ``name`` and 127.0.0.1 from the folder's development CA, valid only
    between the given times."""
    now = datetime.now(UTC)
    ca_cert, ca_key = ensure_dev_ca(directory, now=now)
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return Certificate(cert_path, key_path, directory / "authgate-dev-ca.pem")


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("doctor-tls")


# Servers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerGroup]:
    with server_group("sqlite", tmp_path_factory) as servers:
        yield servers


@pytest.fixture(scope="module")
def plain(group: ServerGroup) -> Server:
    """The server over plain http (also migrates the database and makes the keys)."""
    (server,) = group.start(workers=1)
    return server


def start_tls(group: ServerGroup, certificate: Certificate) -> Server:
    """One more server of the group, serving https with ``certificate`` (gunicorn's TLS)."""
    return group.start_tls(certificate.cert, certificate.key)


@pytest.fixture(scope="module")
def valid(group: ServerGroup, plain: Server, tls_dir: Path) -> tuple[Server, Certificate]:
    issued = issue_dev_certificate(tls_dir, ["localhost", "127.0.0.1"], now=datetime.now(UTC))
    certificate = Certificate(issued.cert_path, issued.key_path, issued.ca_path)
    return start_tls(group, certificate), certificate


def https_url(server: Server) -> str:
    return f"https://127.0.0.1:{server.port}"


def authgate_env(server: Server) -> dict[str, str]:
    return {k: v for k, v in server.env.items() if k.startswith("AUTHGATE_")}


def doctor(args: list[str], env: Mapping[str, str]) -> Result:
    return CliRunner().invoke(main, ["doctor", *args], env=dict(env), catch_exceptions=False)


def json_findings(result: Result) -> list[Finding]:
    return [
        Finding(f["level"], f["check"], f["message"], f["fix"])
        for f in json.loads(result.stdout)["findings"]
    ]


# TLS, redirect, HSTS ---------------------------------------------------------------------------


def test_https_with_a_valid_certificate_passes_and_the_missing_redirect_and_hsts_are_reported(
    valid: tuple[Server, Certificate],
) -> None:
    server, certificate = valid
    http_url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there

    result = doctor(
        [
            "--json",
            *("--url", https_url(server), "--ca-file", str(certificate.ca)),
            *("--http-url", http_url),
        ],
        authgate_env(server),
    )

    assert result.exit_code == 0, result.output
    findings = json_findings(result)
    assert only(findings, "url.tls.valid").level == "ok"
    assert "127.0.0.1" in only(findings, "url.tls.valid").message
    # gunicorn serves https only and sets no HSTS (nginx does, in front of it).
    assert only(findings, "url.hsts.missing").level == "warning"
    redirect = only(findings, "url.redirect.missing")
    assert redirect.level == "warning"
    assert f"Nothing answers plain http at {http_url}" in redirect.message
    assert only(findings, "url.cors.preflight").level == "ok"
    assert only(findings, "url.cors.lookalikes_refused").level == "ok"


def test_a_certificate_from_an_unknown_ca_is_untrusted(valid: tuple[Server, Certificate]) -> None:
    server, _ = valid

    (finding,) = check_tls_certificate("127.0.0.1", server.port, timeout=5)

    assert (finding.check, finding.level) == ("url.tls.untrusted", "error")
    assert "--ca-file" in finding.fix


def test_an_expired_certificate_is_an_error(
    group: ServerGroup, plain: Server, tls_dir: Path
) -> None:
    now = datetime.now(UTC)
    certificate = issue_certificate(
        tls_dir, "expired", not_before=now - timedelta(days=30), not_after=now - timedelta(days=2)
    )
    server = start_tls(group, certificate)

    findings = check_deployment(https_url(server), None, ca_file=certificate.ca, timeout=5)

    assert levels(findings) == {"url.tls.expired": "error"}  # nothing further: browsers stop
    assert "(2 day(s) ago)" in findings[0].message


def test_a_certificate_not_valid_yet_is_an_error(
    group: ServerGroup, plain: Server, tls_dir: Path
) -> None:
    now = datetime.now(UTC)
    certificate = issue_certificate(
        tls_dir, "future", not_before=now + timedelta(days=3), not_after=now + timedelta(days=90)
    )
    server = start_tls(group, certificate)

    findings = check_deployment(https_url(server), None, ca_file=certificate.ca, timeout=5)

    assert levels(findings) == {"url.tls.not_yet_valid": "error"}  # browsers stop there
    assert "is not valid yet" in findings[0].message
    assert "clock" in findings[0].fix


def test_a_certificate_expiring_soon_is_a_warning(
    group: ServerGroup, plain: Server, tls_dir: Path
) -> None:
    now = datetime.now(UTC)
    certificate = issue_certificate(
        tls_dir, "soon", not_before=now - timedelta(days=80), not_after=now + timedelta(days=5)
    )
    server = start_tls(group, certificate)

    findings = check_deployment(https_url(server), None, ca_file=certificate.ca, timeout=5)

    soon = only(findings, "url.tls.expires_soon")
    assert soon.level == "warning"
    assert "in 4 day(s)" in soon.message
    assert only(findings, "url.reachable").level == "ok"


def test_a_certificate_for_another_name_is_an_error(
    group: ServerGroup, plain: Server, tls_dir: Path
) -> None:
    issued = issue_dev_certificate(tls_dir, ["other.test"], now=datetime.now(UTC))
    server = start_tls(group, Certificate(issued.cert_path, issued.key_path, issued.ca_path))

    (finding,) = check_tls_certificate("127.0.0.1", server.port, ca_file=issued.ca_path, timeout=5)

    assert (finding.check, finding.level) == ("url.tls.wrong_host", "error")
    assert "for other.test, not 127.0.0.1" in finding.message


# CORS ------------------------------------------------------------------------------------------


def test_plain_http_server_passes_preflight_and_refuses_lookalikes(plain: Server) -> None:
    result = doctor(["--json", "--url", plain.base_url], authgate_env(plain))

    assert result.exit_code == 0, result.output
    findings = json_findings(result)
    assert only(findings, "url.tls.plain_http_local").level == "ok"
    assert only(findings, "url.reachable").level == "ok"
    preflight = only(findings, "url.cors.preflight")
    assert preflight.level == "ok"
    assert FRONTEND in preflight.message
    lookalikes = only(findings, "url.cors.lookalikes_refused")
    assert "http://localhost.evil.test:4100, https://localhost:4100" in lookalikes.message
    assert not [f for f in findings if f.group in ("url.hsts", "url.redirect")]


def test_a_server_running_with_other_origins_fails_the_preflight(
    plain: Server, tmp_path: Path
) -> None:
    settings = Settings(instance_path=tmp_path, origins=(FRONTEND, OTHER_FRONTEND))

    findings = check_deployment(plain.base_url, settings, timeout=5)

    refused = only(findings, "url.cors.preflight_refused")
    assert refused.level == "error"
    assert OTHER_FRONTEND in refused.message
    assert "restart it with the current AUTHGATE_ORIGINS" in refused.fix
    assert only(findings, "url.cors.preflight").message.startswith(f"A preflight from {FRONTEND}")


def cors_headers(origin: str, *, times: int = 1) -> list[tuple[str, str]]:
    return [("Access-Control-Allow-Origin", origin)] * times + [
        ("Access-Control-Allow-Credentials", "true")
    ]


def test_a_repeated_allow_origin_header_is_an_error(tmp_path: Path) -> None:
    # What nginx `add_header Access-Control-Allow-Origin ...` in front of authgate produces.
    def respond(
        method: str, path: str, headers: Mapping[str, str]
    ) -> tuple[int, list[tuple[str, str]]]:
        if method == "OPTIONS" and headers.get("Origin") == FRONTEND:
            return 204, cors_headers(FRONTEND, times=2)
        return 200, []

    settings = Settings(instance_path=tmp_path, origins=(FRONTEND,))
    with fake_server(respond) as base:
        findings = check_deployment(base, settings, timeout=5)

    duplicate = only(findings, "url.cors.duplicate_allow_origin")
    assert duplicate.level == "error"
    assert "came 2 times" in duplicate.message
    assert "proxy" in duplicate.fix


def test_a_server_reflecting_any_origin_is_an_error(tmp_path: Path) -> None:
    def respond(
        method: str, path: str, headers: Mapping[str, str]
    ) -> tuple[int, list[tuple[str, str]]]:
        origin = headers.get("Origin")
        return (204 if method == "OPTIONS" else 200), cors_headers(origin) if origin else []

    settings = Settings(instance_path=tmp_path, origins=(FRONTEND,))
    with fake_server(respond) as base:
        findings = check_deployment(base, settings, timeout=5)

    assert only(findings, "url.cors.preflight").level == "ok"
    reflected = [f for f in findings if f.check == "url.cors.lookalike_allowed"]
    assert [f.level for f in reflected] == ["error", "error"]
    assert "http://localhost.evil.test:4100" in reflected[0].message
    assert "https://localhost:4100" in reflected[1].message
    assert "url.cors.lookalikes_refused" not in levels(findings)


# doctor cors --url -----------------------------------------------------------------------------


def test_cors_url_reports_the_real_preflight_for_an_allowed_origin(plain: Server) -> None:
    result = doctor(["cors", "--origin", FRONTEND, "--url", plain.base_url], authgate_env(plain))

    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert (
        f"answered the preflight from {FRONTEND} with HTTP 200, Access-Control-Allow-Origin: "
        f"{FRONTEND}, Access-Control-Allow-Credentials: true: the browser will send the request"
    ) in out
    assert "The server itself says: origin allowed: yes, same site as the API: yes" in out


def test_cors_url_reports_the_real_preflight_for_an_origin_not_allowed(plain: Server) -> None:
    result = doctor(
        ["cors", "--origin", "https://evil.test", "--url", plain.base_url], authgate_env(plain)
    )

    assert result.exit_code == 1
    out = " ".join(result.stdout.split())
    assert "Access-Control-Allow-Origin: (none), Access-Control-Allow-Credentials: (none)" in out
    assert "https://evil.test is not in AUTHGATE_ORIGINS" in out
    assert "origin allowed: no" in out


def test_cors_url_says_when_the_server_runs_with_other_settings(plain: Server) -> None:
    env = {**authgate_env(plain), "AUTHGATE_ORIGINS": f"{FRONTEND},{OTHER_FRONTEND}"}

    result = doctor(["cors", "--json", "--origin", OTHER_FRONTEND, "--url", plain.base_url], env)

    assert result.exit_code == 1
    findings = json_findings(result)
    assert only(findings, "cors.allowed").level == "ok"  # by the settings...
    refused = only(findings, "cors.preflight_refused")  # ...but not by the running server
    assert "Your settings allow this origin but the running server does not" in refused.fix
