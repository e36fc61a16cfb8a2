"""authgate: authentication for full-stack web apps (Flask extension and standalone server).

The Flask names are imported lazily so that ``authgate.core`` stays importable without Flask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authgate.version import __version__

__all__ = [
    "AuthGate",
    "ResourceServer",
    "__version__",
    "current_principal",
    "current_tenant",
    "current_user",
    "login_required",
    "token_required",
]

_FLASK_NAMES = frozenset(__all__) - {"__version__"}

if TYPE_CHECKING:
    from authgate.integrations.flask import (
        AuthGate,
        ResourceServer,
        current_principal,
        current_tenant,
        current_user,
        login_required,
        token_required,
    )


def __getattr__(name: str) -> Any:
    if name in _FLASK_NAMES:
        from authgate.integrations import flask

        return getattr(flask, name)
    raise AttributeError(f"module 'authgate' has no attribute {name!r}")
