"""Request-scoped access to the caller: ``current_user``, ``current_principal``."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from flask import current_app, g
from werkzeug.local import LocalProxy

from authgate.errors import AuthenticationRequiredError, NotFoundError
from authgate.service import Principal
from authgate.store.records import UserRecord
from authgate.tenancy import TenantAccess

if TYPE_CHECKING:
    from authgate.integrations.flask.extension import AuthGateState

EXTENSION_KEY = "authgate"


def get_extension() -> AuthGateState:
    """This app's authgate state (settings, service, transport)."""
    return cast("AuthGateState", current_app.extensions[EXTENSION_KEY])


def _principal() -> Principal:
    principal: Principal | None = g.get("authgate_principal")
    if principal is None:
        raise AuthenticationRequiredError()
    return principal


def _user() -> UserRecord:
    return _principal().user


def _tenant() -> TenantAccess:
    tenant: TenantAccess | None = g.get("authgate_tenant")
    if tenant is None:
        raise NotFoundError("No tenant in this request.")
    return tenant


current_principal: Principal = cast(Principal, LocalProxy(_principal))
current_tenant: TenantAccess = cast(TenantAccess, LocalProxy(_tenant))
current_user: UserRecord = cast(UserRecord, LocalProxy(_user))
