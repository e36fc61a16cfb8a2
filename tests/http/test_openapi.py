"""The OpenAPI document matches the routes the app really serves."""

from __future__ import annotations

import re

import email_validator
import pytest
from flask import Flask
from flask.testing import FlaskClient

from authgate.core.api_tokens import generate_api_token
from authgate.errors import AuthError, ValidationFailedError
from authgate.http.schemas import (
    EMAIL_PATTERN,
    NO_CONTROL_CHARACTERS_PATTERN,
    NOT_BLANK_PATTERN,
    TOKEN_ID_LENGTH,
    TOKEN_ID_PATTERN,
    MemberAddInput,
    TenantInput,
    has_control_characters,
    parse_input,
)


def _served_operations(app: Flask) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("authgate_"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                operations.add((method.lower(), path))
    return operations


def test_document_lists_exactly_the_served_operations(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == _served_operations(app)


def test_every_schema_reference_resolves(client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").json
    text = str(doc)
    refs = set(re.findall(r"#/components/schemas/(\w+)", text))
    assert refs
    assert refs <= set(doc["components"]["schemas"])
    register = doc["paths"]["/api/auth/register"]["post"]
    schema = doc["components"]["schemas"]["RegisterInput"]
    assert register["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "RegisterInput"
    )
    assert set(schema["required"]) == {"email", "password"}


def test_every_reference_resolves(client: FlaskClient) -> None:
    """Schemas and the shared error responses alike."""
    doc = client.get("/api/openapi.json").json
    refs = set(re.findall(r"'\$ref': '#/components/(\w+)/(\w+)'", str(doc)))
    assert {kind for kind, _ in refs} == {"schemas", "responses"}
    for kind, name in refs:
        assert name in doc["components"][kind], (kind, name)


def test_every_operation_that_needs_the_database_may_answer_503_with_retry_after(
    client: FlaskClient,
) -> None:
    doc = client.get("/api/openapi.json").json
    unavailable = doc["components"]["responses"]["ServiceUnavailable"]
    without_database = {
        ("get", "/authgate.js"),
        ("get", "/api/openapi.json"),
        ("get", "/.well-known/jwks.json"),
        ("get", "/.well-known/webauthn"),  # from the settings
        ("get", "/api/auth/diagnose"),
        ("get", "/api/oauth/providers"),
        ("get", "/api/oauth/{provider}/login"),  # failures redirect with ?error=
        ("get", "/api/oauth/{provider}/callback"),
    }

    assert unavailable["headers"]["Retry-After"]["required"] is True
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            has_503 = "503" in operation["responses"]
            assert has_503 is ((method, path) not in without_database), (method, path)


def test_the_scopes_and_lifetime_of_a_new_token_are_this_deployments(
    app: Flask, client: FlaskClient
) -> None:
    doc = client.get("/api/openapi.json").json
    token_input = doc["components"]["schemas"]["ApiTokenCreateInput"]["properties"]
    service = app.extensions["authgate"].service

    assert token_input["scopes"]["items"]["enum"] == list(service.api_tokens.scopes)
    assert {"type": "integer", "minimum": 1, "maximum": 365} in token_input["expires_in_days"][
        "anyOf"
    ]


# The patterns the document states for rules pydantic does not check itself -------------------

CODE_POINTS = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]


def test_the_control_character_pattern_is_the_input_check() -> None:
    pattern = re.compile(NO_CONTROL_CHARACTERS_PATTERN)

    disagree = [c for c in CODE_POINTS if bool(pattern.match(c)) is has_control_characters(c)]

    assert disagree == []


def test_the_not_blank_pattern_is_what_trimming_leaves_non_empty() -> None:
    pattern = re.compile(NOT_BLANK_PATTERN)

    def accepted(name: str) -> bool:
        try:
            parse_input(TenantInput, {"name": name})
        except AuthError:
            return False
        return True

    samples = [*CODE_POINTS[:0x3100], " a ", "a b", "\u3000", " \t", "x\u00a0"]
    assert [c for c in samples if bool(pattern.match(c)) is not accepted(c)] == []


@pytest.mark.parametrize("domain", email_validator.SPECIAL_USE_DOMAIN_NAMES)
def test_the_email_pattern_leaves_out_the_special_use_domains_the_check_refuses(
    domain: str,
) -> None:
    pattern = re.compile(EMAIL_PATTERN)
    refused = [f"ada@{domain}", f"ada@mail.{domain}", f"ada@MAIL.{domain.upper()}"]
    allowed = [f"ada@{domain}.example.com", f"ada@{domain}x.com", f"{domain}@example.com"]

    for email in refused:
        assert not pattern.match(email), email
        with pytest.raises(ValidationFailedError):
            parse_input(MemberAddInput, {"email": email})
    for email in allowed:
        assert pattern.match(email), email
        parse_input(MemberAddInput, {"email": email})


def test_the_token_id_pattern_matches_the_ids_tokens_get() -> None:
    ids = [generate_api_token()[1].token_id for _ in range(50)]

    assert all(re.fullmatch(TOKEN_ID_PATTERN, token_id) for token_id in ids)
    assert {len(token_id) for token_id in ids} == {TOKEN_ID_LENGTH}
