"""Settings: sources, validation, and production refusing weak settings."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from authgate.config import Environment, load_settings
from authgate.errors import ConfigError
from tests.helpers import KEY_ENCRYPTION_KEY


def test_defaults_are_the_embedded_development_setup() -> None:
    settings = load_settings(environ={})
    assert settings.env is Environment.DEVELOPMENT
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert settings.public_url == "http://localhost:8086"
    assert (settings.host, settings.port) == ("127.0.0.1", 8086)
    assert settings.access_token_ttl_seconds == 900


def test_the_default_public_url_follows_the_port(tmp_path: Path) -> None:
    """``authgate serve --port 8099`` (AUTHGATE_PORT) without a public URL is at localhost:8099:
    cookies, CSRF and the token issuer agree with the address it listens on."""
    from_env = load_settings(environ={"AUTHGATE_PORT": "8099"})
    assert from_env.public_url == "http://localhost:8099"
    assert from_env.resolved_issuer == "http://localhost:8099"
    # --port arrives as an override (an int), over an environment that names another port.
    from_option = load_settings({"AUTHGATE_PORT": 9001}, environ={"AUTHGATE_PORT": "8099"})
    assert from_option.public_url == "http://localhost:9001"
    config = tmp_path / "authgate.toml"
    config.write_text("[authgate]\nport = 8100\n")
    from_toml = load_settings(environ={"AUTHGATE_CONFIG": str(config)})
    assert from_toml.public_url == "http://localhost:8100"


@pytest.mark.parametrize(
    "environ",
    [
        {"AUTHGATE_PUBLIC_URL": "http://localhost:8086", "AUTHGATE_PORT": "8099"},
        {"AUTHGATE_PUBLIC_URL": "https://auth.example.test", "AUTHGATE_PORT": "8099"},
    ],
)
def test_an_explicit_public_url_is_kept_whatever_the_port(environ: dict[str, str]) -> None:
    settings = load_settings(environ=environ)
    assert (settings.public_url, settings.port) == (environ["AUTHGATE_PUBLIC_URL"], 8099)


@pytest.mark.parametrize("port", ["0", "65536", "eighty"])
def test_an_invalid_port_is_reported_as_the_port(port: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"AUTHGATE_PORT": port})
    assert "AUTHGATE_PORT" in str(caught.value)
    assert "AUTHGATE_PUBLIC_URL" not in str(caught.value)


def test_production_names_the_derived_public_url() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"AUTHGATE_ENV": "production", "AUTHGATE_PORT": "8099"})
    assert "AUTHGATE_PUBLIC_URL is http://localhost:8099: production must be served" in str(
        caught.value
    )


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
            "AUTHGATE_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
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
            "AUTHGATE_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
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


# OAuth providers ----------------------------------------------------------------------------

GITHUB_SECRET = "gh-secret-7Hq2vX9pL"
GOOGLE_SECRET = "google-secret-Jk4mN8rT"
CORP_SECRET = "corp-secret-Wz5yB3cD"
ALL_SECRETS = (GITHUB_SECRET, GOOGLE_SECRET, CORP_SECRET)

CORP_ENV = {
    "AUTHGATE_OAUTH_CORP_SSO_ISSUER": "https://sso.corp.example",
    "AUTHGATE_OAUTH_CORP_SSO_CLIENT_ID": "corp-client",
    "AUTHGATE_OAUTH_CORP_SSO_CLIENT_SECRET": CORP_SECRET,
}
PROVIDERS_ENV = {
    "AUTHGATE_OAUTH_GITHUB_CLIENT_ID": "gh-client",
    "AUTHGATE_OAUTH_GITHUB_CLIENT_SECRET": GITHUB_SECRET,
    "AUTHGATE_OAUTH_GOOGLE_CLIENT_ID": "google-client.apps.googleusercontent.com",
    "AUTHGATE_OAUTH_GOOGLE_CLIENT_SECRET": GOOGLE_SECRET,
    **CORP_ENV,
}


def _config_error(environ: dict[str, str], overrides: dict[str, object] | None = None) -> str:
    """The text of the ConfigError these settings raise; it never shows a client secret."""
    with pytest.raises(ConfigError) as info:
        load_settings(overrides, environ=environ)
    message = str(info.value)
    for secret in ALL_SECRETS:
        assert secret not in message
    return message


def test_oauth_providers_from_environment_variables() -> None:
    settings = load_settings(environ=PROVIDERS_ENV)
    providers = settings.oauth_providers
    assert list(providers) == ["github", "google", "corp_sso"]

    github = providers["github"]
    assert github.kind == "github"
    assert github.client_id == "gh-client"
    assert github.client_secret.get_secret_value() == GITHUB_SECRET
    assert github.scopes == ("read:user", "user:email")
    assert github.label("github") == "GitHub"
    assert github.issuer is None

    google = providers["google"]
    assert google.kind == "google"
    assert google.issuer == "https://accounts.google.com"
    assert google.scopes == ("openid", "email", "profile")
    assert google.label("google") == "Google"
    assert google.client_secret.get_secret_value() == GOOGLE_SECRET

    corp = providers["corp_sso"]
    assert corp.kind == "oidc"
    assert corp.issuer == "https://sso.corp.example"
    assert corp.client_id == "corp-client"
    assert corp.client_secret.get_secret_value() == CORP_SECRET
    assert corp.scopes == ("openid", "email", "profile")
    assert corp.allow_http is False
    assert corp.label("corp_sso") == "Corp_Sso"


def test_oauth_provider_optional_fields_from_environment_variables() -> None:
    settings = load_settings(
        environ={
            **CORP_ENV,
            "AUTHGATE_OAUTH_CORP_SSO_SCOPES": "openid,email  groups",
            "AUTHGATE_OAUTH_CORP_SSO_DISPLAY_NAME": "Corporate SSO",
            "AUTHGATE_OAUTH_GITHUB_CLIENT_ID": "gh-client",
            "AUTHGATE_OAUTH_GITHUB_CLIENT_SECRET": GITHUB_SECRET,
            "AUTHGATE_OAUTH_GITHUB_AUTHORIZATION_URL": "https://ghe.corp.example/login/oauth/authorize",
            "AUTHGATE_OAUTH_GITHUB_TOKEN_URL": "https://ghe.corp.example/login/oauth/access_token",
            "AUTHGATE_OAUTH_GITHUB_API_URL": "https://ghe.corp.example/api/v3",
        }
    )
    corp = settings.oauth_providers["corp_sso"]
    assert corp.scopes == ("openid", "email", "groups")
    assert corp.label("corp_sso") == "Corporate SSO"
    github = settings.oauth_providers["github"]
    assert github.authorization_url == "https://ghe.corp.example/login/oauth/authorize"
    assert github.token_url == "https://ghe.corp.example/login/oauth/access_token"
    assert github.api_url == "https://ghe.corp.example/api/v3"


def test_oauth_provider_fields_merge_across_sources_app_config_winning() -> None:
    settings = load_settings(
        {"AUTHGATE_OAUTH_GITHUB_CLIENT_SECRET": GITHUB_SECRET},
        environ={
            "AUTHGATE_OAUTH_GITHUB_CLIENT_ID": "gh-client",
            "AUTHGATE_OAUTH_GITHUB_CLIENT_SECRET": "from-the-environment",
        },
    )
    github = settings.oauth_providers["github"]
    assert github.client_id == "gh-client"
    assert github.client_secret.get_secret_value() == GITHUB_SECRET


def test_oidc_provider_without_issuer_is_refused() -> None:
    environ = {k: v for k, v in CORP_ENV.items() if not k.endswith("_ISSUER")}
    message = _config_error(environ)
    assert "AUTHGATE_OAUTH_CORP_SSO" in message
    assert "issuer" in message


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"AUTHGATE_OAUTH_CORP_SSO_ISSUER": ""}, "AUTHGATE_OAUTH_CORP_SSO_ISSUER"),
        ({"AUTHGATE_OAUTH_CORP_SSO_SCOPES": "email"}, "AUTHGATE_OAUTH_CORP_SSO_SCOPES"),
    ],
)
def test_provider_errors_name_the_exact_variable(extra: dict[str, str], variable: str) -> None:
    message = _config_error({**CORP_ENV, **extra})
    assert variable in message


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        (
            {"AUTHGATE_OAUTH_GITHUB_CLIENT_ID": "gh-client"},
            "AUTHGATE_OAUTH_GITHUB_CLIENT_SECRET",
        ),
        (
            {k: v for k, v in CORP_ENV.items() if not k.endswith("_SECRET")},
            "AUTHGATE_OAUTH_CORP_SSO_CLIENT_SECRET",
        ),
        (
            {**CORP_ENV, "AUTHGATE_OAUTH_CORP_SSO_CLIENT_SECRET": "   "},
            "AUTHGATE_OAUTH_CORP_SSO_CLIENT_SECRET",
        ),
        (
            {"AUTHGATE_OAUTH_GOOGLE_CLIENT_SECRET": GOOGLE_SECRET},
            "AUTHGATE_OAUTH_GOOGLE_CLIENT_ID",
        ),
        (
            {**CORP_ENV, "AUTHGATE_OAUTH_CORP_SSO_KIND": "facebook"},
            "AUTHGATE_OAUTH_CORP_SSO_KIND",
        ),
    ],
)
def test_missing_or_bad_provider_fields_name_the_variable(
    environ: dict[str, str], variable: str
) -> None:
    assert variable in _config_error(environ)


def test_unknown_provider_field_is_refused() -> None:
    message = _config_error({**CORP_ENV, "AUTHGATE_OAUTH_CORP_SSO_CLIENT_SECRETS": "x"})
    assert "AUTHGATE_OAUTH_CORP_SSO_CLIENT_SECRETS" in message


def test_plain_http_provider_urls_need_allow_http() -> None:
    environ = {**CORP_ENV, "AUTHGATE_OAUTH_CORP_SSO_ISSUER": "http://localhost:9000"}
    message = _config_error(environ)
    assert "http://localhost:9000" in message
    assert "AUTHGATE_OAUTH_CORP_SSO" in message
    refused = _config_error({**environ, "AUTHGATE_OAUTH_CORP_SSO_ALLOW_HTTP": "false"})
    assert "plain http" in refused

    settings = load_settings(environ={**environ, "AUTHGATE_OAUTH_CORP_SSO_ALLOW_HTTP": "true"})
    corp = settings.oauth_providers["corp_sso"]
    assert corp.allow_http is True
    assert corp.issuer == "http://localhost:9000"


def test_plain_http_github_urls_need_allow_http() -> None:
    environ = {
        "AUTHGATE_OAUTH_GITHUB_CLIENT_ID": "gh-client",
        "AUTHGATE_OAUTH_GITHUB_CLIENT_SECRET": GITHUB_SECRET,
        "AUTHGATE_OAUTH_GITHUB_API_URL": "http://localhost:9001/api",
    }
    assert "http://localhost:9001/api" in _config_error(environ)
    settings = load_settings(environ={**environ, "AUTHGATE_OAUTH_GITHUB_ALLOW_HTTP": "1"})
    assert settings.oauth_providers["github"].api_url == "http://localhost:9001/api"


@pytest.mark.parametrize(
    "issuer", ["sso.corp.example", "ftp://sso.corp.example", "https://", "javascript:alert(1)"]
)
def test_provider_urls_must_be_absolute_http_urls(issuer: str) -> None:
    message = _config_error(
        {
            **CORP_ENV,
            "AUTHGATE_OAUTH_CORP_SSO_ISSUER": issuer,
            "AUTHGATE_OAUTH_CORP_SSO_ALLOW_HTTP": "true",
        }
    )
    assert "AUTHGATE_OAUTH_CORP_SSO" in message


def _production_env(tmp_path: Path) -> dict[str, str]:
    # What production needs besides the providers (see the production tests above).
    return {
        "AUTHGATE_ENV": "production",
        "AUTHGATE_PUBLIC_URL": "https://auth.example.com",
        "AUTHGATE_DATABASE_URL": "postgresql+psycopg://app@db/app",
        "AUTHGATE_KEYS_DIR": str(tmp_path),
        "AUTHGATE_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
        "AUTHGATE_ORIGINS": "https://app.example.com",
    }


def test_production_refuses_a_provider_allowing_http(tmp_path: Path) -> None:
    environ = {
        **_production_env(tmp_path),
        **CORP_ENV,
        "AUTHGATE_OAUTH_CORP_SSO_ISSUER": "http://localhost:9000",
        "AUTHGATE_OAUTH_CORP_SSO_ALLOW_HTTP": "true",
    }
    message = _config_error(environ)
    assert "production" in message
    assert "AUTHGATE_OAUTH_CORP_SSO_ALLOW_HTTP" in message
    # Nothing else is wrong with these settings.
    assert "AUTHGATE_DATABASE_URL" not in message
    assert "AUTHGATE_KEYS_DIR" not in message
    assert "AUTHGATE_PUBLIC_URL" not in message


def test_production_refuses_allow_http_even_with_https_urls(tmp_path: Path) -> None:
    environ = {**_production_env(tmp_path), **CORP_ENV, "AUTHGATE_OAUTH_CORP_SSO_ALLOW_HTTP": "1"}
    assert "AUTHGATE_OAUTH_CORP_SSO_ALLOW_HTTP" in _config_error(environ)


def test_production_accepts_https_providers(tmp_path: Path) -> None:
    settings = load_settings(environ={**_production_env(tmp_path), **PROVIDERS_ENV})
    assert settings.is_production
    assert settings.production_problems() == []
    assert sorted(settings.oauth_providers) == ["corp_sso", "github", "google"]


def test_toml_file_refuses_a_client_secret(tmp_path: Path) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text(
        "[authgate.oauth_providers.corp_sso]\n"
        'issuer = "https://sso.corp.example"\n'
        'client_id = "corp-client"\n'
        f'client_secret = "{CORP_SECRET}"\n'
    )
    message = _config_error({"AUTHGATE_CONFIG": str(config)})
    assert str(config) in message
    assert "AUTHGATE_OAUTH_CORP_SSO_CLIENT_SECRET" in message
    assert "environment" in message


def test_toml_file_provider_with_the_secret_in_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text(
        "[authgate.oauth_providers.corp_sso]\n"
        'issuer = "https://sso.corp.example"\n'
        'client_id = "corp-client"\n'
        'scopes = ["openid", "email"]\n'
        'display_name = "Corp SSO"\n'
        "\n"
        "[authgate.oauth_providers.github]\n"
        'client_id = "gh-client"\n'
    )
    settings = load_settings(
        environ={
            "AUTHGATE_CONFIG": str(config),
            "AUTHGATE_OAUTH_CORP_SSO_CLIENT_SECRET": CORP_SECRET,
            "AUTHGATE_OAUTH_GITHUB_CLIENT_SECRET": GITHUB_SECRET,
        }
    )
    corp = settings.oauth_providers["corp_sso"]
    assert (corp.kind, corp.issuer, corp.client_id) == (
        "oidc",
        "https://sso.corp.example",
        "corp-client",
    )
    assert corp.scopes == ("openid", "email")
    assert corp.label("corp_sso") == "Corp SSO"
    assert corp.client_secret.get_secret_value() == CORP_SECRET
    github = settings.oauth_providers["github"]
    assert github.kind == "github"
    assert github.client_secret.get_secret_value() == GITHUB_SECRET


def test_toml_file_provider_without_any_secret_names_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text('[authgate.oauth_providers.github]\nclient_id = "gh-client"\n')
    message = _config_error({"AUTHGATE_CONFIG": str(config)})
    assert "AUTHGATE_OAUTH_GITHUB_CLIENT_SECRET" in message


def test_providers_as_json() -> None:
    providers = {
        "github": {"client_id": "gh-client", "client_secret": GITHUB_SECRET},
        "okta": {
            "issuer": "https://corp.okta.example",
            "client_id": "okta-client",
            "client_secret": CORP_SECRET,
            "scopes": ["openid", "email"],
            "display_name": "Okta",
        },
    }
    settings = load_settings(environ={"AUTHGATE_OAUTH_PROVIDERS": json.dumps(providers)})
    assert sorted(settings.oauth_providers) == ["github", "okta"]
    okta = settings.oauth_providers["okta"]
    assert (okta.kind, okta.issuer, okta.scopes) == (
        "oidc",
        "https://corp.okta.example",
        ("openid", "email"),
    )
    assert okta.client_secret.get_secret_value() == CORP_SECRET
    assert settings.oauth_providers["github"].scopes == ("read:user", "user:email")


def test_provider_variables_override_the_json() -> None:
    providers = {"github": {"client_id": "gh-client", "client_secret": "from-json"}}
    settings = load_settings(
        environ={
            "AUTHGATE_OAUTH_PROVIDERS": json.dumps(providers),
            "AUTHGATE_OAUTH_GITHUB_CLIENT_SECRET": GITHUB_SECRET,
        }
    )
    github = settings.oauth_providers["github"]
    assert github.client_id == "gh-client"
    assert github.client_secret.get_secret_value() == GITHUB_SECRET


@pytest.mark.parametrize("value", ["{not json", '["github"]', '"github"', "42"])
def test_providers_json_must_be_an_object(value: str) -> None:
    assert "AUTHGATE_OAUTH_PROVIDERS" in _config_error({"AUTHGATE_OAUTH_PROVIDERS": value})


@pytest.mark.parametrize(
    "name", ["Bad-Name", "GitHub", "9x", "_corp", "corp sso", "corp.sso", "", "a" * 33]
)
def test_invalid_provider_names_are_refused(name: str) -> None:
    providers = {name: {"issuer": "https://x.example", "client_id": "c", "client_secret": "s"}}
    message = _config_error({"AUTHGATE_OAUTH_PROVIDERS": json.dumps(providers)})
    assert "provider name" in message


@pytest.mark.parametrize(
    "variable", ["AUTHGATE_OAUTH_9X_CLIENT_ID", "AUTHGATE_OAUTH_CORP-SSO_CLIENT_ID"]
)
def test_invalid_provider_names_in_variables_are_refused(variable: str) -> None:
    assert "provider name" in _config_error({variable: "c"})


def test_longest_provider_name_is_accepted() -> None:
    name = "a" * 32
    providers = {name: {"issuer": "https://x.example", "client_id": "c", "client_secret": "s"}}
    settings = load_settings(environ={"AUTHGATE_OAUTH_PROVIDERS": json.dumps(providers)})
    assert list(settings.oauth_providers) == [name]


@pytest.mark.parametrize(
    ("provider", "scopes"),
    [("CORP_SSO", "email profile"), ("CORP_SSO", "openid-connect"), ("GOOGLE", "email,profile")],
)
def test_openid_connect_providers_need_the_openid_scope(provider: str, scopes: str) -> None:
    environ = {
        **PROVIDERS_ENV,
        f"AUTHGATE_OAUTH_{provider}_SCOPES": scopes,
    }
    message = _config_error(environ)
    assert "openid" in message
    assert f"AUTHGATE_OAUTH_{provider}" in message


def test_github_scopes_need_no_openid() -> None:
    settings = load_settings(environ={**PROVIDERS_ENV, "AUTHGATE_OAUTH_GITHUB_SCOPES": "read:user"})
    assert settings.oauth_providers["github"].scopes == ("read:user",)


@pytest.mark.parametrize(
    ("target", "origins"),
    [
        ("/", ""),
        ("/account", ""),
        ("/account?tab=logins#top", ""),
        ("http://localhost:8086/account", ""),
        ("https://app.example.com/home", "https://app.example.com"),
    ],
)
def test_default_redirect_accepts_safe_targets(target: str, origins: str) -> None:
    settings = load_settings(
        environ={"AUTHGATE_OAUTH_DEFAULT_REDIRECT": target, "AUTHGATE_ORIGINS": origins}
    )
    assert settings.oauth_default_redirect == target


@pytest.mark.parametrize(
    "target",
    [
        "//evil.test",
        "/\\evil.test",
        "https://evil.test/",
        "https://app.example.com/home",  # not an allowed origin here
        "https://app.example.com.evil.test/",
        "javascript:alert(1)",
        "account",
        "",
    ],
)
def test_default_redirect_refuses_unsafe_targets(target: str) -> None:
    message = _config_error(
        {"AUTHGATE_OAUTH_DEFAULT_REDIRECT": target, "AUTHGATE_ORIGINS": "http://localhost:4100"}
    )
    assert "oauth_default_redirect" in message


def test_settings_with_providers_are_hashable_and_never_show_secrets() -> None:
    first = load_settings(environ=PROVIDERS_ENV)
    second = load_settings(environ=PROVIDERS_ENV)
    assert first == second
    assert hash(first) == hash(second)
    assert {first: "cached"}[second] == "cached"
    other = load_settings(environ={**PROVIDERS_ENV, "AUTHGATE_OAUTH_GITHUB_CLIENT_ID": "other"})
    assert other != first
    assert hash(other) != hash(first)
    for text in (repr(first), str(first), first.model_dump_json()):
        for secret in ALL_SECRETS:
            assert secret not in text
    assert "corp-client" in repr(first)  # the providers are in the repr, only masked


def test_roles_are_a_list_of_role_names_each_once() -> None:
    settings = load_settings(environ={"AUTHGATE_ROLES": "editor, support editor"})
    assert settings.roles == ("editor", "support")
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"AUTHGATE_ROLES": "editor Support"})
    assert "AUTHGATE_ROLES" in str(info.value) and "'Support' is not a role name" in str(info.value)


def _s3_env(tmp_path: Path, endpoint: str, storage: str = "s3") -> dict[str, str]:
    return {
        **_production_env(tmp_path),
        "AUTHGATE_AVATAR_STORAGE": storage,
        "AUTHGATE_S3_BUCKET": "avatars",
        "AUTHGATE_S3_ENDPOINT_URL": endpoint,
    }


@pytest.mark.parametrize(
    ("endpoint", "host"),
    [
        ("http://minio.internal:9000", "minio.internal"),
        ("http://10.0.0.7:9000", "10.0.0.7"),
        ("http://[fd00::7]:9000", "fd00::7"),
        ("http://127.0.0.1.nip.io:9000", "127.0.0.1.nip.io"),
    ],
)
def test_production_refuses_a_plain_http_s3_endpoint_off_this_host(
    tmp_path: Path, endpoint: str, host: str
) -> None:
    message = _config_error(_s3_env(tmp_path, endpoint))
    assert f"AUTHGATE_S3_ENDPOINT_URL is plain http:// to {host}" in message
    assert "https://" in message
    assert "AUTHGATE_DATABASE_URL" not in message  # nothing else is wrong
    # Development only uses it (the doctor warns).
    development = {**_s3_env(tmp_path, endpoint), "AUTHGATE_ENV": "development"}
    assert load_settings(environ=development).s3_plain_http_host == host


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://minio.internal:9000",
        "http://127.0.0.1:9000",
        "http://127.8.9.10:9000",
        "http://localhost:9000",
        "http://LocalHost.:9000",
        "http://[::1]:9000",
    ],
)
def test_production_accepts_an_https_or_loopback_s3_endpoint(tmp_path: Path, endpoint: str) -> None:
    settings = load_settings(environ=_s3_env(tmp_path, endpoint))
    assert settings.production_problems() == []
    assert settings.s3_plain_http_host is None


def test_an_s3_endpoint_not_in_use_is_not_refused(tmp_path: Path) -> None:
    """With the images in the database, the S3 settings are not used."""
    environ = _s3_env(tmp_path, "http://minio.internal:9000", storage="database")
    assert load_settings(environ=environ).production_problems() == []
