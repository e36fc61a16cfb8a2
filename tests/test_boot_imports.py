"""What a worker loads at boot (issue 17: "import what a request needs, when it needs it").

The standalone app is built on a migrated database and answers ``/healthz`` in a fresh
interpreter; the libraries that only some requests or settings need must not be loaded yet. Each
is up to several MB of a worker's memory (``benchmarks/memory.py``), loaded by the first request
that needs it instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Library (or module) -> what loads it when it is needed.
LOADED_ON_DEMAND = {
    "redis": "AUTHGATE_REDIS_URL",
    "webauthn": "a passkey ceremony",
    "cbor2": "a passkey ceremony (py_webauthn)",
    "OpenSSL": "a passkey ceremony (py_webauthn)",
    "pyasn1": "a passkey ceremony (py_webauthn)",
    "authgate.http.openapi": "GET /api/openapi.json",
    "zxcvbn": "a new password",
    "alembic": "authgate db upgrade",
    "requests": "an OAuth provider",
    "authlib": "an OAuth provider",
    "PIL": "an avatar upload",
    "segno": "a TOTP enrolment's QR code",
    "ua_parser": "the sessions list",
    "prometheus_client": "AUTHGATE_METRICS",
    "boto3": "AUTHGATE_AVATAR_STORAGE=s3",
}

_BOOT = """
import json, sys
from authgate.server import create_app
app = create_app()
assert app.test_client().get("/healthz").status_code == 200
print(json.dumps(sorted(sys.modules)))
"""


# The gunicorn master of `authgate serve --production` (`python -m authgate.serving`), stopped
# where gunicorn would start forking its workers.
_MASTER = """
import json, sys
from gevent import monkey
monkey.patch_all()
from authgate import production_server
production_server.GunicornApplication.run = lambda self: print(json.dumps(sorted(sys.modules)))
production_server.run_production_server()
"""


def _environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHGATE_")}
    env.update(
        AUTHGATE_INSTANCE_PATH=str(tmp_path / "instance"),
        AUTHGATE_DATABASE_URL=f"sqlite:///{tmp_path / 'authgate.db'}",
        AUTHGATE_PUBLIC_URL="http://localhost:8086",
        **settings,
    )
    return env


def _modules_after_boot(tmp_path: Path, **settings: str) -> set[str]:
    env = _environment(tmp_path, **settings)
    # Migrated first, as a deployment does (`authgate db upgrade`): a worker finds it current.
    upgrade = [sys.executable, "-m", "authgate", "db", "upgrade"]
    migrated = subprocess.run(upgrade, env=env, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    done = subprocess.run(
        [sys.executable, "-c", _BOOT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    return _modules_after_boot(tmp_path_factory.mktemp("boot"))


@pytest.mark.parametrize("module", sorted(LOADED_ON_DEMAND))
def test_a_worker_boots_without_what_only_some_requests_need(booted: set[str], module: str) -> None:
    assert module not in booted, (
        f"{module} is loaded at boot; it is needed only for " + (LOADED_ON_DEMAND[module])
    )


def test_the_boot_check_sees_what_is_loaded(booted: set[str]) -> None:
    """The check can fail: what every request needs is in the list it reads."""
    assert {"flask", "sqlalchemy", "jwt", "authgate.service.passkeys"} <= booted


def test_redis_is_loaded_when_it_is_configured(tmp_path: Path) -> None:
    # Never contacted at boot (the clients connect lazily), so no server is needed here.
    modules = _modules_after_boot(tmp_path, AUTHGATE_REDIS_URL="redis://127.0.0.1:1/0")
    assert "redis" in modules


def test_the_master_holds_the_code_its_workers_run_and_nothing_more(tmp_path: Path) -> None:
    """Imported before the fork, the app's code is shared by every worker (benchmarks/memory.py:
    a worker's USS 24 MB instead of 56 MB, its RSS 80 MB instead of 86 MB); what only some
    requests need stays out of the master as it stays out of a worker's boot."""
    done = subprocess.run(
        [sys.executable, "-c", _MASTER],
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    master = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {"authgate.server", "authgate.http.schemas", "flask", "sqlalchemy.orm"} <= master
    assert not master & set(LOADED_ON_DEMAND), "loaded by the master before the fork"
    assert "authgate.cli" not in master
