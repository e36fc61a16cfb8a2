"""``AUTHGATE_METRICS`` (group ``metrics``)."""

from __future__ import annotations

from pathlib import Path

from authgate.doctor import run_doctor
from authgate.doctor.metrics import check_metrics
from tests.doctor.helpers import checks, dev_settings, only, production_settings

STRONG = "f3a9c1d27be84e6a9d0c5b7f1e2a4c68"


def test_off_and_loopback_are_fine(tmp_path: Path) -> None:
    assert only(check_metrics(dev_settings(tmp_path)), "metrics.off").level == "ok"
    loopback = check_metrics(dev_settings(tmp_path, metrics="loopback"))
    assert only(loopback, "metrics.loopback").level == "ok"


def test_a_strong_token_over_https_is_fine(tmp_path: Path) -> None:
    findings = check_metrics(production_settings(tmp_path, metrics=STRONG))
    assert checks(findings) == {"metrics.token"}
    assert STRONG not in str(findings)


def test_a_weak_token_is_a_warning_in_development_and_an_error_in_production(
    tmp_path: Path,
) -> None:
    dev = only(check_metrics(dev_settings(tmp_path, metrics="secret")), "metrics.weak_token")
    assert dev.level == "warning"
    prod = only(
        check_metrics(production_settings(tmp_path, metrics="secret")), "metrics.weak_token"
    )
    assert prod.level == "error"
    assert "secret" not in prod.message
    assert "openssl rand" in prod.fix


def test_a_token_to_a_plain_http_public_url_is_a_warning(tmp_path: Path) -> None:
    findings = check_metrics(dev_settings(tmp_path, metrics=STRONG))
    assert only(findings, "metrics.token_over_http").level == "warning"


def test_the_weak_token_refusal_is_reported_once(tmp_path: Path) -> None:
    env = {
        "AUTHGATE_ENV": "production",
        "AUTHGATE_PUBLIC_URL": "https://auth.example.com",
        "AUTHGATE_INSTANCE_PATH": str(tmp_path),
        "AUTHGATE_METRICS": "short",
    }
    findings = run_doctor(env)
    assert only(findings, "metrics.weak_token").level == "error"
    others = [f for f in findings if "AUTHGATE_METRICS" in f.message]
    assert [f.check for f in others] == ["metrics.weak_token"]
