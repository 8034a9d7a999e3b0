"""Wire and domain types shared by the store, the daemon, the API and the client.

Shapes follow upstream Coder's ``codersdk/chats.go`` with the Jupyter mapping described in
docs/data-model.md and docs/stream-protocol.md. Everything here serializes to snake_case JSON;
``None`` fields are omitted on the wire (``dump()``).
"""

from __future__ import annotations

import datetime as _dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class ModelCost(Wire):
    """Prices in USD per million tokens (docs/data-model.md#call-options); all must be >= 0."""

    input_price_per_million_tokens: float | None = Field(default=None, ge=0)
    output_price_per_million_tokens: float | None = Field(default=None, ge=0)
    cache_read_price_per_million_tokens: float | None = Field(default=None, ge=0)
    cache_write_price_per_million_tokens: float | None = Field(default=None, ge=0)


class AnthropicThinking(Wire):
    """Extended thinking: ``budget_tokens`` (>= 1024) the model may spend thinking."""

    budget_tokens: int | None = Field(default=None, ge=1024)


class AnthropicProviderOptions(Wire):
    """``provider_options.anthropic`` (docs/data-model.md#call-options). ``send_reasoning``
    false leaves thinking blocks out of the history sent back; ``allowed_domains`` and
    ``blocked_domains`` (for ``web_search``) are mutually exclusive."""

    send_reasoning: bool | None = None
    thinking: AnthropicThinking | None = None
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    disable_parallel_tool_use: bool | None = None
    web_search_enabled: bool | None = None
    allowed_domains: list[str] | None = None
    blocked_domains: list[str] | None = None


class OpenAIProviderOptions(Wire):
    """``provider_options.openai`` (docs/data-model.md#call-options), used by the Responses API
    adapter.
    ``store`` true lets OpenAI keep responses (default false here: nothing is kept)."""

    include: list[str] | None = None
    instructions: str | None = None
    max_tool_calls: int | None = Field(default=None, gt=0)
    parallel_tool_calls: bool | None = None
    user: str | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    reasoning_summary: Literal["auto", "concise", "detailed"] | None = None
    max_completion_tokens: int | None = Field(default=None, gt=0)
    text_verbosity: Literal["low", "medium", "high"] | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    web_search_enabled: bool | None = None
    search_context_size: Literal["low", "medium", "high"] | None = None
    allowed_domains: list[str] | None = None


class OpenAICompatProviderOptions(Wire):
    """``provider_options.openaicompat`` (docs/data-model.md#call-options), for Chat Completions
    endpoints."""

    user: str | None = None
    reasoning_effort: str | None = None


class ChatModelCallConfig(Wire):
    """A model config's call options (``ChatModelCallConfig``, docs/data-model.md#call-options).

    ``provider_options`` is kept as stored JSON; :meth:`anthropic_options`,
    :meth:`openai_options` and :meth:`openai_compat_options` read the typed views (raising
    ``pydantic.ValidationError`` for invalid values).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    max_output_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = None
    top_k: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    cost: ModelCost | None = None
    provider_options: dict[str, dict[str, Any]] | None = None

    def _provider_option(self, key: str) -> dict[str, Any]:
        return (self.provider_options or {}).get(key) or {}

    def anthropic_options(self) -> AnthropicProviderOptions:
        return AnthropicProviderOptions.model_validate(self._provider_option("anthropic"))

    def openai_options(self) -> OpenAIProviderOptions:
        return OpenAIProviderOptions.model_validate(self._provider_option("openai"))

    def openai_compat_options(self) -> OpenAICompatProviderOptions:
        return OpenAICompatProviderOptions.model_validate(self._provider_option("openaicompat"))


DEFAULT_MAX_OUTPUT_TOKENS = 32000
"""Default ``max_output_tokens`` when a model config sets none (docs/data-model.md#call-options)."""


class ChatModelConfig(Wire):
    """A model config as the API returns it (docs/api.md#providers-and-models)."""

    id: str
    provider: str
    model: str
    display_name: str
    enabled: bool = True
    is_default: bool = False
    context_limit: int
    compression_threshold: int = 70
    model_config_: ChatModelCallConfig | None = Field(default=None, alias="model_config")
    created_at: str
    updated_at: str

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class ChatProviderConfig(Wire):
    """A provider as the API returns it; never carries the key
    (docs/api.md#providers-and-models)."""

    id: str
    provider: str
    display_name: str
    enabled: bool = True
    has_api_key: bool = False
    base_url: str | None = None
    source: Literal["database", "config", "env", "supported"] = "database"
    created_at: str | None = None
    updated_at: str | None = None


class ApiValidation(Wire):
    field: str
    detail: str


class ApiErrorBody(Wire):
    """The error body of every endpoint (docs/api.md#errors)."""

    message: str
    detail: str | None = None
    validations: list[ApiValidation] | None = None


# --- workspaces (docs/workspaces.md; Coder's templates, workspaces, builds and jobs) ------------

ParameterType = Literal["string", "number", "bool", "list(string)"]
BuildTransition = Literal["start", "stop", "delete"]
JobStatus = Literal["pending", "running", "succeeded", "failed", "canceling", "canceled"]
AgentStatus = Literal["connecting", "connected", "disconnected", "timeout"]
AgentLifecycleState = Literal["created", "starting", "ready", "start_error", "start_timeout", "off"]
"""Where the agent is in running the template's ``init`` script (Coder's agent lifecycle)."""
WorkspaceStatus = Literal[
    "pending",
    "starting",
    "running",
    "stopping",
    "stopped",
    "failed",
    "canceling",
    "canceled",
    "deleting",
    "deleted",
]
"""A workspace's status, derived from its latest build's transition and job status."""
LogLevel = Literal["trace", "debug", "info", "warn", "error"]

INSUFFICIENT_QUOTA = "INSUFFICIENT_QUOTA"
"""``error_code`` of a start build refused for quota (docs/workspaces.md#quota; the string
is inferred from upstream's ``codersdk.InsufficientQuota``)."""


class TemplateParameterOption(Wire):
    name: str
    value: str
    description: str | None = None


class TemplateParameter(Wire):
    """A rich parameter of a template version (docs/workspaces.md#templates). Values are strings:
    numbers in decimal, booleans ``true``/``false``, ``list(string)`` as a JSON array."""

    name: str
    type: ParameterType = "string"
    required: bool = False
    display_name: str | None = None
    description: str | None = None
    default: str | None = None
    mutable: bool = True
    options: list[TemplateParameterOption] | None = None
    validation_regex: str | None = None
    validation_min: float | None = None
    validation_max: float | None = None
    validation_error: str | None = None


class TemplatePreset(Wire):
    """Named parameter values of a template; ``id`` is stable across template versions."""

    id: str
    name: str
    description: str | None = None
    default: bool = False
    parameters: dict[str, str] = Field(default_factory=dict)


class TemplateAgent(Wire):
    """An agent the template declares: one kernel of ``kernel`` per workspace start."""

    name: str
    display_order: int = 0
    kernel: str = "python3"


class Template(Wire):
    """A template as ``GET templates`` returns it. ``allowlisted`` is set for administrators,
    who also see templates outside the chat template allowlist."""

    id: str
    organization_id: str
    name: str
    display_name: str = ""
    description: str = ""
    icon: str = ""
    daily_cost: int = 0
    active_version_id: str
    external: bool = False
    active_developers: int = 0
    allowlisted: bool | None = None
    created_at: str
    updated_at: str


class TemplateDetail(Template):
    """``GET templates/{id}``: the template with its active version's parameters, presets
    and agents."""

    parameters: list[TemplateParameter] = Field(default_factory=list)
    presets: list[TemplatePreset] = Field(default_factory=list)
    agents: list[TemplateAgent] = Field(default_factory=list)
    init: str | None = None


class ProvisionerJob(Wire):
    id: str
    status: JobStatus
    error: str | None = None
    error_code: str | None = None
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None


class ProvisionerJobLog(Wire):
    """One build log line; ``id`` is the cursor of ``GET jobs/{id}/logs?after=``."""

    id: int
    created_at: str
    log_level: LogLevel = "info"
    stage: str = ""
    output: str


class WorkspaceAgent(Wire):
    id: str
    name: str
    display_order: int = 0
    kernel_name: str = ""
    kernel_id: str | None = None
    external: bool = False
    status: AgentStatus
    lifecycle_state: AgentLifecycleState = "created"
    first_connected_at: str | None = None
    last_connected_at: str | None = None


class WorkspaceBuild(Wire):
    id: str
    workspace_id: str
    build_number: int
    transition: BuildTransition
    template_version_id: str
    preset_id: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    daily_cost: int = 0
    initiator: str
    created_at: str
    job: ProvisionerJob
    agents: list[WorkspaceAgent] = Field(default_factory=list)


class Workspace(Wire):
    """A workspace: a folder under the workspace root and one kernel per template agent."""

    id: str
    organization_id: str
    owner: str
    name: str
    template_id: str
    template_name: str = ""
    template_display_name: str = ""
    template_icon: str = ""
    directory: str
    status: WorkspaceStatus
    deleted: bool = False
    created_at: str
    updated_at: str
    latest_build: WorkspaceBuild
