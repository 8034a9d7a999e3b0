"""The ``anthropic`` provider: the Messages API through ``anthropic.AsyncAnthropic``, streaming
(docs/providers.md#adapters).

Stream → parts: ``text_delta`` → :class:`TextDelta`; ``thinking_delta`` / ``signature_delta`` →
:class:`ReasoningDelta` (the signature closes the block; ``redacted_thinking`` is kept as
metadata); ``tool_use`` with ``input_json_delta`` → ``ToolCallStart/Delta/End``;
``server_tool_use`` (``web_search``, code execution, ...) → the same with
``provider_executed``, and its ``*_tool_result`` block → :class:`ProviderToolResult`;
``citations_delta`` → :class:`Source` (one per URL, after the text); ``message_delta`` usage laid
over ``message_start`` usage (cache creation/read tokens included) → :class:`Finish`.

Request: our history (docs/data-model.md#message-parts) as Messages with ``tool_result`` blocks
merged into user turns, thinking blocks sent back with their signatures, provider-executed calls and
results kept in the assistant turn (unpaired ones dropped, an orphaned result as text:
docs/providers.md#adapters), prompt caching markers (docs/providers.md#prompt-caching), and the
options of ``provider_options.anthropic``. The sampling options (``temperature``, ``top_p``,
``top_k``) are not sent: the SDK (2.x) has no such parameters and the API version it speaks
(2026-10-21) rejects them with a 400.

Errors: HTTP errors are the SDK's ``APIStatusError`` subclasses. An ``error`` event inside the
stream becomes a :class:`ProviderError` with the HTTP status Anthropic documents for its type
(``overloaded_error`` → 529), and a stream that ends without ``message_stop`` raises "anthropic
stream closed before message_stop" (timeout, retryable: docs/loop.md#error-classification).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anthropic

from ..models import AnthropicProviderOptions, ChatMessagePart
from ._common import (
    CLIENTS,
    CONNECT_TIMEOUT,
    EventStream,
    SDKModel,
    args_object,
    base_media_type,
    file_placeholder,
    file_text,
    media_results,
    metadata,
    result_text,
    system_texts,
    user_parts,
    wrap_file_text,
)
from .base import (
    Finish,
    FinishReason,
    ModelRequest,
    PromptMessage,
    ProviderError,
    ProviderToolResult,
    ReasoningDelta,
    Source,
    StreamPart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
"""Used when the provider has no ``base_url`` (never the SDK's ``ANTHROPIC_BASE_URL`` lookup)."""
TITLE_MODEL = "claude-haiku-4-5"
"""The cheap model for titles (docs/providers.md#title-models)."""
WEB_SEARCH_TOOL = "web_search_20250305"
"""The server tool version offered when ``web_search_enabled``."""

STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool-calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content-filter",
    "pause_turn": "other",
}
"""Anthropic ``stop_reason`` → our finish reason."""

ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The HTTP status Anthropic documents for each error type, given to an ``error`` event that
arrives inside a 200 stream so it classifies like the same error before the stream."""


class AnthropicModel(SDKModel):
    """A :class:`~coderchat_ext.providers.base.Model` over the Anthropic Messages API
    (construction and errors: :class:`~coderchat_ext.providers._common.SDKModel`)."""

    provider = "anthropic"
    default_base_url = DEFAULT_BASE_URL
    title_model = TITLE_MODEL

    def _client(self) -> anthropic.AsyncAnthropic:
        return CLIENTS.get(
            self.provider,
            self.base_url,
            self._api_key,
            self.read_timeout,
            lambda: anthropic.AsyncAnthropic(
                api_key=self._api_key,
                base_url=self.base_url,
                max_retries=0,
                timeout=anthropic.Timeout(self.read_timeout, connect=CONNECT_TIMEOUT),
            ),
        )

    def request_params(self, request: ModelRequest) -> dict[str, Any]:
        """The ``messages.create`` arguments (without ``stream``) for ``request``. Raises
        :class:`ProviderError` (``config``) for invalid ``provider_options.anthropic``."""
        opts = self.provider_options(request.options.anthropic_options)
        system, messages = render_history(
            request.messages, send_reasoning=opts.send_reasoning is not False
        )
        add_cache_markers(system, messages)
        max_tokens = request.max_output_tokens or request.options.max_output_tokens or 4096
        params: dict[str, Any] = {"model": self.model, "messages": messages}
        if system:
            params["system"] = system
        budget = opts.thinking.budget_tokens if opts.thinking else None
        if budget:
            # The budget is part of max_tokens; keep the configured output room on top of it.
            params["thinking"] = {"type": "enabled", "budget_tokens": budget}
            max_tokens += budget
        params["max_tokens"] = max_tokens
        if opts.effort:
            # As an extra body field: SDK releases before output_config reject the argument.
            params["extra_body"] = {"output_config": {"effort": opts.effort}}
        tools = _tools(request, opts)
        if tools:
            params["tools"] = tools
            if request.tool_choice == "none":
                params["tool_choice"] = {"type": "none"}
            elif opts.disable_parallel_tool_use:
                params["tool_choice"] = {"type": "auto", "disable_parallel_tool_use": True}
        return params

    async def open_stream(self, params: dict[str, Any]) -> EventStream:
        return await self._client().messages.create(**params, stream=True)

    def parser(self) -> StreamParser:
        return StreamParser()

    def in_stream_error(self, exc: Exception) -> ProviderError | None:
        # The SDK raises an in-stream ``error`` event as an APIStatusError of the 200 response.
        if isinstance(exc, anthropic.APIStatusError) and exc.status_code < 400:
            return stream_error(exc)
        return None


def _tools(request: ModelRequest, opts: AnthropicProviderOptions) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = [
        {"name": t.name, "description": t.description, "input_schema": t.input_schema}
        for t in request.tools
    ]
    if opts.web_search_enabled and request.tool_choice != "none":
        search: dict[str, Any] = {"type": WEB_SEARCH_TOOL, "name": "web_search"}
        # The API rejects both lists together; the allow-list is the stricter wish.
        if opts.allowed_domains:
            search["allowed_domains"] = opts.allowed_domains
        elif opts.blocked_domains:
            search["blocked_domains"] = opts.blocked_domains
        tools.append(search)
    return tools


def stream_error(exc: anthropic.APIStatusError) -> ProviderError:
    """A :class:`ProviderError` for an ``error`` event inside a 200 stream, with the status
    documented for its type (:data:`ERROR_STATUS`) and the provider's body."""
    body: dict[str, Any] = exc.body if isinstance(exc.body, dict) else {}
    nested = body.get("error")
    error: dict[str, Any] = nested if isinstance(nested, dict) else body
    kind = str(error.get("type") or "error")
    message = str(error.get("message") or "")
    return ProviderError(
        f"anthropic stream error: {kind}: {message}",
        status_code=ERROR_STATUS.get(kind),
        body=body or exc.body,
        headers=dict(exc.response.headers),
    )


# --- the stream -----------------------------------------------------------------------------


@dataclass
class _Block:
    type: str
    id: str = ""
    name: str = ""
    input: Any = None
    args: str = ""


@dataclass
class StreamParser:
    """Turns raw Messages stream events into stream parts; :attr:`stopped` once
    ``message_stop`` arrived."""

    stopped: bool = False
    response_id: str | None = None
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    reasoning_tokens: int = 0
    blocks: dict[int, _Block] = field(default_factory=dict)
    tool_names: dict[str, str] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)

    def feed(self, event: Any) -> list[StreamPart]:
        """The parts for one event (unknown events give none)."""
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = event.message
            self.response_id = message.id
            self._lay_usage(message.usage)
        elif kind == "content_block_start":
            return self._block_start(event.index, event.content_block)
        elif kind == "content_block_delta":
            return self._block_delta(event.index, event.delta)
        elif kind == "content_block_stop":
            return self._block_stop(event.index)
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            self._lay_usage(event.usage)
        elif kind == "message_stop":
            self.stopped = True
            return [*self.sources.values(), self.finish()]
        return []

    def _lay_usage(self, usage: Any) -> None:
        # message_delta carries the final counts; fields it leaves null keep message_start's.
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ):
            value = getattr(usage, name, None)
            if isinstance(value, int):
                self.usage[name] = value
        details = getattr(usage, "output_tokens_details", None)
        thinking = getattr(details, "thinking_tokens", None)
        if isinstance(thinking, int):
            self.reasoning_tokens = thinking

    def end(self) -> list[StreamPart]:
        """Nothing more; raises :class:`ProviderError` when ``message_stop`` never came."""
        if not self.stopped:
            raise ProviderError("anthropic stream closed before message_stop")
        return []

    def finish(self) -> Finish:
        u = self.usage
        inputs = u.get("input_tokens", 0)
        created = u.get("cache_creation_input_tokens", 0)
        read = u.get("cache_read_input_tokens", 0)
        output = u.get("output_tokens", 0)
        return Finish(
            reason=STOP_REASONS.get(self.stop_reason or "", "other"),
            usage=Usage(
                input_tokens=inputs,
                output_tokens=output,
                total_tokens=inputs + created + read + output,
                reasoning_tokens=self.reasoning_tokens,
                cache_creation_tokens=created,
                cache_read_tokens=read,
            ),
            provider_response_id=self.response_id,
        )

    def _block_start(self, index: int, block: Any) -> list[StreamPart]:
        kind = str(getattr(block, "type", ""))
        state = _Block(kind)
        self.blocks[index] = state
        if kind == "text":
            text = getattr(block, "text", "") or ""
            return [TextDelta(text)] if text else []
        if kind == "thinking":
            text = getattr(block, "thinking", "") or ""
            return [ReasoningDelta(text, block=index)] if text else []
        if kind == "redacted_thinking":
            return [
                ReasoningDelta(
                    block=index, provider_metadata={"anthropic": {"redacted_data": block.data}}
                )
            ]
        if kind in ("tool_use", "server_tool_use"):
            state.id, state.name, state.input = block.id, block.name, block.input
            self.tool_names[block.id] = block.name
            return [ToolCallStart(block.id, block.name, provider_executed=kind != "tool_use")]
        if kind.endswith("_tool_result"):
            return [self._server_result(block)]
        return []

    def _server_result(self, block: Any) -> ProviderToolResult:
        raw = block.to_dict(mode="json")
        content = raw.get("content")
        call_id = str(raw.get("tool_use_id", ""))
        if isinstance(content, list):
            # Search results without their encrypted page content (kept in the metadata).
            result: Any = [
                {k: item.get(k) for k in ("type", "title", "url", "page_age")}
                if isinstance(item, dict) and item.get("type") == "web_search_result"
                else item
                for item in content
            ]
        else:
            result = content
        is_error = isinstance(content, dict) and str(content.get("type", "")).endswith("_error")
        return ProviderToolResult(
            call_id,
            self.tool_names.get(call_id, raw.get("type", "").removesuffix("_tool_result")),
            result,
            is_error=is_error,
            provider_metadata={"anthropic": {"block": raw}},
        )

    def _block_delta(self, index: int, delta: Any) -> list[StreamPart]:
        kind = getattr(delta, "type", None)
        state = self.blocks.get(index)
        if kind == "text_delta":
            return [TextDelta(delta.text)] if delta.text else []
        if kind == "thinking_delta":
            return [ReasoningDelta(delta.thinking, block=index)] if delta.thinking else []
        if kind == "signature_delta":
            return [ReasoningDelta(signature=delta.signature, block=index)]
        if kind == "input_json_delta" and state is not None and state.id:
            if not delta.partial_json:
                return []
            state.args += delta.partial_json
            return [ToolCallDelta(state.id, delta.partial_json)]
        if kind == "citations_delta":
            citation = delta.citation
            url = getattr(citation, "url", None)
            if url and url not in self.sources:
                title = getattr(citation, "title", None)
                self.sources[url] = Source(f"{self.response_id}-{len(self.sources)}", url, title)
        return []

    def _block_stop(self, index: int) -> list[StreamPart]:
        state = self.blocks.get(index)
        if state is None or not state.id:
            return []
        if state.args:
            return [ToolCallEnd(state.id)]
        # No deltas: the start block carried the whole input.
        return [ToolCallEnd(state.id, json.dumps(state.input or {}))]


# --- history --------------------------------------------------------------------------------


def render_history(
    messages: list[PromptMessage], *, send_reasoning: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system blocks, messages)`` for the Messages API.

    System messages become ``system`` text blocks (the API has no system turns). User and tool
    messages become ``user`` turns, assistant messages ``assistant`` turns; consecutive turns of
    one role are merged, tool results first. Empty turns are left out.
    """
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            text = system_texts(message.content)
            if text:
                system.append({"type": "text", "text": text})
            continue
        if message.role == "assistant":
            role, blocks = "assistant", _assistant_blocks(message.content, send_reasoning)
        elif message.role == "tool":
            role, blocks = "user", [_tool_result(p) for p in message.content if _is_result(p)]
        else:
            role, blocks = "user", _user_blocks(message.content)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            previous = out[-1]["content"]
            results = [b for b in blocks if b["type"] == "tool_result"]
            others = [b for b in blocks if b["type"] != "tool_result"]
            first_other = next(
                (i for i, b in enumerate(previous) if b["type"] != "tool_result"), len(previous)
            )
            out[-1]["content"] = [
                *previous[:first_other],
                *results,
                *previous[first_other:],
                *others,
            ]
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def _is_result(part: ChatMessagePart) -> bool:
    return part.type == "tool-result" and not part.provider_executed


def _user_blocks(parts: list[ChatMessagePart]) -> list[dict[str, Any]]:
    blocks = []
    for part in user_parts(parts):
        if part.type == "text":
            blocks.append({"type": "text", "text": part.text})
        else:
            blocks.append(_file_block(part))
    return blocks


def _file_block(part: ChatMessagePart) -> dict[str, Any]:
    media_type = base_media_type(part)
    if part.data and media_type in ("image/jpeg", "image/png", "image/gif", "image/webp"):
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": part.data},
        }
    if part.data and media_type == "application/pdf":
        return {
            "type": "document",
            "source": {"type": "base64", "media_type": media_type, "data": part.data},
        }
    text = file_text(part)
    if text is not None:
        return {"type": "text", "text": wrap_file_text(part, text)}
    return {"type": "text", "text": file_placeholder(part)}


def _tool_result(part: ChatMessagePart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id}
    media = media_results(part)
    if media:
        block["content"] = [
            {"type": "image", "source": {"type": "base64", "media_type": t, "data": d}}
            for t, d in media
        ]
    else:
        text = result_text(part)
        if text:
            block["content"] = text
    if part.is_error:
        block["is_error"] = True
    return block


def _assistant_blocks(parts: list[ChatMessagePart], send_reasoning: bool) -> list[dict[str, Any]]:
    # Provider-executed calls and results must come in pairs (docs/providers.md#adapters): an
    # interrupted search has no result, and a result whose call is gone is only text now.
    server_calls = {p.tool_call_id for p in parts if p.type == "tool-call" and p.provider_executed}
    server_results = {
        p.tool_call_id for p in parts if p.type == "tool-result" and p.provider_executed
    }
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if part.type == "text" and (part.text or "").strip():
            blocks.append({"type": "text", "text": part.text})
        elif part.type == "reasoning" and send_reasoning:
            redacted = metadata(part, "anthropic").get("redacted_data")
            if redacted:
                blocks.append({"type": "redacted_thinking", "data": redacted})
            elif part.signature:
                blocks.append(
                    {"type": "thinking", "thinking": part.text or "", "signature": part.signature}
                )
        elif part.type == "tool-call" and not part.provider_executed:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": part.tool_call_id,
                    "name": part.tool_name,
                    "input": args_object(part),
                }
            )
        elif part.type == "tool-call":
            if part.tool_call_id in server_results:
                blocks.append(
                    {
                        "type": "server_tool_use",
                        "id": part.tool_call_id,
                        "name": part.tool_name,
                        "input": args_object(part),
                    }
                )
        elif part.type == "tool-result" and part.provider_executed:
            raw = metadata(part, "anthropic").get("block")
            if part.tool_call_id in server_calls and isinstance(raw, dict):
                blocks.append(raw)
            elif text := result_text(part).strip():
                blocks.append({"type": "text", "text": text})
    return blocks


CACHEABLE_BLOCKS = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "server_tool_use"}
)
"""Block types that may carry ``cache_control`` (thinking blocks may not)."""


def add_cache_markers(system: list[dict[str, Any]], messages: list[dict[str, Any]]) -> None:
    """Prompt caching (docs/providers.md#prompt-caching): ``cache_control: ephemeral`` on the last
    system block and on the last cacheable block of each of the final two messages. Changes in
    place."""
    marker = {"type": "ephemeral"}
    if system:
        system[-1]["cache_control"] = marker
    for message in messages[-2:]:
        for block in reversed(message["content"]):
            if block.get("type") in CACHEABLE_BLOCKS or str(block.get("type", "")).endswith(
                "_tool_result"
            ):
                block["cache_control"] = marker
                break


# --- factory --------------------------------------------------------------------------------

make_model = AnthropicModel.for_config
"""The model for a config: titles use :data:`TITLE_MODEL` unless the provider has a custom
``base_url``."""
