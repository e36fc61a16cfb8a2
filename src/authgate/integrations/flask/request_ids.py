"""Request ids: the caller's ``X-Request-ID`` when it is safe to echo, otherwise our own."""

from __future__ import annotations

import itertools
import os
import re
import secrets

from flask import g, request

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIds:
    """Unique ids without a system call per request: a random per-process prefix and a counter
    (the prefix is drawn again in a forked child)."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count()

    def next(self) -> str:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._prefix = secrets.token_hex(8)
            self._counter = itertools.count()
        return f"{self._prefix}{next(self._counter):016x}"


_request_ids = RequestIds()


def current_request_id() -> str:
    """This request's id, chosen on first use."""
    request_id: str | None = g.get("authgate_request_id")
    if request_id is None:
        incoming = request.environ.get("HTTP_X_REQUEST_ID")
        request_id = incoming if incoming and _SAFE_ID.match(incoming) else _request_ids.next()
        g.authgate_request_id = request_id
    return request_id
