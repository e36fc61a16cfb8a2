"""``authgate tls dev``: a local certificate authority and certificates for development HTTPS.

The CA is made once per folder (ten years) and reused, so a browser or OS told to trust it keeps
trusting every certificate issued later. Private keys are written with mode 0600. Never for
production: use certificates from a real CA (certbot) there.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DEFAULT_NAMES",
    "DevCertificate",
    "dev_certificate_names",
    "ensure_dev_ca",
    "issue_dev_certificate",
    "nss_trust_commands",
]

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
CA_CERT_FILE = "authgate-dev-ca.pem"
CA_KEY_FILE = "authgate-dev-ca-key.pem"
_CA_DAYS = 3650
# Browsers refuse leaf certificates valid for more than 398 days.
_LEAF_DAYS = 397


@dataclass(frozen=True)
class DevCertificate:
    cert_path: Path
    key_path: Path
    ca_path: Path
    names: tuple[str, ...]
    not_after: datetime


def _write(path: Path, data: bytes, *, private: bool) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(tmp, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ensure_dev_ca(
    directory: Path, *, now: datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The development CA of ``directory``, created on first use."""
    cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey) and cert.not_valid_after_utc > now:
            return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "authgate development"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"authgate dev CA {now:%Y-%m-%d %H:%M}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _private_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return cert, key


def _name_key(name: str) -> str:
    try:
        return ipaddress.ip_address(name).compressed
    except ValueError:
        return name.lower().rstrip(".")


def dev_certificate_names(extra: Sequence[str] = ()) -> tuple[str, ...]:
    """:data:`DEFAULT_NAMES` (``localhost`` first, so the files stay ``localhost.pem``) plus
    ``extra``, each name once (``LOCALHOST`` and ``0:0::1`` are the defaults already)."""
    names: list[str] = []
    seen: set[str] = set()
    for name in (*DEFAULT_NAMES, *extra):
        key = _name_key(name)
        if key not in seen:
            seen.add(key)
            names.append(name)
    return tuple(names)


def _subject_alternative_names(names: Sequence[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def issue_dev_certificate(
    directory: Path, names: Sequence[str] = DEFAULT_NAMES, *, now: datetime
) -> DevCertificate:
    """A server certificate for ``names`` (DNS names or IP addresses) signed by the folder's
    development CA; written as ``<first name>.pem`` and ``<first name>-key.pem`` (0600)."""
    if not names:
        raise ValueError("at least one name is needed")
    ca_cert, ca_key = ensure_dev_ca(directory, now=now)
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + timedelta(days=_LEAF_DAYS)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(_subject_alternative_names(names)), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    stem = names[0].replace(":", "_").replace("*", "wildcard")
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    _write(key_path, _private_pem(key), private=True)
    # The chain a server presents: the leaf, then the CA.
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(
        serialization.Encoding.PEM
    )
    _write(cert_path, chain, private=False)
    return DevCertificate(cert_path, key_path, directory / CA_CERT_FILE, tuple(names), not_after)


NSS_DB = "$HOME/.pki/nssdb"


def nss_trust_commands(ca_path: Path, nickname: str = "authgate-dev") -> tuple[str, ...]:
    """Shell commands that make Chrome/Chromium on Linux (the user's NSS database in
    ``~/.pki/nssdb``) trust the CA at ``ca_path``, also on a fresh home where that database does
    not exist yet; safe to run again (``certutil -N`` runs only when there is no database: on
    an existing one it would ask for its password)."""
    database = f'"sql:{NSS_DB}"'
    return (
        f'mkdir -p "{NSS_DB}"',
        f'[ -e "{NSS_DB}/cert9.db" ] || certutil -d {database} -N --empty-password',
        f"certutil -d {database} -A -t C,, -n {shlex.quote(nickname)} "
        f"-i {shlex.quote(str(ca_path))}",
    )
