"""The deployment's certificate: trusted, for its host, not about to expire (group ``url.tls``)."""

from __future__ import annotations

import socket
import ssl
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from authgate.doctor.clock import utc_now
from authgate.doctor.findings import (
    Finding,
    error_finding,
    first_line_of_error,
    ok_finding,
    warning_finding,
)
from authgate.doctor.probes import DEFAULT_TIMEOUT_SECONDS

__all__ = ["TLS_WARNING_DAYS", "check_tls_certificate"]

TLS_WARNING_DAYS = 14
_X509_NOT_YET_VALID = 9
_X509_EXPIRED = 10
_X509_NAME_MISMATCHES = frozenset({62, 64})  # hostname mismatch, IP address mismatch


def _peer_certificate(host: str, port: int, context: ssl.SSLContext, timeout: float) -> bytes:
    with (
        socket.create_connection((host, port), timeout=timeout) as sock,
        context.wrap_socket(sock, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("the server sent no certificate")
    return der


def _unverified_certificate(host: str, port: int, timeout: float) -> x509.Certificate | None:
    """The certificate as sent, for describing what is wrong with it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        return x509.load_der_x509_certificate(_peer_certificate(host, port, context, timeout))
    except (OSError, ValueError):
        return None


def _certificate_names(cert: x509.Certificate | None) -> str:
    if cert is None:
        return "(unknown)"
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return cert.subject.rfc4514_string() or "(no names)"
    return ", ".join(str(getattr(name, "value", name)) for name in names) or "(no names)"


def check_tls_certificate(
    host: str,
    port: int,
    *,
    ca_file: Path | None = None,
    now: datetime | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> list[Finding]:
    """The certificate at ``host:port``: trusted (system store, or ``ca_file``), for ``host``,
    and not about to expire."""
    now = now or utc_now()
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    try:
        der = _peer_certificate(host, port, context, timeout)
    except ssl.SSLCertVerificationError as e:
        cert = _unverified_certificate(host, port, timeout)
        return [_verification_failure(e, host, cert, now, ca_file)]
    except OSError as e:  # ssl.SSLError included
        return [
            error_finding(
                "url.tls.handshake_failed",
                f"No TLS handshake with {host}:{port}: {first_line_of_error(e)}.",
                "Check that this port serves https (not plain http) with a certificate and key.",
            )
        ]
    return [_expiry_finding(x509.load_der_x509_certificate(der), host, now)]


def _verification_failure(
    error: ssl.SSLCertVerificationError,
    host: str,
    cert: x509.Certificate | None,
    now: datetime,
    ca_file: Path | None,
) -> Finding:
    names = _certificate_names(cert)
    if error.verify_code == _X509_EXPIRED:
        when = ""
        if cert is not None:
            days = (now - cert.not_valid_after_utc).days
            when = f" on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC ({days} day(s) ago)"
        return error_finding(
            "url.tls.expired",
            f"The certificate of {host} expired{when}: browsers refuse to connect.",
            "Renew it (e.g. `certbot renew`), reload the proxy, and make sure renewal runs "
            "automatically (`systemctl list-timers | grep certbot`).",
        )
    if error.verify_code == _X509_NOT_YET_VALID:
        return error_finding(
            "url.tls.not_yet_valid",
            f"The certificate of {host} is not valid yet: browsers refuse to connect.",
            "Check this host's clock, and the server's; or wait until the certificate starts.",
        )
    if error.verify_code in _X509_NAME_MISMATCHES:
        return error_finding(
            "url.tls.wrong_host",
            f"The certificate is for {names}, not {host}: browsers refuse to connect.",
            f"Get a certificate that names {host} (e.g. `certbot -d {host}`), or use the name "
            "the certificate is for.",
        )
    fix = (
        f"The certificate must chain to the CA in {ca_file}; reissue it from that CA."
        if ca_file
        else "Use a certificate from a public CA (certbot), with the full chain; for a "
        "development CA pass --ca-file (e.g. instance/tls/authgate-dev-ca.pem)."
    )
    return error_finding(
        "url.tls.untrusted",
        f"The certificate of {host} (for {names}) is not trusted: {error.verify_message}.",
        fix,
    )


def _expiry_finding(cert: x509.Certificate, host: str, now: datetime) -> Finding:
    not_after = cert.not_valid_after_utc
    left = not_after - now
    until = f"{not_after:%Y-%m-%d %H:%M} UTC"
    if left <= timedelta(0):
        return error_finding(
            "url.tls.expired",
            f"The certificate of {host} expired on {until}: browsers refuse to connect.",
            "Renew it (e.g. `certbot renew`) and reload the proxy.",
        )
    if left < timedelta(days=TLS_WARNING_DAYS):
        return warning_finding(
            "url.tls.expires_soon",
            f"The certificate of {host} expires on {until}, in {left.days} day(s).",
            "Renew it now (e.g. `certbot renew`), and check that renewal runs automatically "
            "(`systemctl list-timers | grep certbot`).",
        )
    return ok_finding(
        "url.tls.valid",
        f"The certificate of {host} is trusted, names {_certificate_names(cert)}, and is valid "
        f"until {until} ({left.days} days).",
    )
