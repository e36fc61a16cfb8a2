"""End-to-end fixtures: the real server under gunicorn, on free ports, spoken to over sockets;
a browser. What builds them, and what the tests share besides, is in ``helpers.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.e2e.browser import chromium, no_page_problems
from tests.e2e.helpers import Server, server_group


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, one per test module (Playwright's sync API cannot nest)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page_problems() -> Iterator[list[str]]:
    """The browser modules use it in every test (``pytest.mark.usefixtures``): the test fails on
    an uncaught error or a CSP violation on any of its pages."""
    with no_page_problems() as problems:
        yield problems


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One shared server (SQLite, two workers) for the single-process flows."""
    with server_group("sqlite", tmp_path_factory) as group:
        (only,) = group.start(workers=2)
        yield only
