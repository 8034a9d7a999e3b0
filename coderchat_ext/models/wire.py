"""The base of every wire type and the helpers of ids and times
(docs/data-model.md#conventions).

Everything serializes to snake_case JSON; ``None`` fields are omitted on the wire (``dump()``).
"""

from __future__ import annotations

import datetime as _dt
import uuid
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

NIL_UUID = "00000000-0000-0000-0000-000000000000"
MAX_PAGE_LIMIT = 200
"""The largest ``limit`` of the list endpoints (docs/api.md#limits): enforced by the server
(``server.base``), and the page size of clients that read a whole history."""


def utcnow() -> str:
    """Now as RFC 3339 UTC with microseconds and a ``Z`` suffix (docs/data-model.md#conventions)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    """A new random UUID string (the id type of chats, configs, workspaces, ...)."""
    return str(uuid.uuid4())


def parse_uuid(value: Any) -> str | None:
    """The canonical form of a UUID string, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


class Wire(BaseModel):
    """Base for wire types: ignores unknown fields when reading, omits ``None`` when writing."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def dump(self) -> dict[str, Any]:
        """The JSON-ready dict of this object without ``None`` fields."""
        return self.model_dump(mode="json", exclude_none=True)


# Fields removed by strip_internal() before a part leaves the server


class ApiValidation(Wire):
    field: str
    detail: str


class ApiErrorBody(Wire):
    """The error body of every endpoint (docs/api.md#errors)."""

    message: str
    detail: str | None = None
    validations: list[ApiValidation] | None = None


# --- refusals: a request field's own message (docs/api.md#errors) ----------------------------

REFUSED = "refused"
"""The pydantic error type of a :func:`refusal`; ``errors.invalid`` answers its ``message`` and
``detail`` instead of the generic "Invalid request body."."""


def refusal(
    message: str,
    detail: str | None = None,
    *,
    validations: list[tuple[str, str]] | None = None,
) -> PydanticCustomError:
    """A validation error whose 400 answer is ``message`` with ``detail`` (upstream's strings)
    and ``validations`` (by default one entry: the field and ``detail`` or ``message``)."""
    return PydanticCustomError(
        REFUSED,
        "{summary}",
        {
            "summary": detail or message,
            "message": message,
            "detail": detail,
            "validations": validations,
        },
    )


def refused_as(
    message: str | None,
    detail: str | None = None,
    /,
    *,
    validations: list[tuple[str, str]] | None = None,
    null: bool = True,
    **by_type: str,
) -> WrapValidator:
    """A field validator that answers any problem of the field as :func:`refusal`
    ``(message, detail, validations)``; ``by_type`` maps a pydantic error type
    (``string_too_long``, ...) to another message for that problem. With ``message`` None,
    the problems ``by_type`` does not name stay "Invalid request body." ones. With ``null``
    False an explicit null is refused too (a field that may be left out but not cleared)."""

    def wrap(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if value is None and not null and message is not None:
            raise refusal(message, detail, validations=validations)
        try:
            return handler(value)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            text = by_type.get(first["type"], message)
            if first["type"] == REFUSED or text is None:
                raise
            raise refusal(text, detail, validations=validations) from None

    return WrapValidator(wrap)
