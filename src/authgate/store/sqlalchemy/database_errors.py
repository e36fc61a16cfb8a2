"""The store's one translation of database errors: whatever SQLAlchemy or the driver raises
leaves the store as ``StoreUnavailableError`` (the original chained), so the service and the
backends above it handle store failures without naming SQLAlchemy."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from authgate.errors import StoreUnavailableError

T = TypeVar("T")


def translate_database_errors(cls: type[T]) -> type[T]:
    """Wrap every public method of a store class (its mixins' included) so that a
    ``SQLAlchemyError`` becomes ``StoreUnavailableError``; errors the methods translate
    themselves (``UserExistsError``, ...) pass through unchanged."""
    for name, method in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_"):
            setattr(cls, name, _translating(method))
    return cls


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except SQLAlchemyError as e:
            raise StoreUnavailableError() from e

    return call
