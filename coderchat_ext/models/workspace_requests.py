"""The request bodies of the workspace endpoints (docs/api.md#workspaces); see
:mod:`.requests` for how they are checked."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    Field,
    StrictBool,
    ValidationError,
    ValidatorFunctionWrapHandler,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from .requests import Request, Uuid, wrap
from .wire import refusal

WORKSPACE_NAME_MAX = 32
WORKSPACE_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$")


# --- workspaces -------------------------------------------------------------------------------

_PARAMETER_TYPE = "must be a string, number, boolean or list of strings"
ParameterValue = StrictBool | int | float | str | list[str]


def _parameters(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise refusal(
            "Invalid parameters.",
            validations=[("parameters", "must be an object of parameter values")],
        )
    try:
        return handler(value)
    except ValidationError as exc:
        keys = dict.fromkeys(str(e["loc"][0]) for e in exc.errors(include_url=False))
        raise refusal(
            "Invalid parameters.", validations=[(key, _PARAMETER_TYPE) for key in keys]
        ) from None


ParameterValues = TypeAliasType(
    "ParameterValues",
    Annotated[
        dict[str, ParameterValue],
        Field(
            description="Parameter values by name; numbers, booleans and string lists are "
            "stored as strings (decimal, true/false, a JSON array)."
        ),
    ],
)


def workspace_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a workspace (1-32 letters, digits and inner hyphens), or None."""
    if len(name) > WORKSPACE_NAME_MAX or not WORKSPACE_NAME.match(name):
        return (
            f'invalid workspace name "{name}": use 1-{WORKSPACE_NAME_MAX} letters, digits and '
            "inner hyphens"
        )
    return None


def _workspace_name(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise refusal("Invalid workspace name.", validations=[("name", "must be a string")])
    problem = workspace_name_problem(value)
    if problem:
        raise refusal(problem, validations=[("name", problem)])
    return handler(value)


class CreateWorkspaceRequest(Request):
    """``POST workspaces``."""

    parameters: Annotated[ParameterValues | None, wrap(_parameters)] = None
    name: Annotated[
        str | None,
        Field(pattern=WORKSPACE_NAME.pattern, max_length=WORKSPACE_NAME_MAX),
        wrap(_workspace_name),
    ] = None
    """Default: the template name and 4 random hex digits. Unique on the server (it names the
    workspace folder)."""
    template_id: Uuid
    preset_id: str | None = None
    """A preset ID (or name) of the template. Default: its default preset."""


_TRANSITION = refusal(
    "Invalid transition.", validations=[("transition", 'must be "start", "stop" or "delete"')]
)


def _transition(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        raise _TRANSITION from None


class CreateWorkspaceBuildRequest(Request):
    """``POST workspaces/{id}/builds``. A start uses the template's active version and the
    previous build's values for parameters not given."""

    transition: Annotated[Literal["start", "stop", "delete"], wrap(_transition)]
    parameters: Annotated[ParameterValues | None, wrap(_parameters)] = None
    preset_id: str | None = None
    """A preset ID (or name); start builds only."""

    missing: ClassVar[dict[str, PydanticCustomError]] = {"transition": _TRANSITION}


_KERNEL_REQUIRED = refusal("kernel_id is required.", validations=[("kernel_id", "required")])


def _kernel_id(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if not isinstance(value, str) or not value:
        raise _KERNEL_REQUIRED
    return handler(value)


class AttachKernelRequest(Request):
    """``POST workspaces/{id}/attach``."""

    kernel_id: Annotated[str, Field(min_length=1), wrap(_kernel_id)]
    """A running kernel of this Jupyter server."""
    agent: str | None = None
    """The external agent's name. Default: the first."""

    missing: ClassVar[dict[str, PydanticCustomError]] = {"kernel_id": _KERNEL_REQUIRED}
