"""The OpenAPI document matches the routes the app really serves."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient


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
