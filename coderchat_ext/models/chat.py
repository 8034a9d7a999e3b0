"""Chats, messages, their parts and the stream and watch events.

Shapes follow upstream Coder's ``codersdk/chats.go`` with the Jupyter mapping described in
docs/data-model.md and docs/stream-protocol.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .wire import Wire, utcnow

ChatStatus = Literal[
    "waiting", "pending", "running", "paused", "completed", "error", "requires_action"
]
"""Chat statuses (docs/status-machine.md#statuses). ``paused`` and ``completed`` are kept for
compatibility."""

MessageRole = Literal["system", "user", "assistant", "tool"]
Visibility = Literal["user", "model", "both"]
PartType = Literal[
    "text",
    "reasoning",
    "tool-call",
    "tool-result",
    "source",
    "file",
    "file-reference",
    "context-file",
    "skill",
]
ChatErrorKind = Literal[
    "overloaded",
    "rate_limit",
    "timeout",
    "startup_timeout",
    "auth",
    "config",
    "usage_limit",
    "provider_disabled",
    "missing_key",
    "generic",
    "storage",
]
"""Error kinds (docs/loop.md#error-kinds), plus ``storage``: the server's disk is full, so the
turn could not be saved (retryable: sending again works once space is freed)."""

StreamEventType = Literal[
    "message_part", "message", "status", "error", "retry", "queue_update", "action_required"
]
WatchEventKind = Literal[
    "created", "deleted", "status_change", "title_change", "action_required", "diff_status_change"
]


# (docs/data-model.md#message-parts).
_INTERNAL_PART_FIELDS = (
    "provider_metadata",
    "context_file_content",
    "context_file_os",
    "context_file_directory",
    "skill_dir",
    "context_file_skill_meta_file",
)


class ChatMessagePart(Wire):
    """One part of a message's content (docs/data-model.md#message-parts); ``type``
    discriminates.

    ``args`` and ``result`` hold any JSON value. ``args_delta`` and ``result_delta`` only ever
    travel on the stream, never in a persisted message.
    """

    type: PartType
    text: str | None = None
    signature: str | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    args: Any = None
    args_delta: str | None = None
    result: Any = None
    result_delta: str | None = None
    is_error: bool | None = None
    is_media: bool | None = None
    provider_executed: bool | None = None
    created_at: str | None = None
    source_id: str | None = None
    url: str | None = None
    title: str | None = None
    media_type: str | None = None
    name: str | None = None
    data: str | None = None
    file_id: str | None = None
    file_name: str | None = None
    start_line: int | None = None
    end_line: int | None = None
    content: str | None = None
    context_file_path: str | None = None
    context_file_content: str | None = None
    context_file_truncated: bool | None = None
    context_file_agent_id: str | None = None
    context_file_os: str | None = None
    context_file_directory: str | None = None
    skill_name: str | None = None
    skill_description: str | None = None
    skill_dir: str | None = None
    context_file_skill_meta_file: str | None = None
    provider_metadata: dict[str, Any] | None = None

    @classmethod
    def tool_result(
        cls,
        tool_call_id: str | None,
        tool_name: str | None,
        result: Any,
        *,
        is_error: bool = False,
        provider_executed: bool = False,
        provider_metadata: dict[str, Any] | None = None,
    ) -> ChatMessagePart:
        """A ``tool-result`` part answering a call, created now; ``result`` is any JSON value.
        ``is_error`` and ``provider_executed`` are left out of the part when false."""
        return cls(
            type="tool-result",
            tool_call_id=tool_call_id,
            tool_name=tool_name,
            result=result,
            is_error=is_error or None,
            provider_executed=provider_executed or None,
            created_at=utcnow(),
            provider_metadata=provider_metadata,
        )

    def strip_internal(self) -> ChatMessagePart:
        """A copy without the internal fields (upstream's ``StripInternal``,
        docs/data-model.md#message-parts)."""
        drop: dict[str, Any] = dict.fromkeys(_INTERNAL_PART_FIELDS)
        if self.file_id:
            drop["data"] = None
        return self.model_copy(update=drop)


class ChatMessageUsage(Wire):
    """Token usage of one assistant message; zero counts are omitted
    (docs/data-model.md#usage-and-cost)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_creation_tokens: int | None = None
    cache_read_tokens: int | None = None
    context_limit: int | None = None


USAGE_TOKEN_FIELDS = tuple(f for f in ChatMessageUsage.model_fields if f != "context_limit")
"""The token counts of :class:`ChatMessageUsage` (every field but ``context_limit``)."""


class ChatMessage(Wire):
    """A persisted message: the ``message`` stream event and the messages endpoint item."""

    id: int
    chat_id: str
    created_by: str | None = None
    model_config_id: str | None = None
    created_at: str
    role: MessageRole
    content: list[ChatMessagePart] = Field(default_factory=list)
    visibility: Visibility = "both"
    usage: ChatMessageUsage | None = None
    total_cost_micros: int | None = None
    runtime_ms: int | None = None
    provider_response_id: str | None = None

    def public(self) -> ChatMessage:
        """This message with every part stripped of internal fields."""
        return self.model_copy(update={"content": [p.strip_internal() for p in self.content]})

    @property
    def is_workspace_context(self) -> bool:
        """A user message that only carries workspace context (``context-file``/``skill``
        parts, docs/workspaces.md#context-files-and-skills), stored by the daemon during a turn: no
        user input."""
        return (
            self.role == "user"
            and bool(self.content)
            and all(part.type in ("context-file", "skill") for part in self.content)
        )


class ChatQueuedMessage(Wire):
    """A message waiting in a busy chat's FIFO queue (docs/data-model.md#queued-messages)."""

    id: int
    chat_id: str
    model_config_id: str | None = None
    content: list[ChatMessagePart]
    created_at: str


class ChatError(Wire):
    """A classified error (upstream's ``ChatStreamError``; docs/loop.md#error-classification)."""

    message: str
    detail: str | None = None
    kind: ChatErrorKind = "generic"
    provider: str | None = None
    retryable: bool = False
    status_code: int | None = None


class ChatStreamRetry(Wire):
    """The payload of a ``retry`` event (docs/loop.md#retries): ``delay_ms`` in milliseconds,
    ``retrying_at`` RFC 3339 UTC."""

    attempt: int
    delay_ms: int
    error: str
    kind: ChatErrorKind | None = None
    provider: str | None = None
    status_code: int | None = None
    retrying_at: str


class DynamicTool(Wire):
    """A client-executed tool declared at chat creation (docs/status-machine.md#requires_action)."""

    name: str
    description: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class ActionRequiredToolCall(Wire):
    tool_call_id: str
    tool_name: str
    args: str


class ActionRequired(Wire):
    tool_calls: list[ActionRequiredToolCall]


class StreamMessagePart(Wire):
    role: MessageRole | None = None
    part: ChatMessagePart


class Chat(Wire):
    """A chat as the API returns it (docs/data-model.md#chats, ``codersdk.Chat``)."""

    id: str
    organization_id: str
    owner: str
    workspace_id: str | None = None
    build_id: str | None = None
    agent_id: str | None = None
    parent_chat_id: str | None = None
    root_chat_id: str | None = None
    last_model_config_id: str | None = None
    title: str
    status: ChatStatus
    worker_id: str | None = None
    started_at: str | None = None
    created_at: str
    updated_at: str
    archived: bool = False
    pin_order: int = 0
    has_unread: bool = False
    last_read_message_id: int | None = None
    mode: str | None = None
    client_type: Literal["ui", "api"] = "api"
    labels: dict[str, str] = Field(default_factory=dict)
    dynamic_tools: list[DynamicTool] | None = None
    last_error: ChatError | None = None
    last_injected_context: list[ChatMessagePart] | None = None
    children: list[Chat] | None = None


class ChatStreamEvent(Wire):
    """One event of a chat stream frame (docs/stream-protocol.md#event-types); a frame is a JSON
    array of these."""

    type: StreamEventType
    chat_id: str
    message: ChatMessage | None = None
    message_part: StreamMessagePart | None = None
    status: ChatStatus | None = None
    error: ChatError | None = None
    retry: ChatStreamRetry | None = None
    queued_messages: list[ChatQueuedMessage] | None = None
    action_required: ActionRequired | None = None


class WatchToolCall(Wire):
    tool_call_id: str
    tool_name: str
    args: str


class ChatWatchEvent(Wire):
    """One event of the per-owner watch feed (docs/stream-protocol.md#watch-feed); one per
    WebSocket frame."""

    kind: WatchEventKind
    chat: Chat
    tool_calls: list[WatchToolCall] | None = None
