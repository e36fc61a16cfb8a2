"""Reading request input into validated models."""

from __future__ import annotations

from typing import TypeVar

from flask import request
from pydantic import BaseModel

from authgate.errors import BadRequestError, PayloadTooLargeError
from authgate.http.schemas import input_too_deep, parse_input
from authgate.service import ClientInfo

M = TypeVar("M", bound=BaseModel)


def read_json(model: type[M], *, optional: bool = False) -> M:
    """The JSON body validated as ``model``: 400 for malformed JSON, 422 for invalid fields."""
    if optional and not request.content_length and not request.data:
        return parse_input(model, {})
    if not request.is_json:
        raise BadRequestError("Send a JSON object with Content-Type: application/json.")
    limit = request.max_content_length
    # A chunked body has no length to refuse up front, and Werkzeug stops reading at the limit
    # without saying so: a body that reached the limit may have been cut short.
    if (
        request.content_length is None
        and limit is not None
        and len(request.get_data(cache=True)) >= limit
    ):
        raise PayloadTooLargeError()
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nesting deeper than the interpreter's stack: the parser gives up
        raise input_too_deep() from None
    if data is None:
        raise BadRequestError("The request body is not valid JSON.")
    return parse_input(model, data)


def read_query(model: type[M]) -> M:
    return parse_input(model, request.args.to_dict())


def client_info() -> ClientInfo:
    ip = request.remote_addr
    return ClientInfo(user_agent=request.user_agent.string or None, ip=ip[:64] if ip else None)
