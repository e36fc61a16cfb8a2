"""authgate's path parameters (ids): one path segment without control characters.

The check runs as the router converts a matched segment (a converter), not in a hook that every
request of the app would pay for. A segment with a control character is answered as an unknown
id, authgate's JSON 404 (``errors.register_error_handlers``), before any view or the database."""

from __future__ import annotations

from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter

from authgate.http.schemas import has_control_characters


class PathIdNotFound(NotFound):
    """A path id with a control character: no id of ours has one."""


class PathIdConverter(BaseConverter):
    """The converter of authgate's plain ``<id>`` path parameters."""

    def to_python(self, value: str) -> str:
        if has_control_characters(value):
            raise PathIdNotFound()
        return value
