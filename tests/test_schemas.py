"""Validation errors in plain words: each field's message is written for the person filling the
form, never pydantic's own text ("List should have at least 1 item after validation, not 0")."""

from __future__ import annotations

from typing import Any

import pytest

from authgate.errors import ValidationFailedError
from authgate.schemas import ApiTokenCreateInput, Input, RegisterInput, UserListQuery, parse_input


def field_messages(model: type[Input], data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationFailedError) as caught:
        parse_input(model, data)
    return dict(caught.value.fields)


def test_an_empty_scope_list_asks_to_choose_a_scope() -> None:
    fields = field_messages(ApiTokenCreateInput, {"name": "ci", "scopes": []})

    assert fields == {"scopes": "Choose at least one scope."}


def test_limits_are_said_with_their_numbers() -> None:
    fields = field_messages(
        ApiTokenCreateInput,
        {"name": "x" * 101, "scopes": ["read"] * 33, "expires_in_days": 0},
    )

    assert fields == {
        "name": "Use at most 100 characters.",
        "scopes": "Give at most 32 items.",
        "expires_in_days": "Must be at least 1.",
    }


def test_empty_text_wrong_types_and_choices() -> None:
    assert field_messages(ApiTokenCreateInput, {"name": " ", "scopes": ["read"]}) == {
        "name": "This field cannot be empty."
    }
    assert field_messages(
        ApiTokenCreateInput, {"name": "ci", "scopes": ["read"], "expires_in_days": "soon"}
    ) == {"expires_in_days": "Must be a whole number."}
    assert field_messages(UserListQuery, {"per_page": "many"}) == {
        "per_page": "Must be a whole number."
    }


def test_an_invalid_email_keeps_the_reason_without_pydantic_wording() -> None:
    fields = field_messages(RegisterInput, {"email": "nope", "password": "x" * 12})

    assert fields == {"email": "Enter a valid email address. An email address must have an @-sign."}


@pytest.mark.parametrize(
    "data",
    [
        {"name": "", "scopes": []},
        {"name": "x" * 101, "scopes": ["r" * 65], "expires_in_days": -1},
        {"name": 1, "scopes": "read", "tenant_id": 2, "extra": True},
    ],
)
def test_no_message_is_pydantics_raw_text(data: dict[str, Any]) -> None:
    for message in field_messages(ApiTokenCreateInput, data).values():
        assert "should" not in message and "Input" not in message, message
