"""The exceptions the API maps to HTTP responses, in one place (``server/base.py``).

Each carries the error body of docs/api.md#errors: ``message``, optional ``detail`` and
``validations``. Messages are upstream chatd's exact strings where it has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from .models import REFUSED, ApiErrorBody, ApiValidation

ModelT = TypeVar("ModelT", bound=BaseModel)


class ApiError(Exception):
    """A request the API refuses; ``status`` is the HTTP status code."""

    status = 500

    def __init__(
        self,
        message: str,
        detail: str | None = None,
        *,
        validations: list[tuple[str, str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.validations = validations
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body = ApiErrorBody(
            message=self.message,
            detail=self.detail,
            validations=[ApiValidation(field=f, detail=d) for f, d in self.validations]
            if self.validations
            else None,
        ).dump()
        body.update(self.extra)
        return body


class BadRequest(ApiError):
    status = 400


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class TooManyRequests(ApiError):
    status = 429


class InternalError(ApiError):
    status = 500


class Unavailable(ApiError):
    status = 503


def invalid(
    exc: ValidationError,
    message: str,
    field: str = "body",
    missing: Mapping[str, PydanticCustomError] | None = None,
) -> BadRequest:
    """The :class:`BadRequest` for a refused value (docs/api.md#errors).

    When the first problem (in field order, which is the reference's order of checks) is a
    :func:`~coderchat_ext.models.refusal`, or a required field left out that ``missing`` maps
    to one, the answer is that refusal's message, detail and validations. Otherwise it is
    ``message`` with one ``validations`` entry ``(field, detail)`` per error of ``exc``
    (``field`` is the error's dotted path in the value, or the ``field`` given when the error
    is about the whole value) and the entries joined as ``detail``."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = str(first["loc"][0]) if first["loc"] else field
    context: Any = first.get("ctx")
    if first["type"] == "missing" and len(first["loc"]) == 1 and missing:
        refused = missing.get(str(first["loc"][0]))
        context = refused.context if refused is not None else None
    if first["type"] == REFUSED or (first["type"] == "missing" and context):
        validations = context["validations"] or [(where, context["detail"] or context["message"])]
        return BadRequest(context["message"], context["detail"], validations=validations)
    validations = [
        (".".join(str(part) for part in error["loc"]) or field, error["msg"]) for error in errors
    ]
    detail = "; ".join(f"{name}: {text}" for name, text in validations)
    return BadRequest(message, detail, validations=validations)


def validate(model: type[ModelT], value: Any, message: str = "Invalid request body.") -> ModelT:
    """``value`` (a decoded JSON body) as ``model``; raises :func:`invalid`'s 400 when the
    model refuses it (a request model's ``missing`` refusals included)."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise invalid(exc, message, missing=getattr(model, "missing", None)) from None


class InsufficientStorage(ApiError):
    """507: the server's disk is full; nothing of the request was stored."""

    status = 507


def storage_full() -> InsufficientStorage:
    """The answer to a request whose write a full disk refused (``store.is_storage_full``)."""
    return InsufficientStorage(
        "The server's disk is full.", "Nothing was saved. Free disk space, then try again."
    )
