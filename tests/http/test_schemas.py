"""Validation errors in plain words: each field's message is written for the person filling the
form, never pydantic's own text ("List should have at least 1 item after validation, not 0")."""

from __future__ import annotations

from typing import Any

import pytest

from authgate.errors import ValidationFailedError
from authgate.http import schemas
from authgate.http.schemas import (
    _PATTERN_MESSAGES,
    ApiTokenCreateInput,
    Input,
    ProfileInput,
    RegisterInput,
    UserAccessInput,
    UserListQuery,
    _field_message,
    parse_input,
)


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


def test_a_role_an_admin_typed_with_a_capital_says_what_a_role_may_be() -> None:
    fields = field_messages(UserAccessInput, {"roles": ["user", "Admin"]})

    assert fields == {
        "roles.1": (
            "Use 1 to 32 lowercase letters, digits, '_', ':' or '-', "
            "starting with a lowercase letter."
        )
    }


def test_a_username_with_a_space_says_what_a_username_may_be() -> None:
    fields = field_messages(ProfileInput, {"username": "a b"})

    assert fields == {
        "username": "Use 3 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit."
    }


INPUT_MODELS = [
    model
    for model in vars(schemas).values()
    if isinstance(model, type) and issubclass(model, Input) and model is not Input
]


def patterns_in(schema: object) -> set[str]:
    if isinstance(schema, dict):
        found = {schema["pattern"]} if isinstance(schema.get("pattern"), str) else set()
        return found.union(*(patterns_in(value) for value in schema.values()))
    if isinstance(schema, list):
        return set().union(*(patterns_in(value) for value in schema))
    return set()


def test_every_pattern_of_an_input_has_plain_words() -> None:
    found = set().union(*(patterns_in(model.model_json_schema()) for model in INPUT_MODELS))

    assert found  # the walk sees the patterns (username, roles)
    assert found <= set(_PATTERN_MESSAGES), found - set(_PATTERN_MESSAGES)


WRONG_VALUES: list[object] = [
    None, True, 1, -1, 1.5, 10**30, "", " ", "x", "Admin", "a b", "x" * 5000, "not-an-email",
    [], {}, ["x"], [1], [None], ["Admin"], ["a"] * 40, {"a": 1},
]  # fmt: skip


@pytest.mark.parametrize("model", INPUT_MODELS, ids=lambda model: model.__name__)
def test_no_wrong_value_of_any_input_gets_pydantics_wording(model: type[Input]) -> None:
    seen = 0
    for field in model.model_fields:
        for value in WRONG_VALUES:
            try:
                parse_input(model, {field: value})
            except ValidationFailedError as e:
                for name, message in e.fields.items():
                    seen += 1
                    assert "should" not in message and "Input" not in message, (name, message)
                    assert "pattern" not in message and "^" not in message, (name, message)
    assert seen


def test_an_error_of_a_kind_not_foreseen_is_invalid_value_not_pydantics_text() -> None:
    error = {"type": "dict_type", "loc": ("x",), "msg": "Input should be a valid dictionary"}

    assert _field_message(error) == "Invalid value."
