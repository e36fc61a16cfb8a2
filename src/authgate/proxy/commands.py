"""Deployment commands: ``authgate nginx`` prints the nginx site configuration for the settings."""

from __future__ import annotations

import os
from pathlib import Path

import click

from authgate.config import load_settings
from authgate.proxy.nginx import (
    DEFAULT_HSTS_MAX_AGE,
    DEFAULT_LISTEN_ADDRESSES,
    DEFAULT_LOGIN_BURST,
    DEFAULT_LOGIN_RATE,
    DEFAULT_WEBROOT,
    NginxOptions,
    nginx_config_warnings,
    render_nginx_config,
)

__all__ = ["nginx_command"]


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)  # a configuration file nginx must read; it holds no secret
    os.replace(tmp, path)


@click.command("nginx")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the configuration to this file instead of printing it.",
)
@click.option(
    "--http-port",
    type=click.IntRange(1, 65535),
    default=80,
    show_default=True,
    help="Plain-http port: redirects to https and serves certbot's challenges.",
)
@click.option(
    "--https-port", type=click.IntRange(1, 65535), default=443, show_default=True, help="TLS port."
)
@click.option(
    "--listen-address",
    "listen_addresses",
    multiple=True,
    metavar="ADDRESS",
    help="Listen on this address only (repeatable): '*', '[::]', 127.0.0.1, [::1], ... "
    "[default: every IPv4 and IPv6 address].",
)
@click.option(
    "--cert",
    "cert_path",
    metavar="PATH",
    help="Certificate chain (PEM) [default: /etc/letsencrypt/live/<host>/fullchain.pem].",
)
@click.option(
    "--key",
    "key_path",
    metavar="PATH",
    help="Its private key [default: /etc/letsencrypt/live/<host>/privkey.pem].",
)
@click.option(
    "--webroot",
    default=DEFAULT_WEBROOT,
    show_default=True,
    metavar="PATH",
    help="Where certbot --webroot writes its challenge files.",
)
@click.option(
    "--upstream",
    "upstreams",
    multiple=True,
    metavar="HOST:PORT",
    help="Where gunicorn listens (also [v6]:port or unix:/path); repeat it for several "
    "instances, which nginx balances and fails over between [default: "
    "AUTHGATE_HOST:AUTHGATE_PORT].",
)
@click.option(
    "--cors-at-proxy",
    is_flag=True,
    help="Answer CORS in nginx (from AUTHGATE_ORIGINS) instead of in the app; the app's CORS "
    "headers are then dropped so none is sent twice.",
)
@click.option(
    "--login-rate",
    default=DEFAULT_LOGIN_RATE,
    show_default=True,
    help="Requests per client address to login, register, refresh and /api/tokens "
    "(nginx syntax: 30r/m, 5r/s).",
)
@click.option(
    "--login-burst",
    type=click.IntRange(0, 100000),
    default=DEFAULT_LOGIN_BURST,
    show_default=True,
    help="Requests allowed at once above the rate before nginx answers 429.",
)
@click.option(
    "--hsts-max-age",
    type=click.IntRange(0, 10 * 365 * 86400),
    default=DEFAULT_HSTS_MAX_AGE,
    show_default=True,
    help="Strict-Transport-Security max-age in seconds (0 tells browsers to forget it).",
)
@click.option(
    "--acme-bootstrap",
    is_flag=True,
    help="First start: print a plain-http-only configuration that serves certbot's challenges "
    "from --webroot, so `certbot certonly --webroot` can get the first certificate (the full "
    "configuration needs it). Then regenerate without this flag.",
)
def nginx_command(
    output: Path | None,
    http_port: int,
    https_port: int,
    listen_addresses: tuple[str, ...],
    cert_path: str | None,
    key_path: str | None,
    webroot: str,
    upstreams: tuple[str, ...],
    cors_at_proxy: bool,
    login_rate: str,
    login_burst: int,
    hsts_max_age: int,
    acme_bootstrap: bool,
) -> None:
    """Print the nginx configuration for authgate: TLS, http->https, proxy to gunicorn.

    Everything comes from the same settings as the server (AUTHGATE_PUBLIC_URL, AUTHGATE_ORIGINS,
    AUTHGATE_MAX_BODY_BYTES, AUTHGATE_HOST/PORT), for example:

    authgate nginx -o /etc/nginx/sites-available/authgate

    Before the first certificate exists: authgate nginx --acme-bootstrap (see docs/deploy.md).
    """
    settings = load_settings()  # a ConfigError is reported by the root command (exit code 2)
    try:
        options = NginxOptions(
            http_port=http_port,
            https_port=https_port,
            listen_addresses=listen_addresses or DEFAULT_LISTEN_ADDRESSES,
            cert_path=cert_path,
            key_path=key_path,
            webroot=webroot,
            upstreams=upstreams,
            cors_at_proxy=cors_at_proxy,
            login_rate=login_rate,
            login_burst=login_burst,
            hsts_max_age=hsts_max_age,
            acme_bootstrap=acme_bootstrap,
        )
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    text = render_nginx_config(settings, options)
    for warning in nginx_config_warnings(settings, options):
        click.echo(f"Warning: {warning}", err=True)
    if output is None:
        click.echo(text, nl=False)
        return
    _write_atomically(output, text)
    click.echo(
        f"Wrote {output}. Check and load it with: nginx -t && systemctl reload nginx",
        err=True,
    )
