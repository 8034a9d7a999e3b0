"""The request bodies of the API (docs/api.md), validated at its edge (``server/base.py``
``body_as``) and handed to the services typed.

Each limit is a ``Field`` constraint defined here once, so the OpenAPI document shows it. A
problem the reference answers with its own words is a :func:`~.wire.refusal` (its message and
detail); any other is "Invalid request body." with ``validations`` (``errors.invalid``).
A request model reads JSON types exactly (strict: no coercion) and ignores unknown fields.
A PATCH model changes only the fields present (``model_fields_set``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from .chat import ChatMessagePart, DynamicTool
from .wire import refusal, refused_as

MAX_ROW_ID = 2**63 - 1
"""SQLite's largest INTEGER: no row has a larger id, and a larger value cannot be bound."""
MAX_TITLE_CHARS = 200
MAX_LABELS = 50
MAX_LABEL_VALUE_CHARS = 256
LABEL_KEY = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
MAX_DYNAMIC_TOOLS = 250
MAX_CHAT_SYSTEM_PROMPT_CHARS = 10_000
"""A chat's own system prompt, in characters (docs/api.md#chats)."""

Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
"""A UUID string; the services look it up (and answer their own error when it is not one)."""


def _drop_null_defaults(schema: dict[str, Any]) -> None:
    # A field that may be left out but not null shows no ``default: null`` in the document.
    for prop in schema.get("properties", {}).values():
        if prop.get("default", ...) is None and {"type": "null"} not in prop.get("anyOf", ()):
            del prop["default"]


class Request(BaseModel):
    """A request body: JSON types exactly (no coercion), unknown fields ignored.

    ``missing`` maps a required field to the refusal answered when it is left out (the
    reference's message for it; otherwise "Invalid request body.")."""

    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        protected_namespaces=(),
        use_attribute_docstrings=True,
        populate_by_name=True,
        json_schema_extra=_drop_null_defaults,
    )
    missing: ClassVar[dict[str, PydanticCustomError]] = {}


def wrap(function: Any) -> WrapValidator:
    """``function(value, handler)`` as a pydantic wrap validator."""
    return WrapValidator(function)


def first_error(exc: ValidationError) -> Any:
    """The first problem of ``exc`` (in field order)."""
    return exc.errors(include_url=False)[0]


# --- user input -------------------------------------------------------------------------------


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


class ChatInputTextPart(Request):
    type: Literal["text"]
    text: Annotated[str, Field(min_length=1)]

    _text = field_validator("text")(classmethod(lambda cls, v: _not_blank(v)))


class ChatInputFilePart(Request):
    """An uploaded file (uploads are not supported yet: always 400)."""

    type: Literal["file"]
    file_id: Uuid


class ChatInputFileReferencePart(Request):
    type: Literal["file-reference"]
    file_name: Annotated[str, Field(min_length=1)]
    start_line: Annotated[int, Field(ge=1)] | None = None
    end_line: Annotated[int, Field(ge=1)] | None = None
    content: str | None = None


ChatInputPart = TypeAliasType(
    "ChatInputPart",
    Annotated[
        ChatInputTextPart | ChatInputFilePart | ChatInputFileReferencePart,
        Field(discriminator="type"),
    ],
)

_PARTS: TypeAdapter[list[Any]] = TypeAdapter(list[ChatInputPart])
_PART_FIELD_PROBLEMS = {
    "text": "text cannot be empty",
    "file_id": "file_id is required for file parts",
    "file_name": "file_name is required for file-reference parts",
    "start_line": "start_line must be a positive integer",
    "end_line": "end_line must be a positive integer",
}


def _part_problem(error: Any, items: list[Any]) -> str:
    """The reference's detail for the first problem of an input part
    (``createChatInputFromParts``)."""
    index = error["loc"][0]
    where = f"content[{index}]"
    if len(error["loc"]) == 1:
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            kind = items[index].get("type")
            return f'{where}.type "{kind}" is not supported.'
        return f"{where} must be an object."
    field = str(error["loc"][-1] if error["loc"][-1] in _PART_FIELD_PROBLEMS else error["loc"][2])
    return f"{where}.{_PART_FIELD_PROBLEMS.get(field, field + ' is invalid')}."


def _content(value: Any, handler: ValidatorFunctionWrapHandler) -> list[Any]:
    if value is None or value == [] or value == "":
        raise refusal("Content is required.", "Content cannot be empty.")
    if isinstance(value, str):
        value = [{"type": "text", "text": value}]
    if not isinstance(value, list):
        raise refusal("Invalid input part.", "content must be an array of parts.")
    try:
        # Validated as parts, not through the field's union: the shorthand is expanded above.
        parts = _PARTS.validate_python(value)
    except ValidationError as exc:
        raise refusal("Invalid input part.", _part_problem(first_error(exc), value)) from None
    for index, part in enumerate(parts):
        if part.type == "file":
            raise refusal(
                "Invalid input part.",
                f"content[{index}].file_id references a file that does not exist.",
            )
    if not any(part.type in ("text", "file") for part in parts):
        raise refusal("Invalid input part.", "content must include at least one text or file part.")
    return parts


Content = Annotated[
    Annotated[str, Field(min_length=1, description="Shorthand for one text part.")]
    | Annotated[list[ChatInputPart], Field(min_length=1)],
    wrap(_content),
]


class _UserInput(Request):
    """A body with ``content``, which each subclass declares where it is checked in the
    reference's order."""

    if TYPE_CHECKING:
        content: Content

    missing: ClassVar[dict[str, PydanticCustomError]] = {
        "content": refusal("Content is required.", "Content cannot be empty."),
    }

    def message_parts(self) -> list[ChatMessagePart]:
        """The input as message parts (``content`` after validation is a list of parts)."""
        assert isinstance(self.content, list)
        return [ChatMessagePart.model_validate(part.model_dump()) for part in self.content]


# --- chats ------------------------------------------------------------------------------------


def _system_prompt(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError as exc:
        if first_error(exc)["type"] != "string_too_long":
            raise
        raise refusal(
            "System prompt exceeds maximum length.",
            f"System prompt must be at most {MAX_CHAT_SYSTEM_PROMPT_CHARS} characters, got "
            f"{len(value)}.",
        ) from None


_LABELS_DETAIL = f"labels must be an object of at most {MAX_LABELS} string values."


def _labels(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError as exc:
        loc = first_error(exc)["loc"]
        if not loc:
            raise refusal("Invalid labels.", _LABELS_DETAIL) from None
        raise refusal(
            "Invalid labels.",
            f'Label "{loc[0]}" must have a key of letters, digits, ".", "_", "/" or "-" (at most'
            f" 64) and a non-empty string value of at most {MAX_LABEL_VALUE_CHARS} characters.",
        ) from None


Labels = Annotated[
    dict[
        Annotated[str, Field(pattern=LABEL_KEY)],
        Annotated[str, Field(min_length=1, max_length=MAX_LABEL_VALUE_CHARS)],
    ],
    Field(max_length=MAX_LABELS),
    wrap(_labels),
    # pydantic writes key patterns as patternProperties, which would let other keys through.
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_LABELS,
            "propertyNames": {"pattern": LABEL_KEY},
            "additionalProperties": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_LABEL_VALUE_CHARS,
            },
            "description": "Labels as key: value strings.",
        }
    ),
]


def _dynamic_tools(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if value is None:
        return None
    if not isinstance(value, list):
        raise refusal("Invalid dynamic tools.", "unsafe_dynamic_tools must be an array.")
    if len(value) > MAX_DYNAMIC_TOOLS:
        raise refusal(
            "Too many dynamic tools.", f"Maximum {MAX_DYNAMIC_TOOLS} dynamic tools per chat."
        )
    try:
        tools: list[DynamicTool] = handler(value)
    except ValidationError as exc:
        loc = first_error(exc)["loc"]
        if len(loc) == 1:
            raise refusal(
                "Invalid dynamic tools.", "Each dynamic tool must be an object."
            ) from None
        if loc[1] == "name":
            raise refusal("Dynamic tool name must not be empty.") from None
        name = value[loc[0]].get("name")
        raise refusal(
            "Invalid dynamic tools.", f'Tool "{name}": {loc[1]} must be a JSON object.'
        ) from None
    seen: set[str] = set()
    for tool in tools:
        if not tool.name.strip():
            raise refusal("Dynamic tool name must not be empty.")
        if tool.name in seen:
            raise refusal(
                "Duplicate dynamic tool name.", f'Tool "{tool.name}" appears more than once.'
            )
        seen.add(tool.name)
    return tools


_NO_WORKSPACE = "Workspace not found or you do not have access to this resource"


class CreateChatRequest(_UserInput):
    """``POST chats`` (docs/api.md#chats). Fields are checked in the reference's order."""

    system_prompt: Annotated[
        str | None, Field(max_length=MAX_CHAT_SYSTEM_PROMPT_CHARS), wrap(_system_prompt)
    ] = None
    organization_id: str | None = None
    """Organization ID or name. Default: 'default'."""
    content: Content
    """The user input; must include at least one text or file part."""
    labels: Labels | None = None
    unsafe_dynamic_tools: Annotated[
        list[DynamicTool] | None, Field(max_length=MAX_DYNAMIC_TOOLS), wrap(_dynamic_tools)
    ] = None
    client_type: Annotated[
        Literal["ui", "api"], refused_as("Invalid client_type.", 'Must be "ui" or "api".')
    ] = "api"
    workspace_id: Annotated[Uuid | None, refused_as(_NO_WORKSPACE)] = None
    model_config_id: Annotated[Uuid | None, refused_as("Invalid model config ID.")] = None
    """Default: the default model config."""


Title = Annotated[
    Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_CHARS)
    ]
    | SkipJsonSchema[None],
    refused_as(
        "Title cannot be empty.",
        null=False,
        string_too_long=f"Title must be at most {MAX_TITLE_CHARS} characters.",
    ),
]


class UpdateChatRequest(Request):
    """``PATCH chats/{id}`` (docs/api.md#chats). Only the fields present change."""

    title: Title = None
    """The new title, trimmed."""
    labels: Labels | None = None
    """Replaces every label; null clears them."""
    archived: bool | None = None
    workspace_id: Annotated[str | None, refused_as(_NO_WORKSPACE)] = None
    """A workspace UUID; null, '' or the nil UUID unbinds."""
    pin_order: Annotated[
        int | None,
        Field(ge=0),
        refused_as(None, greater_than_equal="Pin order must be non-negative."),
    ] = None
    """0 unpins."""


def _busy_behavior(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    return handler(None if value == "" else value)


class CreateChatMessageRequest(_UserInput):
    """``POST chats/{id}/messages`` (docs/api.md#messages-and-queue)."""

    busy_behavior: Annotated[
        Literal["queue", "interrupt"] | None,
        refused_as("Invalid busy_behavior value.", 'Must be "queue" or "interrupt".'),
        wrap(_busy_behavior),
    ] = Field(
        "queue",
        description="When the chat is busy: queue the message, or queue it and "
        "interrupt the running turn.",
    )
    content: Content
    """The user input; must include at least one text or file part."""
    model_config_id: Annotated[Uuid | None, refused_as("Invalid model config ID.")] = None
    """Default: the chat's last model config."""


class EditMessageRequest(_UserInput):
    """``PATCH chats/{id}/messages/{message_id}``: the new content of a user message."""

    content: Content
    """The user input; must include at least one text or file part."""


# --- tool results -----------------------------------------------------------------------------


class ToolResult(Request):
    """The ``output`` (any JSON value) of the pending dynamic tool call ``tool_call_id``."""

    tool_call_id: Annotated[
        str, refused_as("Unexpected tool result.", 'No pending tool call with ID "".')
    ]
    output: Any
    """Any JSON value."""
    is_error: bool = False

    @model_validator(mode="before")
    @classmethod
    def _output_present(cls, value: Any) -> Any:
        if isinstance(value, dict) and "tool_call_id" in value and "output" not in value:
            raise refusal(
                "Tool result output must be valid JSON.",
                f'Output for tool call "{value["tool_call_id"]}" is not valid JSON.',
            )
        return value


_NO_RESULTS = refusal("At least one tool result is required.")


def _results(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if not isinstance(value, list) or not value:
        raise _NO_RESULTS
    return handler(value)


class SubmitToolResultsRequest(Request):
    """``POST chats/{id}/tool-results`` (docs/status-machine.md#requires_action)."""

    results: Annotated[list[ToolResult], Field(min_length=1), wrap(_results)]
    """One result for every pending dynamic tool call."""

    missing: ClassVar[dict[str, PydanticCustomError]] = {"results": _NO_RESULTS}


class RunToolRequest(Request):
    """``POST chats/{id}/tools/{name}``."""

    args: Annotated[
        dict[str, Any] | None,
        refused_as("Invalid tool arguments.", validations=[("args", "must be an object")]),
    ] = None
    """The tool's arguments (its JSON schema is the model's)."""
