"""Passkeys' RP ID versus the allowed origins (group ``origins``)."""

from __future__ import annotations

from pathlib import Path

from authgate.config import Settings
from authgate.doctor.passkeys import check_passkeys


def test_an_origin_left_without_passkeys_is_a_warning(tmp_path: Path) -> None:
    settings = Settings(
        instance_path=tmp_path,
        public_url="https://auth.example.com",
        origins=("https://app.example.com", "http://127.0.0.1:5173"),
    )
    [finding] = check_passkeys(settings)
    assert (finding.level, finding.check) == ("warning", "passkeys.origin_left_out")
    assert "http://127.0.0.1:5173" in finding.message
    assert "AUTHGATE_WEBAUTHN_RP_ID" in finding.fix


def test_the_rp_id_and_its_origins_are_reported(tmp_path: Path) -> None:
    settings = Settings(
        instance_path=tmp_path,
        public_url="https://example.com",
        origins=("https://app.example.com", "https://shop.example.org"),
    )
    [finding] = check_passkeys(settings)
    assert (finding.level, finding.check) == ("ok", "passkeys.rp_id")
    assert "related origins: https://shop.example.org" in finding.message


def test_an_ip_address_has_no_passkeys(tmp_path: Path) -> None:
    settings = Settings(instance_path=tmp_path, public_url="http://192.168.1.20:8086")
    [finding] = check_passkeys(settings)
    assert finding.check == "passkeys.unavailable"
