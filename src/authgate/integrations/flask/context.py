"""An app's authgate state, and request-scoped access to the caller: ``current_user``,
``current_principal``, ``current_tenant``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from flask import Flask, Request, current_app, g, request
from werkzeug.local import LocalProxy

from authgate.config import Settings
from authgate.errors import AuthenticationRequiredError, NotFoundError
from authgate.integrations.flask.legacy_sessions import exchange_legacy_session
from authgate.integrations.flask.transport import Transport
from authgate.service import AuthService, Principal, TenantAccess
from authgate.store.records import UserRecord

if TYPE_CHECKING:
    from flask.ctx import _AppCtxGlobals

EXTENSION_KEY = "authgate"
# Where ``token_required`` finds the app's authenticator: an ``AuthGateState`` or a
# ``ResourceServer`` (see ``authgate.integrations.flask.decorators.Authenticator``).
AUTHENTICATOR_KEY = "authgate_authenticator"


@dataclass(frozen=True)
class AuthGateState:
    """What one Flask app uses: its settings, its service, its transport; the app's
    authenticator, which leaves every decision to the service."""

    settings: Settings
    service: AuthService
    transport: Transport

    def authenticate(self, request: Request) -> Principal:
        try:
            token, transport = self.transport.credential(request)
        except AuthenticationRequiredError:
            if not self.service.legacy_sessions.enabled:
                raise
            # The dual run: the previous app's session token, exchanged for one of ours.
            return exchange_legacy_session(self.service, self.transport, request)
        principal = self.service.authenticate(token, transport, ip=(request.remote_addr or "")[:64])
        if transport == "cookie":
            self.transport.check_csrf(request)
        return principal

    def authorize(
        self,
        caller: Principal,
        *,
        roles: Sequence[str],
        scopes: Sequence[str],
        resource: str | None,
        tenant_id: str | None,
        tenant_roles: Sequence[str],
        sessions_only: bool,
    ) -> TenantAccess | None:
        return self.service.authorization.authorize(
            caller,
            roles=roles,
            scopes=scopes,
            resource=resource,
            tenant_id=tenant_id,
            tenant_roles=tenant_roles,
            sessions_only=sessions_only,
        )

    def require_fresh(self, caller: Principal) -> None:
        self.service.authorization.require_recent_authentication(caller)


# The objects behind Flask's context proxies. Each attribute read through a proxy looks the
# object up again; the hot path (``token_required``, ``current_user``) looks up each once.


def current_flask_app() -> Flask:
    return cast("LocalProxy[Flask]", current_app)._get_current_object()


def current_request() -> Request:
    return cast("LocalProxy[Request]", request)._get_current_object()


def request_globals() -> _AppCtxGlobals:
    """The current ``g``."""
    return cast("LocalProxy[_AppCtxGlobals]", g)._get_current_object()


def get_extension() -> AuthGateState:
    """This app's authgate state (settings, service, transport)."""
    return cast(AuthGateState, current_flask_app().extensions[EXTENSION_KEY])


def _principal() -> Principal:
    principal: Principal | None = request_globals().get("authgate_principal")
    if principal is None:
        raise AuthenticationRequiredError()
    return principal


def _user() -> UserRecord:
    return _principal().user


def _tenant() -> TenantAccess:
    tenant: TenantAccess | None = request_globals().get("authgate_tenant")
    if tenant is None:
        raise NotFoundError("No tenant in this request.")
    return tenant


current_principal: Principal = cast(Principal, LocalProxy(_principal))
current_tenant: TenantAccess = cast(TenantAccess, LocalProxy(_tenant))
current_user: UserRecord = cast(UserRecord, LocalProxy(_user))
