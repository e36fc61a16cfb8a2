"""``authgate tls dev``: a development CA, made once, and certificates it signs."""

from __future__ import annotations

import ipaddress
import os
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from authgate.cli import main
from authgate.proxy.tls import (
    CA_CERT_FILE,
    CA_KEY_FILE,
    dev_certificate_names,
    issue_dev_certificate,
    nss_trust_commands,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_the_certificate_is_signed_by_the_ca_for_the_names_given(tmp_path: Path) -> None:
    issued = issue_dev_certificate(tmp_path, ["api.test", "127.0.0.1", "::1"], now=NOW)

    leaf, ca_in_chain = chain(issued.cert_path)
    (ca,) = chain(issued.ca_path)
    assert ca_in_chain == ca
    leaf.verify_directly_issued_by(ca)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["api.test"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    # Browsers refuse leaf certificates valid for more than 398 days.
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= timedelta(days=398)
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)


def test_private_keys_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    issued = issue_dev_certificate(tmp_path, ["localhost"], now=NOW)

    for key in (issued.key_path, tmp_path / CA_KEY_FILE):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700


def test_the_ca_is_made_once_and_reused(tmp_path: Path) -> None:
    first = issue_dev_certificate(tmp_path, ["a.test"], now=NOW)
    ca_before = (tmp_path / CA_CERT_FILE).read_bytes()

    second = issue_dev_certificate(tmp_path, ["b.test"], now=NOW + timedelta(days=1))

    assert (tmp_path / CA_CERT_FILE).read_bytes() == ca_before
    assert chain(first.cert_path)[0].issuer == chain(second.cert_path)[0].issuer
    (ca,) = chain(second.ca_path)
    chain(second.cert_path)[0].verify_directly_issued_by(ca)


def test_an_expired_ca_is_replaced(tmp_path: Path) -> None:
    issue_dev_certificate(tmp_path, ["a.test"], now=NOW)
    ca_before = (tmp_path / CA_CERT_FILE).read_bytes()

    later = issue_dev_certificate(tmp_path, ["a.test"], now=NOW + timedelta(days=4000))

    assert (tmp_path / CA_CERT_FILE).read_bytes() != ca_before
    assert later.not_after > NOW + timedelta(days=4000)


def test_the_command_writes_into_the_instance_folder_and_says_how_to_trust(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(main, ["tls", "dev"], env={"AUTHGATE_INSTANCE_PATH": str(tmp_path)})

    assert result.exit_code == 0, result.output
    folder = tmp_path / "tls"
    assert (folder / "localhost.pem").exists() and (folder / "localhost-key.pem").exists()
    assert "update-ca-certificates" in result.output
    assert str(folder / CA_CERT_FILE) in result.output
    names = chain(folder / "localhost.pem")[0].extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert names.value.get_values_for_type(x509.DNSName) == ["localhost"]


def test_names_given_are_added_to_localhost_once_each() -> None:
    assert dev_certificate_names() == ("localhost", "127.0.0.1", "::1")
    assert dev_certificate_names(["api.test", "LOCALHOST", "0:0::1", "api.test", "10.0.0.5"]) == (
        "localhost",
        "127.0.0.1",
        "::1",
        "api.test",
        "10.0.0.5",
    )


def test_the_command_adds_the_names_given_to_localhost(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["tls", "dev", "myapp.test", "localhost", "192.168.1.20"],
        env={"AUTHGATE_INSTANCE_PATH": str(tmp_path)},
    )

    assert result.exit_code == 0, result.output
    assert "(for localhost, 127.0.0.1, ::1, myapp.test, 192.168.1.20)" in result.output
    leaf = chain(tmp_path / "tls" / "localhost.pem")[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "myapp.test"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("192.168.1.20"),
    ]


def _run_in_fresh_home(home: Path, commands: list[str]) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(commands)],
        env=env,
        stdin=subprocess.DEVNULL,  # certutil -N on an existing database would ask a password
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_printed_chrome_commands_work_on_a_fresh_home_and_again(tmp_path: Path) -> None:
    """``certutil -d sql:$HOME/.pki/nssdb -A`` alone fails while ~/.pki/nssdb does not exist:
    the commands ``tls dev`` prints, run verbatim, must trust the CA on a home that never ran
    Chrome, and must run again without prompting."""
    home = tmp_path / "home"
    home.mkdir()
    result = CliRunner().invoke(main, ["tls", "dev"], env={"AUTHGATE_INSTANCE_PATH": str(tmp_path)})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  Chrome/Chromium on Linux"))
    commands = [line.strip() for line in lines[start + 1 :] if line.startswith("    ")]
    assert commands == list(nss_trust_commands(tmp_path / "tls" / CA_CERT_FILE))

    for attempt in range(2):
        ran = _run_in_fresh_home(home, commands)
        assert ran.returncode == 0, (attempt, ran.stdout, ran.stderr)

    listed = _run_in_fresh_home(home, ['certutil -d "sql:$HOME/.pki/nssdb" -L'])
    assert listed.returncode == 0, listed.stderr
    assert any(
        line.split()[:1] == ["authgate-dev"] and line.split()[-1] == "C,,"
        for line in listed.stdout.splitlines()
    ), listed.stdout


def test_the_old_single_certutil_command_fails_on_a_fresh_home(tmp_path: Path) -> None:
    """Why the database is created first: the add alone fails where ~/.pki/nssdb is missing."""
    issued = issue_dev_certificate(tmp_path, ["localhost"], now=NOW)
    home = tmp_path / "home"
    home.mkdir()

    ran = _run_in_fresh_home(
        home, [f'certutil -d "sql:$HOME/.pki/nssdb" -A -t C,, -n authgate-dev -i {issued.ca_path}']
    )

    assert ran.returncode != 0
