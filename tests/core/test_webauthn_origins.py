"""Which origins may use the passkeys of an RP ID: at or under it, or listed as related origins
at https://<RP ID>/.well-known/webauthn; refused at startup with the fix when the RP ID was set
and an allowed origin cannot use it."""

from __future__ import annotations

import pytest

from authgate.config import load_settings
from authgate.core.webauthn_origins import MAX_RELATED_LABELS, origin_label, webauthn_origins
from authgate.errors import ConfigError


def test_default_rp_id_is_the_public_hosts() -> None:
    found = webauthn_origins(None, "https://auth.example.com", ["https://auth.example.com:8443"])
    assert found.rp_id == "auth.example.com"
    assert found.expected == ("https://auth.example.com", "https://auth.example.com:8443")
    assert found.related == ()


def test_subdomains_of_the_rp_id_need_no_listing() -> None:
    found = webauthn_origins(
        "example.com",
        "https://auth.example.com",
        ["https://app.example.com", "https://example.com"],
    )
    assert found.rp_id == "example.com"
    assert found.expected == (
        "https://auth.example.com",
        "https://app.example.com",
        "https://example.com",
    )
    assert found.related == ()


def test_another_site_is_a_related_origin_when_authgate_is_at_the_rp_id() -> None:
    found = webauthn_origins(
        "example.com",
        "https://example.com",
        ["https://app.example.com", "https://shop.example.org"],
    )
    assert found.related == ("https://shop.example.org",)
    assert found.well_known() == {"origins": ["https://example.com", "https://shop.example.org"]}
    assert "https://shop.example.org" in found.expected


def test_another_site_is_refused_when_the_well_known_cannot_be_served() -> None:
    with pytest.raises(ValueError, match=r"serve authgate at https://example.com"):
        webauthn_origins("example.com", "https://auth.example.com", ["https://shop.example.org"])


def test_the_public_url_must_be_able_to_use_the_rp_id() -> None:
    with pytest.raises(ValueError, match=r"set AUTHGATE_WEBAUTHN_RP_ID to auth\.example\.com"):
        webauthn_origins("other.com", "https://auth.example.com", [])
    with pytest.raises(ValueError, match="public suffix"):
        webauthn_origins("co.uk", "https://auth.example.co.uk", [])
    with pytest.raises(ValueError, match="IP address"):
        webauthn_origins("10.0.0.1", "http://10.0.0.1", [])
    with pytest.raises(ValueError, match="not a domain name"):
        webauthn_origins("https://example.com", "https://example.com", [])


def test_plain_http_origins_other_than_localhost_are_refused() -> None:
    with pytest.raises(ValueError, match="secure context"):
        webauthn_origins("example.com", "https://example.com", ["http://app.example.com"])
    assert webauthn_origins(
        "localhost", "http://localhost:8086", ["http://localhost:5173"]
    ).expected == ("http://localhost:8086", "http://localhost:5173")


def test_at_most_five_labels_of_related_origins() -> None:
    sites = [f"https://shop.brand{n}.com" for n in range(MAX_RELATED_LABELS)]
    found = webauthn_origins("example.com", "https://example.com", sites)
    assert len(found.related) == MAX_RELATED_LABELS
    # Another origin of a label already counted is fine; a sixth label is not.
    webauthn_origins("example.com", "https://example.com", [*sites, "https://www.brand0.co.uk"])
    with pytest.raises(ValueError, match="at most 5 distinct site labels"):
        webauthn_origins("example.com", "https://example.com", [*sites, "https://other.net"])


def test_with_the_default_rp_id_origins_that_cannot_use_it_are_left_out() -> None:
    found = webauthn_origins(None, "https://auth.example.com", ["http://127.0.0.1:5173"])
    assert found.expected == ("https://auth.example.com",)
    assert [origin for origin, _ in found.left_out] == ["http://127.0.0.1:5173"]
    assert webauthn_origins(None, "http://192.168.1.20:8086", []).rp_id is None


def test_labels() -> None:
    assert origin_label("app.example.co.uk") == "example"
    assert origin_label("localhost") is None
    assert origin_label("127.0.0.1") is None


def test_startup_refuses_an_origin_that_cannot_use_the_rp_id_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"https://shop\.example\.org cannot use passkeys"):
        load_settings(
            environ={
                "AUTHGATE_PUBLIC_URL": "https://auth.example.com",
                "AUTHGATE_WEBAUTHN_RP_ID": "example.com",
                "AUTHGATE_ORIGINS": "https://app.example.com https://shop.example.org",
            }
        )
    settings = load_settings(
        environ={
            "AUTHGATE_PUBLIC_URL": "https://auth.example.com",
            "AUTHGATE_WEBAUTHN_RP_ID": "example.com",
            "AUTHGATE_WEBAUTHN_RP_NAME": "Example",
            "AUTHGATE_ORIGINS": "https://app.example.com",
        }
    )
    assert settings.webauthn.rp_id == "example.com"
    assert settings.resolved_webauthn_rp_name == "Example"
