"""The layering holds: the core imports no framework; the public API is what we say it is."""

from __future__ import annotations

import subprocess
import sys

import authgate


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_core_imports_no_framework_or_orm() -> None:
    loaded = _modules_after_import(
        "authgate.core.tokens, authgate.core.passwords, "
        "authgate.core.origins, authgate.core.csrf, authgate.core.keys"
    )
    assert "flask" not in loaded
    assert "sqlalchemy" not in loaded


def test_service_imports_no_flask() -> None:
    assert "flask" not in _modules_after_import("authgate.service")


def test_public_api_is_locked() -> None:
    assert sorted(authgate.__all__) == [
        "AuthGate",
        "ResourceServer",
        "__version__",
        "current_principal",
        "current_tenant",
        "current_user",
        "login_required",
        "token_required",
    ]
    for name in authgate.__all__:
        assert getattr(authgate, name) is not None
