"""``authgate``: run the server and administer its database, users, API tokens and signing keys.

Every command reads the same settings as the server (``AUTHGATE_*`` environment variables and the
TOML file named by ``AUTHGATE_CONFIG``). Unusable settings are reported on stderr with exit code 2,
never as a traceback; a refused operation (unknown user, weak password, ...) exits with code 1.
Passwords are read from a hidden prompt or from stdin, never from the command line.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from authgate.audit_commands import audit, record_key_rotation
from authgate.avatar_commands import avatars
from authgate.bootstrap import build_service, database_keys
from authgate.config import ENV_PREFIX, Environment, Settings, load_settings
from authgate.core.api_tokens import API_TOKEN_PREFIX, parse_api_token
from authgate.core.audit import CLI
from authgate.core.keys import generate_key, insecure_key_files, load_keyring
from authgate.core.roles import ROLE_PATTERN
from authgate.dev_server import run_development_server
from authgate.doctor.cli import doctor
from authgate.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    StoreUnavailableError,
    UserExistsError,
    ValidationFailedError,
)
from authgate.http.schemas import (
    ApiTokenCreateInput,
    RegisterInput,
    format_time,
    parse_input,
)
from authgate.import_commands import tokens_import, users_import
from authgate.mail_commands import mail
from authgate.production_server import (
    MAX_DEFAULT_WORKERS,
    GunicornApplication,
    default_workers,
    gunicorn_options,
    run_production_server,
)
from authgate.proxy.commands import nginx_command
from authgate.proxy.tls import dev_certificate_names, issue_dev_certificate, nss_trust_commands
from authgate.service import DEFAULT_ROLES, AuthService
from authgate.store.records import ApiTokenRecord, UserRecord, UserStatus
from authgate.store.sqlalchemy.engines import create_database_engine
from authgate.store.sqlalchemy.migrate import current_revision, head_revision, upgrade_database

__all__ = [
    "GunicornApplication",
    "default_workers",
    "gunicorn_options",
    "main",
    "run_production_server",
]

log = logging.getLogger("authgate")

_USER_PAGE = 100


# Errors ------------------------------------------------------------------------------------------


class SettingsProblem(click.ClickException):
    """Unusable settings (``ConfigError``): reported without a traceback, exit code 2."""

    exit_code = 2


class Refused(click.ClickException):
    """The operation was refused (unknown user, weak password, ...): exit code 1."""

    exit_code = 1


def _describe_auth_error(error: AuthError) -> str:
    lines = [error.message]
    if isinstance(error, ValidationFailedError):
        lines += [f"  {field}: {message}" for field, message in error.fields.items()]
    return "\n".join(lines)


class _Group(click.Group):
    """The root group: turns the errors every command may meet into clear messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as e:
            raise SettingsProblem(str(e)) from None
        except AuthError as e:
            raise Refused(_describe_auth_error(e)) from None
        except (ArgumentError, NoSuchModuleError):
            raise SettingsProblem(
                f"{ENV_PREFIX}DATABASE_URL is not a usable database URL; use e.g. "
                "postgresql+psycopg://user@host/dbname or sqlite:////path/to/authgate.db."
            ) from None
        except OperationalError as e:
            raise Refused(f"Could not use the database: {_first_line(e.orig)}") from None
        except StoreUnavailableError as e:  # the same, met through the store
            cause = e.__cause__
            raise Refused(
                f"Could not use the database: {_first_line(getattr(cause, 'orig', None) or cause)}"
            ) from None


def _first_line(error: BaseException | None) -> str:
    text = str(error or "").strip()
    return text.splitlines()[0] if text else "unknown error"


# Shared helpers ----------------------------------------------------------------------------------


def _load(overrides: Mapping[str, Any] | None = None) -> Settings:
    """The settings, with command-line options (``AUTHGATE_*`` keys) winning over everything."""
    return load_settings({k: v for k, v in (overrides or {}).items() if v is not None})


@contextmanager
def _service(settings: Settings) -> Iterator[AuthService]:
    service = build_service(settings)
    service.audit.context = lambda: CLI  # what a command changes is recorded as the CLI's
    try:
        yield service
    finally:
        service.close()


def _find_user(service: AuthService, email: str) -> UserRecord:
    user = service.store.find_user_by_login(email.strip())
    if user is None:
        raise Refused(f"No user with the email or username {email!r}.")
    return user


def _safe_database_url(settings: Settings) -> str:
    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    engine = create_database_engine(settings.resolved_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _format_user(user: UserRecord) -> str:
    return "\t".join(
        [
            user.id,
            user.email,
            user.username or "-",
            ",".join(user.roles) or "-",
            user.status.value,
            format_time(user.created_at) or "-",
        ]
    )


# The command line --------------------------------------------------------------------------------


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="authgate")
def main() -> None:
    """authgate: authentication server and administration."""


# serve -------------------------------------------------------------------------------------------


def _become_production_server(overrides: Mapping[str, Any]) -> None:
    """Replace this process with ``python -m authgate.serving`` (same pid: systemd's and docker's
    signals reach the gunicorn master), the command-line options passed in its environment.

    gevent's monkey-patching has to happen before ``ssl``, ``socket`` and ``threading`` are in
    use by urllib3, redis and SQLAlchemy (urllib3 keeps ``ssl.SSLContext`` from its import), and
    this module has imported them all: the new process patches before it imports authgate."""
    environ = dict(os.environ)
    environ.update({key: str(value) for key, value in overrides.items() if value is not None})
    sys.stdout.flush()
    sys.stderr.flush()
    command = [sys.executable, "-m", "authgate.serving"]
    os.execve(command[0], command, environ)  # noqa: S606 - our own interpreter, no shell


@main.command()
@click.option(
    "--production",
    is_flag=True,
    help="Run gunicorn (gevent workers) with production checks (same as AUTHGATE_ENV=production).",
)
@click.option("--host", help="Interface to listen on [default: AUTHGATE_HOST or 127.0.0.1].")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port to listen on; without AUTHGATE_PUBLIC_URL, the public URL is "
    "http://localhost:PORT [default: AUTHGATE_PORT or 8086].",
)
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_DEFAULT_WORKERS),
    help="gunicorn worker processes (production) [default: AUTHGATE_WORKERS or 2*CPUs+1].",
)
def serve(production: bool, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the authgate server."""
    overrides = {
        ENV_PREFIX + "ENV": Environment.PRODUCTION.value if production else None,
        ENV_PREFIX + "HOST": host,
        ENV_PREFIX + "PORT": port,
        ENV_PREFIX + "WORKERS": workers,
    }
    settings = _load(overrides)
    # Fail here, once, with a clear message -- not in every worker. This also migrates the
    # embedded SQLite database and generates development keys when needed.
    with _service(settings):
        pass
    if settings.is_production:
        _become_production_server(overrides)
        return
    _run_development_server(settings)


def _run_development_server(settings: Settings) -> None:
    # werkzeug's threaded server; its last startup line names the one URL to open.
    run_development_server(settings)


# db ----------------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    settings = _load()
    with _engine(settings) as engine:
        before = current_revision(engine)
        upgrade_database(engine)
        after = current_revision(engine)
    where = _safe_database_url(settings)
    if before == after:
        click.echo(f"{where} is already at revision {after} (head).")
    else:
        click.echo(f"Upgraded {where} from {before or 'an empty database'} to {after} (head).")


@db.command("current")
def db_current() -> None:
    """Show the database's schema revision."""
    settings = _load()
    with _engine(settings) as engine:
        current = current_revision(engine)
    head = head_revision()
    if current is None:
        click.echo(f"(none) -- the database is empty; run `authgate db upgrade` (head is {head}).")
    elif current == head:
        click.echo(f"{current} (head)")
    else:
        click.echo(f"{current} -- behind head {head}; run `authgate db upgrade`.")


# users -------------------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Create and administer user accounts."""


def _stdin_is_a_terminal() -> bool:
    stdin = sys.stdin
    return stdin is not None and stdin.isatty()


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        from_stdin = line.removesuffix("\n").removesuffix("\r")
        if not from_stdin:
            raise Refused("No password on stdin: --password-stdin reads its first line.")
        return from_stdin
    if not _stdin_is_a_terminal():
        # getpass would fall back to reading stdin with a GetPassWarning, then abort at its end.
        raise Refused(
            "Cannot prompt for the password: stdin is not a terminal. To pipe the password, add "
            "--password-stdin (it reads the first line of stdin), e.g.\n"
            "  printf '%s\\n' \"$PASSWORD\" | authgate users create EMAIL --password-stdin"
        )
    prompted: str = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return prompted


def _checked_roles(roles: Sequence[str]) -> list[str]:
    """``roles`` without duplicates, each a valid role name."""
    for role in roles:
        if not re.fullmatch(ROLE_PATTERN, role):
            raise Refused(
                f"Invalid role {role!r}: use 1 to 32 lower-case letters, digits, '_', ':' or '-', "
                "starting with a letter."
            )
    return list(dict.fromkeys(roles))


@users.command("create")
@click.argument("email")
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="ROLE",
    help='A role besides "user" (repeatable), e.g. --role admin.',
)
@click.option("--username", help="An optional username to log in with.")
@click.option("--name", help="The display name.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin instead of prompting.",
)
def users_create(
    email: str,
    roles: tuple[str, ...],
    username: str | None,
    name: str | None,
    password_stdin: bool,
) -> None:
    """Create a user and print its id. The password is prompted for (or read from stdin)."""
    all_roles = _checked_roles([*DEFAULT_ROLES, *roles])
    fields = {"email": email, "password": "", "name": name, "username": username}
    data = parse_input(RegisterInput, fields)  # refuse bad input before asking for a password
    settings = _load()
    with _service(settings) as service:
        existing = service.store.find_user_by_login(data.email)
        if existing is not None:
            new_roles = " ".join(all_roles) if roles else "user ROLE"
            raise UserExistsError(
                f"A user with the email {existing.email} already exists. To change their roles, "
                f"use `authgate users set-roles {existing.email} {new_roles}`."
            )
        user = service.accounts.register(
            email=data.email,
            password=_read_password(password_stdin),
            name=data.name,
            username=data.username,
            roles=all_roles,
        )
    click.echo(user.id)


def _update_access(
    email: str, *, roles: Sequence[str] | None = None, status: UserStatus | None = None
) -> UserRecord:
    """Change a user's roles/status; logged and published, so running servers apply it."""
    settings = _load()
    with _service(settings) as service:
        user = _find_user(service, email)
        try:
            return service.accounts.set_user_access(user.id, roles=roles, status=status)
        except NotFoundError:
            raise Refused(f"The user {email!r} was deleted meanwhile.") from None


@users.command("set-roles")
@click.argument("email")
@click.argument("roles", nargs=-1, required=True, metavar="ROLE [ROLE ...]")
def users_set_roles(email: str, roles: tuple[str, ...]) -> None:
    """Replace a user's roles, for example: user admin."""
    user = _update_access(email, roles=_checked_roles(roles))
    click.echo(f"{user.email}: roles {', '.join(user.roles)}")


@users.command("disable")
@click.argument("email")
def users_disable(email: str) -> None:
    """Disable a user: refuse their logins and revoke their sessions everywhere."""
    user = _update_access(email, status=UserStatus.DISABLED)
    click.echo(f"{user.email}: disabled; all of their sessions and API tokens are revoked.")


@users.command("enable")
@click.argument("email")
def users_enable(email: str) -> None:
    """Enable a disabled user again."""
    user = _update_access(email, status=UserStatus.ACTIVE)
    click.echo(f"{user.email}: active")


@users.command("mfa-reset")
@click.argument("email")
def users_mfa_reset(email: str) -> None:
    """Remove a user's second factors (authenticator app, recovery codes, passkeys) and revoke
    their sessions; they are told by mail. For a user who lost every factor."""
    settings = _load()
    with _service(settings) as service:
        user = _find_user(service, email)
        service.second_factors.remove_all(user.id)
    click.echo(f"{user.email}: second factors removed; all of their sessions are revoked.")


@users.command("list")
@click.option("--q", "query", help="Only users whose email, username or name contains this.")
def users_list(query: str | None) -> None:
    """List users: id, email, username, roles, status, created (tab-separated)."""
    settings = _load()
    with _service(settings) as service:
        offset = 0
        while True:
            page, total = service.store.list_users(query=query, offset=offset, limit=_USER_PAGE)
            for user in page:
                click.echo(_format_user(user))
            offset += len(page)
            if not page or offset >= total:
                break
    click.echo(f"{total} user(s)", err=True)


# tokens ------------------------------------------------------------------------------------------


@main.group()
def tokens() -> None:
    """Issue, list and revoke API tokens."""


def _format_token(token: ApiTokenRecord) -> str:
    return "\t".join(
        [
            token.id,
            token.name,
            token.tenant_id,
            ",".join(token.scopes),
            token.resource or "-",
            format_time(token.expires_at) or "-",
            format_time(token.last_used_at) or "-",
        ]
    )


@tokens.command("create")
@click.option("--user", "email", required=True, help="The owner's email or username.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    metavar="SCOPE",
    help="A scope the token carries (repeatable), e.g. --scope read --scope write.",
)
@click.option("--name", default="cli", show_default=True, help="A label for the token.")
@click.option(
    "--tenant",
    "tenant_id",
    help="The tenant the token acts in (the user must be a member) [default: personal tenant].",
)
@click.option("--resource", help="Bind the token to this one resource.")
@click.option(
    "--expires-in-days",
    type=int,
    help="Lifetime in days [default: AUTHGATE_API_TOKEN_DEFAULT_TTL_DAYS].",
)
def tokens_create(
    email: str,
    scopes: tuple[str, ...],
    name: str,
    tenant_id: str | None,
    resource: str | None,
    expires_in_days: int | None,
) -> None:
    """Issue an API token; print it alone on stdout.

    The token is shown this once. For example:
    TOKEN=$(authgate tokens create --user ada@example.com --scope read)
    """
    fields = {
        "name": name,
        "scopes": list(scopes),
        "tenant_id": tenant_id,
        "resource": resource,
        "expires_in_days": expires_in_days,
    }
    data = parse_input(ApiTokenCreateInput, fields)
    settings = _load()
    with _service(settings) as service:
        user = _find_user(service, email)
        try:
            plaintext, record = service.api_tokens.issue_api_token(
                user,
                name=data.name,
                scopes=data.scopes,
                tenant_id=data.tenant_id,
                resource=data.resource,
                expires_in_days=data.expires_in_days,
            )
        except NotFoundError:
            if data.tenant_id is None:
                raise Refused(f"The user {user.email!r} has no personal tenant.") from None
            raise Refused(
                f"The user {user.email!r} is not a member of the tenant {data.tenant_id!r}."
            ) from None
    click.echo(plaintext)
    resource_note = f", resource {record.resource}" if record.resource else ""
    click.echo(
        f"Created API token {record.id} for {user.email} in tenant {record.tenant_id}: "
        f"scopes {','.join(record.scopes)}{resource_note}, expires "
        f"{format_time(record.expires_at)}. It is shown once: store it now.",
        err=True,
    )
    if not user.is_active:
        click.echo(
            f"Warning: {user.email} is disabled; the token works only once they are enabled.",
            err=True,
        )


@tokens.command("list")
@click.option("--user", "email", required=True, help="The owner's email or username.")
def tokens_list(email: str) -> None:
    """List a user's API tokens, never their secrets.

    Unrevoked tokens, newest first. Columns (tab-separated): id, name, tenant, scopes,
    resource, expires, last used.
    """
    settings = _load()
    with _service(settings) as service:
        user = _find_user(service, email)
        records = service.store.list_api_tokens(user.id)
    for record in records:
        click.echo(_format_token(record))
    click.echo(f"{len(records)} token(s) for {user.email}", err=True)


def _token_id(value: str) -> str:
    """The id from an id, an ``ag_<id>`` prefix (as lists show) or a whole token."""
    value = value.strip()
    if value.startswith(API_TOKEN_PREFIX):
        if "_" not in value[len(API_TOKEN_PREFIX) :]:
            return value[len(API_TOKEN_PREFIX) :]
        return parse_api_token(value).token_id
    return value


@tokens.command("revoke")
@click.argument("token_id", metavar="TOKEN_ID")
def tokens_revoke(token_id: str) -> None:
    """Revoke an API token by its id or ag_<id> prefix.

    Any user's token; running servers refuse it at once.
    """
    token_id = _token_id(token_id)
    settings = _load()
    with _service(settings) as service:
        try:
            service.api_tokens.revoke_any_api_token(token_id)
        except NotFoundError:
            raise Refused(f"No unrevoked API token with the id {token_id!r}.") from None
    click.echo(f"Revoked API token {token_id}.")


# keys --------------------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Signing keys for access tokens."""


_KEYS_DIR_OPTION = click.option(
    "--keys-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The key directory [default: AUTHGATE_KEYS_DIR or <instance path>/keys].",
)


def _keys_settings(keys_dir: Path | None) -> Settings:
    # --keys-dir also satisfies production's "AUTHGATE_KEYS_DIR is not set" check: this is how
    # the first production key gets created.
    return _load({ENV_PREFIX + "KEYS_DIR": str(keys_dir) if keys_dir else None})


@keys.command("rotate")
@_KEYS_DIR_OPTION
@click.option(
    "--immediate",
    is_flag=True,
    help="Database keys: sign with the new key at once instead of after the publish delay "
    "(a compromised key; clients caching the JWKS meet an unknown kid and refetch it); "
    "deletes the keys still pending.",
)
def keys_rotate(keys_dir: Path | None, immediate: bool) -> None:
    """Generate a new signing key.

    Key directory: it signs every token issued from now on. Database keys
    (AUTHGATE_SIGNING_KEYS=database): it is published in the JWKS at once and signs after
    AUTHGATE_KEY_PUBLISH_DELAY_SECONDS (--immediate: at once); every instance learns of it within
    a second."""
    settings = _keys_settings(keys_dir)
    if settings.signing_keys == "database":
        _rotate_database_key(settings, immediate=immediate)
        return
    directory = settings.resolved_keys_dir
    key = generate_key(directory, dev=False, now=datetime.now(UTC))
    click.echo(key.kid)
    not_recorded = record_key_rotation(key.kid)
    if not_recorded is not None:
        click.echo(f"(Not recorded in the audit trail: {not_recorded}.)", err=True)
    click.echo(
        f"Created signing key {key.kid} in {directory}; it is now the active key.\n"
        "Tokens signed by older keys keep verifying until they expire; remove an old key file "
        "only after that.\n"
        "No restart needed: each running server process re-reads the key directory at its next "
        "login, refresh or JWKS request and signs with the new key from then on; before that, "
        "it accepts tokens the new key signed.",
        err=True,
    )


def _rotate_database_key(settings: Settings, *, immediate: bool) -> None:
    with database_keys(settings) as source:
        record = source.rotate(immediate=immediate, context=CLI)
    if record is None:  # only a scheduled rotation can lose to another process
        raise Refused("Another process added a key at the same moment; run it again.")
    click.echo(record.kid)
    signs = (
        "it signs from now on"
        if record.activates_at <= record.created_at
        else f"it is published in the JWKS now and signs from {format_time(record.activates_at)}"
    )
    click.echo(
        f"Created signing key {record.kid} in the database; {signs}.\n"
        "Every running instance learns of it within a second. Older keys keep verifying the "
        "tokens they signed, and leave the JWKS once those have expired.",
        err=True,
    )


@keys.command("import-dir")
@_KEYS_DIR_OPTION
def keys_import_dir(keys_dir: Path | None) -> None:
    """Copy the key directory's keys into the database (AUTHGATE_SIGNING_KEYS=database).

    Sealed with the key-encryption key; keys already there are skipped, so it may run again.
    The directory's newest key keeps signing."""
    settings = _keys_settings(keys_dir)
    directory = settings.resolved_keys_dir
    if load_keyring(directory) is None:
        raise Refused(f"No signing keys in {directory}.")
    with database_keys(settings) as source:
        imported = source.import_directory(directory, context=CLI)
    for kid in imported:
        click.echo(kid)
    click.echo(
        f"Imported {len(imported)} key(s) from {directory} into the database"
        + ("" if imported else " (all were there already)")
        + ". Set AUTHGATE_SIGNING_KEYS=database on every instance; the directory is then no "
        "longer read.",
        err=True,
    )


@keys.command("list")
@_KEYS_DIR_OPTION
def keys_list(keys_dir: Path | None) -> None:
    """List the signing keys, newest (active) first."""
    settings = _keys_settings(keys_dir)
    if settings.signing_keys == "database":
        _list_database_keys(settings)
        return
    directory = settings.resolved_keys_dir
    ring = load_keyring(directory)
    if ring is None:
        click.echo(
            f"No signing keys in {directory}; create one with "
            f"`authgate keys rotate --keys-dir {directory}`.",
            err=True,
        )
        return
    for key in ring.keys:
        marker, note = ("*", "active") if key is ring.active else (" ", "verifies only")
        kind = "dev" if key.dev else "production"
        click.echo(f"{marker} {key.kid}\t{format_time(key.created_at)}\t{kind}\t{note}")
    for path in insecure_key_files(directory):
        click.echo(
            f"Warning: {path} is readable or writable by other users; run `chmod 600 {path}`.",
            err=True,
        )


def _list_database_keys(settings: Settings) -> None:
    with database_keys(settings) as source:
        schedule = source.schedule()
        if schedule is None:
            click.echo(
                "No signing keys in the database; import the key directory with "
                "`authgate keys import-dir`, or create one with `authgate keys rotate`.",
                err=True,
            )
            return
        for record in reversed(source.records()):
            state = source.state(record, schedule)
            marker = "*" if state == "active" else " "
            kind = "dev" if record.dev else "production"
            signs = format_time(record.activates_at)
            click.echo(f"{marker} {record.kid}\t{signs}\t{kind}\t{state}")


@keys.command("encryption-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keys_encryption_key(path: Path) -> None:
    """Write a new key-encryption key to PATH (a new file, mode 0600).

    It seals the secrets stored in the database (TOTP seeds): point AUTHGATE_KEY_ENCRYPTION_KEY_FILE
    at it, and keep it with the database's backups -- without it those secrets cannot be read."""
    from authgate.core.secret_boxes import generate_key_file

    try:
        generate_key_file(path)
    except FileExistsError:
        raise Refused(f"{path} exists: a key-encryption key is never overwritten.") from None
    click.echo(f"Wrote a new key-encryption key to {path} (mode 0600).", err=True)


# tls -------------------------------------------------------------------------------------------


@main.group()
def tls() -> None:
    """Certificates for HTTPS during development."""


@tls.command("dev")
@click.argument("names", nargs=-1)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the CA and certificates live [default: <instance>/tls].",
)
def tls_dev(names: tuple[str, ...], directory: Path | None) -> None:
    """Make a local CA (once) and a certificate for localhost 127.0.0.1 ::1 and NAMES."""
    directory = directory or _load().instance_path / "tls"
    cert = issue_dev_certificate(directory, dev_certificate_names(names), now=datetime.now(UTC))
    click.echo(f"certificate  {cert.cert_path}   (for {', '.join(cert.names)})")
    click.echo(f"private key  {cert.key_path}   (mode 0600)")
    click.echo(f"CA           {cert.ca_path}")
    click.echo(
        "\nTrust the CA (once) where you test:\n"
        f"  Debian/Ubuntu: sudo cp {cert.ca_path} /usr/local/share/ca-certificates/"
        "authgate-dev-ca.crt && sudo update-ca-certificates\n"
        f"  macOS:         sudo security add-trusted-cert -d -r trustRoot "
        f"-k /Library/Keychains/System.keychain {cert.ca_path}\n"
        "  Chrome/Chromium on Linux (certutil is in the libnss3-tools package):\n"
        + "".join(f"    {command}\n" for command in nss_trust_commands(cert.ca_path))
        + "  Firefox: Settings > Privacy & Security > Certificates > View Certificates > "
        f"Authorities > Import {cert.ca_path}\n"
        f"  Python (requests/httpx): SSL_CERT_FILE={cert.ca_path} or REQUESTS_CA_BUNDLE=..."
        "\nNever use these certificates in production; use certbot there."
    )


users.add_command(users_import)
tokens.add_command(tokens_import)
main.add_command(nginx_command)
main.add_command(doctor)
main.add_command(mail)
main.add_command(audit)
main.add_command(avatars)

if __name__ == "__main__":
    main()
