"""``token_required`` / ``login_required``: protect a view with a session cookie or bearer token."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import g, request

from authgate.integrations.flask.context import get_extension
from authgate.service import Principal

P = ParamSpec("P")
R = TypeVar("R")


def authenticate_request() -> Principal:
    """Authenticate the current request (once per request) and enforce CSRF for cookies."""
    principal: Principal | None = g.get("authgate_principal")
    if principal is not None:
        return principal
    ext = get_extension()
    token, transport = ext.transport.credential(request)
    principal = ext.service.authenticate(token, transport)
    if transport == "cookie":
        ext.transport.check_csrf(request)
    g.authgate_principal = principal
    return principal


def token_required(
    roles: Sequence[str] = (),
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """401 without a valid credential; 403 ``insufficient_role`` when a role is missing."""
    required = tuple(roles)

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            principal = authenticate_request()
            if required:
                get_extension().service.require_roles(principal, required)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """``@login_required`` is ``@token_required()``."""
    return token_required()(view)
