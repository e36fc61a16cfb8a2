"""``authgate nginx``: the configuration rendered from the settings, and ``nginx -t`` accepting
every configuration the generator can produce (the real nginx; tests/e2e/test_nginx.py runs it
in front of the real server)."""

from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from authgate.cli import main
from authgate.config import Settings, load_settings
from authgate.http.body_limits import describe_avatar_limit
from authgate.http.cors_policy import cors_options
from authgate.proxy.nginx import (
    CERTBOT_LIVE_DIR,
    MOZILLA_INTERMEDIATE_CIPHERS,
    RATE_LIMITED_PATHS,
    UPSTREAM_GROUP,
    NginxOptions,
    format_nginx_size,
    nginx_config_warnings,
    render_nginx_config,
)
from authgate.proxy.tls import DevCertificate, issue_dev_certificate
from tests.e2e.nginx_harness import Nginx

PUBLIC = "https://auth.example.com"
APP = "https://app.example.com"
ADMIN = "https://admin.example.com:8443"


def make_settings(**values: str) -> Settings:
    environ = {
        "AUTHGATE_PUBLIC_URL": PUBLIC,
        "AUTHGATE_ORIGINS": f"{APP} {ADMIN}",
        "AUTHGATE_TRUSTED_PROXIES": "1",
    }
    environ.update({f"AUTHGATE_{k.upper()}": v for k, v in values.items()})
    return load_settings(environ={k: v for k, v in environ.items() if v})


@dataclass(frozen=True)
class Block:
    header: str  # e.g. "server", "location = /api/auth/login", "map $http_origin $x"
    lines: tuple[str, ...]  # the directives directly inside (nested blocks excluded)
    parents: tuple[str, ...]
    span: tuple[int, int]  # first and last line


def directives(text: str) -> list[str]:
    """The lines of a configuration without comments and blank lines."""
    return [line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")]


def parse_blocks(text: str) -> list[Block]:
    """The blocks of a configuration written one directive per line (as the generator does)."""
    stack: list[tuple[str, list[str], int]] = [("", [], 0)]
    blocks: list[Block] = []
    for number, raw in enumerate(text.splitlines()):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("{"):
            stack.append((line[:-1].strip(), [], number))
        elif line == "}":
            header, lines, start = stack.pop()
            parents = tuple(h for h, _, _ in stack[1:])
            blocks.append(Block(header, tuple(lines), parents, (start, number)))
        else:
            stack[-1][1].append(line)
    assert len(stack) == 1, "unbalanced braces"
    return blocks


def servers(text: str) -> tuple[Block, Block]:
    """The plain-http server and the https server."""
    http, https = [block for block in parse_blocks(text) if block.header == "server"]
    assert any("ssl" in line for line in https.lines if line.startswith("listen"))
    assert not any("ssl" in line for line in http.lines if line.startswith("listen"))
    return http, https


def find_block(text: str, header: str, within: Block | None = None) -> Block:
    matches = [
        block
        for block in parse_blocks(text)
        if block.header == header
        and (within is None or within.span[0] < block.span[0] < within.span[1])
    ]
    assert len(matches) == 1, (header, [block.header for block in parse_blocks(text)])
    return matches[0]


def map_entries(text: str, variable: str) -> dict[str, str]:
    """The entries of the map that sets ``variable``."""
    (block,) = [
        b for b in parse_blocks(text) if b.header.startswith("map ") and b.header.endswith(variable)
    ]
    return dict(line.rstrip(";").split(" ", 1) for line in block.lines)


# What the configuration says -------------------------------------------------------------------


def test_server_name_and_the_https_redirect_come_from_the_public_url() -> None:
    text = render_nginx_config(make_settings())
    http, https = servers(text)

    assert "server_name auth.example.com;" in http.lines
    assert "server_name auth.example.com;" in https.lines
    assert http.lines[:2] == ("listen *:80;", "listen [::]:80;")
    assert https.lines[:2] == ("listen *:443 ssl http2;", "listen [::]:443 ssl http2;")
    redirect = find_block(text, "location /", within=http)
    assert redirect.lines == ("return 301 https://auth.example.com$request_uri;",)


def test_the_redirect_keeps_a_non_default_port_of_the_public_url() -> None:
    text = render_nginx_config(
        make_settings(public_url="https://localhost:8443"),
        NginxOptions(http_port=8080, https_port=8443),
    )
    http, https = servers(text)

    assert "listen *:8080;" in http.lines
    assert "listen *:8443 ssl http2;" in https.lines
    assert "server_name localhost;" in https.lines
    assert "return 301 https://localhost:8443$request_uri;" in text
    # The app always receives the public host, whatever Host a client sent.
    assert 'proxy_set_header Host "localhost:8443";' in https.lines
    assert 'proxy_set_header X-Forwarded-Host "localhost:8443";' in https.lines


def test_certbot_paths_by_default_and_given_paths_override_them() -> None:
    default = servers(render_nginx_config(make_settings()))[1]
    assert "ssl_certificate /etc/letsencrypt/live/auth.example.com/fullchain.pem;" in default.lines
    assert (
        "ssl_certificate_key /etc/letsencrypt/live/auth.example.com/privkey.pem;" in default.lines
    )

    given = render_nginx_config(
        make_settings(), NginxOptions(cert_path="/srv/tls/chain.pem", key_path="/srv/tls/key.pem")
    )
    assert "ssl_certificate /srv/tls/chain.pem;" in servers(given)[1].lines
    assert "ssl_certificate_key /srv/tls/key.pem;" in servers(given)[1].lines
    assert "letsencrypt" not in given


def test_acme_challenges_are_served_from_the_webroot_on_plain_http() -> None:
    for webroot, options in [
        ("/var/www/certbot", NginxOptions()),
        ("/srv/acme", NginxOptions(webroot="/srv/acme")),
    ]:
        text = render_nginx_config(make_settings(), options)
        http, _ = servers(text)
        acme = find_block(text, "location ^~ /.well-known/acme-challenge/", within=http)
        assert f"root {webroot};" in acme.lines
        assert "try_files $uri =404;" in acme.lines
        inside_http = [b for b in parse_blocks(text) if http.span[0] <= b.span[0] < http.span[1]]
        assert not any(line.startswith("proxy_pass") for b in inside_http for line in b.lines)


def test_modern_tls_and_hsts() -> None:
    text = render_nginx_config(make_settings())
    https = servers(text)[1]

    assert "ssl_protocols TLSv1.2 TLSv1.3;" in https.lines
    assert f"ssl_ciphers {MOZILLA_INTERMEDIATE_CIPHERS};" in https.lines
    assert "ssl_session_tickets off;" in https.lines
    assert "server_tokens off;" in https.lines
    assert "add_header Strict-Transport-Security $authgate_hsts always;" in https.lines
    assert map_entries(text, "$authgate_hsts") == {
        '""': '"max-age=63072000"',
        "default": '""',
    }
    short = render_nginx_config(make_settings(), NginxOptions(hsts_max_age=0))
    assert '"max-age=0"' in short


@pytest.mark.parametrize(
    ("upstream", "settings", "expected"),
    [
        (None, {}, "http://127.0.0.1:8086"),
        (None, {"host": "10.0.0.5", "port": "9000"}, "http://10.0.0.5:9000"),
        (None, {"host": "0.0.0.0"}, "http://127.0.0.1:8086"),  # a wildcard bind: loopback
        (None, {"host": "::"}, "http://[::1]:8086"),
        (None, {"host": "::1"}, "http://[::1]:8086"),
        ("app.internal:8000", {}, "http://app.internal:8000"),
        ("[fd00::5]:8000", {}, "http://[fd00::5]:8000"),
        ("unix:/run/authgate/gunicorn.sock", {}, "http://unix:/run/authgate/gunicorn.sock:"),
    ],
)
def test_proxy_pass_goes_to_gunicorn(
    upstream: str | None, settings: dict[str, str], expected: str
) -> None:
    options = NginxOptions(upstreams=(upstream,) if upstream else ())
    text = render_nginx_config(make_settings(**settings), options)
    https = servers(text)[1]

    passes = [
        block for block in parse_blocks(text) if any("proxy_pass" in line for line in block.lines)
    ]
    # /, the credential paths, refresh, the OAuth prefix, the avatar
    assert len(passes) == 4 + len(RATE_LIMITED_PATHS)
    for block in passes:
        assert f"proxy_pass {expected};" in block.lines
    assert "proxy_http_version 1.1;" in https.lines
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in https.lines
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in https.lines


def test_several_upstreams_are_balanced_and_failed_over() -> None:
    instances = ("10.0.0.2:8086", "app-3.internal:8086", "[fd00::4]:8086")
    text = render_nginx_config(make_settings(), NginxOptions(upstreams=instances))
    https = servers(text)[1]

    group = find_block(text, f"upstream {UPSTREAM_GROUP}")
    assert group.parents == ()  # nginx's http context, beside the servers
    assert group.lines == (
        f"zone {UPSTREAM_GROUP} 64k;",
        "least_conn;",
        "server 10.0.0.2:8086 max_fails=1 fail_timeout=10s;",
        "server app-3.internal:8086 max_fails=1 fail_timeout=10s;",
        "server [fd00::4]:8086 max_fails=1 fail_timeout=10s;",
    )
    passes = [
        line
        for block in parse_blocks(text)
        for line in block.lines
        if line.startswith("proxy_pass")
    ]
    assert passes and set(passes) == {f"proxy_pass http://{UPSTREAM_GROUP};"}
    # Idempotent requests go to the next instance on a connection error or timeout (nginx
    # never repeats a POST or PATCH that reached an instance without "non_idempotent").
    assert "proxy_next_upstream error timeout;" in https.lines
    assert "proxy_next_upstream_tries 3;" in https.lines
    assert "proxy_connect_timeout 2s;" in https.lines
    assert not any("non_idempotent" in line for line in directives(text))
    # No location has proxy_next_upstream of its own (it would replace the server's).
    for block in parse_blocks(text):
        if block.header.startswith("location"):
            assert not any(line.startswith("proxy_next_upstream") for line in block.lines)

    # One upstream: no group and no failover settings, as before.
    single = render_nginx_config(make_settings(), NginxOptions(upstreams=instances[:1]))
    assert "upstream " not in single and "proxy_next_upstream" not in single
    assert "proxy_pass http://10.0.0.2:8086;" in single


def test_the_command_takes_several_upstreams(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main,
        ["nginx", "--upstream", "10.0.0.2:8086", "--upstream", "10.0.0.3:8086"],
        env=cli_env,
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    group = find_block(result.stdout, f"upstream {UPSTREAM_GROUP}")
    assert "server 10.0.0.2:8086 max_fails=1 fail_timeout=10s;" in group.lines
    assert "server 10.0.0.3:8086 max_fails=1 fail_timeout=10s;" in group.lines


@pytest.mark.parametrize(
    ("max_body_bytes", "expected"),
    [(1024 * 1024, "1m"), (65536, "64k"), (1500, "1500"), (1024 * 1024 + 1024, "1025k")],
)
def test_client_max_body_size_is_the_apps_limit_exactly(max_body_bytes: int, expected: str) -> None:
    text = render_nginx_config(make_settings(max_body_bytes=str(max_body_bytes)))

    assert f"client_max_body_size {expected};" in servers(text)[1].lines
    assert format_nginx_size(max_body_bytes) == expected
    (body,) = find_block(text, "location @authgate_413").lines[1:]
    assert str(max_body_bytes) in body


def test_credential_endpoints_are_rate_limited_with_a_429() -> None:
    text = render_nginx_config(make_settings(), NginxOptions(login_rate="5r/s", login_burst=3))

    assert "limit_req_zone $authgate_limit_key zone=authgate_login:10m rate=5r/s;" in text
    assert "limit_req_zone $authgate_limit_key zone=authgate_refresh:10m rate=20r/s;" in text
    assert "limit_req_zone $authgate_oauth_limit_key zone=authgate_oauth:10m rate=5r/s;" in text
    assert map_entries(text, "$authgate_oauth_limit_key") == {
        '"~^OPTIONS:"': '""',  # preflights are not counted
        '"GET:/api/oauth/providers"': '""',  # nor the list every login page load reads
        '"HEAD:/api/oauth/providers"': '""',
        "default": "$binary_remote_addr",  # starting a provider login is (GET included)
    }
    assert map_entries(text, "$authgate_limit_key") == {
        "OPTIONS": '""',  # preflights are not counted
        "GET": '""',  # nor reads, such as the account page listing its tokens
        "HEAD": '""',
        "default": "$binary_remote_addr",
    }
    https = servers(text)[1]
    assert "limit_req_status 429;" in https.lines
    assert "error_page 429 @authgate_429;" in https.lines
    for path in (
        "/api/auth/login",
        "/api/auth/register",
        "/api/tokens",
        "/api/auth/mfa/verify",
        "/api/auth/reauthenticate",
    ):
        block = find_block(text, f"location = {path}")
        assert "limit_req zone=authgate_login burst=3 nodelay;" in block.lines
    refresh = find_block(text, "location = /api/auth/refresh")
    assert "limit_req zone=authgate_refresh burst=3 nodelay;" in refresh.lines
    oauth = find_block(text, "location ^~ /api/oauth/")
    assert "limit_req zone=authgate_oauth burst=3 nodelay;" in oauth.lines
    assert find_block(text, "location /", within=https).lines == (
        "proxy_pass http://127.0.0.1:8086;",
    )
    assert sum(line.startswith("limit_req zone=") for line in directives(text)) == 7
    no_burst = render_nginx_config(make_settings(), NginxOptions(login_burst=0))
    assert "limit_req zone=authgate_login;" in find_block(no_burst, "location = /api/tokens").lines


def test_nginx_errors_are_json_in_authgates_shape() -> None:
    text = render_nginx_config(make_settings())
    bodies = {
        status: json.loads(body) for status, body in re.findall(r"return (\d+) '(.*)\\n';", text)
    }

    assert set(bodies) == {"413", "429", "503"}
    assert bodies["413"]["error"]["code"] == "payload_too_large"
    assert bodies["429"]["error"]["code"] == "rate_limited"
    assert bodies["503"]["error"]["code"] == "service_unavailable"
    for body in bodies.values():
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    for status in ("413", "429", "unavailable"):
        assert (
            "default_type application/json;"
            in find_block(text, f"location @authgate_{status}").lines
        )
    assert "error_page 413 @authgate_413;" in servers(text)[1].lines


@pytest.mark.parametrize("cors_at_proxy", [False, True])
def test_every_add_header_is_at_server_level_with_always(cors_at_proxy: bool) -> None:
    """nginx drops every inherited add_header in a block that has one of its own."""
    text = render_nginx_config(make_settings(), NginxOptions(cors_at_proxy=cors_at_proxy))
    https = servers(text)[1]

    added = [line for line in https.lines if line.startswith("add_header")]
    assert len(added) >= 6
    assert all(line.endswith(" always;") for line in added)
    assert sum("add_header" in line for line in directives(text)) == len(added)
    headers = [line.split()[1] for line in added]
    assert len(headers) == len(set(headers))
    assert {
        "Strict-Transport-Security",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Content-Security-Policy",
        "Referrer-Policy",
    } <= set(headers)


def test_security_headers_are_added_only_when_the_app_has_none() -> None:
    text = render_nginx_config(make_settings())

    for header, value in [
        ("x_content_type_options", '"nosniff"'),
        ("x_frame_options", '"DENY"'),
        ("content_security_policy", "\"frame-ancestors 'none'\""),
        ("referrer_policy", '"no-referrer"'),
    ]:
        block = find_block(text, f"map $upstream_http_{header} $authgate_{header}")
        assert block.lines == (f'"" {value};', 'default "";')


def test_cors_is_left_to_the_app_by_default() -> None:
    text = render_nginx_config(make_settings())

    assert "Access-Control" not in text
    assert "$http_origin" not in text
    # OPTIONS appears only as "not rate-limited"; nothing answers it but the app.
    assert [line for line in directives(text) if "OPTIONS" in line] == [
        'OPTIONS "";',
        '"~^OPTIONS:" "";',
    ]
    assert "return 204" not in text


def test_cors_at_proxy_maps_exactly_the_allowed_origins() -> None:
    text = render_nginx_config(make_settings(), NginxOptions(cors_at_proxy=True))

    assert map_entries(text, "$authgate_cors_origin") == {
        "default": '""',
        f'"{APP}"': f'"{APP}"',
        f'"{ADMIN}"': f'"{ADMIN}"',
    }
    origin_map = find_block(text, "map $http_origin $authgate_cors_origin")
    assert not any("*" in line or "~" in line for line in origin_map.lines)
    https = servers(text)[1]
    for header in (
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Credentials",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Headers",
        "Access-Control-Expose-Headers",
        "Access-Control-Max-Age",
    ):
        assert f"proxy_hide_header {header};" in https.lines
    assert "add_header Access-Control-Allow-Origin $authgate_cors_allow_origin always;" in (
        https.lines
    )
    assert not re.search(r"add_header Access-Control-Allow-Origin \"?\*", text)
    preflight = find_block(text, "if ($authgate_preflight)")
    assert preflight.lines == ("return 204;",)
    assert map_entries(text, "$authgate_cors_allow_origin") == {
        '""': "$authgate_cors_public",  # only an upstream "*" (public, no credentials)
        "default": "$authgate_cors_origin",
    }
    assert map_entries(text, "$authgate_cors_public") == {'"*"': '"*"', "default": '""'}


def test_cors_at_proxy_allows_what_the_app_allows() -> None:
    settings = make_settings()
    text = render_nginx_config(settings, NginxOptions(cors_at_proxy=True))
    app = cors_options(settings)

    # Several maps read $authgate_cors: look them up by the variable they set.
    entries = {
        block.header.split()[2]: dict(line.rstrip(";").split(" ", 1) for line in block.lines)
        for block in parse_blocks(text)
        if block.header.startswith("map $authgate_cors ")
    }
    assert entries["$authgate_cors_allow_methods"]["preflight"] == (
        '"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"'
    )
    assert entries["$authgate_cors_allow_methods"]["preflight"] == f'"{", ".join(app["methods"])}"'
    assert entries["$authgate_cors_allow_headers"]["preflight"] == (
        '"Authorization, Content-Type, X-Requested-With, X-Origin"'
    )
    assert entries["$authgate_cors_max_age"]["preflight"] == f'"{app["max_age"]}"'
    assert entries["$authgate_cors_expose_headers"]["actual"] == (
        f'"{", ".join(app["expose_headers"])}"'
    )
    assert entries["$authgate_cors_allow_credentials"] == {'""': '""', "default": '"true"'}


def test_cors_at_proxy_without_origins_allows_no_origin() -> None:
    text = render_nginx_config(make_settings(origins=""), NginxOptions(cors_at_proxy=True))

    assert map_entries(text, "$authgate_cors_origin") == {"default": '""'}


# Refused input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "relative/cert.pem",
        "/etc/ssl/my cert.pem",
        "/etc/ssl/cert.pem;include /etc/passwd",
        "/etc/ssl/'cert'.pem",
        '/etc/ssl/"cert".pem',
        "/etc/ssl/{cert}.pem",
        "/etc/ssl/$host.pem",
        "/etc/ssl/#cert.pem",
        "/etc/ssl/cert.pem\nuser root",
        "/etc/ssl/cert\\.pem",
    ],
)
def test_paths_that_would_change_the_configuration_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        NginxOptions(cert_path=path, key_path="/etc/ssl/key.pem")
    with pytest.raises(ValueError, match="path"):
        NginxOptions(webroot=path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cert_path": "/etc/ssl/cert.pem"}, "both"),
        ({"http_port": 8443, "https_port": 8443}, "differ"),
        ({"http_port": 0}, "between"),
        ({"login_rate": "10 per minute"}, "30r/m"),
        ({"login_rate": "10r/h"}, "30r/m"),
        ({"login_rate": "0r/s"}, "30r/m"),
        ({"login_burst": -1}, "burst"),
        ({"upstreams": ("127.0.0.1",)}, "host:port"),
        ({"upstreams": ("127.0.0.1:99999",)}, "host:port"),
        ({"upstreams": ("bad host;:80",)}, "upstream host"),
        ({"upstreams": ("unix:/run/a b.sock",)}, "path"),
        ({"upstreams": ("10.0.0.2:8086", "10.0.0.2:8086")}, "twice"),
        ({"listen_addresses": ("localhost",)}, "listen address"),
        ({"listen_addresses": ("::1",)}, "brackets"),
        ({"listen_addresses": ()}, "listen address"),
        ({"hsts_max_age": -1}, "HSTS"),
    ],
)
def test_invalid_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NginxOptions(**options)  # type: ignore[arg-type]


def test_warnings_for_settings_that_do_not_fit_behind_the_proxy() -> None:
    assert nginx_config_warnings(make_settings()) == []

    warnings = nginx_config_warnings(
        make_settings(public_url="http://auth.example.com", trusted_proxies="0")
    )
    assert len(warnings) == 2
    assert "https://auth.example.com" in warnings[0]
    assert "AUTHGATE_TRUSTED_PROXIES is 0" in warnings[1]
    (port,) = nginx_config_warnings(make_settings(), NginxOptions(https_port=8443))
    assert "8443" in port


# The command -----------------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("AUTHGATE_") and not name.startswith("AUTHGATE_TEST_"):
            monkeypatch.delenv(name)
    return {
        "AUTHGATE_INSTANCE_PATH": str(tmp_path),
        "AUTHGATE_PUBLIC_URL": PUBLIC,
        "AUTHGATE_ORIGINS": APP,
        "AUTHGATE_TRUSTED_PROXIES": "1",
        "AUTHGATE_PORT": "9001",
    }


def test_the_command_prints_the_configuration(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main,
        ["nginx", "--cors-at-proxy", "--https-port", "443", "--login-rate", "12r/m"],
        env=cli_env,
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    expected = render_nginx_config(
        load_settings(environ=cli_env), NginxOptions(cors_at_proxy=True, login_rate="12r/m")
    )
    assert result.stdout == expected
    assert "proxy_pass http://127.0.0.1:9001;" in result.stdout
    assert result.stderr == ""


def test_the_command_writes_a_file_and_warns(cli_env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "authgate.conf"
    env = {**cli_env, "AUTHGATE_TRUSTED_PROXIES": "0"}
    result = CliRunner().invoke(
        main,
        ["nginx", "-o", str(target), "--upstream", "127.0.0.1:7000", "--listen-address", "[::1]"],
        env=env,
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    text = target.read_text()
    assert "proxy_pass http://127.0.0.1:7000;" in text
    assert "listen [::1]:443 ssl http2;" in text and "listen *:443" not in text
    assert "Warning: AUTHGATE_TRUSTED_PROXIES is 0" in result.stderr
    assert f"Wrote {target}" in result.stderr
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_the_command_reports_bad_settings_and_options(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    bad_settings = runner.invoke(main, ["nginx"], env={**cli_env, "AUTHGATE_ORIGINS": "*"})
    assert bad_settings.exit_code == 2
    assert "AUTHGATE_ORIGINS" in bad_settings.stderr
    assert "Traceback" not in bad_settings.output

    bad_path = runner.invoke(main, ["nginx", "--webroot", "/srv/a;b"], env=cli_env)
    assert bad_path.exit_code == 2
    assert "webroot path" in bad_path.stderr

    one_of_two = runner.invoke(main, ["nginx", "--cert", "/srv/cert.pem"], env=cli_env)
    assert one_of_two.exit_code == 2
    assert "both" in one_of_two.stderr


# nginx -t: every configuration the generator can produce ---------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> DevCertificate:
    directory = tmp_path_factory.mktemp("tls")
    return issue_dev_certificate(directory, ["auth.example.com"], now=datetime.now(UTC))


# Every option of the generator (settings it reads, and NginxOptions) with the values worth
# telling apart; None means "the default". Not acme_bootstrap: that configuration ignores most
# options, so its rows would count pairs as covered that no full configuration was checked with
# (it has a test of its own below).
DIMENSIONS: dict[str, list[object]] = {
    "public_url": [
        PUBLIC,
        "https://localhost:18443",
        "https://127.0.0.1:8443",
        "https://[::1]:8443",
    ],
    "origins": [None, ""],
    "max_body_bytes": [None, "1500", "2097152"],
    "avatar_max_bytes": [None, "1000000"],
    "host": [None, "::", "0.0.0.0"],
    "ports": [(80, 443), (18080, 18443)],
    "listen_addresses": [None, ("127.0.0.1", "[::1]"), ("127.0.0.1",)],
    "certificate": ["certbot", "given"],
    "webroot": [None, "/srv/acme-challenges"],
    "upstreams": [
        None,
        ("127.0.0.1:9000",),
        ("[::1]:9000",),
        ("unix:/run/authgate/gunicorn.sock",),
        ("10.0.0.2:8086", "10.0.0.3:8086", "[fd00::4]:8086", "unix:/run/authgate/b.sock"),
    ],
    "cors_at_proxy": [False, True],
    "login_rate": ["30r/m", "5r/s", "1r/m"],
    "login_burst": [10, 0, 100],
    "hsts_max_age": [63072000, 0],
}
SETTINGS_DIMENSIONS = ("public_url", "origins", "max_body_bytes", "avatar_max_bytes", "host")


def pairwise(dimensions: dict[str, list[object]]) -> list[dict[str, object]]:
    """Rows in which every pair of values of any two dimensions occurs at least once (greedy:
    each row starts from a pair not covered yet, so every row covers something new)."""
    names = list(dimensions)
    uncovered = {
        ((a, va), (b, vb))
        for a, b in itertools.combinations(names, 2)
        for va, vb in itertools.product(range(len(dimensions[a])), range(len(dimensions[b])))
    }
    rows: list[dict[str, int]] = []
    while uncovered:
        (a, va), (b, vb) = min(uncovered, key=lambda pair: (names.index(pair[0][0]), pair))
        row = {a: va, b: vb}
        for name in names:
            if name in row:
                continue
            row[name] = max(
                range(len(dimensions[name])),
                key=lambda v: sum(
                    tuple(sorted(((name, v), (other, ov)), key=lambda p: names.index(p[0])))
                    in uncovered
                    for other, ov in row.items()
                ),
            )
        for x, y in itertools.combinations(names, 2):
            uncovered.discard(((x, row[x]), (y, row[y])))
        rows.append(row)
    return [{name: dimensions[name][index] for name, index in row.items()} for row in rows]


MATRIX = pairwise(DIMENSIONS)


def test_the_matrix_covers_every_pair_of_option_values() -> None:
    for a, b in itertools.combinations(DIMENSIONS, 2):
        pairs = {(repr(row[a]), repr(row[b])) for row in MATRIX}
        for va, vb in itertools.product(DIMENSIONS[a], DIMENSIONS[b]):
            assert (repr(va), repr(vb)) in pairs, (a, va, b, vb)
    assert len(MATRIX) < 40  # pairwise, not the full product


@pytest.mark.parametrize("row", MATRIX, ids=[f"row{i}" for i in range(len(MATRIX))])
def test_nginx_accepts_the_configuration(
    row: dict[str, object], certificate: DevCertificate, tmp_path: Path
) -> None:
    settings_values = {
        name: str(row[name]) for name in SETTINGS_DIMENSIONS if row[name] is not None
    }
    if row["origins"] == "":
        settings_values["origins"] = ""
    http_port, https_port = row["ports"]  # type: ignore[misc]
    option_values: dict[str, object] = {
        "http_port": http_port,
        "https_port": https_port,
        "cors_at_proxy": row["cors_at_proxy"],
        "login_rate": row["login_rate"],
        "login_burst": row["login_burst"],
        "hsts_max_age": row["hsts_max_age"],
    }
    for name in ("listen_addresses", "webroot", "upstreams"):
        if row[name] is not None:
            option_values[name] = row[name]
    certbot = row["certificate"] == "certbot"
    if not certbot:
        option_values["cert_path"] = str(certificate.cert_path)
        option_values["key_path"] = str(certificate.key_path)
    settings = make_settings(**settings_values)
    text = render_nginx_config(settings, NginxOptions(**option_values))  # type: ignore[arg-type]
    assert "proxy_pass" in text and "ssl_certificate" in text  # the full configuration
    if certbot:
        # nginx -t reads the certificate: put ours where certbot's would be.
        live = re.escape(CERTBOT_LIVE_DIR) + r"/[^/;]+/"
        assert re.search(f"ssl_certificate {live}fullchain.pem;", text)
        text = re.sub(live + "fullchain.pem", str(certificate.cert_path), text)
        text = re.sub(live + "privkey.pem", str(certificate.key_path), text)

    assert_nginx_accepts(text, tmp_path)


def assert_nginx_accepts(text: str, tmp_path: Path) -> None:
    """``nginx -t`` accepts ``text`` without a warning."""
    checked = Nginx(tmp_path / "nginx", text).check()

    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, f"{output}\n{text}"
    assert "test is successful" in output
    problems = [
        line
        for line in output.splitlines()
        if re.search(r"\[(warn|error|crit|alert|emerg)\]", line)
        and 'the "listen ... http2" directive is deprecated' not in line  # nginx >= 1.25.1
    ]
    assert problems == [], f"{output}\n{text}"


# The first start: no certificate yet -----------------------------------------------------------


def test_the_acme_bootstrap_serves_only_the_challenges_over_plain_http() -> None:
    text = render_nginx_config(
        make_settings(), NginxOptions(acme_bootstrap=True, webroot="/srv/acme", http_port=8080)
    )

    (server,) = [b for b in parse_blocks(text) if b.header == "server"]
    assert server.lines == (
        "listen *:8080;",
        "listen [::]:8080;",
        "server_name auth.example.com;",
        "server_tokens off;",
    )
    challenge = find_block(text, "location ^~ /.well-known/acme-challenge/")
    assert "root /srv/acme;" in challenge.lines
    (body,) = re.findall(r"return 503 '(.*)\\n';", text)
    assert json.loads(body)["error"]["code"] == "service_unavailable"
    assert "certbot certonly --webroot -w /srv/acme -d auth.example.com" in text
    configured = "\n".join(directives(text))
    for absent in ("ssl", "443", "letsencrypt", "proxy_pass", "limit_req"):
        assert absent not in configured
    assert nginx_config_warnings(make_settings(), NginxOptions(acme_bootstrap=True)) == []


@pytest.mark.parametrize(
    ("public_url", "options"),
    [
        (PUBLIC, {}),
        ("https://localhost:18443", {"http_port": 18080, "webroot": "/srv/acme-challenges"}),
        ("https://127.0.0.1:8443", {"listen_addresses": ("127.0.0.1", "[::1]")}),
        ("https://[::1]:8443", {"http_port": 18080, "listen_addresses": ("127.0.0.1",)}),
    ],
)
def test_nginx_accepts_the_acme_bootstrap(
    public_url: str, options: dict[str, Any], tmp_path: Path
) -> None:
    """Each option the bootstrap reads: the public host, the http port, where it listens, the
    webroot (no certificate: nginx -t would refuse a missing file)."""
    text = render_nginx_config(
        make_settings(public_url=public_url), NginxOptions(acme_bootstrap=True, **options)
    )
    assert "ssl_certificate" not in text

    assert_nginx_accepts(text, tmp_path)


def test_the_acme_bootstrap_takes_no_certificate() -> None:
    with pytest.raises(ValueError, match="takes no certificate"):
        NginxOptions(acme_bootstrap=True, cert_path="/a.pem", key_path="/a-key.pem")


def test_the_command_prints_the_acme_bootstrap(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main, ["nginx", "--acme-bootstrap"], env=cli_env, catch_exceptions=False
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == render_nginx_config(
        load_settings(environ=cli_env), NginxOptions(acme_bootstrap=True)
    )


def test_avatar_uploads_get_the_apps_larger_limit_and_nothing_else_does() -> None:
    text = render_nginx_config(make_settings(), NginxOptions())

    (avatar,) = [b for b in parse_blocks(text) if b.header == "location = /api/auth/me/avatar"]
    assert "client_max_body_size 5184k;" in avatar.lines  # 5 MiB + the 64 KiB multipart envelope
    # Its own 413 body, with its own limit; the upstream's error page repeated (an error_page
    # in a location replaces every inherited one). No limit_req here, so no 429 of nginx's.
    assert [line for line in avatar.lines if line.startswith("error_page")] == [
        "error_page 413 @authgate_avatar_413;",
        "error_page 502 503 504 =503 @authgate_unavailable;",
    ]
    assert not [line for line in avatar.lines if line.startswith("limit_req")]
    (body,) = re.findall(
        r"return 413 '(.*)\\n';", "\n".join(find_block(text, "location @authgate_avatar_413").lines)
    )
    error = json.loads(body)["error"]
    assert error["code"] == "payload_too_large"
    assert error["message"] == (
        "The image must be at most 5 MB. The upload is larger than the limit of 5308416 bytes."
    )
    assert error["message"].startswith(describe_avatar_limit(5 * 1024 * 1024))  # the app's
    assert "65536" not in error["message"] and "1048576" not in error["message"]
    https = servers(text)[1]
    assert "client_max_body_size 1m;" in https.lines
