"""The exceptions the API maps to HTTP responses, in one place (``server/base.py``).

Each carries the error body of docs/api.md#errors: ``message``, optional ``detail`` and
``validations``. Messages are upstream chatd's exact strings where it has them.
"""

from __future__ import annotations

from typing import Any

from .models import ApiErrorBody, ApiValidation


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
