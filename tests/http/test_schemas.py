"""Validation errors in plain words: each field's message is written for the person filling the
form, never pydantic's own text ("List should have at least 1 item after validation, not 0")."""

from __future__ import annotations

import time
from typing import Any

import pytest

from authgate.errors import BadRequestError, ValidationFailedError
from authgate.http import schemas
from authgate.http.schemas import (
    _PATTERN_MESSAGES,
    MAX_FIELD_ERRORS,
    MAX_INPUT_DEPTH,
    MAX_INPUT_ENTRIES,
    ROLE_PATTERN,
    ApiTokenCreateInput,
    Input,
    LoginInput,
    ProfileInput,
    RegisterInput,
    UserAccessInput,
    UserListQuery,
    _field_message,
    has_control_characters,
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
QUERY_MODELS = (UserListQuery, schemas.AuditListQuery, schemas.ActivityQuery)


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


# Hostile shapes: refused in one bounded walk, before pydantic or anything recursive --------------


def nested(depth: int, leaf: object = "x") -> object:
    """``leaf`` inside ``depth`` lists, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [33, 350, 980, 100_000])
def test_a_body_nested_deeper_than_the_bound_is_400_whatever_the_depth(depth: int) -> None:
    # The login body itself is one level: the field holds depth - 1 more.
    with pytest.raises(BadRequestError) as caught:
        parse_input(LoginInput, {"login": nested(depth - 1), "password": "x"})

    assert caught.value.message == "The request body is nested too deeply: at most 32 levels."


def test_a_body_at_the_depth_bound_reaches_field_validation() -> None:
    fields = field_messages(LoginInput, {"login": nested(MAX_INPUT_DEPTH - 1), "password": "x"})

    assert fields == {"login": "Must be a string."}


def test_control_characters_are_found_at_any_depth_without_recursion() -> None:
    assert has_control_characters(nested(100_000, "a\x00b"))
    assert not has_control_characters(nested(100_000, "tab\tnewline\ncr\r"))
    assert has_control_characters({"k\x1f": 1})
    with pytest.raises(BadRequestError, match="control characters"):
        parse_input(LoginInput, {"login": nested(3, "\x07"), "password": "x"})


def test_fifty_thousand_unknown_keys_are_refused_at_once() -> None:
    body = {f"k{i}": 1 for i in range(50_000)} | {"login": "ada", "password": "x"}

    started = time.perf_counter()
    with pytest.raises(BadRequestError) as caught:
        parse_input(LoginInput, body)

    assert time.perf_counter() - started < 0.05  # was 0.26 s here, 2-4 s on a loaded worker
    assert caught.value.message == (
        "The request body has more than 256 fields and list items; "
        "no authgate request needs that many."
    )


def test_entries_are_counted_across_the_whole_body() -> None:
    with pytest.raises(BadRequestError):
        parse_input(UserAccessInput, {"roles": ["user"] * MAX_INPUT_ENTRIES})  # 1 + 256
    fields = field_messages(UserAccessInput, {"roles": ["user"] * (MAX_INPUT_ENTRIES - 1)})
    assert fields == {"roles": "Give at most 32 items."}


def test_at_most_twenty_field_errors_are_listed_the_models_own_fields_first() -> None:
    body = {f"extra{i:02}": 1 for i in range(40)} | {"login": ""}

    with pytest.raises(ValidationFailedError) as caught:
        parse_input(LoginInput, body)

    fields = caught.value.fields
    assert len(fields) == MAX_FIELD_ERRORS == 20
    assert list(fields)[:2] == ["login", "password"]
    assert fields["password"] == "This field is required."
    assert all(fields[name] == "Unknown field." for name in list(fields)[2:])
    assert caught.value.message == "42 fields are invalid; the first 20 are listed."


def test_a_few_field_errors_keep_the_usual_message() -> None:
    with pytest.raises(ValidationFailedError) as caught:
        parse_input(LoginInput, {"login": "", "unknown": 1})

    assert caught.value.message == "Some fields are invalid."
    assert caught.value.fields == {
        "login": "This field cannot be empty.",
        "password": "This field is required.",
        "unknown": "Unknown field.",
    }


# null: accepted only where it is a value, and the schema says which -----------------------------

# Where null is a value (docs/api.md, "Input rules"): the field's "none" or its default.
NULLABLE = {
    ("RegisterInput", "name"),  # no name
    ("RegisterInput", "username"),  # no username
    ("RegisterInput", "invitation_token"),  # no invitation: registers unverified
    ("ProfileInput", "name"),  # clears the name
    ("ProfileInput", "username"),  # clears the username
    ("RefreshInput", "refresh_token"),  # none in the body: the cookie's
    ("ApiTokenCreateInput", "tenant_id"),  # the personal tenant
    ("ApiTokenCreateInput", "resource"),  # bound to no resource
    ("ApiTokenCreateInput", "expires_in_days"),  # the default lifetime
}


def accepts_null_in_schema(model: type[Input], field: str) -> bool:
    schema = model.model_json_schema()["properties"][field]
    return {"type": "null"} in schema.get("anyOf", []) or schema.get("type") == "null"


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (model, field)
        for model in INPUT_MODELS
        if model not in QUERY_MODELS  # a query string has no null
        for field in model.model_fields
    ],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_null_is_refused_naming_the_field_unless_it_is_a_value_there(
    model: type[Input], field: str
) -> None:
    try:
        parse_input(model, {field: None})
        refused: dict[str, str] = {}
    except ValidationFailedError as e:
        refused = {name: message for name, message in e.fields.items() if name == field}

    nullable = (model.__name__, field) in NULLABLE
    assert (not refused) == nullable, refused
    assert accepts_null_in_schema(model, field) == nullable  # the OpenAPI document agrees
    if not nullable:
        assert "null" in refused[field]


def test_a_null_role_or_status_says_to_leave_the_field_out() -> None:
    assert field_messages(UserAccessInput, {"roles": None, "status": None}) == {
        "roles": "Cannot be null: leave the field out to keep the current value.",
        "status": "Cannot be null: leave the field out to keep the current value.",
    }
    assert field_messages(UserAccessInput, {"roles": ["user", None]}) == {
        "roles.1": "Cannot be null."
    }
    assert parse_input(UserAccessInput, {}) == UserAccessInput()  # left out: unchanged


def test_a_field_that_refuses_null_has_no_null_default_in_its_schema() -> None:
    properties = UserAccessInput.model_json_schema()["properties"]

    assert properties["roles"] == {
        "items": {"maxLength": 4096, "pattern": ROLE_PATTERN, "type": "string"},
        "maxItems": 32,
        "title": "Roles",
        "type": "array",
    }
    assert properties["status"] == {
        "enum": ["active", "disabled"],
        "title": "Status",
        "type": "string",
    }
