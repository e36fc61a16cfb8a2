"""``authgate nginx``: the nginx site for authgate behind TLS, rendered from the app's settings.

The usual deployment is gunicorn on a private address and nginx in front of it: nginx terminates
TLS (certbot's certificates), redirects plain http to https (keeping certbot's ACME challenge
path open), limits request bodies to the app's own limit, rate-limits the credential endpoints,
and adds the security headers the app does not set. Everything it needs is read from the same
``Settings`` the app runs with, so the two cannot disagree:

- ``server_name`` and the https redirect come from ``AUTHGATE_PUBLIC_URL``; the app receives
  that same host (``Host``/``X-Forwarded-Host``), whatever ``Host`` a client sent;
- ``proxy_pass`` goes to ``AUTHGATE_HOST``:``AUTHGATE_PORT``, or to the instances given with
  ``--upstream`` (several: an ``upstream`` group, and an idempotent request one instance could not
  answer is passed to the next);
- ``client_max_body_size`` is ``AUTHGATE_MAX_BODY_BYTES``;
- with ``cors_at_proxy`` the preflights are answered from ``AUTHGATE_ORIGINS`` (exact strings,
  never a pattern or ``*``) with the methods and headers the app itself allows.

CORS is answered in exactly one place: by default the app (nginx passes ``OPTIONS`` through and
adds no ``Access-Control-*`` header); with ``cors_at_proxy`` nginx, which then hides the app's
CORS headers so that none is ever sent twice.

Security headers are added only when the app's response does not carry them already (a ``map``
on ``$upstream_http_*``), so a header the app sets on some responses (the login pages' CSP,
``Referrer-Policy``) is never doubled. Every ``add_header`` sits at server level with ``always``
and no location has its own, so no location silently loses them (nginx's ``add_header``
inheritance rule: a level that has any ``add_header`` inherits none).

``render_nginx_config`` is pure: settings and options in, text out.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from authgate.config import Settings
from authgate.core.origins import DEFAULT_PORTS, parse_origin
from authgate.errors import (
    ConfigError,
    PayloadTooLargeError,
    RateLimitedError,
    ServiceUnavailableError,
)
from authgate.http.body_limits import MULTIPART_OVERHEAD_BYTES, describe_avatar_limit
from authgate.http.cors_policy import cors_options
from authgate.http.routes import AVATAR_UPLOAD_PATH

__all__ = [
    "CERTBOT_LIVE_DIR",
    "DEFAULT_HSTS_MAX_AGE",
    "DEFAULT_LISTEN_ADDRESSES",
    "DEFAULT_LOGIN_BURST",
    "DEFAULT_LOGIN_RATE",
    "DEFAULT_WEBROOT",
    "MOZILLA_INTERMEDIATE_CIPHERS",
    "RATE_LIMITED_PATHS",
    "UPSTREAM_GROUP",
    "NginxOptions",
    "check_config_path",
    "default_upstream",
    "format_nginx_size",
    "nginx_config_warnings",
    "render_nginx_config",
]

CERTBOT_LIVE_DIR = "/etc/letsencrypt/live"
DEFAULT_WEBROOT = "/var/www/certbot"
DEFAULT_LOGIN_RATE = "30r/m"
DEFAULT_LOGIN_BURST = 10
DEFAULT_LISTEN_ADDRESSES = ("*", "[::]")  # every IPv4 and every IPv6 address
DEFAULT_HSTS_MAX_AGE = 63072000  # two years, as Mozilla recommends
# Several instances (--upstream repeated): nginx's upstream group and how it fails over.
UPSTREAM_GROUP = "authgate_instances"
UPSTREAM_MAX_FAILS = 1
UPSTREAM_FAIL_TIMEOUT = "10s"
UPSTREAM_CONNECT_TIMEOUT = "2s"
# The endpoints that take a password or mint credentials: one request-rate zone per client
# address, on top of the app's own failed-login throttle (which counts per account and address).
# Credential endpoints: guessing passwords, creating accounts and tokens (writes only: reading
# one's token list is not limited). Refreshing has a zone of its own, four times as generous: a
# page calls it whenever its short-lived access cookie has expired.
RATE_LIMITED_PATHS = (
    "/api/auth/login",
    "/api/auth/register",
    "/api/tokens",
    # Second-factor codes (docs/mfa.md): guessed like passwords.
    "/api/auth/mfa/verify",
    "/api/auth/reauthenticate",
)
REFRESH_PATH = "/api/auth/refresh"
# Starting a provider login stores a flow: limited like a login, GETs included, except the list
# of providers (read by the login and account pages on every load) and preflights.
OAUTH_PREFIX = "/api/oauth/"
OAUTH_PROVIDERS_PATH = "/api/oauth/providers"
# Mozilla's "intermediate" configuration (TLS 1.2 ciphers; TLS 1.3 suites are not configurable).
MOZILLA_INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
# Headers nginx adds when the app's response has none of its own.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
)
CORS_RESPONSE_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Expose-Headers",
    "Access-Control-Max-Age",
)

_RATE = re.compile(r"([1-9][0-9]{0,5})r/([sm])")
_HOST_NAME = re.compile(r"(?=.{1,253}\Z)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_-]{1,63})*")
# Characters that would end a directive, start a comment, quote, open a block or expand a
# variable if written into the configuration.
_UNSAFE_IN_PATH = re.compile(r"[\s;'\"{}$#\\`]")
_SAFE_ORIGIN = re.compile(r"https?://[a-z0-9._\-\[\]:]+")
_SAFE_IN_DOUBLE_QUOTES = re.compile(r'[^"\\$\x00-\x1f]*')
_SAFE_IN_SINGLE_QUOTES = re.compile(r"[^'\\$\x00-\x1f]*")


@dataclass(frozen=True)
class NginxOptions:
    """What the settings do not say: ports, certificate paths, the proxy's own limits.

    ``cert_path``/``key_path`` default to certbot's layout for the public host;
    ``upstreams`` (each ``host:port``, ``[v6]:port`` or ``unix:/path``; several for several
    instances) to ``AUTHGATE_HOST``:``AUTHGATE_PORT``. ``listen_addresses`` are ``*`` (every
    IPv4 address), ``[::]`` (every IPv6 address) or single addresses. Invalid values raise
    ``ValueError`` saying why.
    """

    http_port: int = 80
    https_port: int = 443
    listen_addresses: tuple[str, ...] = DEFAULT_LISTEN_ADDRESSES
    cert_path: str | None = None
    key_path: str | None = None
    webroot: str = DEFAULT_WEBROOT
    upstreams: tuple[str, ...] = ()
    cors_at_proxy: bool = False
    login_rate: str = DEFAULT_LOGIN_RATE
    login_burst: int = DEFAULT_LOGIN_BURST
    hsts_max_age: int = DEFAULT_HSTS_MAX_AGE
    acme_bootstrap: bool = False

    def __post_init__(self) -> None:
        for name, port in (("http port", self.http_port), ("https port", self.https_port)):
            if not 1 <= port <= 65535:
                raise ValueError(f"The {name} must be between 1 and 65535, not {port}.")
        if self.http_port == self.https_port:
            raise ValueError("The http and https ports must differ.")
        if not self.listen_addresses:
            raise ValueError("At least one listen address is needed.")
        for address in self.listen_addresses:
            _check_listen_address(address)
        if self.acme_bootstrap and self.cert_path is not None:
            raise ValueError(
                "The ACME bootstrap serves plain http only: it takes no certificate or key."
            )
        if (self.cert_path is None) != (self.key_path is None):
            raise ValueError("Give both the certificate and its key, or neither (certbot's).")
        for what, path in (
            ("certificate", self.cert_path),
            ("key", self.key_path),
            ("webroot", self.webroot),
        ):
            if path is not None:
                check_config_path(path, what)
        addresses = [_upstream_address(upstream) for upstream in self.upstreams]
        if len(set(addresses)) != len(addresses):
            raise ValueError("An upstream is given twice.")
        if not _RATE.fullmatch(self.login_rate):
            raise ValueError(
                f"The login rate {self.login_rate!r} must read like 30r/m or 5r/s "
                "(requests per minute or second)."
            )
        if not 0 <= self.login_burst <= 100000:
            raise ValueError("The login burst must be between 0 and 100000.")
        if not 0 <= self.hsts_max_age <= 10 * 365 * 86400:
            raise ValueError("The HSTS max-age must be between 0 and ten years (in seconds).")


def check_config_path(path: str, what: str = "path") -> str:
    """``path`` if it is absolute and safe to write into an nginx configuration unquoted."""
    if not path.startswith("/"):
        raise ValueError(f"The {what} path {path!r} must be absolute.")
    if _UNSAFE_IN_PATH.search(path):
        raise ValueError(
            f"The {what} path {path!r} contains whitespace, a quote, ';', '#', '$', '\\' or a "
            "brace, which would change the nginx configuration; rename it."
        )
    return path


def _check_listen_address(address: str) -> None:
    if address in ("*", "[::]"):
        return
    bare = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        raise ValueError(
            f"The listen address {address!r} must be '*', '[::]' or an IP address."
        ) from None
    if ip.version == 6 and bare == address:
        raise ValueError(f"Write the IPv6 listen address in brackets: [{address}].")


def _upstream_address(value: str) -> str:
    """``host:port``, ``[v6]:port`` or ``unix:/path`` as nginx writes a server's address."""
    if value.startswith("unix:"):
        return f"unix:{check_config_path(value[5:], 'upstream socket')}"
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(
            f"The upstream {value!r} must be host:port (e.g. 127.0.0.1:8086), [v6]:port or "
            "unix:/path/to/socket."
        )
    return f"{_upstream_host(host, explicit=True)}:{int(port_text)}"


def _proxy_target(address: str) -> str:
    """The ``proxy_pass`` URL for one server's address (a unix socket path ends in ``:``)."""
    return f"http://{address}:" if address.startswith("unix:") else f"http://{address}"


def _upstream_host(host: str, *, explicit: bool = False) -> str:
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not explicit and bare in ("", "0.0.0.0"):  # noqa: S104 - mapping a wildcard bind
        return "127.0.0.1"
    if not explicit and bare == "::":
        return "[::1]"
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        if not _HOST_NAME.fullmatch(host.lower()):
            raise ValueError(f"The upstream host {host!r} is not a host name or address.") from None
        return host.lower()
    if ip.version == 6:
        return f"[{ip.compressed}]"
    return ip.compressed


def default_upstream(settings: Settings) -> str:
    """The address gunicorn listens on (``AUTHGATE_HOST``:``AUTHGATE_PORT``), as nginx reaches
    it: a wildcard bind (``0.0.0.0``, ``::``) is reached on loopback."""
    return f"{_upstream_host(settings.host)}:{settings.port}"


def format_nginx_size(size: int) -> str:
    """``size`` bytes exactly, in nginx's units: ``1m``, ``64k`` or plain bytes."""
    if size <= 0:
        raise ValueError("A size must be positive.")
    if size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)}m"
    if size % 1024 == 0:
        return f"{size // 1024}k"
    return str(size)


def _scaled_rate(rate: str, factor: int) -> str:
    match = _RATE.fullmatch(rate)
    assert match is not None  # checked by NginxOptions
    return f"{int(match[1]) * factor}r/{match[2]}"


def _retry_after_seconds(rate: str) -> int:
    match = _RATE.fullmatch(rate)
    assert match is not None  # checked by NginxOptions
    per_second = int(match[1]) / (60 if match[2] == "m" else 1)
    return max(1, math.ceil(1 / per_second))


def _quote(text: str) -> str:
    """``text`` as a double-quoted nginx string; refused if it could escape the quotes or
    expand a variable."""
    if not _SAFE_IN_DOUBLE_QUOTES.fullmatch(text):
        raise ConfigError(f"Cannot write {text!r} into the nginx configuration safely.")
    return f'"{text}"'


def _json_error(code: str, message: str) -> str:
    """An authgate error body as a single-quoted nginx string for ``return``."""
    body = json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":"))
    if not _SAFE_IN_SINGLE_QUOTES.fullmatch(body):
        raise ConfigError(f"Cannot write the error body {body!r} into the configuration.")
    return f"'{body}\\n'"


@dataclass(frozen=True)
class _Public:
    host: str  # server_name
    netloc: str  # host[:port] as the app's public URL says it


def _public(settings: Settings) -> _Public:
    origin = parse_origin(settings.public_url)
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    if not (_HOST_NAME.fullmatch(origin.host) or ":" in origin.host):
        raise ConfigError(f"AUTHGATE_PUBLIC_URL's host {origin.host!r} cannot be a server_name.")
    return _Public(host=host, netloc=origin.netloc)


def _https_redirect_target(settings: Settings, options: NginxOptions, public: _Public) -> str:
    """Where port 80 sends browsers: the public URL when it is https (the address browsers
    use, even when a port is mapped in between), else the host on the https port."""
    if settings.public_url.startswith("https://"):
        return settings.public_url
    port = "" if options.https_port == DEFAULT_PORTS["https"] else f":{options.https_port}"
    return f"https://{public.host}{port}"


def _listen(options: NginxOptions, port: int, suffix: str = "") -> list[str]:
    return [f"listen {address}:{port}{suffix};" for address in options.listen_addresses]


def _block(header: str, lines: Iterable[str], indent: str = "    ") -> list[str]:
    body = [f"{indent}{line}" if line else "" for line in lines]
    return [f"{header} {{", *body, "}"]


def _map(source: str, variable: str, entries: Iterable[tuple[str, str]]) -> list[str]:
    lines = [f"{key} {value};" for key, value in entries]
    return _block(f"map {source} {variable}", lines)


def _if_absent(upstream_header: str, variable: str, value: str) -> list[str]:
    """A variable holding ``value`` unless the app's response has the header already."""
    name = "$upstream_http_" + upstream_header.lower().replace("-", "_")
    return _map(name, variable, [('""', _quote(value)), ("default", '""')])


def _header_variable(header: str) -> str:
    return "$authgate_" + header.lower().replace("-", "_")


def _http_context(settings: Settings, options: NginxOptions) -> list[str]:
    """Zones and maps (nginx's http context, where sites-enabled files are included)."""
    lines = [
        "# Writes to the credential endpoints, per client address; reads and preflights have an",
        "# empty key and are not counted.",
        *_map(
            "$request_method",
            "$authgate_limit_key",
            [
                ("OPTIONS", '""'),
                ("GET", '""'),
                ("HEAD", '""'),
                ("default", "$binary_remote_addr"),
            ],
        ),
        f"limit_req_zone $authgate_limit_key zone=authgate_login:10m rate={options.login_rate};",
        f"limit_req_zone $authgate_limit_key zone=authgate_refresh:10m "
        f"rate={_scaled_rate(options.login_rate, 4)};",
        "# Everything under /api/oauth/ (GET /api/oauth/<p>/login stores a flow), per client",
        "# address, except the provider list the pages read on every load, and preflights.",
        *_map(
            '"$request_method:$uri"',
            "$authgate_oauth_limit_key",
            [
                ('"~^OPTIONS:"', '""'),
                (f'"GET:{OAUTH_PROVIDERS_PATH}"', '""'),
                (f'"HEAD:{OAUTH_PROVIDERS_PATH}"', '""'),
                ("default", "$binary_remote_addr"),
            ],
        ),
        f"limit_req_zone $authgate_oauth_limit_key zone=authgate_oauth:10m "
        f"rate={options.login_rate};",
        "",
        "# Security headers nginx adds only when the app's response has none of its own.",
        *_if_absent(
            "Strict-Transport-Security",
            "$authgate_hsts",
            f"max-age={options.hsts_max_age}",
        ),
    ]
    for header, value in SECURITY_HEADERS:
        lines += _if_absent(header, _header_variable(header), value)
    lines += [
        "# Retry-After on nginx's own 429 (the app's 429 brings its own).",
        *_map(
            '"$status:$upstream_http_retry_after"',
            "$authgate_retry_after",
            [('"429:"', f'"{_retry_after_seconds(options.login_rate)}"'), ("default", '""')],
        ),
    ]
    if options.cors_at_proxy:
        lines += ["", *_cors_maps(settings)]
    return lines


def _cors_maps(settings: Settings) -> list[str]:
    cors = cors_options(settings)
    origins = []
    for origin in settings.origins:
        if not _SAFE_ORIGIN.fullmatch(origin):
            raise ConfigError(f"Cannot write the origin {origin!r} into the nginx configuration.")
        origins.append((f'"{origin}"', f'"{origin}"'))
    return [
        "# CORS is answered here (--cors-at-proxy), from AUTHGATE_ORIGINS: exact strings, never a",
        '# pattern or *. Any other Origin maps to "" and gets no CORS header.',
        *_map("$http_origin", "$authgate_cors_origin", [("default", '""'), *origins]),
        *_map(
            '"$request_method:$http_access_control_request_method"',
            "$authgate_preflight",
            [("default", '""'), ('"~^OPTIONS:."', '"1"')],
        ),
        *_map(
            '"$authgate_preflight:$authgate_cors_origin"',
            "$authgate_cors",
            [("default", '""'), ('"~^1:."', "preflight"), ('"~^:."', "actual")],
        ),
        "# A response the app makes public (Access-Control-Allow-Origin: *, without",
        "# credentials) stays public for origins not in the list.",
        *_map(
            "$upstream_http_access_control_allow_origin",
            "$authgate_cors_public",
            [('"*"', '"*"'), ("default", '""')],
        ),
        *_map(
            "$authgate_cors",
            "$authgate_cors_allow_origin",
            [('""', "$authgate_cors_public"), ("default", "$authgate_cors_origin")],
        ),
        *_map(
            "$authgate_cors",
            "$authgate_cors_allow_credentials",
            [('""', '""'), ("default", '"true"')],
        ),
        *_map(
            "$authgate_cors",
            "$authgate_cors_allow_methods",
            [("preflight", _quote(", ".join(cors["methods"]))), ("default", '""')],
        ),
        *_map(
            "$authgate_cors",
            "$authgate_cors_allow_headers",
            [("preflight", _quote(", ".join(cors["allow_headers"]))), ("default", '""')],
        ),
        *_map(
            "$authgate_cors",
            "$authgate_cors_max_age",
            [("preflight", f'"{int(cors["max_age"])}"'), ("default", '""')],
        ),
        *_map(
            "$authgate_cors",
            "$authgate_cors_expose_headers",
            [("actual", _quote(", ".join(cors["expose_headers"]))), ("default", '""')],
        ),
        "# Vary: Origin unless the app's response varies on Origin already.",
        *_map(
            "$upstream_http_vary", "$authgate_vary", [('"~*origin"', '""'), ("default", '"Origin"')]
        ),
    ]


def _add_headers(options: NginxOptions) -> list[str]:
    lines = ["add_header Strict-Transport-Security $authgate_hsts always;"]
    lines += [
        f"add_header {header} {_header_variable(header)} always;" for header, _ in SECURITY_HEADERS
    ]
    lines.append("add_header Retry-After $authgate_retry_after always;")
    if options.cors_at_proxy:
        lines += [
            f"add_header {header} {_header_variable(header.replace('Access-Control', 'cors'))} "
            "always;"
            for header in CORS_RESPONSE_HEADERS
        ]
        lines.append("add_header Vary $authgate_vary always;")
    return lines


def _https_server(settings: Settings, options: NginxOptions, public: _Public) -> list[str]:
    addresses = _upstream_addresses(settings, options)
    upstream = _proxy_target(addresses[0]) if len(addresses) == 1 else f"http://{UPSTREAM_GROUP}"
    cert = options.cert_path or f"{CERTBOT_LIVE_DIR}/{public.host}/fullchain.pem"
    key = options.key_path or f"{CERTBOT_LIVE_DIR}/{public.host}/privkey.pem"
    body_size = format_nginx_size(settings.max_body_bytes)
    lines = [
        *_listen(options, options.https_port, " ssl http2"),
        f"server_name {public.host};",
        "server_tokens off;",
        "",
        "# TLS: Mozilla's intermediate configuration.",
        f"ssl_certificate {check_config_path(cert, 'certificate')};",
        f"ssl_certificate_key {check_config_path(key, 'key')};",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        f"ssl_ciphers {MOZILLA_INTERMEDIATE_CIPHERS};",
        "ssl_prefer_server_ciphers off;",
        "ssl_session_timeout 1d;",
        "ssl_session_cache shared:authgate_tls:10m;",
        "ssl_session_tickets off;",
        "",
        f"# The app's own limit (AUTHGATE_MAX_BODY_BYTES = {settings.max_body_bytes}).",
        f"client_max_body_size {body_size};",
        "",
        "# Every add_header is here, with always, and no location has its own: a location with",
        "# any add_header would inherit none of these.",
        *_add_headers(options),
        "",
        "# Errors nginx answers itself, as JSON in authgate's shape.",
        "error_page 413 @authgate_413;",
        "error_page 429 @authgate_429;",
        "error_page 502 503 504 =503 @authgate_unavailable;",
        "limit_req_status 429;",
        "limit_req_log_level warn;",
        "",
        "# The app trusts one proxy (AUTHGATE_TRUSTED_PROXIES=1): these values replace whatever",
        "# a client sent, and Host is always the public host.",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        f"proxy_set_header Host {_quote(public.netloc)};",
        f"proxy_set_header X-Forwarded-Host {_quote(public.netloc)};",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
    ]
    if len(addresses) > 1:
        lines += ["", *_failover(len(addresses))]
    if options.cors_at_proxy:
        lines += [
            "",
            "# CORS is answered here, not by the app: drop the app's CORS headers and answer",
            "# every preflight (OPTIONS with Access-Control-Request-Method) with 204.",
            *[f"proxy_hide_header {header};" for header in CORS_RESPONSE_HEADERS],
            "if ($authgate_preflight) {",
            "    return 204;",
            "}",
        ]
    else:
        lines += [
            "",
            "# CORS is answered by the app (AUTHGATE_ORIGINS): OPTIONS goes through untouched.",
        ]
    lines += ["", *_block("location /", [f"proxy_pass {upstream};"])]
    burst = f" burst={options.login_burst} nodelay" if options.login_burst else ""
    for path in RATE_LIMITED_PATHS:
        lines += _block(
            f"location = {path}",
            [f"limit_req zone=authgate_login{burst};", f"proxy_pass {upstream};"],
        )
    lines += _block(
        f"location = {REFRESH_PATH}",
        [f"limit_req zone=authgate_refresh{burst};", f"proxy_pass {upstream};"],
    )
    lines += _block(
        f"location ^~ {OAUTH_PREFIX}",
        [f"limit_req zone=authgate_oauth{burst};", f"proxy_pass {upstream};"],
    )
    avatar_limit = settings.avatar_max_bytes + MULTIPART_OVERHEAD_BYTES
    lines += _block(
        f"location = {AVATAR_UPLOAD_PATH}",
        [
            f"# Avatars: AUTHGATE_AVATAR_MAX_BYTES ({settings.avatar_max_bytes}) plus the",
            "# multipart envelope, the same limit the app applies to this path.",
            f"client_max_body_size {format_nginx_size(avatar_limit)};",
            "# Its own 413 body, naming this limit. An error_page here replaces all the",
            "# server's, so the upstream's is repeated (no limit_req here: no 429).",
            "error_page 413 @authgate_avatar_413;",
            "error_page 502 503 504 =503 @authgate_unavailable;",
            f"proxy_pass {upstream};",
        ],
    )
    errors = [
        (
            "413",
            "413",
            PayloadTooLargeError.code,
            f"The request body is larger than the limit of {settings.max_body_bytes} bytes.",
        ),
        (
            "avatar_413",
            "413",
            PayloadTooLargeError.code,
            f"{describe_avatar_limit(settings.avatar_max_bytes)} The upload is larger than "
            f"the limit of {avatar_limit} bytes.",
        ),
        ("429", "429", RateLimitedError.code, "Too many requests; wait a little and try again."),
        (
            "unavailable",
            "503",
            ServiceUnavailableError.code,
            "The authentication service is not answering; try again shortly.",
        ),
    ]
    for name, status, code, message in errors:
        lines += _block(
            f"location @authgate_{name}",
            ["default_type application/json;", f"return {status} {_json_error(code, message)};"],
        )
    return _block("server", lines)


def _upstream_addresses(settings: Settings, options: NginxOptions) -> list[str]:
    return [_upstream_address(upstream) for upstream in options.upstreams] or [
        _upstream_address(default_upstream(settings))
    ]


def _upstream_group(addresses: list[str]) -> list[str]:
    """The ``upstream`` block of several instances (``--upstream`` repeated)."""
    servers = [
        f"server {address} max_fails={UPSTREAM_MAX_FAILS} fail_timeout={UPSTREAM_FAIL_TIMEOUT};"
        for address in addresses
    ]
    return [
        "# The instances (--upstream, repeated). least_conn: a login holds its instance for an",
        "# argon2id hash, a /me takes a millisecond; round robin would queue the cheap requests",
        "# behind the hashes. The zone shares which instance failed between nginx's workers;",
        "# one that failed is skipped for fail_timeout.",
        *_block(
            f"upstream {UPSTREAM_GROUP}",
            [f"zone {UPSTREAM_GROUP} 64k;", "least_conn;", *servers],
        ),
    ]


def _failover(count: int) -> list[str]:
    return [
        "# An instance that refuses, resets or does not answer: the request goes to the next",
        "# one if nginx may send it twice. GET, HEAD, OPTIONS, PUT and DELETE, whose repeat does",
        "# no harm, are; a POST or PATCH in flight on an instance that died is not (a login or a",
        "# refresh may have been done): it is answered 503 below. One that never reached the",
        "# instance (connection refused) is retried whatever its method. The app's own 503 (its",
        "# database does not answer, the same for every instance) is passed on, not retried.",
        "proxy_next_upstream error timeout;",
        f"proxy_next_upstream_tries {count};",
        "# Connecting on a private network takes well under a millisecond: a host that is gone",
        "# (no answer at all) costs this once, then fail_timeout without it.",
        f"proxy_connect_timeout {UPSTREAM_CONNECT_TIMEOUT};",
    ]


def _acme_location(webroot: str) -> list[str]:
    """certbot's HTTP-01 challenges, served as files from its ``--webroot``."""
    return _block(
        "location ^~ /.well-known/acme-challenge/",
        [f"root {webroot};", "default_type text/plain;", "try_files $uri =404;"],
    )


def _http_server(settings: Settings, options: NginxOptions, public: _Public) -> list[str]:
    webroot = check_config_path(options.webroot, "webroot")
    target = _https_redirect_target(settings, options, public)
    return _block(
        "server",
        [
            *_listen(options, options.http_port),
            f"server_name {public.host};",
            "server_tokens off;",
            "",
            "# certbot --webroot -w " + webroot + " answers its challenges from here.",
            *_acme_location(webroot),
            *_block("location /", [f"return 301 {target}$request_uri;"]),
        ],
    )


def _acme_bootstrap_config(options: NginxOptions, public: _Public) -> str:
    webroot = check_config_path(options.webroot, "webroot")
    setting_up = _json_error(
        ServiceUnavailableError.code,
        "The site is being set up (waiting for its first TLS certificate); try again shortly.",
    )
    lines = [
        "# authgate, first start: generated by `authgate nginx --acme-bootstrap`.",
        "# Plain http only, to get the first certificate with",
        f"#   certbot certonly --webroot -w {webroot} -d {public.host}",
        "# then replace this file with the output of `authgate nginx` and reload nginx.",
        "",
        *_block(
            "server",
            [
                *_listen(options, options.http_port),
                f"server_name {public.host};",
                "server_tokens off;",
                "",
                *_acme_location(webroot),
                *_block(
                    "location /",
                    ["default_type application/json;", f"return 503 {setting_up};"],
                ),
            ],
        ),
    ]
    return "\n".join(lines) + "\n"


def render_nginx_config(settings: Settings, options: NginxOptions | None = None) -> str:
    """The nginx configuration (for ``/etc/nginx/sites-available/``, inside nginx's ``http``
    block) that serves authgate on https in front of gunicorn.

    With ``acme_bootstrap``, the configuration for the first start instead: plain http only,
    serving certbot's challenges from the webroot (the https server needs the certificate that
    certbot has not issued yet, and ``nginx -t`` refuses a missing certificate file)."""
    options = options or NginxOptions()
    public = _public(settings)
    if options.acme_bootstrap:
        return _acme_bootstrap_config(options, public)
    cors = "nginx (--cors-at-proxy)" if options.cors_at_proxy else "the app"
    lines = [
        "# authgate behind nginx: generated by `authgate nginx` from the authgate settings.",
        "# Regenerate it after changing them rather than editing it by hand.",
        f"#   public URL {settings.public_url}, origins {', '.join(settings.origins) or '(none)'},",
        f"#   CORS answered by {cors}.",
        "",
        *_http_context(settings, options),
        "",
    ]
    addresses = _upstream_addresses(settings, options)
    if len(addresses) > 1:
        lines += [*_upstream_group(addresses), ""]
    lines += [
        *_http_server(settings, options, public),
        "",
        *_https_server(settings, options, public),
    ]
    return "\n".join(lines) + "\n"


def nginx_config_warnings(settings: Settings, options: NginxOptions | None = None) -> list[str]:
    """What in the settings does not fit behind this proxy, each with the fix."""
    options = options or NginxOptions()
    if options.acme_bootstrap:
        return []
    warnings: list[str] = []
    origin = parse_origin(settings.public_url)
    if origin.scheme != "https":
        warnings.append(
            f"AUTHGATE_PUBLIC_URL is {settings.public_url}, but nginx serves https: set it to "
            f"https://{origin.host} so that cookies are Secure and links use https."
        )
    if settings.trusted_proxies != 1:
        warnings.append(
            f"AUTHGATE_TRUSTED_PROXIES is {settings.trusted_proxies}, but the app runs behind "
            "this one nginx: set it to 1, or the app sees nginx's address and http instead of "
            "the client's address and https."
        )
    public_port = origin.port or DEFAULT_PORTS[origin.scheme]
    if origin.scheme == "https" and public_port != options.https_port:
        warnings.append(
            f"nginx listens for https on port {options.https_port}, but AUTHGATE_PUBLIC_URL "
            f"says port {public_port}: fine only if something maps one port to the other."
        )
    return warnings
