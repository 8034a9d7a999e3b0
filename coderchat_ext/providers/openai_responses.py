"""The ``openai`` provider: the Responses API through ``openai.AsyncOpenAI``, streaming
(docs/providers.md#adapters).

Stream → parts: ``response.output_text.delta`` → :class:`TextDelta` (one part per message item);
reasoning summary deltas → :class:`ReasoningDelta` (summary parts of one item joined by a blank
line; the item id and ``encrypted_content`` kept as metadata for the round trip);
``function_call`` items → ``ToolCallStart/Delta/End`` keyed by ``call_id`` (the ``fc_`` item id
kept as metadata); ``web_search_call`` items → a provider-executed call (its ``action`` as
arguments) and :class:`ProviderToolResult` (its status; OpenAI returns no search results);
``url_citation`` annotations → :class:`Source`; ``response.completed`` / ``incomplete`` usage →
:class:`Finish` with ``provider_response_id``.

Request: system messages as ``system`` (``developer`` for reasoning models) items, user content as
``input_text`` / ``input_image`` / ``input_file``, tool calls and results as ``function_call`` /
``function_call_output`` with their call ids. ``store`` is false unless the model config asks for
it, so reasoning is replayed from its encrypted content: an assistant message whose reasoning all
has it is sent back item by item with item ids (reasoning, ``web_search_call``, message,
``function_call``); otherwise without reasoning and ids, so no item misses its reasoning
(the continuity errors of docs/loop.md#precedence). ``previous_response_id`` chaining is not
used.

Errors: HTTP errors are the SDK's ``APIStatusError`` subclasses; an ``error`` event or
``response.failed`` becomes a :class:`ProviderError` with the status OpenAI documents for its code
(``insufficient_quota`` → 429, classified ``usage_limit``, not retryable); a stream that ends
without a terminal event raises "openai responses stream closed before terminal event" (timeout,
retryable: docs/loop.md#error-classification).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..models import ChatMessagePart, OpenAIProviderOptions
from . import _openai
from ._common import (
    EventStream,
    SDKModel,
    args_json,
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

DEFAULT_BASE_URL = "https://api.openai.com/v1"
"""Used when the provider has no ``base_url`` (never the SDK's ``OPENAI_BASE_URL`` lookup)."""
TITLE_MODEL = "gpt-4o-mini"
"""The cheap model for titles (docs/providers.md#title-models)."""
ENCRYPTED_REASONING = "reasoning.encrypted_content"
SEARCH_SOURCES = "web_search_call.action.sources"
"""Asked for with web search, so a search's result lists the pages it read."""

_REASONING_MODEL = re.compile(r"^(o\d|gpt-5(?!-chat)|codex)")
_INCOMPLETE_REASONS: dict[str, FinishReason] = {
    "max_output_tokens": "length",
    "content_filter": "content-filter",
}


def is_reasoning_model(model: str) -> bool:
    """Whether ``model`` is an OpenAI reasoning model (o-series, gpt-5 but not gpt-5-chat,
    codex): those take ``developer`` messages and reasoning options but no temperature."""
    return bool(_REASONING_MODEL.match(model.rsplit("/", 1)[-1]))


class OpenAIResponsesModel(SDKModel):
    """A :class:`~coderchat_ext.providers.base.Model` over the OpenAI Responses API
    (construction and errors: :class:`~coderchat_ext.providers._common.SDKModel`)."""

    provider = "openai"
    default_base_url = DEFAULT_BASE_URL
    title_model = TITLE_MODEL

    def request_params(self, request: ModelRequest) -> dict[str, Any]:
        """The ``responses.create`` arguments (without ``stream``) for ``request``. Raises
        :class:`ProviderError` (``config``) for invalid ``provider_options.openai``."""
        opts = self.provider_options(request.options.openai_options)
        reasoning_model = is_reasoning_model(self.model)
        params: dict[str, Any] = {
            "model": self.model,
            "input": render_input(request.messages, reasoning_model=reasoning_model),
            "store": bool(opts.store),
        }
        max_tokens = opts.max_completion_tokens or request.max_output_tokens
        if max_tokens:
            params["max_output_tokens"] = max_tokens
        call = request.options
        if not reasoning_model:
            if call.temperature is not None:
                params["temperature"] = call.temperature
            if call.top_p is not None:
                params["top_p"] = call.top_p
        reasoning: dict[str, str] = {}
        if opts.reasoning_effort:
            reasoning["effort"] = opts.reasoning_effort
        if opts.reasoning_summary:
            reasoning["summary"] = opts.reasoning_summary
        if reasoning:
            params["reasoning"] = reasoning
        tools = _tools(request, opts)
        include = list(opts.include or [])
        if (reasoning_model or reasoning) and not opts.store:
            include.append(ENCRYPTED_REASONING)
        if any(t["type"] == "web_search" for t in tools):
            include.append(SEARCH_SOURCES)
        if include:
            params["include"] = list(dict.fromkeys(include))
        if opts.text_verbosity:
            params["text"] = {"verbosity": opts.text_verbosity}
        for name in (
            "instructions",
            "parallel_tool_calls",
            "max_tool_calls",
            "user",
            "metadata",
            "prompt_cache_key",
            "safety_identifier",
            "service_tier",
        ):
            value = getattr(opts, name)
            if value is not None:
                params[name] = value
        if tools:
            params["tools"] = tools
            if request.tool_choice == "none":
                params["tool_choice"] = "none"
        return params

    async def open_stream(self, params: dict[str, Any]) -> EventStream:
        client = _openai.client(self.provider, self.base_url, self._api_key, self.read_timeout)
        return await client.responses.create(**params, stream=True)

    def parser(self) -> StreamParser:
        return StreamParser()

    def in_stream_error(self, exc: Exception) -> ProviderError | None:
        return _openai.in_stream_error("openai responses", exc)


def _tools(request: ModelRequest, opts: OpenAIProviderOptions) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = [
        {
            "type": "function",
            "name": t.name,
            "description": t.description,
            "parameters": t.input_schema,
            "strict": False,
        }
        for t in request.tools
    ]
    if opts.web_search_enabled and request.tool_choice != "none":
        search: dict[str, Any] = {"type": "web_search"}
        if opts.search_context_size:
            search["search_context_size"] = opts.search_context_size
        if opts.allowed_domains:
            search["filters"] = {"allowed_domains": opts.allowed_domains}
        tools.append(search)
    return tools


# --- the stream -----------------------------------------------------------------------------


@dataclass
class StreamParser:
    """Turns Responses stream events into stream parts; :attr:`done` after a terminal event."""

    done: bool = False
    response_id: str | None = None
    call_ids: dict[str, str] = field(default_factory=dict)
    tool_calls: int = 0
    text_items: set[str] = field(default_factory=set)
    sources: dict[str, Source] = field(default_factory=dict)

    def feed(self, event: Any) -> list[StreamPart]:
        """The parts for one event (unknown events give none). Raises :class:`ProviderError`
        for ``response.failed`` and ``error`` events."""
        kind = getattr(event, "type", None)
        if kind in ("response.created", "response.in_progress"):
            self.response_id = event.response.id
        elif kind == "response.output_item.added":
            return self._item_added(event.item)
        elif kind == "response.output_item.done":
            return self._item_done(event.item)
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            return self._text(event.item_id, event.delta)
        elif kind == "response.output_text.annotation.added":
            self._annotation(event.annotation)
        elif kind == "response.function_call_arguments.delta":
            call_id = self.call_ids.get(event.item_id)
            if call_id and event.delta:
                return [ToolCallDelta(call_id, event.delta)]
        elif kind == "response.reasoning_summary_part.added":
            if event.summary_index > 0:
                return [ReasoningDelta("\n\n", block=event.item_id)]
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            if event.delta:
                return [ReasoningDelta(event.delta, block=event.item_id)]
        elif kind in ("response.completed", "response.incomplete"):
            self.done = True
            return [self._finish(event.response)]
        elif kind == "response.failed":
            raise _openai.stream_error("openai responses", event.response.error)
        elif kind == "error":
            raise _openai.stream_error("openai responses", event)
        return []

    def end(self) -> list[StreamPart]:
        """Nothing more; raises :class:`ProviderError` when no terminal event came."""
        if not self.done:
            raise ProviderError("openai responses stream closed before terminal event")
        return []

    def _text(self, item_id: str, delta: str) -> list[StreamPart]:
        if not delta:
            return []
        tag = None
        if item_id not in self.text_items:
            self.text_items.add(item_id)
            tag = {"openai": {"item_id": item_id}}
        return [TextDelta(delta, block=item_id, provider_metadata=tag)]

    def _annotation(self, annotation: Any) -> None:
        fields = annotation if isinstance(annotation, dict) else _dump(annotation)
        kind, url, title = fields.get("type"), fields.get("url"), fields.get("title")
        if kind == "url_citation" and url and url not in self.sources:
            self.sources[url] = Source(f"{self.response_id}-{len(self.sources)}", url, title)

    def _item_added(self, item: Any) -> list[StreamPart]:
        kind = getattr(item, "type", None)
        if kind == "function_call":
            self.call_ids[item.id] = item.call_id
            self.tool_calls += 1
            return [
                ToolCallStart(
                    item.call_id, item.name, provider_metadata={"openai": {"item_id": item.id}}
                )
            ]
        if kind == "web_search_call":
            return [
                ToolCallStart(
                    item.id,
                    "web_search",
                    provider_executed=True,
                    provider_metadata={"openai": {"item_id": item.id}},
                )
            ]
        return []

    def _item_done(self, item: Any) -> list[StreamPart]:
        kind = getattr(item, "type", None)
        if kind == "function_call":
            return [ToolCallEnd(item.call_id, item.arguments or "")]
        if kind == "web_search_call":
            action = _dump(getattr(item, "action", None)) or {}
            sources = action.pop("sources", None)
            result: dict[str, Any] = {"status": item.status}
            if sources:
                result["sources"] = sources
            return [
                ToolCallEnd(item.id, json.dumps(action, ensure_ascii=False)),
                ProviderToolResult(item.id, "web_search", result, is_error=item.status == "failed"),
            ]
        if kind == "reasoning":
            tag: dict[str, Any] = {"item_id": item.id}
            if getattr(item, "encrypted_content", None):
                tag["encrypted_content"] = item.encrypted_content
            return [ReasoningDelta(block=item.id, provider_metadata={"openai": tag})]
        if kind == "message":
            for content in getattr(item, "content", None) or []:
                for annotation in getattr(content, "annotations", None) or []:
                    self._annotation(annotation)
            sources, self.sources = list(self.sources.values()), {}
            return list(sources)
        return []

    def _finish(self, response: Any) -> Finish:
        self.response_id = response.id or self.response_id
        reason: FinishReason = "tool-calls" if self.tool_calls else "stop"
        if response.status == "incomplete":
            details = getattr(response, "incomplete_details", None)
            reason = _INCOMPLETE_REASONS.get(getattr(details, "reason", None) or "", "other")
        usage = Usage()
        u = response.usage
        if u is not None:
            cached = getattr(u.input_tokens_details, "cached_tokens", 0) or 0
            usage = Usage(
                input_tokens=u.input_tokens - cached,
                output_tokens=u.output_tokens,
                total_tokens=u.total_tokens,
                reasoning_tokens=getattr(u.output_tokens_details, "reasoning_tokens", 0) or 0,
                cache_read_tokens=cached,
            )
        return Finish(reason=reason, usage=usage, provider_response_id=self.response_id)


def _dump(value: Any) -> Any:
    if value is None or isinstance(value, (dict, list, str, int, float, bool)):
        return value
    return value.to_dict(mode="json")


# --- history --------------------------------------------------------------------------------


def render_input(messages: list[PromptMessage], *, reasoning_model: bool) -> list[dict[str, Any]]:
    """Our history as Responses ``input`` items (see the module docstring)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            text = system_texts(message.content)
            if text:
                role = "developer" if reasoning_model else "system"
                items.append({"role": role, "content": text})
        elif message.role == "user":
            content = [_user_content(p) for p in user_parts(message.content)]
            if content:
                items.append({"role": "user", "content": content})
        elif message.role == "tool":
            items += [
                {"type": "function_call_output", "call_id": p.tool_call_id, "output": _output(p)}
                for p in message.content
                if p.type == "tool-result" and not p.provider_executed
            ]
        else:
            items += _assistant_items(message.content)
    return items


def _user_content(part: ChatMessagePart) -> dict[str, Any]:
    if part.type == "text":
        return {"type": "input_text", "text": part.text}
    media_type = base_media_type(part)
    if part.data and media_type.startswith("image/"):
        return {"type": "input_image", "image_url": f"data:{media_type};base64,{part.data}"}
    if part.data and media_type == "application/pdf":
        return {
            "type": "input_file",
            "filename": part.name or part.file_name or "file.pdf",
            "file_data": f"data:{media_type};base64,{part.data}",
        }
    text = file_text(part)
    if text is not None:
        return {"type": "input_text", "text": wrap_file_text(part, text)}
    return {"type": "input_text", "text": file_placeholder(part)}


def _output(part: ChatMessagePart) -> str | list[dict[str, Any]]:
    media = media_results(part)
    if media:
        return [{"type": "input_image", "image_url": f"data:{t};base64,{d}"} for t, d in media]
    return result_text(part)


def _assistant_items(parts: list[ChatMessagePart]) -> list[dict[str, Any]]:
    reasoning = [p for p in parts if p.type == "reasoning"]
    replay = bool(reasoning) and all(
        metadata(p, "openai").get("encrypted_content") for p in reasoning
    )
    items: list[dict[str, Any]] = []
    for part in parts:
        item_id = metadata(part, "openai").get("item_id") if replay else None
        if part.type == "text" and (part.text or "").strip():
            if item_id:
                items.append(
                    {
                        "type": "message",
                        "role": "assistant",
                        "id": item_id,
                        "status": "completed",
                        "content": [{"type": "output_text", "text": part.text, "annotations": []}],
                    }
                )
            else:
                items.append({"role": "assistant", "content": part.text})
        elif part.type == "reasoning" and item_id:
            summary = [{"type": "summary_text", "text": part.text}] if part.text else []
            items.append(
                {
                    "type": "reasoning",
                    "id": item_id,
                    "encrypted_content": metadata(part, "openai")["encrypted_content"],
                    "summary": summary,
                }
            )
        elif part.type == "tool-call" and not part.provider_executed:
            call: dict[str, Any] = {
                "type": "function_call",
                "call_id": part.tool_call_id,
                "name": part.tool_name,
                "arguments": args_json(part),
            }
            if item_id:
                call["id"] = item_id
            items.append(call)
        elif part.type == "tool-call" and item_id and part.tool_name == "web_search":
            items.append(
                {
                    "type": "web_search_call",
                    "id": item_id,
                    "status": "completed",
                    "action": args_object(part),
                }
            )
    return items


# --- factory --------------------------------------------------------------------------------

make_model = OpenAIResponsesModel.for_config
"""The model for a config: titles use :data:`TITLE_MODEL` unless the provider has a custom
``base_url``."""
