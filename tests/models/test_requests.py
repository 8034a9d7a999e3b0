"""Request models at the API's edge: the first problem in field order decides the answer, a
field's own refusal keeps the reference's words, a PATCH model knows which fields were given,
and a field that may be left out but not cleared refuses an explicit null."""

from __future__ import annotations

from typing import Any

import pytest

from coderchat_ext import errors as E
from coderchat_ext.models import (
    CreateChatRequest,
    UpdateChatRequest,
    UpdateModelConfigRequest,
    UpdateProviderRequest,
)


def refused(model: Any, body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(E.BadRequest) as caught:
        E.validate(model, body)
    return caught.value.body()


def test_the_first_problem_in_field_order_decides_the_message() -> None:
    body = refused(CreateChatRequest, {"content": [], "client_type": "cli", "labels": ["a"]})
    assert body == {
        "message": "Content is required.",
        "detail": "Content cannot be empty.",
        "validations": [{"field": "content", "detail": "Content cannot be empty."}],
    }


def test_a_problem_without_reference_words_lists_every_problem() -> None:
    body = refused(UpdateChatRequest, {"archived": "yes", "pin_order": "x"})
    assert body["message"] == "Invalid request body."
    assert [v["field"] for v in body["validations"]] == ["archived", "pin_order"]


def test_a_patch_model_changes_only_the_fields_given_and_trims_the_title() -> None:
    request = E.validate(UpdateChatRequest, {"title": "  New  ", "labels": None})
    assert request.model_fields_set == {"title", "labels"}
    assert request.title == "New"


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (UpdateChatRequest, {"title": None}, "Title cannot be empty."),
        (UpdateProviderRequest, {"display_name": None}, "Invalid request body."),
        (UpdateProviderRequest, {"api_key": None}, "Invalid request body."),
        (UpdateModelConfigRequest, {"context_limit": None}, "Context limit is required."),
        (UpdateModelConfigRequest, {"model": None}, "Model is required."),
    ],
)
def test_a_field_that_cannot_be_cleared_refuses_null(
    model: Any, body: dict[str, Any], message: str
) -> None:
    assert refused(model, body)["message"] == message


def test_a_required_field_left_out_gets_its_own_refusal() -> None:
    body = refused(CreateChatRequest, {"system_prompt": "x"})
    assert (body["message"], body["detail"]) == ("Content is required.", "Content cannot be empty.")
