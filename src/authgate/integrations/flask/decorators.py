"""``token_required`` / ``login_required``: protect a view with a session or an API token."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from flask import Request

from authgate.integrations.flask.context import (
    AUTHENTICATOR_KEY,
    current_flask_app,
    current_request,
    request_globals,
)
from authgate.service import Principal, TenantAccess

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C")

Resource = str | Callable[..., str] | None


class Authenticator(Protocol[C]):
    """What ``token_required`` asks of the app's extension: ``AuthGate(app)`` (its
    ``AuthGateState``: sessions and API tokens, every decision by the service) or
    ``ResourceServer(app)`` (access tokens verified offline, roles only)."""

    def authenticate(self, request: Request) -> C:
        """The caller of ``request``; 401 (an ``AuthError``) without a valid credential."""
        ...

    def authorize(
        self,
        caller: C,
        *,
        roles: Sequence[str],
        scopes: Sequence[str],
        resource: str | None,
        tenant_id: str | None,
        tenant_roles: Sequence[str],
        sessions_only: bool,
    ) -> TenantAccess | None:
        """Whether ``caller`` may do what a view declares; the tenant in scope."""
        ...

    def require_fresh(self, caller: C) -> None:
        """403 ``reauthentication_required`` unless ``caller``'s login is recent (its access
        token's ``auth_time``): ``token_required(fresh=True)``."""
        ...


def current_authenticator() -> Authenticator[Any]:
    try:
        return cast("Authenticator[Any]", current_flask_app().extensions[AUTHENTICATOR_KEY])
    except KeyError:
        raise RuntimeError(
            "Neither AuthGate(app) nor ResourceServer(app) is set up on this app."
        ) from None


def authenticate_request() -> Principal:
    """Authenticate the current request (once per request; CSRF enforced for cookies)."""
    state = request_globals()
    principal: Principal | None = state.get("authgate_principal")
    if principal is None:
        principal = current_authenticator().authenticate(current_request())
        state.authgate_principal = principal
    return principal


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
    fresh: bool = False,
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

    ``fresh=True``: a sensitive action; the caller's login session must have authenticated
    (logged in, or ``POST /api/auth/reauthenticate``) within ``AUTHGATE_REAUTH_SECONDS`` (a
    ``ResourceServer``: its ``reauth_seconds``), else 403 ``reauthentication_required``.
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
            # A view under a tenant (a ``tenant_id`` argument) always checks membership.
            if declares_anything or principal.api_token is not None or "tenant_id" in kwargs:
                request_globals().authgate_tenant = current_authenticator().authorize(
                    principal,
                    roles=required,
                    scopes=required_scopes,
                    resource=_resource_for(resource, resource_names, kwargs),
                    tenant_id=cast("str | None", kwargs.get("tenant_id")),
                    tenant_roles=required_tenant_roles,
                    sessions_only=sessions_only,
                )
            if fresh:
                current_authenticator().require_fresh(principal)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """``@login_required`` is ``@token_required()``."""
    return token_required()(view)
