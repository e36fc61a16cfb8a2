"""The cutover without a forced logout, end to end in Chromium: a user logs in to the seed-style
app (examples/migrate-from-flask-jwt/legacy_app.py), which sets its HS256 ``jwt`` cookie; the
users are imported with the real ``authgate users import`` command; the same browser then talks to
the migrated app (its ``app.py``, authgate inside) and keeps working without logging in again —
and ends with an authgate session only, the old cookie cleared."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.e2e.browser import chromium, new_page, no_page_problems
from tests.helpers import clear_authgate_environment, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "migrate-from-flask-jwt"
SECRET_KEY = "seed-app-secret-" + "k" * 32
USER_MAP = "email=_email,password_hash=_password,name=_name,username=_uid,roles=_role,legacy_id=id"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"{name}_{uuid.uuid4().hex[:6]}", EXAMPLE / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def serving(app: Flask, port: int) -> Iterator[str]:
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def authgate_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "authgate", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def cutover(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    clear_authgate_environment(monkeypatch)
    legacy_db = load("make_database").make_database(tmp_path / "volumes" / "sqlite.db")
    legacy_port, new_port = free_port(), free_port()
    env = {
        "AUTHGATE_INSTANCE_PATH": str(tmp_path / "instance"),
        "AUTHGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'instance' / 'authgate.db'}",
        "AUTHGATE_PUBLIC_URL": f"http://localhost:{new_port}",
    }
    authgate_cli(env, "db", "upgrade")
    imported = authgate_cli(
        env,
        "users", "import", "--from-database", f"sqlite:///{legacy_db}", "--table", "users",
        "--map", USER_MAP,
    )  # fmt: skip
    assert imported.stdout.strip() == "created 3, updated 0, skipped 0, refused 1"
    legacy_env = {
        "AUTHGATE_LEGACY_JWT_SECRET": SECRET_KEY,
        "AUTHGATE_LEGACY_JWT_CLAIM": "_uid",
        "AUTHGATE_LEGACY_JWT_USER_COLUMN": "username",
        "AUTHGATE_LEGACY_JWT_CUTOFF": "2099-01-01T00:00:00Z",
    }
    for key, value in {**env, **legacy_env}.items():
        monkeypatch.setenv(key, value)
    legacy_app = load("legacy_app").create_app(legacy_db, SECRET_KEY)
    new_app = load("app").create_app()
    with serving(legacy_app, legacy_port) as legacy_url, serving(new_app, new_port) as new_url:
        yield legacy_url, new_url


def test_a_logged_in_user_of_the_old_app_keeps_working_after_the_cutover(
    cutover: tuple[str, str],
) -> None:
    legacy_url, new_url = cutover
    with chromium() as browser, no_page_problems():
        context, page = new_page(browser)
        # Before: log in to the seed app; it sets its jwt cookie.
        page.goto(legacy_url + "/")
        page.fill("#uid", "toby")
        page.fill("#password", "123toby-lightbulb")
        page.click("#login button")
        page.wait_for_selector("#message:has-text('Success: toby')")
        page.click("#whoami")
        page.wait_for_selector("#me:has-text('200')")
        assert [c["name"] for c in context.cookies()] == ["jwt"]

        # The cutover: the same browser on the migrated app, no new login.
        page.goto(new_url + "/")
        page.click("#whoami")
        page.wait_for_selector("#me:has-text('200')")
        assert '"uid":"toby"' in page.inner_text("#me").replace(" ", "")
        names = sorted(c["name"] for c in context.cookies())
        assert names == ["authgate_refresh", "authgate_session"]  # the jwt cookie is gone

        # It keeps working on the authgate session alone, a reload later too...
        page.reload()
        assert page.inner_text("#me") == ""
        page.click("#whoami")
        page.wait_for_selector("#me:has-text('200')")
        # ...and after the access token's cookie is gone, through a refresh.
        context.clear_cookies(name="authgate_session")
        page.evaluate("document.querySelector('#me').textContent = ''")
        page.click("#whoami")
        page.wait_for_selector("#me:has-text('200')")
        assert sorted(c["name"] for c in context.cookies()) == [
            "authgate_refresh",
            "authgate_session",
        ]
        context.close()


def test_a_new_login_on_the_migrated_app_uses_the_imported_password(
    cutover: tuple[str, str],
) -> None:
    _legacy_url, new_url = cutover
    with chromium() as browser, no_page_problems():
        context, page = new_page(browser)
        page.goto(new_url + "/")
        page.fill("#uid", "niko")
        page.fill("#password", "123niko-alternating")
        page.click("#login button")
        page.wait_for_selector("#message:has-text('Success: niko')")
        page.click("#whoami")
        page.wait_for_selector("#me:has-text('200')")
        assert '"uid":"niko"' in page.inner_text("#me").replace(" ", "")
        context.close()
