"""Importing users (and their API tokens) through the service: rows refused with where and why,
batches, re-runs, dry runs, and a login with each imported hash format, rehashed to argon2id."""

from __future__ import annotations

import base64
import hashlib
import hmac
import warnings
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from werkzeug.security import generate_password_hash

from authgate.bootstrap import build_service
from authgate.core.api_tokens import looks_like_legacy_api_token
from authgate.core.user_imports import SourceRow
from authgate.errors import (
    InvalidCredentialsError,
    InvalidTokenError,
    TokenExpiredError,
    ValidationFailedError,
)
from authgate.service import AuthService, ClientInfo
from authgate.service.user_imports import ImportReport
from tests.helpers import PASSWORD, StepClock, count_sql, make_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # passlib imports "crypt"
    from passlib.hash import pbkdf2_sha512

CLIENT = ClientInfo(user_agent="test", ip="127.0.0.1")
RAGFLOW_TOKEN = "ragflow-" + "Zx9" * 14  # the shape RAGFlow gives its API tokens
UUID_TOKEN = "0f6c5d3a9b2e4c1d8e7f6a5b4c3d2e1f"  # older RAGFlow: get_uuid()


def rows(*fields: dict[str, object] | None) -> Iterator[SourceRow]:
    for number, row in enumerate(fields, start=1):
        yield SourceRow(f"line {number}", row, None if row is not None else "not valid JSON")


def run_import(service: AuthService, *fields: dict[str, object] | None, **options: object):  # type: ignore[no-untyped-def]
    refused: list[tuple[str, str]] = []
    report = service.user_imports.import_users(
        rows(*fields), on_refused=lambda where, why: refused.append((where, why)), **options
    )
    return report, refused


def test_rows_are_imported_and_bad_ones_refused_with_their_line(service: AuthService) -> None:
    report, refused = run_import(
        service,
        {"email": "ada@example.com", "username": "ada", "roles": "Admin", "name": "Ada"},
        {"email": "not-an-email"},
        None,
        {"email": "bob@example.com", "password_hash": "md5$salt$5f4dcc3b5aa765d61d8327deb882cf99"},
        {"email": "carol@example.com", "roles": ["User"], "email_verified": "yes"},
        {"name": "No email"},
    )
    assert (report.read, report.created, report.refused) == (6, 2, 4)
    assert [where for where, _why in refused] == ["line 2", "line 3", "line 4", "line 6"]
    reasons = dict(refused)
    assert reasons["line 2"].startswith("email: not a valid email address")
    assert reasons["line 3"] == "not valid JSON"
    assert reasons["line 4"] == (
        "password_hash: not a hash format authgate can verify (it begins 'md5')"
    )
    assert "5f4dcc" not in reasons["line 4"]  # never the digest
    assert reasons["line 6"] == "email: missing"
    ada = service.store.find_user_by_login("ada")
    assert ada is not None and ada.roles == ("user", "admin")
    carol = service.store.find_user_by_login("carol@example.com")
    assert carol is not None and carol.email_verified and carol.roles == ("user",)


def test_batches_progress_and_rerun_counts(service: AuthService) -> None:
    people = [{"email": f"user{i}@example.com", "name": f"User {i}"} for i in range(25)]
    seen: list[int] = []
    report, _ = run_import(service, *people, batch_size=10, on_batch=lambda r: seen.append(r.read))
    assert (report.created, report.skipped) == (25, 0)
    assert seen == [10, 20, 25]
    again, _ = run_import(service, *people, batch_size=10)
    assert (again.created, again.skipped, again.updated) == (0, 25, 0)
    renamed = [{**p, "name": "Renamed"} for p in people[:3]]
    updated, _ = run_import(service, *renamed, on_conflict="update")
    assert (updated.created, updated.updated) == (0, 3)
    user = service.store.find_user_by_login("user1@example.com")
    assert user is not None and user.name == "Renamed"


def test_dry_run_reports_the_counts_and_writes_nothing(service: AuthService) -> None:
    report, refused = run_import(
        service, {"email": "ada@example.com"}, {"email": "bad"}, dry_run=True
    )
    assert isinstance(report, ImportReport)
    assert (report.created, report.refused, report.dry_run) == (1, 1, True)
    assert len(refused) == 1
    assert service.store.count_users() == 0


def test_a_field_map_renames_the_sources_columns(service: AuthService) -> None:
    report, refused = run_import(
        service,
        {"_email": "ada@example.com", "_uid": "toby", "_role": "User", "password": None},
        field_map={
            "email": "_email",
            "username": "_uid",
            "roles": "_role",
            "password_hash": "password",
        },
    )
    assert (report.created, refused) == (1, [])
    assert service.store.find_user_by_login("toby") is not None


def _django_pbkdf2() -> str:
    from django.conf import settings

    if not settings.configured:
        settings.configure()
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    hasher = PBKDF2PasswordHasher()
    return hasher.encode(PASSWORD, hasher.salt(), iterations=1000)


HASH_MAKERS = {
    "werkzeug": lambda: generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
    "bcrypt": lambda: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode(),
    "passlib": lambda: pbkdf2_sha512.using(rounds=1000).hash(PASSWORD),
    "django": _django_pbkdf2,
}


@pytest.mark.parametrize("library", sorted(HASH_MAKERS))
def test_an_imported_user_logs_in_and_is_rehashed_to_argon2id(
    service: AuthService, library: str
) -> None:
    stored = HASH_MAKERS[library]()
    report, refused = run_import(service, {"email": "ada@example.com", "password_hash": stored})
    assert (report.created, refused) == (1, [])
    issued = service.sessions.login("ada@example.com", PASSWORD, CLIENT)
    assert issued.access_token
    user = service.store.find_user_by_login("ada@example.com")
    assert user is not None and user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    service.sessions.login("ada@example.com", PASSWORD, CLIENT)  # and again, with the new hash


def test_an_update_keeps_the_password_of_a_user_who_logged_in_to_authgate(
    service: AuthService,
) -> None:
    """Re-running with --on-conflict update after the cutover must neither put back the old
    app's password a user has since changed here, nor log out everyone whose hash was re-hashed
    at login; a user who never logged in here still gets the old app's newer hash."""
    old_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    newer_hash = generate_password_hash("the old app's newer pw", method="pbkdf2:sha256:1000")
    run_import(
        service,
        {"email": "ada@example.com", "password_hash": old_hash},
        {"email": "bob@example.com", "password_hash": old_hash},
    )
    issued = service.sessions.login("ada@example.com", PASSWORD, CLIENT)
    principal = service.authenticate(issued.access_token, "bearer")
    service.accounts.change_password(principal, PASSWORD, "a new password of ada's")
    ada_session = service.sessions.login("ada@example.com", "a new password of ada's", CLIENT)
    report, refused = run_import(
        service,
        {"email": "ada@example.com", "name": "Ada", "password_hash": old_hash},
        {"email": "bob@example.com", "password_hash": newer_hash},
        on_conflict="update",
    )
    assert (report.updated, refused) == (2, [])
    ada = service.store.find_user_by_login("ada@example.com")
    assert ada is not None and ada.name == "Ada"  # the other fields are updated
    service.authenticate(ada_session.access_token, "bearer")  # still logged in
    service.sessions.login("ada@example.com", "a new password of ada's", CLIENT)
    with pytest.raises(InvalidCredentialsError):
        service.sessions.login("ada@example.com", PASSWORD, CLIENT)
    service.sessions.login("bob@example.com", "the old app's newer pw", CLIENT)


# Legacy API tokens -------------------------------------------------------------------------------


def _import_tokens(service: AuthService, *fields: dict[str, object], **options: object):  # type: ignore[no-untyped-def]
    refused: list[tuple[str, str]] = []
    report = service.user_imports.import_api_tokens(
        rows(*fields), on_refused=lambda where, why: refused.append((where, why)), **options
    )
    return report, refused


@pytest.fixture
def legacy_service(tmp_path: Path, database_url: str, clock: StepClock) -> Iterator[AuthService]:
    """A deployment that imported API tokens: AUTHGATE_LEGACY_API_TOKENS is on."""
    service = build_service(
        make_settings(tmp_path, database_url, legacy_api_tokens=True), clock=clock
    )
    yield service
    service.close()


def test_legacy_tokens_keep_working_bound_to_the_personal_tenant(
    legacy_service: AuthService, clock: StepClock
) -> None:
    service = legacy_service
    run_import(
        service,
        {"email": "ada@example.com", "legacy_id": "a1b2"},
        {"email": "bob@example.com"},
    )
    report, refused = _import_tokens(
        service,
        {"token": RAGFLOW_TOKEN, "legacy_user_id": "a1b2", "name": "sdk"},
        {"token": UUID_TOKEN, "email": "bob@example.com"},
        {"token": "short", "legacy_user_id": "a1b2"},
        {"token": "0" * 32, "legacy_user_id": "nobody"},
        expires_in_days=30,
    )
    assert (report.created, report.refused) == (2, 2)
    assert [where for where, _ in refused] == ["line 3", "line 4"]
    assert looks_like_legacy_api_token(RAGFLOW_TOKEN)
    principal = service.authenticate(RAGFLOW_TOKEN, "bearer")
    ada = service.store.find_user_by_login("ada@example.com")
    assert ada is not None and principal.user.id == ada.id
    assert principal.api_token is not None
    assert principal.api_token.tenant_id == service.store.personal_tenant_id(ada.id)
    assert principal.api_token.scopes == ("read", "write")
    assert principal.api_token.secret_hash != RAGFLOW_TOKEN  # stored hashed
    assert service.authenticate(UUID_TOKEN, "bearer").user.email == "bob@example.com"
    with pytest.raises(InvalidTokenError):
        service.authenticate(RAGFLOW_TOKEN[:-1] + "X", "bearer")
    again, _ = _import_tokens(service, {"token": RAGFLOW_TOKEN, "legacy_user_id": "a1b2"})
    assert (again.created, again.skipped) == (0, 1)
    clock.advance(31 * 86400)
    service.cache.verified_api_tokens.clear()
    with pytest.raises(TokenExpiredError):
        service.authenticate(RAGFLOW_TOKEN, "bearer")


def test_without_the_setting_imported_tokens_are_refused_without_a_query(
    service: AuthService,
) -> None:
    """Junk bearer tokens must not cost a database lookup on a deployment that imported none:
    the path opens only with AUTHGATE_LEGACY_API_TOKENS."""
    run_import(service, {"email": "ada@example.com", "legacy_id": "a1b2"})
    report, _ = _import_tokens(service, {"token": RAGFLOW_TOKEN, "legacy_user_id": "a1b2"})
    assert report.created == 1
    service.start()  # the revocation feed reads where the log stands once, at start
    with count_sql(service) as statements, pytest.raises(InvalidTokenError):
        service.authenticate(RAGFLOW_TOKEN, "bearer")
    assert statements == []


def test_legacy_token_import_refuses_unknown_scopes_and_long_expiry(service: AuthService) -> None:
    with pytest.raises(ValidationFailedError):
        _import_tokens(service, scopes=("everything",))
    with pytest.raises(ValidationFailedError):
        _import_tokens(service, expires_in_days=100_000)


def test_a_legacy_token_dry_run_writes_nothing(legacy_service: AuthService) -> None:
    service = legacy_service
    run_import(service, {"email": "ada@example.com", "legacy_id": "a1"})
    report, _ = _import_tokens(service, {"token": UUID_TOKEN, "legacy_user_id": "a1"}, dry_run=True)
    assert report.created == 1
    with pytest.raises(InvalidTokenError):
        service.authenticate(UUID_TOKEN, "bearer")


def test_flask_security_users_log_in_with_the_old_apps_salt(
    tmp_path: Path, database_url: str, clock: StepClock
) -> None:
    """Flask-Security-Too's default double hash (its get_hmac, then passlib's pbkdf2_sha512):
    imported marked, verified with AUTHGATE_LEGACY_PASSWORD_HMAC_SALT, re-hashed to argon2id."""
    salt = "the old app's SECURITY_PASSWORD_SALT"
    secret = base64.b64encode(hmac.new(salt.encode(), PASSWORD.encode(), hashlib.sha512).digest())
    stored = pbkdf2_sha512.using(rounds=1000).hash(secret)
    settings = make_settings(tmp_path, database_url, legacy_password_hmac_salt=salt)
    service = build_service(settings, clock=clock)
    try:
        report, refused = run_import(
            service,
            {"email": "ada@example.com", "password_hash": stored},
            password_prehash="flask-security",
        )
        assert (report.created, refused) == (1, [])
        with pytest.raises(InvalidCredentialsError):
            service.sessions.login("ada@example.com", "wrong password", CLIENT)
        assert service.sessions.login("ada@example.com", PASSWORD, CLIENT).access_token
        user = service.store.find_user_by_login("ada@example.com")
        assert user is not None and user.password_hash is not None
        assert user.password_hash.startswith("$argon2id$")
    finally:
        service.close()


@pytest.mark.parametrize("on_conflict", ["skip", "update"])
def test_a_dry_run_counts_what_the_real_run_does_across_batches(
    service: AuthService, on_conflict: str
) -> None:
    """Batches of two, and every repeat several batches after what it repeats: the same email
    again (in another case), rows colliding with users already there, a username or legacy id
    taken by an earlier batch, and one let go by an earlier update. The dry run decides each
    row as the real run then does."""
    run_import(
        service,
        {"email": "old@example.com", "username": "old", "legacy_id": "1"},
        {"email": "renamed@example.com", "username": "before"},
    )
    source = [
        {"email": "ada@example.com", "username": "ada", "legacy_id": "10"},
        {"email": "bob@example.com", "username": "bob"},
        {"email": "renamed@example.com", "username": "after"},  # lets "before" go
        {"email": "x1@example.com"},
        {"email": "x2@example.com"},
        {"email": "x3@example.com"},
        {"email": "ADA@example.com", "name": "Ada again"},  # the same email, 3 batches later
        {"email": "eve@example.com", "username": "Bob"},  # taken by an earlier batch
        {"email": "old@example.com", "name": "Old"},  # already a user
        {"email": "mal@example.com", "legacy_id": "10"},  # taken by an earlier batch
        {"email": "x4@example.com"},
        {"email": "kim@example.com", "username": "before"},  # free since the update
        {"email": "x5@example.com", "username": "old"},  # an existing user's
        {"email": "bob@example.com", "username": "bobby"},
        {"email": "zed@example.com", "username": "bob"},  # bob's, or free once bob renamed
    ]
    options = {"on_conflict": on_conflict, "batch_size": 2}
    dry, dry_refused = run_import(service, *source, dry_run=True, **options)
    assert service.store.count_users() == 2
    real, real_refused = run_import(service, *source, **options)
    counts = ("read", "created", "updated", "skipped", "refused")
    assert [getattr(dry, name) for name in counts] == [getattr(real, name) for name in counts]
    assert dry_refused == real_refused
    if on_conflict == "skip":
        assert (real.created, real.updated, real.skipped, real.refused) == (6, 0, 4, 5)
    else:
        assert (real.created, real.updated, real.skipped, real.refused) == (8, 4, 0, 3)
    assert real.created == service.store.count_users() - 2
    again, again_refused = run_import(service, *source, dry_run=True, **options)
    rerun, rerun_refused = run_import(service, *source, **options)
    assert [getattr(again, n) for n in counts] == [getattr(rerun, n) for n in counts]
    assert again_refused == rerun_refused
