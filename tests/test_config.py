"""Settings: sources, validation, and production refusing weak settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from authgate.config import Environment, load_settings
from authgate.errors import ConfigError


def test_defaults_are_the_embedded_development_setup() -> None:
    settings = load_settings(environ={})
    assert settings.env is Environment.DEVELOPMENT
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert settings.public_url == "http://localhost:8086"
    assert (settings.host, settings.port) == ("127.0.0.1", 8086)
    assert settings.access_token_ttl_seconds == 900


def test_environment_then_app_config_win(tmp_path: Path) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text('[authgate]\naudience = "from-toml"\naccess_token_ttl_seconds = 600\n')
    settings = load_settings(
        {"AUTHGATE_ACCESS_TOKEN_TTL_SECONDS": 300},
        environ={
            "AUTHGATE_CONFIG": str(config),
            "AUTHGATE_ACCESS_TOKEN_TTL_SECONDS": "450",
            "AUTHGATE_ORIGINS": "http://localhost:4100, https://app.example.com",
        },
    )
    assert settings.audience == "from-toml"
    assert settings.access_token_ttl_seconds == 300
    assert settings.origins == ("http://localhost:4100", "https://app.example.com")


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("AUTHGATE_ORIGINS", "*", "wildcard"),
        ("AUTHGATE_ORIGINS", "https://.*\\.example\\.com", "AUTHGATE_ORIGINS"),
        ("AUTHGATE_ORIGINS", "https://app.example.com/", "AUTHGATE_ORIGINS"),
        ("AUTHGATE_PUBLIC_URL", "localhost:8086", "AUTHGATE_PUBLIC_URL"),
        ("AUTHGATE_ACCESS_TOKEN_TTL_SECONDS", "soon", "AUTHGATE_ACCESS_TOKEN_TTL_SECONDS"),
        ("AUTHGATE_PASSWORD_MEMORY_COST_KIB", "1024", "AUTHGATE_PASSWORD_MEMORY_COST_KIB"),
        ("AUTHGATE_NO_SUCH_THING", "1", "Unknown setting"),
    ],
)
def test_bad_settings_are_a_config_error_naming_the_key(key: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={key: value})
    assert words in str(info.value)


def test_production_refuses_weak_settings_and_says_what_to_fix() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            environ={"AUTHGATE_ENV": "production", "AUTHGATE_ORIGINS": "http://app.example.com"}
        )
    message = str(info.value)
    for words in ("https", "AUTHGATE_DATABASE_URL", "AUTHGATE_KEYS_DIR", "http://app.example.com"):
        assert words in message


def test_production_accepts_safe_settings(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "AUTHGATE_ENV": "production",
            "AUTHGATE_PUBLIC_URL": "https://auth.example.com",
            "AUTHGATE_DATABASE_URL": "postgresql+psycopg://app:s3cret@db/app",
            "AUTHGATE_KEYS_DIR": str(tmp_path),
            "AUTHGATE_ORIGINS": "https://app.example.com",
        }
    )
    assert settings.is_production
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings)


def test_production_refuses_missing_and_development_keys(tmp_path: Path) -> None:
    from authgate.core.clocks import SystemClock
    from authgate.core.keys import generate_key
    from authgate.service import KeySource

    settings = load_settings(
        environ={
            "AUTHGATE_ENV": "production",
            "AUTHGATE_PUBLIC_URL": "https://auth.example.com",
            "AUTHGATE_DATABASE_URL": "sqlite:///x.db",
            "AUTHGATE_KEYS_DIR": str(tmp_path / "keys"),
        }
    )
    with pytest.raises(ConfigError, match="No signing key"):
        KeySource(settings, SystemClock())
    generate_key(tmp_path / "keys", dev=True, now=SystemClock().now())
    with pytest.raises(ConfigError, match="development"):
        KeySource(settings, SystemClock())
    later = SystemClock().now() + timedelta(seconds=1)
    generate_key(tmp_path / "keys", dev=False, now=later)
    assert not KeySource(settings, SystemClock()).ring.active.dev
