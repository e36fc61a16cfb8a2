"""A peer that accepts TCP connections on ``127.0.0.1`` and never answers: a provider that hangs
(the process is up, its socket listens, nothing comes back). Connections are kept open until
``stop()``, so the client's read timeout is what ends each request."""

from __future__ import annotations

import socket
import threading


class HangingServer:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._connections: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hanging-peer", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._connections.append(connection)  # held open, never read nor written
            self.accepted += 1

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for connection in self._connections:
            connection.close()

    def __enter__(self) -> HangingServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
