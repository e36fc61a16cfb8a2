"""``authgate doctor``: what is wrong with a deployment, each problem with its fix.

Every check is a plain function returning :class:`Finding` objects and never raising: an
unreachable database, a refused connection or a bad certificate is itself a finding. The checks
read the settings (as ``authgate serve`` would), the key directory, the database and Redis; with a
URL they also probe the running deployment as a browser would meet it: its certificate, the
plain-http redirect, HSTS and CORS preflights, reading raw header lists (a repeated
``Access-Control-Allow-Origin`` is an error that joined headers would hide).

Check ids are ``<group>.<name>`` (``origins.http_in_production``, ``url.tls.expired``); the group
is everything before the last dot. ``docs/doctor.md`` lists them all.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import stat
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import redis
import requests
from alembic.script import ScriptDirectory
from cryptography import x509
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from authgate.config import ENV_PREFIX, Environment, Settings, load_settings
from authgate.core.keys import insecure_key_files, load_keyring
from authgate.core.origins import (
    Origin,
    OriginAllowlist,
    derive_cookie_policy,
    is_same_site,
    origin_of_url,
    parse_origin,
    site_of,
)
from authgate.errors import ConfigError
from authgate.oauth import CALLBACK_PATH
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import MIGRATIONS_DIR, current_revision, head_revision

__all__ = [
    "GROUP_ORDER",
    "Finding",
    "PreflightAnswer",
    "check_clock_skew",
    "check_cookies",
    "check_database",
    "check_deployment",
    "check_hsts",
    "check_http_redirect",
    "check_keys",
    "check_lookalikes",
    "check_oauth",
    "check_origins",
    "check_preflight",
    "check_production_refusals",
    "check_public_url",
    "check_raw_origins",
    "check_redis",
    "check_redis_url",
    "check_tls_certificate",
    "explain_origin",
    "load_doctor_settings",
    "lookalike_origins",
    "probe_origin",
    "run_doctor",
    "send_preflight",
    "sort_findings",
]

Level = Literal["error", "warning", "ok"]

# The order groups are reported in; unknown groups come last.
GROUP_ORDER = (
    "settings",
    "production",
    "public_url",
    "secrets",
    "origins",
    "cookies",
    "oauth",
    "database",
    "clock",
    "redis",
    "url.tls",
    "url",
    "url.redirect",
    "url.hsts",
    "url.cors",
    "cors",
)

CLOCK_WARNING_SECONDS = 5.0
CLOCK_ERROR_SECONDS = 60.0
TLS_WARNING_DAYS = 14
HSTS_MIN_MAX_AGE_SECONDS = 180 * 86400
DEFAULT_TIMEOUT_SECONDS = 5.0
DATABASE_CONNECT_TIMEOUT_SECONDS = 5
PREFLIGHT_PATH = "/api/auth/login"
PREFLIGHT_HEADERS = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,x-requested-with",
}
LOOKALIKE_SUFFIX = ".evil.test"

_REGEX_CHARACTERS = frozenset("^$()[]{}|+?\\")
_X509_NOT_YET_VALID = 9
_X509_EXPIRED = 10
_X509_NAME_MISMATCHES = frozenset({62, 64})  # hostname mismatch, IP address mismatch
_FIX_SETTING = "Correct this setting (docs/configuration.md), then run `authgate doctor` again."
_FIX_NTP = (
    "Keep both clocks synchronised with NTP (e.g. `timedatectl set-ntp true`, or chrony) on "
    "this host and on the database host."
)
_FIX_PROXY_CORS = (
    "Let authgate alone answer CORS from AUTHGATE_ORIGINS: remove Access-Control-* headers added "
    "by the proxy in front (e.g. nginx `add_header Access-Control-Allow-Origin ...`)."
)
_FIX_REDIRECT = (
    "Redirect plain http to https at the proxy, e.g. nginx: "
    "`server { listen 80; return 301 https://$host$request_uri; }`."
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of a check: an ``error`` (exit code 1), a ``warning`` or ``ok``.

    ``fix`` says what to do (for an ``ok`` finding, a hint such as how to rotate keys).
    """

    level: Level
    check: str
    message: str
    fix: str = ""

    @property
    def group(self) -> str:
        return self.check.rpartition(".")[0] or self.check


def _error(check: str, message: str, fix: str = "") -> Finding:
    return Finding("error", check, message, fix)


def _warning(check: str, message: str, fix: str = "") -> Finding:
    return Finding("warning", check, message, fix)


def _ok(check: str, message: str, fix: str = "") -> Finding:
    return Finding("ok", check, message, fix)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Grouped in :data:`GROUP_ORDER`, keeping the order of the checks within a group."""

    def rank(finding: Finding) -> int:
        group = finding.group
        return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)

    return sorted(findings, key=rank)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _is_local_host(host: str) -> bool:
    """Hosts browsers treat as potentially trustworthy even over plain http."""
    host = host.lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return _is_ip_address(host) and ipaddress.ip_address(host).is_loopback


def _first_line(error: BaseException | None) -> str:
    text_ = str(error or "").strip()
    return text_.splitlines()[0] if text_ else type(error).__name__


def _redact_url(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _guarded(group: str, check: Callable[[], list[Finding]]) -> list[Finding]:
    """Run one check; a bug in it becomes a finding instead of a traceback."""
    try:
        return check()
    except Exception as e:
        return [
            _error(
                f"{group}.check_failed",
                f"The {group} check itself failed ({type(e).__name__}: {_first_line(e)}).",
                "The other checks still ran; please report this failure.",
            )
        ]


# Loading the settings ----------------------------------------------------------------------------


def _toml_value(environ: Mapping[str, str], key: str) -> object:
    path = environ.get(ENV_PREFIX + "CONFIG")
    if not path:
        return None
    try:
        with Path(path).open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return None  # load_settings reports it
    section = data.get("authgate", data)
    return section.get(key) if isinstance(section, dict) else None


def _raw_origins(environ: Mapping[str, str]) -> list[object] | None:
    """The configured origin entries before validation (``None`` if not configured)."""
    value: object = environ.get(ENV_PREFIX + "ORIGINS")
    if value is None:
        value = _toml_value(environ, "origins")
    if value is None:
        return None
    if isinstance(value, str):
        return list(value.replace(",", " ").split())
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _bad_origin_finding(entry: object, reason: str) -> Finding:
    text_ = str(entry)
    if ".*" in text_ or any(ch in _REGEX_CHARACTERS for ch in text_):
        return _error(
            "origins.regex",
            f"AUTHGATE_ORIGINS entry {text_!r}: {reason}",
            "Origins are compared exactly, never as patterns (https://.*\\.example\\.com also "
            "matches https://example.com.evil.test). List each frontend as scheme://host[:port], "
            "e.g. AUTHGATE_ORIGINS=https://app.example.com,https://admin.example.com.",
        )
    if "*" in text_:
        return _error(
            "origins.wildcard",
            f"AUTHGATE_ORIGINS entry {text_!r}: {reason}",
            "List each frontend exactly, e.g. AUTHGATE_ORIGINS=https://app.example.com,"
            "https://admin.example.com: allowing any origin with credentials would let every "
            "site act as your users.",
        )
    return _error(
        "origins.invalid",
        f"AUTHGATE_ORIGINS entry {text_!r}: {reason}",
        "Write it as scheme://host[:port], exactly as the frontend's address bar shows it, "
        "without a path or trailing slash.",
    )


def check_raw_origins(entries: Sequence[object]) -> tuple[list[Finding], list[str]]:
    """Findings for the entries that are not origins, and the entries that are."""
    findings: list[Finding] = []
    good: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            findings.append(_bad_origin_finding(entry, "an origin must be a string"))
            continue
        try:
            parse_origin(entry)
        except ValueError as e:
            findings.append(_bad_origin_finding(entry, str(e)))
        else:
            good.append(entry)
    return findings, good


def _config_error_findings(error: ConfigError) -> list[Finding]:
    lines = [line.strip().removeprefix("- ") for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]  # "Invalid settings:" and the like
    return [_error("settings.invalid", line, _FIX_SETTING) for line in lines]


def load_doctor_settings(
    environ: Mapping[str, str] | None = None, *, production: bool = False
) -> tuple[Settings | None, list[Finding]]:
    """The settings ``authgate serve`` would use, without refusing them.

    Bad origin entries are reported (and left out so the rest can be checked); production
    refusals are left to the checks; any other ``ConfigError`` becomes ``settings.invalid``
    findings and no settings.
    """
    environ = os.environ if environ is None else environ
    overrides: dict[str, str] = {}
    if production:
        overrides[ENV_PREFIX + "ENV"] = Environment.PRODUCTION.value
    findings: list[Finding] = []
    raw = _raw_origins(environ)
    if raw is not None:
        findings, good = check_raw_origins(raw)
        if findings:
            overrides[ENV_PREFIX + "ORIGINS"] = " ".join(good)
    try:
        return load_settings(overrides, environ=environ), findings
    except ConfigError as e:
        refused = e
    try:
        relaxed = load_settings(
            {**overrides, ENV_PREFIX + "ENV": Environment.DEVELOPMENT.value}, environ=environ
        )
    except ConfigError as e:
        return None, [*findings, *_config_error_findings(e)]
    candidate = relaxed.model_copy(update={"env": Environment.PRODUCTION})
    try:
        candidate.raise_if_unsafe()
    except ConfigError as e:
        if str(e) == str(refused):  # refused only for production problems: the checks tell them
            return candidate, findings
    return None, [*findings, *_config_error_findings(refused)]


# Production refusals and the public URL ----------------------------------------------------------

# production_problems() entries that a dedicated check below reports (with its own fix).
_COVERED_PRODUCTION_PROBLEMS = (
    "AUTHGATE_PUBLIC_URL is ",
    "AUTHGATE_DATABASE_URL is not set",
    "AUTHGATE_KEYS_DIR is not set",
    "OAuth provider ",
    "Origin ",
)


def check_production_refusals(settings: Settings) -> list[Finding]:
    """Production refusals that no dedicated check covers (the server refuses to start)."""
    if not settings.is_production:
        return []
    return [
        _error("production.refused", problem, "Production refuses to start until this is fixed.")
        for problem in settings.production_problems()
        if not problem.startswith(_COVERED_PRODUCTION_PROBLEMS)
    ]


def check_public_url(settings: Settings) -> list[Finding]:
    own = parse_origin(settings.public_url)
    if own.scheme == "https":
        return [_ok("public_url.https", f"The public URL {settings.public_url} is https.")]
    if settings.is_production:
        return [
            _error(
                "public_url.http_in_production",
                f"AUTHGATE_PUBLIC_URL is {settings.public_url}: production must be served over "
                "https (the server refuses to start; its Secure cookies and OAuth redirect URIs "
                "need it).",
                f"Terminate TLS in front of authgate (e.g. nginx with a certbot certificate) and "
                f"set AUTHGATE_PUBLIC_URL=https://{own.host}.",
            )
        ]
    return [
        _ok(
            "public_url.http",
            f"The public URL {settings.public_url} is plain http: fine for development only.",
        )
    ]


# Secrets -----------------------------------------------------------------------------------------


def _is_writable_directory(directory: Path) -> bool:
    """Whether this user can create files in ``directory`` (or create it)."""
    path = directory
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def check_keys(
    settings: Settings, *, writable: Callable[[Path], bool] = _is_writable_directory
) -> list[Finding]:
    """Signing keys: present, not for development in production, private, rotatable."""
    if settings.is_production and settings.keys_dir is None:
        return [
            _error(
                "secrets.keys_dir_not_set",
                "AUTHGATE_KEYS_DIR is not set: production needs signing keys in a directory of "
                "their own (it refuses the instance folder's development keys).",
                "Create one with `authgate keys rotate --keys-dir /etc/authgate/keys` and set "
                "AUTHGATE_KEYS_DIR=/etc/authgate/keys.",
            )
        ]
    directory = settings.resolved_keys_dir
    rotate = f"authgate keys rotate --keys-dir {directory}"
    try:
        ring = load_keyring(directory)
        exposed = insecure_key_files(directory)
    except (ConfigError, OSError) as e:
        return [_error("secrets.unreadable_key", str(e), f"Then check with `{rotate}`.")]
    findings: list[Finding] = []
    if ring is None:
        if settings.is_production:
            findings.append(
                _error(
                    "secrets.no_key",
                    f"No signing key in {directory}: the server refuses to start.",
                    f"Create one: `{rotate}`.",
                )
            )
        else:
            findings.append(
                _ok(
                    "secrets.no_key",
                    f"No signing key in {directory} yet: development generates one at the first "
                    "start (production refuses it).",
                )
            )
    elif settings.is_production and ring.active.dev:
        findings.append(
            _error(
                "secrets.dev_key_in_production",
                f"The active signing key {ring.active.kid} in {directory} was generated for "
                "development: production refuses to sign with it.",
                f"Create a production key: `{rotate}`; remove the dev-*.pem file once the access "
                "tokens it signed have expired.",
            )
        )
    elif settings.is_production and any(key.dev for key in ring.keys):
        old = ", ".join(key.kid for key in ring.keys if key.dev)
        findings.append(
            _warning(
                "secrets.old_dev_key",
                f"Development key(s) {old} in {directory} still verify tokens.",
                f"Delete their files in {directory} once the tokens they signed have expired "
                f"(access tokens live {settings.access_token_ttl_seconds} s).",
            )
        )
    if exposed:
        names = " ".join(str(path) for path in exposed)
        findings.append(
            _error(
                "secrets.key_file_permissions",
                f"Signing key files readable or writable by other users: {names}. Anyone who "
                "can read one can forge any user's tokens (production refuses to start).",
                f"chmod 600 {names}",
            )
        )
    findings += _key_directory_findings(directory, ring is not None, writable)
    if ring is not None and not any(f.level != "ok" for f in findings):
        findings.append(_keys_ok(directory, len(ring.keys), ring.active.kid, rotate))
    return findings


def _key_directory_findings(
    directory: Path, has_keys: bool, writable: Callable[[Path], bool]
) -> list[Finding]:
    findings: list[Finding] = []
    if directory.is_dir() and stat.S_IMODE(directory.stat().st_mode) & 0o077:
        findings.append(
            _warning(
                "secrets.keys_dir_permissions",
                f"The key directory {directory} is open to other users "
                f"(mode {stat.S_IMODE(directory.stat().st_mode):o}).",
                f"chmod 700 {directory}",
            )
        )
    if not writable(directory):
        findings.append(
            _warning(
                "secrets.rotation_impossible",
                f"{directory} cannot be written (or created) by this user, so "
                "`authgate keys rotate` cannot add a key here"
                + ("." if has_keys else ", and no key can be created."),
                f"Run rotations as the user that owns the key directory (e.g. `sudo -u authgate "
                f"authgate keys rotate --keys-dir {directory}`), or point AUTHGATE_KEYS_DIR at a "
                "directory that user can write.",
            )
        )
    return findings


def _keys_ok(directory: Path, count: int, active: str, rotate: str) -> Finding:
    if count == 1:
        return _ok(
            "secrets.rotation",
            f"One signing key ({active}) in {directory}.",
            f"To rotate: `{rotate}`; the old key keeps verifying until you delete its file.",
        )
    return _ok(
        "secrets.rotation",
        f"{count} signing keys in {directory}; the newest, {active}, signs.",
        f"Delete an old key's file once the tokens it signed have expired; rotate with `{rotate}`.",
    )


# Origins and cookies -----------------------------------------------------------------------------


def check_origins(settings: Settings) -> list[Finding]:
    own = parse_origin(settings.public_url)
    findings: list[Finding] = []
    for origin in settings.allowlist:
        if origin == own:
            findings.append(
                _warning(
                    "origins.own_origin",
                    f"AUTHGATE_ORIGINS lists {origin}, the API's own public URL: pages served by "
                    "authgate are always trusted, so this entry does nothing.",
                    "Remove it, and list the origins of your frontends instead (the address bar "
                    "of the page that calls the API).",
                )
            )
        if settings.is_production and origin.scheme == "http":
            findings.append(
                _error(
                    "origins.http_in_production",
                    f"Origin {origin} is plain http: production refuses it (the cookies are "
                    "Secure, and the page could be tampered with on the way).",
                    f"Serve that frontend over https and list https://{origin.host}"
                    f"{f':{origin.port}' if origin.port else ''} instead.",
                )
            )
    if findings:
        return findings
    if not settings.origins:
        return [
            _ok(
                "origins.none",
                "AUTHGATE_ORIGINS is empty: only pages served from the public URL can call the "
                "API with credentials.",
            )
        ]
    listed = ", ".join(settings.origins)
    return [_ok("origins.allowlist", f"{len(settings.origins)} allowed origin(s): {listed}.")]


def check_cookies(settings: Settings) -> list[Finding]:
    """Cookies versus topology: same-site or cross-site frontends, Secure over plain http."""
    own = parse_origin(settings.public_url)
    policy = derive_cookie_policy(settings.public_url, settings.allowlist)
    mode = _cookie_mode(policy.samesite, policy.partitioned)
    findings: list[Finding] = []
    if own.scheme == "http" and not _is_local_host(own.host) and not settings.is_production:
        findings.append(_secure_over_http(own, "cookies.secure_over_http"))
    for origin in settings.allowlist:
        if origin == own:
            continue
        if is_same_site(origin, own):
            note = (
                ""
                if policy.samesite == "Lax"
                else f" (they are {mode} only because of the cross-site origin(s) "
                f"{', '.join(policy.cross_site_origins)})"
            )
            findings.append(
                _ok(
                    "cookies.same_site",
                    f"{origin} is same-site with the API ({site_of(own)}): its cookies are "
                    f"first-party{note}, and blocking third-party cookies does not affect them.",
                )
            )
        else:
            findings.append(_cross_site_warning(origin, own, policy.cross_site_origins))
    if not settings.origins:
        findings.append(
            _ok("cookies.first_party", f"Cookies are {mode}, used by same-origin pages only.")
        )
    return findings


def _cookie_mode(samesite: str, partitioned: bool) -> str:
    return f"SameSite={samesite}; Secure" + ("; Partitioned" if partitioned else "")


def _secure_over_http(own: Origin, check: str) -> Finding:
    return _error(
        check,
        f"The API is plain http on {own.host}, not localhost: browsers drop the Secure cookies "
        "it sets, so a login answers 200 but every later request is 401.",
        "Serve the API over https (for development `authgate tls dev` makes a certificate), "
        "or use http://localhost while developing.",
    )


def _cross_site_warning(origin: Origin, own: Origin, cross_site: Sequence[str]) -> Finding:
    scheme_note = "; http and https are different sites" if origin.scheme != own.scheme else ""
    also = ""
    if len(cross_site) > 1:
        also = f" The same holds for {', '.join(o for o in cross_site if o != str(origin))}."
    return _warning(
        "cookies.cross_site",
        f"{origin} (site {site_of(origin)}) is cross-site with the API (site {site_of(own)}"
        f"{scheme_note}): for pages there the session cookie is a third-party cookie, set "
        "SameSite=None; Secure; Partitioned (and so it is for every frontend). Browsers that "
        "block third-party cookies accept it only partitioned (Chrome, Edge, Firefox); Safari "
        f"and strict settings drop it, so logins from {origin} fail there.{also}",
        f"Serve the API on the frontend's site ({_same_site_example(origin)}) so that cookies "
        "are first-party, or have that frontend use bearer tokens.",
    )


def _same_site_example(origin: Origin) -> str:
    """Where the API would be same-site with ``origin``, as an example."""
    registrable = site_of(origin).partition("://")[2]
    if _is_ip_address(origin.host) or "." not in registrable:  # an IP address, localhost
        return f"e.g. on {origin.scheme}://{origin.host} too, with another port"
    return f"e.g. {origin.scheme}://api.{registrable}"


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# OAuth -------------------------------------------------------------------------------------------

_PROVIDER_CONSOLES = {
    "github": "GitHub: Settings > Developer settings > OAuth Apps > Authorization callback URL",
    "google": "Google Cloud console: APIs & Services > Credentials > Authorized redirect URIs",
    "oidc": "the provider's client settings (allowed redirect URIs)",
}


def check_oauth(settings: Settings) -> list[Finding]:
    """The redirect URI each provider must have registered, and what breaks it."""
    if not settings.oauth_providers:
        return [_ok("oauth.none", "No OAuth providers are configured.")]
    own = parse_origin(settings.public_url)
    findings: list[Finding] = []
    for name, provider in sorted(settings.oauth_providers.items()):
        uri = settings.public_url + CALLBACK_PATH.format(provider=name)
        label = f"{provider.label(name)} ({name})"
        if provider.allow_http and settings.is_production:
            findings.append(
                _error(
                    "oauth.allow_http_in_production",
                    f"OAuth provider {label} allows plain http: production talks to providers "
                    "over https only (the server refuses to start).",
                    f"Unset AUTHGATE_OAUTH_{name.upper()}_ALLOW_HTTP and use the provider's "
                    "https URLs.",
                )
            )
        if own.scheme == "http" and (settings.is_production or not _is_local_host(own.host)):
            findings.append(_http_redirect_uri(label, uri, production=settings.is_production))
        findings.append(
            _ok(
                "oauth.redirect_uri",
                f"{label}: the provider must have exactly {uri} registered as redirect URI.",
                f"Register it in {_PROVIDER_CONSOLES[provider.kind]}; it follows "
                "AUTHGATE_PUBLIC_URL, so change both together.",
            )
        )
    return findings


def _http_redirect_uri(label: str, uri: str, *, production: bool) -> Finding:
    return Finding(
        "error" if production else "warning",
        "oauth.redirect_uri_http",
        f"{label}: the redirect URI {uri} is plain http"
        + (" in production" if production else " on a host other than localhost")
        + "; providers such as Google refuse to register it, and the login code would travel "
        "unencrypted.",
        "Serve authgate over https, set AUTHGATE_PUBLIC_URL=https://..., and register the https "
        "redirect URI at the provider.",
    )


# Database and clock ------------------------------------------------------------------------------


def check_database(settings: Settings, *, now: Callable[[], datetime] = _utc_now) -> list[Finding]:
    """Reachable and migrated; for PostgreSQL also its clock against this host's."""
    if settings.is_production and settings.database_url is None:
        return [
            _error(
                "database.url_not_set",
                "AUTHGATE_DATABASE_URL is not set: production needs an explicit database (the "
                "server refuses to start).",
                "Set AUTHGATE_DATABASE_URL=postgresql+psycopg://user@host/dbname and run "
                "`authgate db upgrade`.",
            )
        ]
    try:
        url = make_url(settings.resolved_database_url)
    except ArgumentError:
        return [_invalid_database_url()]
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and _sqlite_file_missing(url):
        return [_sqlite_missing(settings, shown)]
    try:
        engine = create_database_engine(
            _with_connect_timeout(url).render_as_string(hide_password=False)
        )
    except (ArgumentError, NoSuchModuleError):
        return [_invalid_database_url()]
    try:
        return [_migration_finding(engine, shown), *check_database_clock(engine, now=now)]
    except SQLAlchemyError as e:
        return [
            _error(
                "database.unreachable",
                f"Could not use the database {shown}: {_first_line(getattr(e, 'orig', e))}",
                "Check that the database server runs and accepts this user from this host "
                "(host, port, password, pg_hba.conf), and that the database exists.",
            )
        ]
    finally:
        engine.dispose()


def _invalid_database_url() -> Finding:
    return _error(
        "database.invalid_url",
        "AUTHGATE_DATABASE_URL is not a usable database URL.",
        "Use e.g. postgresql+psycopg://user@host/dbname or sqlite:////path/to/authgate.db.",
    )


def _sqlite_file_missing(url: URL) -> bool:
    database = url.database
    return bool(database) and database != ":memory:" and not Path(str(database)).exists()


def _sqlite_missing(settings: Settings, shown: str) -> Finding:
    message = f"The SQLite database {shown} does not exist yet: `authgate serve` creates and "
    message += "migrates it at its first start."
    if settings.is_production:
        return _warning(
            "database.sqlite_missing",
            message,
            "Check the path is the one you meant (and persistent), or run `authgate db upgrade`.",
        )
    return _ok("database.sqlite_missing", message)


def _with_connect_timeout(url: URL) -> URL:
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        return url.update_query_dict({"connect_timeout": str(DATABASE_CONNECT_TIMEOUT_SECONDS)})
    return url


def _known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}


def _migration_finding(engine: Engine, shown: str) -> Finding:
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return _ok("database.current", f"{shown} is reachable and at the newest schema ({head}).")
    sqlite = engine.dialect.name == "sqlite"
    on_start = " (`authgate serve` also migrates SQLite when it starts)" if sqlite else ""
    if current is None:
        message = f"{shown} is reachable but empty: no authgate schema"
        level: Level = "warning" if sqlite else "error"
        return Finding(
            level,
            "database.not_migrated",
            message + ("." if sqlite else "; the server refuses to start."),
            f"Run `authgate db upgrade`{on_start}.",
        )
    if current in _known_revisions():
        return Finding(
            "warning" if sqlite else "error",
            "database.behind",
            f"{shown} is at schema revision {current}, behind {head}"
            + ("." if sqlite else "; the server refuses to start."),
            f"Run `authgate db upgrade`{on_start}.",
        )
    return _error(
        "database.unknown_revision",
        f"{shown} is at schema revision {current}, which this authgate does not know (the "
        f"newest it knows is {head}): a newer authgate migrated it.",
        "Run the authgate version that migrated this database (or a newer one).",
    )


def check_database_clock(engine: Engine, *, now: Callable[[], datetime]) -> list[Finding]:
    if engine.dialect.name == "sqlite":
        return [_ok("clock.same_host", "SQLite runs inside authgate: it uses this host's clock.")]
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        before = now()
        database_now = connection.execute(text("SELECT clock_timestamp()")).scalar_one()
        after = now()
    return [check_clock_skew(before + (after - before) / 2, database_now)]


def check_clock_skew(host_now: datetime, database_now: datetime) -> Finding:
    """This host's clock against the database's: warn beyond a few seconds, error beyond 60 s."""
    if database_now.tzinfo is None:
        database_now = database_now.replace(tzinfo=UTC)
    skew = (database_now - host_now).total_seconds()
    where = "ahead of" if skew > 0 else "behind"
    message = f"The database clock is {abs(skew):.1f} s {where} this host's"
    if abs(skew) > CLOCK_ERROR_SECONDS:
        return _error(
            "clock.skew",
            message + ": tokens carry iat/exp and sessions expire by time, so servers on hosts "
            "whose clocks disagree this much reject each other's fresh tokens or keep expired "
            "ones.",
            _FIX_NTP,
        )
    if abs(skew) > CLOCK_WARNING_SECONDS:
        return _warning(
            "clock.skew", message + ": beyond a minute, tokens start to fail.", _FIX_NTP
        )
    return _ok("clock.skew", message + ".")


# Redis -------------------------------------------------------------------------------------------


def check_redis(settings: Settings) -> list[Finding]:
    if settings.redis_url is None:
        return [
            _ok(
                "redis.not_configured",
                "AUTHGATE_REDIS_URL is not set: revocations reach other server processes by "
                "polling the database (within about "
                f"{settings.revocation_poll_interval_seconds:g} s).",
            )
        ]
    return [check_redis_url(settings.redis_url.get_secret_value())]


def check_redis_url(url: str, *, timeout: float = 2.0) -> Finding:
    shown = _redact_url(url)
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    except ValueError as e:
        return _error(
            "redis.invalid_url",
            f"AUTHGATE_REDIS_URL is not a Redis URL ({e}).",
            "Use e.g. redis://127.0.0.1:6379/0 (rediss:// for TLS).",
        )
    try:
        client.ping()
    except (redis.RedisError, OSError) as e:
        return _error(
            "redis.unreachable",
            f"Redis at {shown} does not answer ({_first_line(e)}): the server will not start "
            "its revocation channel.",
            "Start Redis or fix AUTHGATE_REDIS_URL (host, port, password); or unset it to "
            "propagate revocations by polling the database.",
        )
    finally:
        client.close()
    return _ok("redis.reachable", f"Redis at {shown} answers.")


# Probing a running deployment --------------------------------------------------------------------


def _probe_session(ca_file: Path | None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # talk to the deployment itself, not through a proxy
    session.verify = str(ca_file) if ca_file else True
    session.headers["User-Agent"] = "authgate-doctor"
    return session


def _parse_probe_url(url: str) -> Origin | Finding:
    origin = origin_of_url(url)
    if origin is None:
        return _error(
            "url.invalid",
            f"--url {url!r} is not an absolute http(s) URL.",
            "Give the address browsers use, e.g. --url https://auth.example.com.",
        )
    return origin


def _default_port(origin: Origin) -> int:
    return origin.port or (443 if origin.scheme == "https" else 80)


def check_deployment(
    url: str,
    settings: Settings | None,
    *,
    ca_file: Path | None = None,
    now: Callable[[], datetime] = _utc_now,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> list[Finding]:
    """Probe the deployment at ``url``: TLS, redirect, HSTS, and CORS for each allowed origin."""
    base = _parse_probe_url(url)
    if isinstance(base, Finding):
        return [base]
    findings: list[Finding] = []
    if base.scheme == "https":
        tls = check_tls_certificate(
            base.host, _default_port(base), ca_file=ca_file, now=now(), timeout=timeout
        )
        findings += tls
        if any(f.level == "error" for f in tls):
            return findings  # a browser gets no further either
    else:
        findings.append(_plain_http_finding(base, settings))
    with _probe_session(ca_file) as session:
        findings += _probe_http(session, base, settings, timeout)
    return findings


def _probe_http(
    session: requests.Session, base: Origin, settings: Settings | None, timeout: float
) -> list[Finding]:
    base_url = base.serialize()
    try:
        health = session.get(base_url + "/healthz", timeout=timeout, allow_redirects=False)
    except requests.RequestException as e:
        return [
            _error(
                "url.unreachable",
                f"{base_url} does not answer ({_request_error(e)}).",
                "Check the address, that the server runs and that the firewall lets you in.",
            )
        ]
    findings = [_health_finding(base_url, health.status_code)]
    if base.scheme == "https":
        findings.append(check_hsts(health.headers.get("Strict-Transport-Security")))
        http_url = Origin("http", base.host, base.port).serialize() + "/"
        findings.append(check_http_redirect(session, http_url, base, timeout=timeout))
    if settings is not None:
        for origin in settings.allowlist:
            findings.append(check_preflight(session, base_url, str(origin), timeout=timeout))
            findings += check_lookalikes(
                session, base_url, origin, settings.allowlist, timeout=timeout
            )
    return findings


def _request_error(error: requests.RequestException) -> str:
    """The root cause of a requests error, e.g. ``[Errno 111] Connection refused``."""
    reason: BaseException = error
    seen = {id(reason)}
    while not isinstance(reason, ssl.SSLError):
        cause = reason.__cause__ or reason.__context__
        if cause is None or id(cause) in seen:
            break
        seen.add(id(cause))
        reason = cause
    return _first_line(reason)[:200]


def _health_finding(base_url: str, status: int) -> Finding:
    if status == 200:
        return _ok("url.reachable", f"{base_url}/healthz answers 200.")
    if status == 503:
        return _error(
            "url.reachable",
            f"{base_url}/healthz answers 503: the server runs but cannot use its database.",
            "Run `authgate doctor` on the server host to check the database.",
        )
    return _warning(
        "url.reachable",
        f"{base_url}/healthz answers {status}: this may not be authgate, or the proxy does not "
        "forward every path to it.",
        "Forward the whole site (or at least /api/, /healthz and /.well-known/) to authgate.",
    )


def _plain_http_finding(base: Origin, settings: Settings | None) -> Finding:
    if settings is not None and settings.is_production:
        return _error(
            "url.tls.not_https",
            f"{base} is plain http: production must be served over https.",
            "Probe the https:// address, or put TLS in front of authgate.",
        )
    if _is_local_host(base.host):
        return _ok(
            "url.tls.plain_http_local",
            f"{base} is plain http on this machine: fine for development (TLS, redirect and "
            "HSTS are checked for https:// URLs).",
        )
    return _warning(
        "url.tls.not_https",
        f"{base} is plain http on a host other than localhost: browsers drop its Secure cookies "
        "and passwords travel unencrypted.",
        "Serve it over https (nginx + certbot) and probe the https:// address.",
    )


# TLS ---------------------------------------------------------------------------------------------


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
    now = now or _utc_now()
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    try:
        der = _peer_certificate(host, port, context, timeout)
    except ssl.SSLCertVerificationError as e:
        cert = _unverified_certificate(host, port, timeout)
        return [_verification_failure(e, host, cert, now, ca_file)]
    except OSError as e:  # ssl.SSLError included
        return [
            _error(
                "url.tls.handshake_failed",
                f"No TLS handshake with {host}:{port}: {_first_line(e)}.",
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
        return _error(
            "url.tls.expired",
            f"The certificate of {host} expired{when}: browsers refuse to connect.",
            "Renew it (e.g. `certbot renew`), reload the proxy, and make sure renewal runs "
            "automatically (`systemctl list-timers | grep certbot`).",
        )
    if error.verify_code == _X509_NOT_YET_VALID:
        return _error(
            "url.tls.not_yet_valid",
            f"The certificate of {host} is not valid yet: browsers refuse to connect.",
            "Check this host's clock, and the server's; or wait until the certificate starts.",
        )
    if error.verify_code in _X509_NAME_MISMATCHES:
        return _error(
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
    return _error(
        "url.tls.untrusted",
        f"The certificate of {host} (for {names}) is not trusted: {error.verify_message}.",
        fix,
    )


def _expiry_finding(cert: x509.Certificate, host: str, now: datetime) -> Finding:
    not_after = cert.not_valid_after_utc
    left = not_after - now
    until = f"{not_after:%Y-%m-%d %H:%M} UTC"
    if left <= timedelta(0):
        return _error(
            "url.tls.expired",
            f"The certificate of {host} expired on {until}: browsers refuse to connect.",
            "Renew it (e.g. `certbot renew`) and reload the proxy.",
        )
    if left < timedelta(days=TLS_WARNING_DAYS):
        return _warning(
            "url.tls.expires_soon",
            f"The certificate of {host} expires on {until}, in {left.days} day(s).",
            "Renew it now (e.g. `certbot renew`), and check that renewal runs automatically "
            "(`systemctl list-timers | grep certbot`).",
        )
    return _ok(
        "url.tls.valid",
        f"The certificate of {host} is trusted, names {_certificate_names(cert)}, and is valid "
        f"until {until} ({left.days} days).",
    )


# Redirect and HSTS -------------------------------------------------------------------------------


def check_http_redirect(
    session: requests.Session,
    http_url: str,
    https_origin: Origin,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Finding:
    """``http_url`` should answer 301/308 to ``https_origin``."""
    try:
        response = session.get(http_url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as e:
        return _warning(
            "url.redirect.missing",
            f"Nothing answers plain http at {http_url} ({_request_error(e)}): someone typing the "
            "address without https:// gets an error instead of the site.",
            _FIX_REDIRECT,
        )
    status = response.status_code
    location = response.headers.get("Location", "")
    target = origin_of_url(location)
    if status in (301, 308) and target == https_origin:
        return _ok("url.redirect.permanent", f"{http_url} redirects ({status}) to {location}.")
    if status in (301, 302, 303, 307, 308):
        if target is not None and target.scheme == "https" and target.host == https_origin.host:
            return _warning(
                "url.redirect.temporary"
                if status in (302, 303, 307)
                else "url.redirect.wrong_target",
                f"{http_url} redirects with {status} to {location}; expected a permanent "
                f"redirect (301 or 308) to {https_origin}.",
                _FIX_REDIRECT,
            )
        return _warning(
            "url.redirect.wrong_target",
            f"{http_url} redirects ({status}) to {location or 'nowhere'}, not to {https_origin}.",
            _FIX_REDIRECT,
        )
    return _error(
        "url.redirect.serves_http",
        f"{http_url} answers {status} over plain http instead of redirecting to https: "
        "passwords and tokens sent there travel unencrypted.",
        _FIX_REDIRECT,
    )


def _hsts_max_age(value: str) -> int | None:
    for directive in value.split(";"):
        name, _, argument = directive.strip().partition("=")
        if name.strip().lower() == "max-age":
            argument = argument.strip().strip('"')
            return int(argument) if argument.isdigit() else None
    return None


def check_hsts(value: str | None) -> Finding:
    """The ``Strict-Transport-Security`` header of an https response."""
    fix = (
        "Send it from the TLS terminator, e.g. nginx: `add_header Strict-Transport-Security "
        '"max-age=31536000" always;` (authgate itself does not set it).'
    )
    if not value:
        return _warning(
            "url.hsts.missing",
            "No Strict-Transport-Security header: browsers keep trying plain http first, where "
            "an attacker on the network can intercept the visit.",
            fix,
        )
    max_age = _hsts_max_age(value)
    if max_age is None or max_age < HSTS_MIN_MAX_AGE_SECONDS:
        return _warning(
            "url.hsts.short",
            f"Strict-Transport-Security is {value!r}: a max-age under "
            f"{HSTS_MIN_MAX_AGE_SECONDS // 86400} days protects little.",
            fix,
        )
    return _ok("url.hsts.present", f"Strict-Transport-Security: {value}.")


# CORS --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreflightAnswer:
    """A preflight's answer, with every occurrence of the CORS headers (never joined)."""

    status: int
    allow_origin: tuple[str, ...]
    allow_credentials: tuple[str, ...]
    allow_methods: str
    allow_headers: str

    def describe(self) -> str:
        origins = " | ".join(self.allow_origin) if self.allow_origin else "(none)"
        credentials = " | ".join(self.allow_credentials) if self.allow_credentials else "(none)"
        return (
            f"HTTP {self.status}, Access-Control-Allow-Origin: {origins}, "
            f"Access-Control-Allow-Credentials: {credentials}"
        )


def send_preflight(
    session: requests.Session,
    base_url: str,
    origin: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> PreflightAnswer:
    """The preflight a browser sends before a credentialed JSON POST (raises on network errors)."""
    response = session.options(
        base_url + PREFLIGHT_PATH,
        headers={"Origin": origin, **PREFLIGHT_HEADERS},
        timeout=timeout,
        allow_redirects=False,
    )
    raw = response.raw.headers
    return PreflightAnswer(
        status=response.status_code,
        allow_origin=tuple(raw.getlist("Access-Control-Allow-Origin")),
        allow_credentials=tuple(raw.getlist("Access-Control-Allow-Credentials")),
        allow_methods=response.headers.get("Access-Control-Allow-Methods", ""),
        allow_headers=response.headers.get("Access-Control-Allow-Headers", ""),
    )


def _preflight_problem(answer: PreflightAnswer, origin: str) -> tuple[str, str, str] | None:
    """``(name, what the browser does, fix)`` when the answer fails a credentialed request."""
    values = [part.strip() for value in answer.allow_origin for part in value.split(",")]
    if len(values) > 1:
        return (
            "duplicate_allow_origin",
            f"Access-Control-Allow-Origin came {len(values)} times ({' | '.join(values)}): "
            "browsers reject a response with more than one value, even identical ones, and "
            "every request from this frontend fails ('Failed to fetch').",
            "Two layers add CORS headers (usually the proxy and authgate). " + _FIX_PROXY_CORS,
        )
    if not values:
        return (
            "preflight_refused",
            "No Access-Control-Allow-Origin came back: the browser blocks every credentialed "
            "request from this frontend ('Failed to fetch', 'blocked by CORS policy').",
            "The running server does not allow this origin: restart it with the current "
            "AUTHGATE_ORIGINS, and check that the proxy forwards OPTIONS requests and the "
            "Origin header unchanged.",
        )
    if values[0] != origin:
        return (
            "wrong_allow_origin",
            f"Access-Control-Allow-Origin is {values[0]!r}, not {origin}: the browser refuses "
            "the response ('*' is never accepted with credentials).",
            _FIX_PROXY_CORS,
        )
    if [value.strip() for value in answer.allow_credentials] != ["true"]:
        return (
            "no_credentials",
            "Access-Control-Allow-Credentials: true is missing (or repeated): the browser "
            "refuses credentialed requests, so no cookie is sent or stored.",
            _FIX_PROXY_CORS,
        )
    if not 200 <= answer.status < 300:
        return (
            "preflight_status",
            f"The preflight answered HTTP {answer.status}: browsers need a 2xx answer.",
            "Let OPTIONS requests reach authgate (an auth layer or rule in the proxy may "
            "refuse them).",
        )
    return None


def check_preflight(
    session: requests.Session,
    base_url: str,
    origin: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Finding:
    """A preflight from the allowed ``origin`` must get exactly one, matching, credentialed
    ``Access-Control-Allow-Origin``."""
    try:
        answer = send_preflight(session, base_url, origin, timeout=timeout)
    except requests.RequestException as e:
        return _error(
            "url.cors.unreachable",
            f"The preflight from {origin} got no answer ({_request_error(e)}).",
            "Check that the server runs and answers OPTIONS requests.",
        )
    problem = _preflight_problem(answer, origin)
    if problem is None:
        return _ok(
            "url.cors.preflight",
            f"A preflight from {origin} gets exactly one Access-Control-Allow-Origin: {origin} "
            "with credentials: browsers let that frontend call with cookies.",
        )
    name, what, fix = problem
    return _error(f"url.cors.{name}", f"Preflight from {origin}: {what}", fix)


def lookalike_origins(origin: Origin, allowlist: OriginAllowlist) -> list[str]:
    """Origins an exact allowlist must refuse although they resemble ``origin``."""
    other_scheme = "http" if origin.scheme == "https" else "https"
    candidates = [Origin(other_scheme, origin.host, origin.port)]
    if ":" not in origin.host:  # not an IPv6 address
        candidates.insert(0, Origin(origin.scheme, origin.host + LOOKALIKE_SUFFIX, origin.port))
    return [str(candidate) for candidate in candidates if candidate not in allowlist]


def check_lookalikes(
    session: requests.Session,
    base_url: str,
    origin: Origin,
    allowlist: OriginAllowlist,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> list[Finding]:
    """Look-alikes of an allowed origin (``<host>.evil.test``, the other scheme) get no CORS."""
    findings: list[Finding] = []
    refused: list[str] = []
    for lookalike in lookalike_origins(origin, allowlist):
        try:
            answer = send_preflight(session, base_url, lookalike, timeout=timeout)
        except requests.RequestException as e:
            findings.append(
                _error(
                    "url.cors.unreachable",
                    f"The preflight from {lookalike} got no answer ({_request_error(e)}).",
                    "Check that the server runs and answers OPTIONS requests.",
                )
            )
            continue
        if answer.allow_origin:
            findings.append(
                _error(
                    "url.cors.lookalike_allowed",
                    f"A preflight from {lookalike}, which is not allowed, got "
                    f"Access-Control-Allow-Origin: {' | '.join(answer.allow_origin)}: something "
                    "reflects origins it should refuse, so other sites can read your users' data "
                    "with their cookies.",
                    "Remove origin reflection from the proxy (nginx `add_header "
                    "Access-Control-Allow-Origin $http_origin`) or from CORS middleware with "
                    "default settings; authgate compares origins exactly.",
                )
            )
        else:
            refused.append(lookalike)
    if refused and not findings:
        findings.append(
            _ok(
                "url.cors.lookalikes_refused",
                f"Look-alikes of {origin} ({', '.join(refused)}) get no CORS headers.",
            )
        )
    return findings


# doctor cors: one origin, in plain words ---------------------------------------------------------


def _near_misses(origin: Origin, allowlist: OriginAllowlist) -> list[str]:
    """Allowed origins that differ from ``origin`` only in scheme, port or localhost/127.0.0.1."""
    swapped = {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}
    found = []
    for allowed in allowlist:
        same_host = allowed.host == origin.host or swapped.get(allowed.host) == origin.host
        www = allowed.host.removeprefix("www.") == origin.host.removeprefix("www.")
        if same_host or www:
            found.append(str(allowed))
    return found


def explain_origin(settings: Settings, origin_text: str) -> list[Finding]:
    """What a browser does with a credentialed request from ``origin_text``, from the settings."""
    try:
        origin = parse_origin(origin_text.strip())
    except ValueError as e:
        return [
            _error(
                "cors.origin_invalid",
                f"{origin_text!r} is not an origin a browser sends: {e}",
                "Copy scheme://host[:port] from the frontend's address bar (no path, no "
                "trailing slash).",
            )
        ]
    own = parse_origin(settings.public_url)
    if origin == own:
        return [
            _ok(
                "cors.same_origin",
                f"{origin} is the API's own origin: requests are same-origin, so there is no "
                "preflight and no CORS; the cookies are first-party and sent with every request.",
            )
        ]
    findings = [_explain_preflight(settings, origin, own)]
    if findings[0].level == "error":
        return findings
    findings += _explain_transport(origin, own)
    findings.append(_explain_cookie(settings, origin, own))
    return findings


def _explain_preflight(settings: Settings, origin: Origin, own: Origin) -> Finding:
    allowed = list(settings.origins)
    if origin in settings.allowlist:
        return _ok(
            "cors.allowed",
            f"{origin} is in AUTHGATE_ORIGINS. The browser first sends a preflight (OPTIONS); "
            f"authgate answers Access-Control-Allow-Origin: {origin} and "
            "Access-Control-Allow-Credentials: true, allowing the headers Authorization, "
            "Content-Type, X-Requested-With and X-Origin (any other request header fails the "
            "preflight). Then the browser sends the request with cookies and lets the page "
            "read the answer.",
        )
    hint = ""
    near = _near_misses(origin, settings.allowlist)
    if near:
        hint = (
            f" Did you mean {' or '.join(near)}? Scheme, host and port must match exactly "
            "(localhost is not 127.0.0.1, :5173 is not :4100)."
        )
    production_note = ""
    if settings.is_production and origin.scheme == "http":
        production_note = " Production refuses http origins: serve that frontend over https."
    return _error(
        "cors.not_allowed",
        f"{origin} is not in AUTHGATE_ORIGINS, so the preflight (OPTIONS) gets no "
        "Access-Control-Allow-Origin. The browser then blocks the request: fetch() rejects "
        "with 'TypeError: Failed to fetch' and the console says 'blocked by CORS policy'. No "
        "cookie is sent or stored, and the page cannot read any answer (only GET "
        f"/api/auth/diagnose tells it why).{hint}",
        f"AUTHGATE_ORIGINS={','.join([*allowed, str(origin)])} and restart authgate."
        + production_note,
    )


def _explain_transport(origin: Origin, own: Origin) -> list[Finding]:
    if own.scheme != "http" or _is_local_host(own.host):
        return []
    findings = [_secure_over_http(own, "cors.cookie_insecure")]
    if origin.scheme == "https":
        findings.insert(
            0,
            _error(
                "cors.mixed_content",
                f"{origin} is an https page and the API is plain http: the browser blocks the "
                "request before it leaves (mixed content), and fetch() rejects with "
                "'Failed to fetch'.",
                "Serve the API over https.",
            ),
        )
    return findings


def _explain_cookie(settings: Settings, origin: Origin, own: Origin) -> Finding:
    policy = derive_cookie_policy(settings.public_url, settings.allowlist)
    mode = _cookie_mode(policy.samesite, policy.partitioned)
    if is_same_site(origin, own):
        why = (
            ""
            if policy.samesite == "Lax"
            else f" (SameSite=None only because {', '.join(policy.cross_site_origins)} "
            "is cross-site)"
        )
        return _ok(
            "cors.cookie_first_party",
            f"{origin} and the API are the same site ({site_of(own)}), so the session cookie "
            f"({settings.session_cookie_name}; {mode}{why}) is first-party: the browser "
            "stores it when the login call uses credentials: 'include', and sends it with every "
            "later call that does. Blocking third-party cookies does not affect it.",
        )
    scheme_note = " (the schemes differ: http and https are different sites)"
    return _warning(
        "cors.cookie_third_party",
        f"{origin} (site {site_of(origin)}) and the API (site {site_of(own)}) are different "
        f"sites{scheme_note if origin.scheme != own.scheme else ''}, so the session cookie is a "
        f"third-party cookie, set {mode}. Chrome, Edge and Firefox store it partitioned "
        f"(CHIPS): kept for pages on {site_of(origin)} and sent back on their calls with "
        "credentials: 'include'. Browsers that block all third-party cookies (Safari by "
        "default, or strict settings) drop it: the login answers 200, the next call 401.",
        f"For every browser, serve the API on the frontend's site "
        f"({_same_site_example(origin)}) so the cookie is first-party, or use bearer tokens.",
    )


def probe_origin(
    url: str,
    origin_text: str,
    settings: Settings | None,
    *,
    ca_file: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> list[Finding]:
    """Send the preflight from ``origin_text`` to the deployment at ``url``; report the real
    headers, and what the server itself says (``GET /api/auth/diagnose``)."""
    base = _parse_probe_url(url)
    if isinstance(base, Finding):
        return [base]
    base_url = str(base)
    with _probe_session(ca_file) as session:
        try:
            answer = send_preflight(session, base_url, origin_text, timeout=timeout)
        except requests.RequestException as e:
            return [
                _error(
                    "cors.unreachable",
                    f"{base_url} does not answer ({_request_error(e)}).",
                    "Check the URL, and that the server runs.",
                )
            ]
        findings = [_probe_finding(answer, origin_text, settings, base_url)]
        findings += _server_view(session, base_url, origin_text, timeout)
    return findings


def _probe_finding(
    answer: PreflightAnswer, origin: str, settings: Settings | None, base_url: str
) -> Finding:
    said = f"{base_url} answered the preflight from {origin} with {answer.describe()}"
    problem = _preflight_problem(answer, origin)
    allowed_by_settings = settings is not None and origin in settings.allowlist
    if problem is None:
        if settings is not None and not allowed_by_settings:
            return _warning(
                "cors.server_disagrees",
                said + ": it allows this origin although your settings do not, so it runs "
                "with other settings (or something in front of it answers CORS).",
                "Restart authgate with the current settings; " + _FIX_PROXY_CORS,
            )
        return _ok("cors.server_preflight", said + ": the browser will send the request.")
    name, what, fix = problem
    if allowed_by_settings and name == "preflight_refused":
        fix = (
            "Your settings allow this origin but the running server does not: restart it with "
            "the current AUTHGATE_ORIGINS (check the environment it really runs with)."
        )
    return _error(f"cors.{name}", f"{said}. {what}", fix)


def _server_view(
    session: requests.Session, base_url: str, origin: str, timeout: float
) -> list[Finding]:
    try:
        response = session.get(
            base_url + "/api/auth/diagnose", headers={"Origin": origin}, timeout=timeout
        )
        report = response.json()
        mode = report["cookie_mode"]
        cookie = _cookie_mode(str(mode["samesite"]), bool(mode["partitioned"]))
        allowed, same_site = report["origin_allowed"], report["same_site"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return [
            _warning(
                "cors.server_view",
                f"{base_url}/api/auth/diagnose gave no report: not authgate, or a proxy does "
                "not forward it.",
                "Forward /api/ to authgate.",
            )
        ]
    return [
        _ok(
            "cors.server_view",
            f"The server itself says: origin allowed: {_yes_no(allowed)}, same site as the "
            f"API: {_yes_no(same_site)}, session cookie {mode.get('name', '?')}: {cookie}.",
        )
    ]


def _yes_no(value: object) -> str:
    if value is None:
        return "n/a"
    return "yes" if value else "no"


# Everything --------------------------------------------------------------------------------------


def run_doctor(
    environ: Mapping[str, str] | None = None,
    *,
    production: bool = False,
    url: str | None = None,
    ca_file: Path | None = None,
    now: Callable[[], datetime] = _utc_now,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> list[Finding]:
    """Every check, grouped: the settings, then (with ``url``) the running deployment."""
    settings, findings = load_doctor_settings(environ, production=production)
    if settings is not None:
        checks: list[tuple[str, Callable[[], list[Finding]]]] = [
            ("production", lambda: check_production_refusals(settings)),
            ("public_url", lambda: check_public_url(settings)),
            ("secrets", lambda: check_keys(settings)),
            ("origins", lambda: check_origins(settings)),
            ("cookies", lambda: check_cookies(settings)),
            ("oauth", lambda: check_oauth(settings)),
            ("database", lambda: check_database(settings, now=now)),
            ("redis", lambda: check_redis(settings)),
        ]
        for group, check in checks:
            findings += _guarded(group, check)
    if url:
        findings += _guarded(
            "url",
            lambda: check_deployment(url, settings, ca_file=ca_file, now=now, timeout=timeout),
        )
    return sort_findings(findings)
