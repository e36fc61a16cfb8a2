"""A separate Flask backend trusts authgate's access tokens offline, through the JWKS only: the
example resource server against the real authgate server under gunicorn."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from flask.testing import FlaskClient

from authgate.integrations.flask.context import AUTHENTICATOR_KEY
from tests.e2e.helpers import Server, ServerGroup, server_group
from tests.helpers import PASSWORD, bearer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "resource-server" / "app.py"


@pytest.fixture(scope="module")
def authgate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerGroup, Server]]:
    with server_group("sqlite", tmp_path_factory) as group:
        (server,) = group.start()
        yield group, server


def load_example(monkeypatch: pytest.MonkeyPatch, server: Server) -> ModuleType:
    """Import examples/resource-server/app.py the way `flask --app` would, pointed at ``server``."""
    monkeypatch.setenv("AUTHGATE_URL", server.base_url)
    monkeypatch.setenv("AUTHGATE_ISSUER", server.env["AUTHGATE_PUBLIC_URL"])
    name = f"resource_server_{uuid.uuid4().hex[:6]}"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, authgate: tuple[ServerGroup, Server]) -> FlaskClient:
    return load_example(monkeypatch, authgate[1]).app.test_client()


def access_token(server: Server, *, admin: bool = False, group: ServerGroup | None = None) -> str:
    email = f"rs-{uuid.uuid4().hex[:8]}@example.com"
    response = server.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    if admin:
        assert group is not None
        group.cli("users", "set-roles", email, "user", "admin")
    response = server.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_a_valid_access_token_is_accepted_offline(
    client: FlaskClient, authgate: tuple[ServerGroup, Server]
) -> None:
    _, server = authgate
    token = access_token(server)
    me = server.get("/api/auth/me", headers=bearer(token)).json()["user"]

    response = client.get("/api/notes", headers=bearer(token))

    assert response.status_code == 200, response.json
    assert response.json["owner"] == me["id"]


def test_no_token_or_a_forged_one_is_refused(
    client: FlaskClient, authgate: tuple[ServerGroup, Server]
) -> None:
    token = access_token(authgate[1])
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"

    assert client.get("/api/notes").status_code == 401
    response = client.get("/api/notes", headers=bearer(forged))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_token"


def test_roles_come_from_the_token(
    client: FlaskClient, authgate: tuple[ServerGroup, Server]
) -> None:
    group, server = authgate

    user = client.delete("/api/notes/1", headers=bearer(access_token(server)))
    admin = client.delete(
        "/api/notes/1", headers=bearer(access_token(server, admin=True, group=group))
    )

    assert user.status_code == 403
    assert user.json["error"]["code"] == "insufficient_role"
    assert admin.status_code == 204


def test_a_token_for_another_issuer_is_refused(
    monkeypatch: pytest.MonkeyPatch, authgate: tuple[ServerGroup, Server]
) -> None:
    _, server = authgate
    token = access_token(server)
    monkeypatch.setenv("AUTHGATE_ISSUER", "https://someone-else.example")
    module = load_example(monkeypatch, server)
    module.app.extensions[AUTHENTICATOR_KEY].issuer = "https://someone-else.example"

    response = module.app.test_client().get("/api/notes", headers=bearer(token))

    assert response.status_code == 401


def test_a_rotated_key_is_fetched_when_a_token_names_it(
    client: FlaskClient, authgate: tuple[ServerGroup, Server]
) -> None:
    group, server = authgate
    client.application.extensions[AUTHENTICATOR_KEY].keys.refetch_seconds = 0
    before = access_token(server)
    assert client.get("/api/notes", headers=bearer(before)).status_code == 200
    group.cli("keys", "rotate")
    after = access_token(server)
    assert after.split(".")[0] != before.split(".")[0]  # another kid in the header

    assert client.get("/api/notes", headers=bearer(after)).status_code == 200
    assert client.get("/api/notes", headers=bearer(before)).status_code == 200
