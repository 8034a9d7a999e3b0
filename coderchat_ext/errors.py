"""The exceptions the API maps to HTTP responses, in one place (``server/base.py``).

Each carries the body of DESIGN §5: ``message``, optional ``detail`` and ``validations``.
Messages are the reference's exact strings where it gives them.
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


class InsufficientStorage(ApiError):
    """507: the server's disk is full; nothing of the request was stored."""

    status = 507


def storage_full() -> InsufficientStorage:
    """The answer to a request whose write a full disk refused (``store.is_storage_full``)."""
    return InsufficientStorage(
        "The server's disk is full.", "Nothing was saved. Free disk space, then try again."
    )
