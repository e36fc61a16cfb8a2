"""Reading request input into validated models."""

from __future__ import annotations

from typing import TypeVar

from flask import request
from pydantic import BaseModel

from authgate.errors import BadRequestError
from authgate.schemas import parse_input
from authgate.service import ClientInfo

M = TypeVar("M", bound=BaseModel)


def read_json(model: type[M], *, optional: bool = False) -> M:
    """The JSON body validated as ``model``: 400 for malformed JSON, 422 for invalid fields."""
    if optional and not request.content_length and not request.data:
        return parse_input(model, {})
    if not request.is_json:
        raise BadRequestError("Send a JSON object with Content-Type: application/json.")
    data = request.get_json(silent=True)
    if data is None:
        raise BadRequestError("The request body is not valid JSON.")
    return parse_input(model, data)


def read_query(model: type[M]) -> M:
    return parse_input(model, request.args.to_dict())


def client_info() -> ClientInfo:
    return ClientInfo(user_agent=request.user_agent.string or None, ip=request.remote_addr)
