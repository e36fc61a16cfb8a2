"""``token_required`` / ``login_required``: protect a view with a session or an API token."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import current_app, g, request

from authgate.integrations.flask.context import get_extension
from authgate.integrations.flask.resource_server import RESOURCE_SERVER_KEY, TokenPrincipal
from authgate.service import Principal

P = ParamSpec("P")
R = TypeVar("R")

Resource = str | Callable[..., str] | None


def authenticate_request() -> Principal:
    """Authenticate the current request (once per request) and enforce CSRF for cookies."""
    principal: Principal | None = g.get("authgate_principal")
    if principal is not None:
        return principal
    try:
        ext = get_extension()
    except KeyError:
        return _authenticate_offline()  # type: ignore[return-value]
    token, transport = ext.transport.credential(request)
    principal = ext.service.authenticate(token, transport, ip=(request.remote_addr or "")[:64])
    if transport == "cookie":
        ext.transport.check_csrf(request)
    g.authgate_principal = principal
    return principal


def _authenticate_offline() -> TokenPrincipal:
    """In a ``ResourceServer`` app: the access token, verified with authgate's public keys."""
    server = current_app.extensions.get(RESOURCE_SERVER_KEY)
    if server is None:
        raise RuntimeError("Neither AuthGate(app) nor ResourceServer(app) is set up on this app.")
    principal: TokenPrincipal = server.authenticate(request)
    g.authgate_principal = principal
    return principal


def _authorize_offline(principal: TokenPrincipal, roles: tuple[str, ...], offline_ok: bool) -> None:
    if not offline_ok:
        raise RuntimeError(
            "token_required(scopes=, resource=, tenant_roles=) and tenant views need "
            "AuthGate(app); a ResourceServer checks roles only."
        )
    principal.require_roles(roles)


def _resource_names(resource: Resource, view: Callable[..., Any]) -> tuple[str, ...]:
    """The view arguments a resource function takes; checked once, when the view is decorated,
    so that a mistake is an error at import time rather than a 500 at request time."""
    if resource is None or isinstance(resource, str):
        return ()
    names = tuple(inspect.signature(resource).parameters)
    missing = set(names) - set(inspect.signature(view).parameters)
    if missing:
        raise TypeError(
            f"token_required(resource=...) of {view.__name__} takes {', '.join(sorted(missing))}, "
            "which the view does not have"
        )
    return names


def _resource_for(
    resource: Resource, names: tuple[str, ...], view_args: dict[str, Any]
) -> str | None:
    if resource is None or isinstance(resource, str):
        return resource
    return resource(**{name: view_args[name] for name in names})


def token_required(
    roles: Sequence[str] = (),
    *,
    scopes: Sequence[str] = (),
    resource: Resource = None,
    tenant_roles: Sequence[str] = (),
    sessions_only: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Protect a view. 401 without a valid credential; 403 when the caller lacks a role
    (``insufficient_role``), a token scope (``insufficient_scope``), the token's resource or
    tenant does not match, or an API token is used where only a login session may act.

    ``resource`` is the resource the view acts on (a string, or a function of the view's
    arguments such as ``lambda dialog_id: f"dialog:{dialog_id}"``); an API token bound to a
    resource works only where the view declares that resource. ``tenant_roles`` checks the
    caller's role in the tenant of the request: the view argument ``tenant_id``, else the API
    token's tenant. A view with a ``tenant_id`` argument always requires membership (404 for
    others), roles or not. The tenant in scope is ``current_tenant``.
    """
    required = tuple(roles)
    required_scopes = tuple(scopes)
    required_tenant_roles = tuple(tenant_roles)
    # A login session passing a view that declares nothing needs no further decision.
    declares_anything = bool(
        required or required_scopes or required_tenant_roles or sessions_only or resource
    )

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        resource_names = _resource_names(resource, view)

        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            principal = authenticate_request()
            if isinstance(principal, TokenPrincipal):
                offline_ok = not (required_scopes or required_tenant_roles or resource)
                _authorize_offline(principal, required, offline_ok and "tenant_id" not in kwargs)
                return view(*args, **kwargs)
            # A view under a tenant (a ``tenant_id`` argument) always checks membership.
            if declares_anything or principal.api_token is not None or "tenant_id" in kwargs:
                g.authgate_tenant = get_extension().service.authorize(
                    principal,
                    roles=required,
                    scopes=required_scopes,
                    resource=_resource_for(resource, resource_names, kwargs),
                    tenant_id=kwargs.get("tenant_id"),  # type: ignore[arg-type]
                    tenant_roles=required_tenant_roles,
                    sessions_only=sessions_only,
                )
            return view(*args, **kwargs)

        return wrapper

    return decorate


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """``@login_required`` is ``@token_required()``."""
    return token_required()(view)
