"""Request ids: the caller's ``X-Request-ID`` when it is safe to echo, otherwise our own.

Each request's id is chosen as it enters the app (``response_headers.ResponseHeaders``) and kept
in its WSGI environ, where the error handlers' log lines and the response header both find it.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from typing import Any

from flask import request

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Where a request's id is kept in its WSGI environ.
REQUEST_ID_KEY = "authgate.request_id"


class RequestIds:
    """Unique ids without a system call per request: a random per-process prefix and a counter
    (the prefix is drawn again in a forked child)."""

    def __init__(self) -> None:
        self._prefix = ""
        self._counter = itertools.count()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_request_ids = RequestIds()


def assign_request_id(environ: dict[str, Any]) -> str:
    """The id of the request of ``environ``, chosen now and kept there."""
    incoming = environ.get("HTTP_X_REQUEST_ID")
    request_id = incoming if incoming and _SAFE_ID.match(incoming) else _request_ids.next()
    environ[REQUEST_ID_KEY] = request_id
    return request_id


def current_request_id() -> str:
    """This request's id (chosen on first use when the request did not pass the middleware,
    as in a bare ``test_request_context``)."""
    environ = request.environ
    request_id: str | None = environ.get(REQUEST_ID_KEY)
    return request_id if request_id is not None else assign_request_id(environ)
