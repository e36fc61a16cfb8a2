"""Role checks: the one rule for "the caller must hold these roles"."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence

from authgate.errors import InsufficientRoleError

# A role name: what a user's roles, ``AUTHGATE_ROLES`` and ``token_required(roles=...)`` hold.
ROLE_PATTERN = r"^[a-z][a-z0-9_:-]{0,31}$"
# The roles every deployment knows: what a new account gets, and the administrator's.
BUILTIN_ROLES = ("user", "admin")


def require_roles(held: Collection[str], required: Sequence[str]) -> None:
    """``InsufficientRoleError`` (403) naming every role in ``required`` not in ``held``."""
    missing = [role for role in required if role not in held]
    if missing:
        raise InsufficientRoleError(f"This action requires the role(s): {', '.join(missing)}.")


def is_role_name(value: str) -> bool:
    return re.fullmatch(ROLE_PATTERN, value) is not None


def known_roles(configured: Iterable[str]) -> tuple[str, ...]:
    """The roles a deployment knows: the built-in ones, then those it configured
    (``AUTHGATE_ROLES``), each once, in that order."""
    return tuple(dict.fromkeys((*BUILTIN_ROLES, *configured)))


def unknown_roles(
    requested: Iterable[str], *, known: Collection[str], held: Collection[str] = ()
) -> list[str]:
    """The roles in ``requested`` that are neither known nor already ``held`` (a role a user
    holds from before, say imported, may be kept, not newly given)."""
    return [role for role in requested if role not in known and role not in held]
