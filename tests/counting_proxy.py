"""A TCP proxy between the app and PostgreSQL that counts round trips and statements on the wire
(``tests/store/test_round_trips.py``, ``benchmarks/round_trips.py``), and may delay each chunk
as a database on another host would be.

- A **round trip** is a burst of client→server bytes sent after the server has spoken (or the
  first bytes of a connection): the client sent something and waits for the answer. Messages
  written together (psycopg's Parse/Bind/Execute/Sync) are one; a pool's ping, a ``BEGIN``, a
  ``COMMIT`` or a ``ROLLBACK`` are one each. A new connection's startup counts too.
- A **statement** is a ``Query`` ('Q', the simple protocol psycopg uses for ``BEGIN``,
  ``COMMIT``, ``ROLLBACK``) or ``Execute`` ('E', the extended protocol) message of the client.

``proxy.counting()`` counts only the connections the calling thread has checked out of a
SQLAlchemy pool, while it has them (from the checkout, or the connect, to the check-in and the
pool's reset), so that the background threads of a service (the revocation poller) are not
counted with the request being measured."""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import Pool

_STARTUP_CODES_WITHOUT_SESSION = (80877103, 80877104)  # SSLRequest, GSSENCRequest


@dataclass
class WireCount:
    round_trips: int = 0
    statements: int = 0


class _Link:
    """One client connection: whose turn it is to speak, what it sent, and when: its bursts
    (time, statements), and since when it has been idle in its pool."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.client_turn = False
        self.buffer = b""
        self.started = False  # past the startup packet (and an SSLRequest, if any)
        self.bursts: list[list[float]] = []  # [time, statements]
        self.idle_since = 0.0

    def server_sent(self) -> None:
        with self.lock:
            self.client_turn = False

    def client_sent(self, data: bytes) -> None:
        with self.lock:
            if not self.client_turn:
                self.bursts.append([time.monotonic(), 0])
                self.client_turn = True
            self.buffer += data
            while True:
                if not self.started:
                    if len(self.buffer) < 8:
                        return
                    length = int.from_bytes(self.buffer[:4], "big")
                    if len(self.buffer) < length:
                        return
                    code = int.from_bytes(self.buffer[4:8], "big")
                    self.buffer = self.buffer[length:]
                    self.started = code not in _STARTUP_CODES_WITHOUT_SESSION
                    continue
                if len(self.buffer) < 5:
                    return
                length = int.from_bytes(self.buffer[1:5], "big")
                if len(self.buffer) < 1 + length:
                    return
                if self.buffer[:1] in (b"Q", b"E"):
                    self.bursts[-1][1] += 1
                self.buffer = self.buffer[1 + length :]

    def count_between(self, start: float, end: float) -> WireCount:
        with self.lock:
            bursts = [b for b in self.bursts if start < b[0] <= end]
        return WireCount(len(bursts), int(sum(b[1] for b in bursts)))


class _Counting:
    """One thread's ``counting()`` block: the connections it holds, since when they count."""

    def __init__(self, began: float) -> None:
        self.began = began
        self.held: dict[int, tuple[_Link, float]] = {}  # id of the DBAPI connection -> ...
        self.total = WireCount()

    def add(self, link: _Link, since: float) -> None:
        counted = link.count_between(since, time.monotonic())
        self.total.round_trips += counted.round_trips
        self.total.statements += counted.statements


class CountingProxy:
    """127.0.0.1:``port`` → ``target``; every chunk delayed ``delay_seconds`` each way."""

    def __init__(self, target: tuple[str, int], delay_seconds: float = 0.0) -> None:
        self.target = target
        self.delay = delay_seconds
        self._links: dict[int, _Link] = {}  # by the client's port
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._counting: dict[int, _Counting] = {}  # by thread
        self._listeners = (
            ("connect", self._on_connect),
            ("checkout", self._on_checkout),
            ("checkin", self._on_checkin),
        )
        for name, listener in self._listeners:
            event.listen(Pool, name, listener)
        threading.Thread(target=self._accept, name="counting-proxy", daemon=True).start()

    def url(self, database_url: str) -> str:
        """``database_url`` through the proxy (plain TCP: the proxy reads the protocol)."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        url = url.update_query_dict({"sslmode": "disable", "gssencmode": "disable"})
        return url.render_as_string(hide_password=False)

    def close(self) -> None:
        for name, listener in self._listeners:
            event.remove(Pool, name, listener)
        self._listener.close()
        for s in self._sockets:
            _close(s)

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def counting(self) -> Iterator[WireCount]:
        """What this thread's pooled connections sent while inside the block: from each
        checkout (its ``pool_pre_ping`` included, which the pool sends before its ``checkout``
        event: every burst since the connection was last checked in counts) or connect, to its
        check-in (after the pool's reset, its ``ROLLBACK``)."""
        counting = _Counting(time.monotonic())
        self._counting[threading.get_ident()] = counting
        try:
            yield counting.total
        finally:
            del self._counting[threading.get_ident()]
            for link, since in counting.held.values():
                counting.add(link, since)

    # The pool's events (the listeners stay for the proxy's life: adding and removing them while
    # other threads' pools dispatch events is not safe).

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        self._attend(dbapi_connection, fresh=True)

    def _on_checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        self._attend(dbapi_connection, fresh=False)

    def _attend(self, dbapi_connection: Any, *, fresh: bool) -> None:
        counting = self._counting.get(threading.get_ident())
        if counting is None or id(dbapi_connection) in counting.held:
            return
        link = self._link_of(dbapi_connection)
        if link is not None:
            since = counting.began if fresh else max(counting.began, link.idle_since)
            counting.held[id(dbapi_connection)] = (link, since)

    def _on_checkin(self, dbapi_connection: Any, _record: Any) -> None:
        """Any thread's check-in: the connection is idle in its pool from now on."""
        if dbapi_connection is None:
            return
        counting = self._counting.get(threading.get_ident())
        if counting is not None and id(dbapi_connection) in counting.held:
            counting.add(*counting.held.pop(id(dbapi_connection)))
        link = self._link_of(dbapi_connection)
        if link is not None:
            link.idle_since = time.monotonic()

    def _link_of(self, dbapi_connection: Any) -> _Link | None:
        """The link of a psycopg connection through this proxy (None for another)."""
        pgconn = getattr(dbapi_connection, "pgconn", None)
        if pgconn is None or pgconn.status != 0:  # not psycopg, or closed
            return None
        with socket.socket(fileno=socket.dup(pgconn.socket)) as s:
            if s.getpeername()[1] != self.port:
                return None
            port = s.getsockname()[1]
        deadline = time.monotonic() + 2
        while port not in self._links and time.monotonic() < deadline:
            time.sleep(0.001)  # accepted, not yet registered by the proxy's thread
        return self._links.get(port)

    def _accept(self) -> None:
        while True:
            try:
                client, address = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                _close(client)
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._sockets.append(s)
            link = _Link()
            self._links[address[1]] = link
            for source, sink, upstream in ((client, server, True), (server, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, upstream, link), daemon=True
                ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, upstream: bool, link: _Link
    ) -> None:
        queue: deque[tuple[float, bytes]] = deque()
        ready = threading.Condition()
        if self.delay:
            threading.Thread(target=self._deliver, args=(queue, ready, sink), daemon=True).start()
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if data and upstream:
                link.client_sent(data)
            elif data:
                link.server_sent()
            if self.delay:
                with ready:
                    queue.append((time.monotonic() + self.delay, data))
                    ready.notify()
            elif data:
                try:
                    sink.sendall(data)
                except OSError:
                    data = b""
            if not data:
                if not self.delay:
                    _close(sink)
                return

    def _deliver(
        self, queue: deque[tuple[float, bytes]], ready: threading.Condition, sink: socket.socket
    ) -> None:
        while True:
            with ready:
                while not queue:
                    ready.wait()
                due, data = queue.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not data:
                _close(sink)
                return
            try:
                sink.sendall(data)
            except OSError:
                _close(sink)
                return


def _close(s: socket.socket) -> None:
    with suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()
