"""``authgate doctor``: each check seeded with the misconfiguration it must find.

The checks are called directly (with settings built here) and through the command line
(``CliRunner`` with ``AUTHGATE_*`` variables). Databases are real: SQLite files and the PostgreSQL
test server; Redis is the one on 127.0.0.1:6379. Clocks are injected, never slept on. Probes of a
running server live in ``tests/e2e/test_doctor_probes.py``; the small fake HTTP servers here
answer what a misconfigured proxy would.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.helpers import clear_authgate_environment


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test passes configures authgate."""
    clear_authgate_environment(monkeypatch)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
