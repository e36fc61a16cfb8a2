"""Checking one imported row, without I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from email_validator import EmailNotValidError, validate_email

from authgate.core.api_tokens import (
    generate_api_token,
    legacy_api_token_id,
    looks_like_legacy_api_token,
)
from authgate.core.user_imports import (
    ImportedUser,
    ImportLedger,
    parse_field_map,
    parse_imported_user,
)
from authgate.errors import ValidationFailedError

BCRYPT = "$2b$04$" + "a" * 53


def problems(fields: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ValidationFailedError) as caught:
        parse_imported_user(fields)
    return caught.value.fields


def test_a_full_row_is_normalised() -> None:
    user = parse_imported_user(
        {
            "email": " Ada@Example.COM ",
            "username": "ada_l",
            "name": "  Ada Lovelace ",
            "password_hash": BCRYPT,
            "roles": "User, Admin editor",
            "created_at": "2020-01-02T03:04:05",
            "email_verified": "1",
            "legacy_id": 42,
            "ignored": "column",
        }
    )
    assert user == ImportedUser(
        email="Ada@example.com",
        username="ada_l",
        name="Ada Lovelace",
        password_hash=BCRYPT,
        roles=("user", "admin", "editor"),
        created_at=datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
        email_verified=True,
        legacy_id="42",
    )


def test_empty_optional_fields_are_not_given() -> None:
    user = parse_imported_user({"email": "ada@example.com", "name": "", "password_hash": " "})
    assert user == ImportedUser(email="ada@example.com")


@pytest.mark.parametrize(
    ("fields", "field", "starts"),
    [
        ({}, "email", "missing"),
        ({"email": "ada"}, "email", "not a valid email address"),
        ({"email": "a@example.test"}, "email", "not a valid email address"),
        ({"email": "a@example.com", "username": "a@b"}, "username", "use 3 to 32"),
        ({"email": "a@example.com", "roles": "Super User!"}, "roles", "'user!'"),
        ({"email": "a@example.com", "roles": 5}, "roles", "give a list"),
        ({"email": "a@example.com", "created_at": "yesterday"}, "created_at", "not an ISO"),
        ({"email": "a@example.com", "email_verified": "maybe"}, "email_verified", "not a bool"),
        ({"email": "a@example.com", "name": "x" * 201}, "name", "longer than 200"),
        ({"email": "a@example.com", "name": "bell\x07"}, "name", "contains control"),
        ({"email": "a@example.com", "password_hash": "sha1$x$y"}, "password_hash", "not a hash"),
    ],
)
def test_bad_fields_are_named(fields: dict[str, object], field: str, starts: str) -> None:
    assert problems(fields)[field].startswith(starts) or starts in problems(fields)[field]


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("123toby-lightbulb", None),  # a password kept in plain text
        ("5f4dcc3b5aa765d61d327deb882cf99b", None),  # an unsalted MD5 digest
        ("$6$saltsalt$Lq5Jv0Uu7hGk", "'$6'"),
        ("md5$salt$5f4dcc3b5aa765d61d327deb882cf99b", "'md5'"),
    ],
)
def test_a_refused_hash_shows_its_scheme_never_its_value(stored: str, shown: str | None) -> None:
    """The refusal goes to stderr and CI logs: a plain-text password or a digest without a
    scheme is not echoed, not even its beginning."""
    reason = problems({"email": "a@example.com", "password_hash": stored})["password_hash"]
    assert reason.startswith("not a hash format authgate can verify")
    assert stored[:4] not in reason.replace(shown or "", "")
    if shown is not None:
        assert f"(it begins {shown})" in reason


def test_a_uuid_legacy_id_is_kept_as_its_jwts_spell_it() -> None:
    """FastAPI Users' ids come out of PostgreSQL as ``uuid.UUID``; its tokens' ``sub`` is
    ``str(id)``."""
    user_id = uuid.UUID("0f6c5d3a-9b2e-4c1d-8e7f-6a5b4c3d2e1f")
    user = parse_imported_user({"email": "ada@example.com", "legacy_id": user_id})
    assert user.legacy_id == str(user_id)


def test_every_bad_field_is_reported_at_once() -> None:
    assert set(problems({"email": "x", "username": "!", "roles": 1})) == {
        "email",
        "username",
        "roles",
    }


@pytest.mark.parametrize(
    "address",
    [
        "Ada.Lovelace@Example.COM",
        "a+tag@sub.example.org",
        "o'brien@example.ie",
        "x@éxample.com",
        "é@example.com",
        "x..y@example.com",
        ".x@example.com",
        "x@localhost",
        "x@example.local",
        "x@-example.com",
        "x@example",
        '"quoted"@example.com',
        "a" * 65 + "@example.com",
    ],
)
def test_the_fast_email_check_agrees_with_email_validator(address: str) -> None:
    try:
        expected: str | None = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = parse_imported_user({"email": address}).email
    except ValidationFailedError:
        got = None
    assert got == expected


def test_field_maps() -> None:
    assert parse_field_map("email=_email, username=_uid,,") == {
        "email": "_email",
        "username": "_uid",
    }
    for bad, message in [
        ("name=_name", "Map the email field"),
        ("email", "FIELD=COLUMN"),
        ("email=a,email=b", "mapped twice"),
        ("mail=a", "not a field"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_field_map(bad)


def test_legacy_api_tokens_are_told_apart_from_ours_and_from_jwts() -> None:
    ours, _parts = generate_api_token()
    assert not looks_like_legacy_api_token(ours)
    assert not looks_like_legacy_api_token("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    assert looks_like_legacy_api_token("ragflow-" + "A1b2" * 8)
    assert looks_like_legacy_api_token("0f6c5d3a9b2e4c1d8e7f6a5b4c3d2e1f")
    for bad in ("short", "has space inside here", "x" * 257, "é" * 20, "tab\there-and-more"):
        assert not looks_like_legacy_api_token(bad), bad


def test_legacy_token_ids_are_stable_16_base62_and_distinct() -> None:
    first = legacy_api_token_id("0f6c5d3a9b2e4c1d8e7f6a5b4c3d2e1f")
    assert first == legacy_api_token_id("0f6c5d3a9b2e4c1d8e7f6a5b4c3d2e1f")
    assert len(first) == 16 and first.isalnum() and first.isascii()
    assert first != legacy_api_token_id("0f6c5d3a9b2e4c1d8e7f6a5b4c3d2e1e")


def test_the_dry_run_ledger_remembers_emails_and_who_holds_what() -> None:
    """Thousands of keys (the tables grow several times), each found again, none invented; a
    username or legacy id follows its holder's last one."""
    ledger = ImportLedger()
    count = 20_000
    for n in range(count):
        ledger.add_email(f"u{n}@example.com")
        ledger.set_username(f"u{n}@example.com", f"name{n}")
    assert len(ledger) == count
    assert all(ledger.has_email(f"u{n}@example.com") for n in range(count))
    assert not any(ledger.has_email(f"v{n}@example.com") for n in range(count))
    assert ledger.username_owner("name7") == ledger.email_id("u7@example.com")
    assert ledger.username_owner("name7") != ledger.email_id("u8@example.com")
    assert ledger.username_owner("nobody") is None
    ledger.set_username("u7@example.com", "seven")  # lets name7 go
    assert ledger.username_owner("name7") == 0
    assert ledger.username_owner("seven") == ledger.email_id("u7@example.com")
    # A user of the database (not created by the ledger) that an earlier batch renamed.
    assert ledger.username_owner("old", db_owner="db@example.com") is None
    ledger.set_username("db@example.com", "new")
    assert ledger.username_owner("old", db_owner="db@example.com") == 0
    assert ledger.legacy_id_owner("42") is None
    ledger.set_legacy_id("u1@example.com", "42")
    assert ledger.legacy_id_owner("42") == ledger.email_id("u1@example.com")
    ledger.set_legacy_id("u1@example.com", "43")
    assert ledger.legacy_id_owner("42") == 0
