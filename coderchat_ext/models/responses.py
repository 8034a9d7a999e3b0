"""The answers of the endpoints that are not a wire type of their own (docs/api.md): their
schemas are the OpenAPI document's, and the Python client reads them with these models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field
from typing_extensions import TypeAliasType

from .chat import ChatMessage, ChatQueuedMessage, ChatStreamEvent
from .config import ChatModelConfig
from .settings_requests import ADVISOR_EFFORTS
from .wire import Wire

STREAM_FRAME_MAX_EVENTS = 256
"""Events per chat stream frame at most (docs/stream-protocol.md#frames)."""

ChatStreamFrame = TypeAliasType(
    "ChatStreamFrame",
    Annotated[list[ChatStreamEvent], Field(min_length=1, max_length=STREAM_FRAME_MAX_EVENTS)],
)
"""One frame of a chat stream: a JSON array of events."""


class ChatMessagesPage(Wire):
    """``GET chats/{id}/messages``."""

    messages: list[ChatMessage]
    """Newest first."""
    queued_messages: list[ChatQueuedMessage]
    """The queue; empty when before_id or after_id is given."""
    has_more: bool


class CreateChatMessageResponse(Wire):
    """``POST chats/{id}/messages``: ``message`` when it was inserted, ``queued_message`` when
    it was queued."""

    queued: bool
    message: ChatMessage | None = None
    queued_message: ChatQueuedMessage | None = None


class EditMessageResponse(Wire):
    """``PATCH chats/{id}/messages/{message_id}``: the edited message."""

    message: ChatMessage


class DirectToolResult(Wire):
    """``POST chats/{id}/tools/{name}``: the tool run now, outside the chat's history.
    ``args`` are the validated arguments, ``result`` the tool's output (any JSON value;
    workspace tools answer an object with ``output``)."""

    tool_call_id: str
    tool_name: str
    args: dict[str, Any]
    """The validated arguments."""
    result: Any
    """Any JSON value."""
    is_error: bool


class ModelSummary(Wire):
    """An enabled model config as ``GET models`` lists it; ``id`` is the model config id."""

    id: str = Field(json_schema_extra={"format": "uuid"})
    provider: str
    model: str
    display_name: str
    is_default: bool


class ModelsProvider(Wire):
    """One provider of ``GET models``: whether chats can use it now (``unavailable_reason``
    says why not, e.g. no API key) and its enabled model configs."""

    provider: str
    display_name: str
    available: bool
    unavailable_reason: str | None = None
    models: list[ModelSummary]


class ModelsResponse(Wire):
    """``GET models``: every provider, with its models."""

    providers: list[ModelsProvider]


class SystemPromptConfig(Wire):
    """``GET config/system-prompt``: the deployment prompt, whether the built-in default
    prompt is sent before it, and that default's text."""

    system_prompt: str
    include_default_system_prompt: bool
    default_system_prompt: str


class UserPromptConfig(Wire):
    """``GET``/``PUT config/user-prompt``: the caller's custom prompt, sanitized."""

    custom_prompt: str


class TemplateAllowlist(Wire):
    """``GET config/template-allowlist``."""

    template_ids: list[Annotated[str, Field(json_schema_extra={"format": "uuid"})]]
    """Empty: every template is allowed."""


class AdvisorConfig(Wire):
    """``GET config/advisor``. ``max_uses_per_run`` and ``max_output_tokens`` are counts (0:
    no limit); ``model_config_id`` is a model config UUID or ``""`` (the chat's model);
    ``reasoning_effort`` is ``""`` or an effort the server accepts."""

    # Defaults for a client that builds one to send; the server always answers every field.
    model_config = ConfigDict(
        extra="ignore", populate_by_name=True, json_schema_serialization_defaults_required=True
    )

    enabled: bool = False
    max_uses_per_run: int = Field(0, ge=0)
    max_output_tokens: int = Field(0, ge=0)
    model_config_id: str = ""
    reasoning_effort: str = Field("", json_schema_extra={"enum": list(ADVISOR_EFFORTS)})


class ServerInfo(Wire):
    """``GET info``: the extension's ``version``, the server ``time`` (RFC 3339 UTC), the
    ``features`` it offers, the default model config (``None`` when there is none), whether
    a real (not demo) provider is configured, and the configured provider names."""

    version: str
    time: str = Field(json_schema_extra={"format": "date-time"})
    features: list[str]
    default_model: ChatModelConfig | None
    real_provider_configured: bool
    providers: list[str]
