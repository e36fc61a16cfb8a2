"""The end-to-end tests' own server (``tests/e2e/helpers.py``, ``Server.launch``) holds up beside
the connections Chromium opens and never sends on: with gunicorn's sync workers, two of those
held both workers of a shared server until gunicorn's 60 s timeout killed them, and every test
of the module meanwhile timed out (pages that never loaded, requests with no answer)."""

from __future__ import annotations

import socket
import time

from tests.e2e.helpers import Server


def test_connections_that_send_nothing_do_not_stall_the_server(server: Server) -> None:
    silent = [
        socket.create_connection(("127.0.0.1", server.port), timeout=5)
        for _ in range(2 * server.workers)
    ]
    try:
        time.sleep(0.5)  # the workers take them and wait for a request that never comes
        # Answered at once by a free thread; a sync worker would still be waiting on a silent
        # connection when the 3 s are up.
        response = server.get("/healthz", timeout=3)
        assert response.status_code == 200
        assert response.headers["Connection"] == "close"  # any worker may take the next request
    finally:
        for connection in silent:
            connection.close()
