"""Role checks: the one rule for "the caller must hold these roles"."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from authgate.errors import InsufficientRoleError


def require_roles(held: Collection[str], required: Sequence[str]) -> None:
    """``InsufficientRoleError`` (403) naming every role in ``required`` not in ``held``."""
    missing = [role for role in required if role not in held]
    if missing:
        raise InsufficientRoleError(f"This action requires the role(s): {', '.join(missing)}.")
