"""The Flask integration: ``AuthGate``, ``token_required``, ``login_required``, ``current_user``."""

from authgate.integrations.flask.context import current_principal, current_tenant, current_user
from authgate.integrations.flask.decorators import login_required, token_required
from authgate.integrations.flask.extension import AuthGate
from authgate.integrations.flask.resource_server import ResourceServer

__all__ = [
    "AuthGate",
    "ResourceServer",
    "current_principal",
    "current_tenant",
    "current_user",
    "login_required",
    "token_required",
]
