"""The public URL and the OAuth providers (groups ``public_url`` and ``oauth``)."""

from __future__ import annotations

from pathlib import Path

from authgate.doctor import check_oauth, check_public_url
from tests.doctor.helpers import PUBLIC, dev_settings, errors, only, production_settings


def test_a_plain_http_public_url_is_an_error_in_production(tmp_path: Path) -> None:
    findings = check_public_url(production_settings(tmp_path, public_url="http://auth.example.com"))

    finding = only(findings, "public_url.http_in_production")
    assert finding.level == "error"
    assert "AUTHGATE_PUBLIC_URL=https://auth.example.com" in finding.fix
    assert check_public_url(production_settings(tmp_path))[0].check == "public_url.https"


GITHUB = {"github": {"client_id": "client", "client_secret": "secret"}}


def test_each_provider_is_told_its_redirect_uri(tmp_path: Path) -> None:
    corp = {"issuer": "https://sso.example.com", "client_id": "c", "client_secret": "s"}
    settings = production_settings(tmp_path, oauth_providers={**GITHUB, "corp": corp})

    findings = check_oauth(settings)

    uris = [f.message for f in findings if f.check == "oauth.redirect_uri"]
    assert len(uris) == 2
    assert f"exactly {PUBLIC}/api/oauth/github/callback registered" in uris[1]
    assert f"exactly {PUBLIC}/api/oauth/corp/callback registered" in uris[0]
    assert not errors(findings)


def test_a_provider_allowing_http_is_an_error_in_production(tmp_path: Path) -> None:
    corp = {"issuer": "http://127.0.0.1:9", "client_id": "c", "client_secret": "s"}
    settings = production_settings(tmp_path, oauth_providers={"corp": {**corp, "allow_http": True}})

    finding = only(check_oauth(settings), "oauth.allow_http_in_production")

    assert finding.level == "error"
    assert "AUTHGATE_OAUTH_CORP_ALLOW_HTTP" in finding.fix


def test_a_plain_http_redirect_uri_in_production_is_an_error(tmp_path: Path) -> None:
    settings = production_settings(
        tmp_path, public_url="http://auth.example.com", oauth_providers=GITHUB
    )

    finding = only(check_oauth(settings), "oauth.redirect_uri_http")

    assert finding.level == "error"
    assert "http://auth.example.com/api/oauth/github/callback is plain http in production" in (
        finding.message
    )


def test_a_plain_http_redirect_uri_outside_localhost_is_warned_about(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, public_url="http://192.168.1.20:8086", oauth_providers=GITHUB)

    finding = only(check_oauth(settings), "oauth.redirect_uri_http")

    assert finding.level == "warning"
    assert "http://192.168.1.20:8086/api/oauth/github/callback" in finding.message
