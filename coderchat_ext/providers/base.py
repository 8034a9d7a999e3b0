"""The ``Model`` protocol every provider adapter implements (docs/providers.md#the-model-protocol).

A model turns a :class:`ModelRequest` (our persisted message parts, tool specs and call options)
into an async stream of :class:`StreamPart` values. Adapters raise their SDK's exceptions (or
:class:`ProviderError`) for failures; the loop classifies them (``chatd.errors``) and retries
retryable ones (``chatd.retry``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ..models import ChatMessagePart, ChatModelCallConfig, MessageRole

FinishReason = Literal["stop", "tool-calls", "length", "content-filter", "error", "other"]


@dataclass
class PromptMessage:
    """One message of a request, in our own part format (adapters map it to the wire)."""

    role: MessageRole
    content: list[ChatMessagePart]


@dataclass
class ToolSpec:
    """A tool offered to the model: name, description, JSON schema of its arguments."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass
class ModelRequest:
    """What a model call gets. ``max_output_tokens`` in tokens; ``options`` are the model
    config's call options (docs/data-model.md#call-options); ``tool_choice`` ``none`` forbids tool
    calls."""

    messages: list[PromptMessage]
    tools: list[ToolSpec] = field(default_factory=list)
    max_output_tokens: int | None = None
    options: ChatModelCallConfig = field(default_factory=ChatModelCallConfig)
    tool_choice: Literal["auto", "none"] = "auto"


@dataclass
class Usage:
    """Token counts reported by the provider for one call.

    ``input_tokens`` counts only the input tokens that were neither read from nor written to the
    prompt cache (Anthropic's convention; adapters for APIs that include cached tokens in their
    input count subtract them), so context size is ``input + cache_read + cache_creation``
    (docs/data-model.md#usage-and-cost) and cost prices each count once
    (``chatd.loop.cost_micros``).
    ``output_tokens`` includes ``reasoning_tokens``; ``total_tokens`` is everything.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0


ProviderMetadata = dict[str, dict[str, Any]]
"""What an adapter needs to send a part back to its provider unchanged (a Responses item id,
encrypted reasoning, an Anthropic redacted thinking block, a server tool's raw result), keyed by
provider kind (``{"openai": {"item_id": "fc_..."}}``) so another provider ignores it. Stored in
the part's internal ``provider_metadata`` and never sent to clients
(docs/data-model.md#message-parts)."""


@dataclass
class TextDelta:
    """Assistant text. Deltas with the same ``block`` make one text part."""

    text: str
    block: int | str | None = None
    provider_metadata: ProviderMetadata | None = None


@dataclass
class ReasoningDelta:
    """Reasoning text; a ``signature`` (Anthropic) closes the block it belongs to.
    ``provider_metadata`` is merged into the part (a delta with only metadata keeps an otherwise
    empty reasoning part, e.g. Anthropic ``redacted_thinking``)."""

    text: str = ""
    signature: str | None = None
    block: int | str | None = None
    provider_metadata: ProviderMetadata | None = None


@dataclass
class ToolCallStart:
    tool_call_id: str
    tool_name: str
    provider_executed: bool = False
    provider_metadata: ProviderMetadata | None = None


@dataclass
class ToolCallDelta:
    tool_call_id: str
    args_delta: str


@dataclass
class ToolCallEnd:
    """The call is complete; ``args`` is the whole argument JSON text (None: the deltas)."""

    tool_call_id: str
    args: str | None = None


@dataclass
class ProviderToolResult:
    """The result of a provider-executed tool (e.g. ``web_search``), kept in the assistant
    message."""

    tool_call_id: str
    tool_name: str
    result: Any
    is_error: bool = False
    provider_metadata: ProviderMetadata | None = None


@dataclass
class Source:
    source_id: str
    url: str
    title: str | None = None


@dataclass
class Finish:
    reason: FinishReason
    usage: Usage = field(default_factory=Usage)
    provider_response_id: str | None = None
    context_limit: int | None = None


StreamPart = (
    TextDelta
    | ReasoningDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | ProviderToolResult
    | Source
    | Finish
)


class ProviderError(Exception):
    """A provider failure with an HTTP status, shaped like the SDKs' ``APIStatusError``
    (``status_code``, ``body``, ``response.headers``) so the classifier reads it the same way."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body
        self.headers = headers or {}


@runtime_checkable
class Model(Protocol):
    """A streaming chat model. ``provider`` is the provider kind (``anthropic``, ``openai``,
    ``openai-compat``, ``demo``, ...), ``model`` the provider's model name."""

    provider: str
    model: str

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamPart]:
        """Stream one response. Raises on transport, HTTP or in-stream errors."""
        ...
