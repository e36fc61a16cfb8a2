"""One frozen ``Settings`` object, built from environment / TOML file / ``app.config``.

Every key has the same name everywhere: ``AUTHGATE_<NAME>`` in the environment and in
``app.config``, ``<name>`` (lower case) in the TOML file. Later sources win:
defaults < TOML file (``AUTHGATE_CONFIG``) < environment < explicit mapping (``app.config``).

No secret has a default. In development (the embedded default) the signing keys are generated
into the instance folder; in production the settings are refused unless they are safe.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import limits
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from authgate.core.oauth import safe_redirect_target
from authgate.core.origins import OriginAllowlist, parse_origin
from authgate.core.roles import is_role_name
from authgate.core.smtp_urls import (
    SmtpEndpoint,
    is_loopback_host,
    parse_mail_address,
    parse_smtp_url,
)
from authgate.core.webauthn_origins import WebAuthnOrigins, webauthn_origins
from authgate.errors import ConfigError

# The algorithms a legacy session token may use: HMAC only (the old app's shared secret); never
# "none", and never an asymmetric one whose public key could be confused for the secret.
LEGACY_JWT_ALGORITHMS = ("HS256", "HS384", "HS512")
LEGACY_JWT_ALGORITHMS_MIN_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}

ENV_PREFIX = "AUTHGATE_"
# The development public URL: ``authgate serve`` listens on loopback, and browsers reach it (and
# accept its Secure cookies over plain http) at ``localhost``.
DEVELOPMENT_PUBLIC_URL = "http://localhost:{port}"
SCOPE_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,30}(:[a-z0-9_.-]{1,31})?")
# AUTHGATE_METRICS: its two keywords; any other value is the bearer token a scraper must send.
METRICS_OFF = "off"
METRICS_LOOPBACK = "loopback"
METRICS_TOKEN_PATTERN = re.compile(r"[\x21-\x7e]{1,512}")
# What production asks of a metrics token: long, and not one character repeated.
METRICS_TOKEN_MIN_LENGTH = 32
METRICS_TOKEN_MIN_DISTINCT = 10


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


PROVIDER_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
# Fields of one OAuth provider, as they appear at the end of AUTHGATE_OAUTH_<NAME>_<FIELD>.
PROVIDER_FIELDS = (
    "authorization_url",
    "client_secret",
    "display_name",
    "allow_http",
    "trust_email",
    "client_id",
    "token_url",
    "api_url",
    "issuer",
    "scopes",
    "kind",
)
GOOGLE_ISSUER = "https://accounts.google.com"
_DEFAULT_SCOPES = {
    "github": ("read:user", "user:email"),
    "google": ("openid", "email", "profile"),
    "oidc": ("openid", "email", "profile"),
}
_DEFAULT_DISPLAY_NAMES = {"github": "GitHub", "google": "Google"}


class OAuthProviderSettings(BaseModel):
    """One "Log in with ..." provider: ``github``, ``google`` or any OpenID Connect ``oidc``
    provider known by its issuer (endpoints and keys come from its discovery document)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["github", "google", "oidc"]
    client_id: str = Field(min_length=1, max_length=255)
    client_secret: SecretStr
    # Checked (and completed from the kind) even when not given, so that an error names them.
    issuer: str | None = Field(default=None, validate_default=True)
    scopes: tuple[str, ...] = Field(default=(), validate_default=True)
    display_name: str = Field(default="", max_length=60)
    # GitHub Enterprise Server (or a test double) lives elsewhere than github.com.
    authorization_url: str = "https://github.com/login/oauth/authorize"
    token_url: str = "https://github.com/login/oauth/access_token"  # noqa: S105 - a URL
    api_url: str = "https://api.github.com"
    # Plain-http provider URLs are refused unless named here (a local test provider); never in
    # production.
    allow_http: bool = False
    # Whether this provider's "email verified" may join an existing account with that verified
    # email. GitHub and Google: yes. Any other OIDC provider only when configured so: a
    # misconfigured or federated provider would otherwise be a way into other people's accounts.
    trust_email: bool | None = None

    @field_validator("scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(value.replace(",", " ").split())
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_of_kind(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "google" and not value:
            return GOOGLE_ISSUER
        if kind == "oidc" and not value:
            raise ValueError("an oidc provider needs its issuer URL")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes_of_kind(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        kind = info.data.get("kind")
        if kind not in _DEFAULT_SCOPES:
            return value  # the kind itself is invalid: that is the error to report
        scopes = value or _DEFAULT_SCOPES[kind]
        if kind != "github" and "openid" not in scopes:
            raise ValueError("the scopes of an OpenID Connect provider must include openid")
        return scopes

    @field_validator("client_secret")
    @classmethod
    def _secret_not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("client_secret must not be empty")
        return value

    @model_validator(mode="after")
    def _complete(self) -> OAuthProviderSettings:
        if self.trust_email is None:
            object.__setattr__(self, "trust_email", self.kind != "oidc")
        for url in self.urls():
            parts = urlsplit(url)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise ValueError(f"{url!r} is not an absolute URL")
            if parts.scheme == "http" and not self.allow_http:
                raise ValueError(f"{url} is plain http; use https (or allow_http for a local test)")
        return self

    def urls(self) -> list[str]:
        """The provider URLs this configuration names."""
        if self.kind == "github":
            return [self.authorization_url, self.token_url, self.api_url]
        return [self.issuer or ""]

    def label(self, name: str) -> str:
        return self.display_name or _DEFAULT_DISPLAY_NAMES.get(self.kind) or name.title()


class Settings(BaseModel):
    """Validated, immutable configuration. Secrets are ``SecretStr`` and never print."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: Environment = Environment.DEVELOPMENT
    instance_path: Path = Path("instance")
    database_url: SecretStr | None = None
    keys_dir: Path | None = None
    # Where the signing keys live (docs/sessions.md#keys-in-the-database): "directory" (keys_dir,
    # one host) or "database" (sealed with the key-encryption key, shared by every instance).
    signing_keys: Literal["directory", "database"] = "directory"
    # Database keys: a rotated key is published in the JWKS this long before it signs (at least
    # the JWKS's max-age, 300 s, plus time for every instance to learn it and clock differences).
    key_publish_delay_seconds: int = Field(default=360, ge=0, le=7 * 86400)
    # Database keys: a new key is made when the newest is older than this many days (unset: never).
    key_rotation_days: int | None = Field(default=None, ge=1, le=3650)
    # Unset: http://localhost:<port> (see _default_public_url), where ``authgate serve`` is.
    public_url: str = DEVELOPMENT_PUBLIC_URL.format(port=8086)
    origins: tuple[str, ...] = ()
    issuer: str | None = None
    audience: str = "authgate"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, ge=300, le=366 * 86400)
    # A refresh token rotated less than this long ago, whose successor is still unused, may be
    # presented again (a lost response): it is rotated anew, the unused successor killed. 0: off.
    refresh_reuse_grace_seconds: int = Field(default=10, ge=0, le=300)
    session_cookie_name: str = "authgate_session"
    refresh_cookie_name: str = "authgate_refresh"
    redis_url: SecretStr | None = None
    revocation_poll_interval_seconds: float = Field(default=0.25, gt=0, le=1.0)
    # The audit trail keeps events this many days (0: for ever); each event may also be logged
    # as one JSON line on the ``authgate.audit`` logger (for a SIEM).
    audit_retention_days: int = Field(default=365, ge=0, le=36500)
    audit_log: bool = False
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # An avatar upload may be this large (its request only; every other body: max_body_bytes).
    avatar_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # Where avatar images live: "database" (the default: nothing but the database is needed)
    # or "s3", an S3-compatible bucket (docs/avatars.md). The credentials: explicit, or
    # boto3's own chain (AWS_* environment, ~/.aws, an instance or pod role) when unset.
    avatar_storage: Literal["database", "s3"] = "database"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_prefix: str = "avatars/"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # Each call to the storage: to connect, and per read (one attempt, no retries).
    s3_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    trusted_proxies: int = Field(default=0, ge=0, le=10)
    password_time_cost: int = Field(default=2, ge=2)
    password_memory_cost_kib: int = Field(default=19456, ge=19456)
    password_parallelism: int = Field(default=1, ge=1)
    # Per process: this many password hashes at once, this many more waiting for a turn, none
    # longer than this; past that a login answers 503 server_busy (docs/configuration.md).
    password_hash_concurrency: int = Field(default=1, ge=1, le=64)
    password_hash_queue: int = Field(default=8, ge=0, le=10000)
    password_hash_max_wait_seconds: float = Field(default=2.0, ge=0, le=60)
    # How much lower the hash threads' CPU priority is (a nice value), under gevent workers.
    password_hash_niceness: int = Field(default=10, ge=0, le=19)
    api_token_scopes: tuple[str, ...] = ()
    # The roles this deployment gives users besides the built-in "user" and "admin": the choices
    # of the admin console and of PATCH /api/users/{id} (any other role is refused there).
    roles: tuple[str, ...] = ()
    api_token_default_ttl_days: int = Field(default=90, ge=1, le=3650)
    api_token_max_ttl_days: int = Field(default=365, ge=1, le=3650)
    login_rate_limit_per_account: str = "10 per 5 minutes"
    login_rate_limit_per_ip: str = "100 per 5 minutes"
    # Requests that mail a link (forgot password, verification, email change, invitation): per
    # address (or account) from anywhere, and per client IP; mails to an address not the
    # sender's own (invitation, email change) also per that address, invitations per inviter.
    mail_rate_limit_per_address: str = "5 per 15 minutes"
    mail_rate_limit_per_ip: str = "50 per 15 minutes"
    # "required": a password login of an unverified address answers 403 email_not_verified.
    email_verification: Literal["optional", "required"] = "optional"
    host: str = "127.0.0.1"
    port: int = Field(default=8086, ge=1, le=65535)
    workers: int | None = Field(default=None, ge=1, le=64)
    # Prometheus metrics at GET /metrics (docs/operations.md): "off", "loopback" (scrapes
    # straight from this host only) or a bearer token the scraper must send.
    metrics: SecretStr = SecretStr(METRICS_OFF)
    # "text" or "json": one JSON object per log line, with the request id (docs/operations.md).
    log_format: Literal["text", "json"] = "text"
    oauth_providers: dict[str, OAuthProviderSettings] = Field(default_factory=dict)
    # Where a browser lands after an OAuth login (or its error) when no valid ``next`` was given.
    oauth_default_redirect: str = "/"
    # The timeouts of each call to a provider: to connect (at most 5 s) and per read.
    oauth_http_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Mail (docs/email.md). Without an SMTP URL, mails are logged and written as .eml files
    # under <instance>/mail/ (development).
    smtp_url: SecretStr | None = None
    # A CA bundle (PEM) trusted for the SMTP server's certificate instead of the system's.
    smtp_ca_file: Path | None = None
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Required with smtp_url: "Example <no-reply@example.com>" or no-reply@example.com.
    mail_from: str | None = Field(default=None, validate_default=True)
    app_name: str = Field(default="authgate", min_length=1, max_length=80)
    # Passkeys (docs/passkeys.md): the WebAuthn Relying Party ID (unset: the public URL's host)
    # and the name authenticators show (unset: app_name).
    webauthn_rp_id: str | None = None
    webauthn_rp_name: str | None = Field(default=None, max_length=80)
    # Where the links in mails point (a frontend on another origin, maybe under a path), without
    # a trailing slash; unset: the public URL.
    link_base_url: str = ""
    # Dual-run of the previous app's sessions (docs/migrating.md): with a secret (or a file
    # holding it), a request that carries a valid JWT of the old app and no authgate session is
    # exchanged once for an authgate session, until the cut-off; then it is refused.
    legacy_jwt_secret: SecretStr | None = None
    legacy_jwt_secret_file: Path | None = None
    legacy_jwt_algorithms: tuple[str, ...] = ("HS256",)
    legacy_jwt_cookie: str | None = "jwt"
    legacy_jwt_header: str | None = None
    # The claim naming the user, and which of the imported users' columns it matches.
    legacy_jwt_claim: str = "sub"
    legacy_jwt_user_column: Literal["email", "username", "legacy_id"] = "email"
    legacy_jwt_cutoff: datetime | None = None
    # Bearer credentials that are neither ours (``ag_``) nor JWTs are looked up as API tokens
    # imported with ``authgate tokens import`` -- only when this is on, so that junk tokens cost
    # no database query on deployments that imported none.
    legacy_api_tokens: bool = False
    # Flask-Security-Too's SECURITY_PASSWORD_SALT: verifies the hashes imported with
    # ``--password-prehash flask-security`` (its default double hashing).
    legacy_password_hmac_salt: SecretStr | None = None
    # Second factors (docs/mfa.md). The key-encryption key seals secrets stored in the database
    # (TOTP seeds): 32 random bytes, base64url, given inline or in a file (read at startup).
    # Development without one generates <instance>/key-encryption-key (0600); production refuses.
    key_encryption_key: SecretStr | None = None
    key_encryption_key_file: Path | None = None
    # Sensitive actions (password or email change, turning a factor off...) need a login or a
    # POST /api/auth/reauthenticate at most this long ago.
    reauth_seconds: int = Field(default=600, ge=30, le=86400)
    # Users with one of these roles must set up a second factor before they get a session.
    mfa_required_roles: tuple[str, ...] = ()

    @field_validator("legacy_jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @model_validator(mode="after")
    def _check_legacy_jwt(self) -> Settings:
        if self.legacy_jwt_secret is not None and self.legacy_jwt_secret_file is not None:
            raise ValueError("set legacy_jwt_secret or legacy_jwt_secret_file, not both")
        if self.legacy_jwt_secret_file is not None and not self.legacy_jwt_secret_file.is_file():
            raise ValueError(f"legacy_jwt_secret_file {self.legacy_jwt_secret_file} is not a file")
        if not self.legacy_jwt_enabled:
            return self
        unknown = [a for a in self.legacy_jwt_algorithms if a not in LEGACY_JWT_ALGORITHMS]
        if unknown or not self.legacy_jwt_algorithms:
            raise ValueError(
                f"legacy_jwt_algorithms may hold only {', '.join(LEGACY_JWT_ALGORITHMS)} "
                f"(never none), got {', '.join(self.legacy_jwt_algorithms) or 'nothing'}"
            )
        try:
            secret = self.read_legacy_jwt_secret() or b""
        except OSError as e:  # a file is_file() found but this user cannot read
            raise ValueError(
                f"legacy_jwt_secret_file {self.legacy_jwt_secret_file} cannot be read "
                f"({e.strerror or type(e).__name__})"
            ) from None
        needed = max(LEGACY_JWT_ALGORITHMS_MIN_KEY_BYTES[a] for a in self.legacy_jwt_algorithms)
        if len(secret) < needed:
            raise ValueError(
                f"the legacy JWT secret is {len(secret)} bytes; "
                f"{', '.join(self.legacy_jwt_algorithms)} needs at least {needed} "
                "(RFC 7518 §3.2). A shorter or placeholder secret (the seed tutorial's default "
                "is 'SECRET_KEY') lets anyone forge the old app's "
                "tokens: do not dual-run with it, let users log in again"
            )
        if self.legacy_jwt_cutoff is None:
            raise ValueError(
                "legacy_jwt_cutoff is required with a legacy JWT secret: the dual run must end "
                "(e.g. AUTHGATE_LEGACY_JWT_CUTOFF=2027-03-01T00:00:00Z)"
            )
        if self.legacy_jwt_cutoff.tzinfo is None:
            raise ValueError("legacy_jwt_cutoff needs a time zone, e.g. 2027-03-01T00:00:00Z")
        if not (self.legacy_jwt_cookie or self.legacy_jwt_header):
            raise ValueError("legacy_jwt_cookie or legacy_jwt_header must name where the token is")
        if self.legacy_jwt_header and self.legacy_jwt_header.lower() == "authorization":
            raise ValueError(
                "legacy_jwt_header cannot be Authorization: authgate's own bearer tokens use it"
            )
        if not self.legacy_jwt_claim:
            raise ValueError("legacy_jwt_claim must name a claim")
        return self

    @model_validator(mode="before")
    @classmethod
    def _default_public_url(cls, data: Any) -> Any:
        """Without a public URL, the browser reaches ``authgate serve`` at ``localhost`` on the
        port it listens on: cookies, CSRF and the token issuer then agree with that address.
        An invalid port is left for its own validation to report."""
        if not isinstance(data, Mapping) or data.get("public_url") is not None:
            return data
        port = data.get("port")
        if isinstance(port, str) and port.strip().isdigit():
            port = int(port)
        if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
            return {**data, "public_url": DEVELOPMENT_PUBLIC_URL.format(port=port)}
        return data

    @field_validator("origins", "api_token_scopes", "mfa_required_roles", "roles", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.replace(",", " ").split() if part.strip())
        return value

    @model_validator(mode="after")
    def _check_default_redirect(self) -> Settings:
        own = parse_origin(self.public_url)
        if (
            safe_redirect_target(
                self.oauth_default_redirect, own_origin=own, allowlist=self.allowlist
            )
            is None
        ):
            raise ValueError(
                "oauth_default_redirect must be a path such as /account or a URL on the public "
                "URL or an allowed origin"
            )
        return self

    @model_validator(mode="after")
    def _check_webauthn_origins(self) -> Settings:
        """Every allowed origin must be able to use the passkeys' RP ID (refused with the fix
        when the RP ID was set explicitly; see core.webauthn_origins)."""
        webauthn_origins(self.webauthn_rp_id, self.public_url, self.origins)
        return self

    @model_validator(mode="after")
    def _check_avatar_storage(self) -> Settings:
        if self.avatar_storage == "s3" and not self.s3_bucket:
            raise ValueError("s3_bucket is required with avatar_storage = s3")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError(
                "set both s3_access_key_id and s3_secret_access_key, or neither (then the "
                "standard AWS environment, config files or instance role are used)"
            )
        if self.s3_endpoint_url is not None and not self.s3_endpoint_url.startswith(
            ("https://", "http://")
        ):
            raise ValueError("s3_endpoint_url must be an http(s) URL, e.g. https://s3.example.com")
        return self

    @model_validator(mode="after")
    def _default_within_max(self) -> Settings:
        if self.api_token_default_ttl_days > self.api_token_max_ttl_days:
            raise ValueError("api_token_default_ttl_days must not exceed api_token_max_ttl_days")
        return self

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for role in value:
            if not is_role_name(role):
                raise ValueError(
                    f"{role!r} is not a role name: use 1 to 32 lower-case letters, digits, "
                    "'_', ':' or '-', starting with a letter"
                )
        return tuple(dict.fromkeys(value))

    @field_validator("api_token_scopes")
    @classmethod
    def _check_scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for scope in value:
            if not SCOPE_PATTERN.fullmatch(scope):
                raise ValueError(f"{scope!r} is not a scope name like 'chat:write'")
        return value

    @field_validator("origins")
    @classmethod
    def _check_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            allowlist = OriginAllowlist(value)
        except ValueError as e:
            raise ValueError(str(e)) from None
        return allowlist.as_strings()

    @field_validator(
        "login_rate_limit_per_account",
        "login_rate_limit_per_ip",
        "mail_rate_limit_per_address",
        "mail_rate_limit_per_ip",
    )
    @classmethod
    def _check_rate(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError("must read like '10 per 5 minutes' or '100/hour'") from None
        return value

    @field_validator("oauth_providers", mode="before")
    @classmethod
    def _provider_kinds(cls, value: Any) -> Any:
        """``github`` and ``google`` are presets; any other name is an OIDC provider."""
        if not isinstance(value, Mapping):
            return value
        providers: dict[str, Any] = {}
        for name, fields in value.items():
            if not isinstance(name, str) or not PROVIDER_NAME_PATTERN.fullmatch(name):
                raise ValueError(f"{name!r} is not a provider name like 'github' or 'corp_sso'")
            if isinstance(fields, Mapping) and "kind" not in fields:
                kind = name if name in ("github", "google") else "oidc"
                fields = {**fields, "kind": kind}
            providers[name] = fields
        return providers

    @field_validator("metrics")
    @classmethod
    def _check_metrics(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value().strip()
        if text.lower() in (METRICS_OFF, METRICS_LOOPBACK):
            return SecretStr(text.lower())
        if not text or not METRICS_TOKEN_PATTERN.fullmatch(text):
            raise ValueError(
                "must be off, loopback or a bearer token of visible ASCII characters "
                "(e.g. the output of `openssl rand -hex 32`)"
            )
        return SecretStr(text)

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_smtp_url(value.get_secret_value())
        return value

    @field_validator("smtp_ca_file")
    @classmethod
    def _check_smtp_ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file (a PEM bundle of CA certificates)")
        return value

    @field_validator("mail_from")
    @classmethod
    def _check_mail_from(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.strip():
            value = None
        if value is None:
            if info.data.get("smtp_url") is not None:
                raise ValueError(
                    "is required when AUTHGATE_SMTP_URL is set: the sender of every mail, e.g. "
                    "AUTHGATE_MAIL_FROM='Example <no-reply@example.com>'"
                )
            return None
        parse_mail_address(value)
        return value.strip()

    @field_validator("app_name")
    @classmethod
    def _check_app_name(cls, value: str) -> str:
        if any(ord(c) < 32 for c in value) or not value.strip():
            raise ValueError("must be one line of text, such as 'Example'")
        return value.strip()

    @field_validator("link_base_url")
    @classmethod
    def _check_link_base_url(cls, value: str) -> str:
        if not value:
            return value  # the public URL (_default_link_base_url)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                "must be an absolute http(s) URL such as https://app.example.com or "
                "https://example.com/app"
            )
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise ValueError("must not have a query or fragment (the token goes in the fragment)")
        try:
            origin = parse_origin(f"{parts.scheme}://{parts.netloc}").serialize()
        except ValueError as e:
            raise ValueError(str(e)) from None
        return origin + parts.path.rstrip("/")

    @model_validator(mode="after")
    def _default_link_base_url(self) -> Settings:
        if not self.link_base_url:
            object.__setattr__(self, "link_base_url", self.public_url)
        return self

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL such as https://auth.example.com")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be an origin without a path, such as https://auth.example.com")
        return parse_origin(f"{parts.scheme}://{parts.netloc}").serialize()

    @property
    def legacy_jwt_enabled(self) -> bool:
        return self.legacy_jwt_secret is not None or self.legacy_jwt_secret_file is not None

    def read_legacy_password_hmac_salt(self) -> bytes | None:
        salt = self.legacy_password_hmac_salt
        return None if salt is None else salt.get_secret_value().encode("utf-8")

    def read_legacy_jwt_secret(self) -> bytes | None:
        """The previous app's signing secret, from the setting or its file (read now; trailing
        newlines dropped); None when the dual run is off."""
        if self.legacy_jwt_secret is not None:
            return self.legacy_jwt_secret.get_secret_value().encode("utf-8")
        if self.legacy_jwt_secret_file is not None:
            return self.legacy_jwt_secret_file.read_bytes().rstrip(b"\r\n")
        return None

    @property
    def resolved_key_encryption_key_file(self) -> Path:
        """Where the key is read from: the file set, or the development one in the instance."""
        return self.key_encryption_key_file or self.instance_path / "key-encryption-key"

    def __hash__(self) -> int:
        # Frozen, but the providers mapping is a dict: hash the validated values as text.
        return hash(self.model_dump_json())

    # Derived values -------------------------------------------------------------------------

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def metrics_mode(self) -> Literal["off", "loopback", "token"]:
        value = self.metrics.get_secret_value()
        if value == METRICS_OFF:
            return "off"
        return "loopback" if value == METRICS_LOOPBACK else "token"

    @property
    def metrics_token(self) -> bytes | None:
        """The bearer token ``/metrics`` requires; None unless ``metrics`` is a token."""
        if self.metrics_mode != "token":
            return None
        return self.metrics.get_secret_value().encode("ascii")

    @property
    def resolved_issuer(self) -> str:
        return self.issuer or self.public_url

    @property
    def resolved_keys_dir(self) -> Path:
        return self.keys_dir or self.instance_path / "keys"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.instance_path / 'authgate.db').resolve()}"

    @property
    def smtp_endpoint(self) -> SmtpEndpoint | None:
        """The parsed ``smtp_url``; None: development mail (logged, written as files)."""
        if self.smtp_url is None:
            return None
        return parse_smtp_url(self.smtp_url.get_secret_value())

    @property
    def s3_plain_http_host(self) -> str | None:
        """The host of a plain ``http://`` ``s3_endpoint_url`` off this machine, when the
        images are in S3: what production refuses (None for https, or a loopback server)."""
        url = self.s3_endpoint_url
        if self.avatar_storage != "s3" or url is None or not url.startswith("http://"):
            return None
        host = urlsplit(url).hostname or ""
        return None if is_loopback_host(host) else host

    @property
    def resolved_mail_from(self) -> str:
        return self.mail_from or f"{self.app_name} <no-reply@localhost>"

    @property
    def allowlist(self) -> OriginAllowlist:
        return OriginAllowlist(self.origins)

    @property
    def webauthn(self) -> WebAuthnOrigins:
        """The passkeys' RP ID and the origins that may use it (checked at validation)."""
        return webauthn_origins(self.webauthn_rp_id, self.public_url, self.origins)

    @property
    def resolved_webauthn_rp_name(self) -> str:
        return self.webauthn_rp_name or self.app_name

    def raise_if_unsafe(self) -> None:
        """In production, refuse settings with any problem (``ConfigError`` listing them all)."""
        if self.is_production:
            problems = self.production_problems()
            if problems:
                raise ConfigError(
                    "Refusing to start in production mode:\n  - " + "\n  - ".join(problems)
                )

    def production_problems(self) -> list[str]:
        """What makes these settings unsafe for production, each with the fix."""
        problems: list[str] = []
        if not self.public_url.startswith("https://"):
            problems.append(
                f"AUTHGATE_PUBLIC_URL is {self.public_url}: production must be served over "
                "https (set AUTHGATE_PUBLIC_URL=https://your-host)."
            )
        if self.database_url is None:
            problems.append(
                "AUTHGATE_DATABASE_URL is not set: production needs an explicit database "
                "(e.g. postgresql+psycopg://user@host/dbname)."
            )
        if self.key_encryption_key is None and self.key_encryption_key_file is None:
            problems.append(
                "AUTHGATE_KEY_ENCRYPTION_KEY is not set: production seals second-factor secrets "
                "with a key of its own. Create one with `authgate keys encryption-key FILE` (a "
                "new 0600 file) and set AUTHGATE_KEY_ENCRYPTION_KEY_FILE=FILE."
            )
        if self.keys_dir is None and self.signing_keys == "directory":
            problems.append(
                "AUTHGATE_KEYS_DIR is not set: production needs signing keys created with "
                "`authgate keys rotate --keys-dir DIR` in a directory only the server can read "
                "(or keep them in the database: AUTHGATE_SIGNING_KEYS=database)."
            )
        for name, provider in self.oauth_providers.items():
            if provider.allow_http:
                problems.append(
                    f"OAuth provider {name} allows plain http: production talks to providers "
                    f"over https only (unset AUTHGATE_OAUTH_{name.upper()}_ALLOW_HTTP)."
                )
        if self.link_base_url.startswith("http://") and self.link_base_url != self.public_url:
            problems.append(
                f"AUTHGATE_LINK_BASE_URL is {self.link_base_url}: the links in mails carry "
                "single-use tokens and must be https."
            )
        endpoint = self.smtp_endpoint
        if endpoint is not None and endpoint.security == "plain" and not endpoint.is_loopback:
            problems.append(
                f"AUTHGATE_SMTP_URL is plain smtp:// to {endpoint.host}: production sends mail "
                "(with password-reset links) over plain SMTP only to a relay on this host; use "
                "smtp+starttls:// or smtps://, or a relay on 127.0.0.1."
            )
        s3_host = self.s3_plain_http_host
        if s3_host is not None:
            problems.append(
                f"AUTHGATE_S3_ENDPOINT_URL is plain http:// to {s3_host}: the avatar bucket's "
                "access key, signed requests and every image would cross the network in clear; "
                "use https://, or a server on this host (http://127.0.0.1:9000)."
            )
        token = self.metrics_token
        if token is not None and (
            len(token) < METRICS_TOKEN_MIN_LENGTH or len(set(token)) < METRICS_TOKEN_MIN_DISTINCT
        ):
            problems.append(
                f"AUTHGATE_METRICS is a weak token ({len(token)} characters): production needs "
                f"at least {METRICS_TOKEN_MIN_LENGTH} random characters, e.g. "
                "AUTHGATE_METRICS=$(openssl rand -hex 32), or loopback."
            )
        for origin in self.origins:
            if origin.startswith("http://"):
                problems.append(
                    f"Origin {origin} is plain http: production origins must be https "
                    "(cookies are Secure)."
                )
        return problems


def _from_prefixed(source: Mapping[str, Any]) -> dict[str, Any]:
    fields = Settings.model_fields
    values: dict[str, Any] = {}
    providers: dict[str, dict[str, Any]] = {}
    for key, value in source.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name == "oauth_providers" and isinstance(value, str):
            values[name] = _parse_json_setting(key, value)
        elif name in fields:
            values[name] = value
        elif name.startswith("oauth_") and (found := _provider_field(name)):
            provider, field = found
            providers.setdefault(provider, {})[field] = value
        elif not name.startswith("test_"):
            raise ConfigError(f"Unknown setting {key}. Known settings: {_known_names()}.")
    if providers:
        values[_PROVIDERS_FROM_VARIABLES] = providers
    return values


# Provider fields set one by one (AUTHGATE_OAUTH_<NAME>_<FIELD>) are merged over the providers
# from the file or mapping, under this key, by ``load_settings``.
_PROVIDERS_FROM_VARIABLES = "_oauth_provider_fields"


def _provider_field(name: str) -> tuple[str, str] | None:
    """``oauth_corp_client_id`` -> ``("corp", "client_id")``."""
    rest = name.removeprefix("oauth_")
    for field in PROVIDER_FIELDS:
        provider = rest.removesuffix("_" + field)
        if provider != rest and provider:
            return provider, field
    return None


def _parse_json_setting(key: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise ConfigError(f"{key} must be a JSON object.") from None


def _merge_provider_fields(values: dict[str, Any], fields: Mapping[str, Mapping[str, Any]]) -> None:
    providers = dict(values.get("oauth_providers") or {})
    for name, overrides in fields.items():
        current = providers.get(name)
        providers[name] = {**(current if isinstance(current, Mapping) else {}), **overrides}
    values["oauth_providers"] = providers


def _known_names() -> str:
    return ", ".join(ENV_PREFIX + name.upper() for name in Settings.model_fields)


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"The configuration file {path} does not exist.") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"The configuration file {path} is not valid TOML: {e}") from None
    section = data.get("authgate", data)
    if not isinstance(section, dict):
        raise ConfigError(f"The [authgate] section of {path} must be a table.")
    unknown = sorted(set(section) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"Unknown setting(s) {', '.join(unknown)} in {path}.")
    providers = section.get("oauth_providers") or {}
    for name, provider in providers.items() if isinstance(providers, dict) else ():
        if isinstance(provider, dict) and "client_secret" in provider:
            raise ConfigError(
                f"{path} holds the client secret of OAuth provider {name}: keep secrets out of "
                f"files, in the environment as AUTHGATE_OAUTH_{name.upper()}_CLIENT_SECRET."
            )
    return dict(section)


def _variable_name(loc: tuple[int | str, ...]) -> str:
    """The setting a validation error is about, named as its environment variable."""
    if not loc:
        return "Settings"
    if loc[0] == "oauth_providers" and len(loc) > 1:
        return ENV_PREFIX + "_".join(str(part) for part in ("oauth", *loc[1:3])).upper()
    return ENV_PREFIX + str(loc[0]).upper()


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build and validate settings; raise ``ConfigError`` explaining every problem.

    ``overrides`` are ``AUTHGATE_*`` keys (an ``app.config``) and win over the environment.
    """
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    values: dict[str, Any] = {}
    config_file = overrides.get(ENV_PREFIX + "CONFIG") or environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        values.update(_from_toml(Path(str(config_file))))
    for source in (environ, overrides):
        found = _from_prefixed(source)
        provider_fields = found.pop(_PROVIDERS_FROM_VARIABLES, None)
        values.update(found)
        if provider_fields:
            _merge_provider_fields(values, provider_fields)
    try:
        settings = Settings(**values)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            name = _variable_name(err["loc"])
            lines.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError("Invalid settings:\n  " + "\n  ".join(lines)) from None
    settings.raise_if_unsafe()
    return settings
