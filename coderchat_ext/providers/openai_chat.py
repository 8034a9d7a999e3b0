"""The ``openai-compat`` provider: Chat Completions through ``openai.AsyncOpenAI``, streaming, for
OpenAI-compatible endpoints (Ollama, vLLM, LM Studio, gateways; docs/providers.md#adapters).

Stream → parts: ``delta.content`` (and ``refusal``) → :class:`TextDelta`;
``delta.reasoning_content`` / ``delta.reasoning`` → :class:`ReasoningDelta`; ``delta.tool_calls``
accumulated by their wire ``index`` (which need not start at 0, and a new ``id`` at a used index
starts a new call) → ``ToolCallStart/Delta/End``; ``finish_reason`` and the usage-only chunk of
``stream_options.include_usage`` → :class:`Finish` once the stream ends.

Request: the leading system messages joined into one ``system`` message (many chat templates take
only one), user content as a string or ``text`` / ``image_url`` parts, assistant messages with
``tool_calls``, one ``tool`` message per result. Reasoning and provider-executed parts are not
sent (these endpoints have no use for them).

Errors: HTTP errors are the SDK's ``APIStatusError`` subclasses; an error chunk inside the stream
becomes a :class:`ProviderError` with the status OpenAI documents for its code; a stream that ends
before any ``finish_reason`` raises an "unexpected EOF" error (timeout, retryable).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..models import ChatMessagePart, new_id
from . import _openai
from ._common import (
    EventStream,
    SDKModel,
    args_json,
    base_media_type,
    file_placeholder,
    file_text,
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
    ReasoningDelta,
    StreamPart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

DEFAULT_BASE_URL = "http://localhost:11434/v1"
"""Ollama's OpenAI-compatible endpoint, used when the provider has no ``base_url``."""
PLACEHOLDER_KEY = "not-needed"
"""Sent when the endpoint has no key (Ollama needs none; the SDK requires one)."""

FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
    "length": "length",
    "content_filter": "content-filter",
}
"""Chat Completions ``finish_reason`` → our finish reason."""


class OpenAIChatModel(SDKModel):
    """A :class:`~coderchat_ext.providers.base.Model` over Chat Completions (construction and
    errors: :class:`~coderchat_ext.providers._common.SDKModel`; an empty ``api_key`` sends
    :data:`PLACEHOLDER_KEY`, and titles use the chat's model: an OpenAI-compatible endpoint
    serves only the models it has)."""

    provider = "openai-compat"
    default_base_url = DEFAULT_BASE_URL
    key_placeholder = PLACEHOLDER_KEY

    def request_params(self, request: ModelRequest) -> dict[str, Any]:
        """The ``chat.completions.create`` arguments (without ``stream``) for ``request``.
        Raises :class:`ProviderError` (``config``) for invalid ``provider_options.openaicompat``."""
        opts = self.provider_options(request.options.openai_compat_options)
        params: dict[str, Any] = {
            "model": self.model,
            "messages": render_messages(request.messages),
            "stream_options": {"include_usage": True},
        }
        if request.max_output_tokens:
            params["max_tokens"] = request.max_output_tokens
        call = request.options
        for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
            value = getattr(call, name)
            if value is not None:
                params[name] = value
        if opts.user:
            params["user"] = opts.user
        if opts.reasoning_effort:
            params["reasoning_effort"] = opts.reasoning_effort
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.input_schema,
                    },
                }
                for t in request.tools
            ]
            if request.tool_choice == "none":
                params["tool_choice"] = "none"
        return params

    async def open_stream(self, params: dict[str, Any]) -> EventStream:
        client = _openai.client(self.provider, self.base_url, self._api_key, self.read_timeout)
        return await client.chat.completions.create(**params, stream=True)

    def parser(self) -> StreamParser:
        return StreamParser()

    def in_stream_error(self, exc: Exception) -> ProviderError | None:
        return _openai.in_stream_error("openai-compat", exc)


@dataclass
class _Call:
    id: str
    name: str
    args: str = ""
    ended: bool = False


@dataclass
class StreamParser:
    """Turns Chat Completions chunks into stream parts. :meth:`end` gives the final parts
    once the stream ended (open tool calls closed, then :class:`Finish`)."""

    response_id: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    calls: dict[int, _Call] = field(default_factory=dict)
    order: list[_Call] = field(default_factory=list)

    def feed(self, chunk: Any) -> list[StreamPart]:
        """The parts for one chunk."""
        self.response_id = self.response_id or getattr(chunk, "id", None)
        parts: list[StreamPart] = []
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = _usage(usage)
        for choice in getattr(chunk, "choices", None) or []:
            if getattr(choice, "index", 0) != 0:
                continue
            delta = choice.delta
            if delta is not None:
                parts += self._delta(delta)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return parts

    def _delta(self, delta: Any) -> list[StreamPart]:
        parts: list[StreamPart] = []
        extra = getattr(delta, "model_extra", None) or {}
        reasoning = extra.get("reasoning_content") or extra.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            parts.append(ReasoningDelta(reasoning))
        for text in (delta.content, getattr(delta, "refusal", None)):
            if text:
                parts.append(TextDelta(text))
        for tool_call in delta.tool_calls or []:
            parts += self._tool_call(tool_call)
        return parts

    def _tool_call(self, delta: Any) -> list[StreamPart]:
        parts: list[StreamPart] = []
        index = delta.index if isinstance(delta.index, int) else len(self.calls)
        function = delta.function
        name = getattr(function, "name", None) or ""
        args = getattr(function, "arguments", None) or ""
        call = self.calls.get(index)
        if call is not None and delta.id and delta.id != call.id and _complete(call.args):
            # Some servers send every call at index 0, each with its own id.
            parts += self._end(call)
            call = None
        if call is None:
            call = _Call(delta.id or f"call_{new_id().replace('-', '')[:24]}", name)
            self.calls[index] = call
            self.order.append(call)
            parts.append(ToolCallStart(call.id, call.name))
        elif name and not call.name:
            call.name = name
        if args:
            call.args += args
            parts.append(ToolCallDelta(call.id, args))
        return parts

    def _end(self, call: _Call) -> list[StreamPart]:
        if call.ended:
            return []
        call.ended = True
        return [ToolCallEnd(call.id)]

    def end(self) -> list[StreamPart]:
        """The open calls' ends and the :class:`Finish` (call after the last chunk). Raises
        :class:`ProviderError` when no chunk had a ``finish_reason``."""
        if self.finish_reason is None:
            raise ProviderError("openai-compat stream ended before finish_reason: unexpected EOF")
        parts: list[StreamPart] = []
        for call in self.order:
            parts += self._end(call)
        reason = FINISH_REASONS.get(self.finish_reason or "", "other")
        if reason == "stop" and self.order:
            # Some servers say "stop" after tool calls; the calls still want answers.
            reason = "tool-calls"
        usage = self.usage or Usage()
        parts.append(Finish(reason=reason, usage=usage, provider_response_id=self.response_id))
        return parts


def _complete(args: str) -> bool:
    try:
        json.loads(args)
    except json.JSONDecodeError:
        return False
    return True


def _usage(usage: Any) -> Usage:
    prompt = usage.prompt_tokens or 0
    cached = getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", 0) or 0
    details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        input_tokens=prompt - cached,
        output_tokens=usage.completion_tokens or 0,
        total_tokens=usage.total_tokens or 0,
        reasoning_tokens=getattr(details, "reasoning_tokens", 0) or 0,
        cache_read_tokens=cached,
    )


# --- history --------------------------------------------------------------------------------


def render_messages(messages: list[PromptMessage]) -> list[dict[str, Any]]:
    """Our history as Chat Completions messages (see the module docstring)."""
    out: list[dict[str, Any]] = []
    lead: list[str] = []
    started = False
    for message in messages:
        if message.role == "system":
            text = system_texts(message.content)
            if not text:
                continue
            if started:
                out.append({"role": "system", "content": text})
            else:
                lead.append(text)
            continue
        started = True
        if message.role == "user":
            content = _user_content(message.content)
            if content:
                out.append({"role": "user", "content": content})
        elif message.role == "tool":
            out += [
                {"role": "tool", "tool_call_id": p.tool_call_id, "content": result_text(p)}
                for p in message.content
                if p.type == "tool-result" and not p.provider_executed
            ]
        else:
            assistant = _assistant(message.content)
            if assistant:
                out.append(assistant)
    if lead:
        out.insert(0, {"role": "system", "content": "\n\n".join(lead)})
    return out


def _user_content(parts: list[ChatMessagePart]) -> str | list[dict[str, Any]]:
    rendered = user_parts(parts)
    if all(p.type == "text" for p in rendered):
        return "\n\n".join(p.text or "" for p in rendered)
    content: list[dict[str, Any]] = []
    for part in rendered:
        media_type = base_media_type(part)
        if part.type == "text":
            content.append({"type": "text", "text": part.text})
        elif part.data and media_type.startswith("image/"):
            url = f"data:{media_type};base64,{part.data}"
            content.append({"type": "image_url", "image_url": {"url": url}})
        else:
            text = file_text(part)
            shown = wrap_file_text(part, text) if text is not None else file_placeholder(part)
            content.append({"type": "text", "text": shown})
    return content


def _assistant(parts: list[ChatMessagePart]) -> dict[str, Any] | None:
    text = "".join(p.text or "" for p in parts if p.type == "text")
    calls = [
        {
            "id": p.tool_call_id,
            "type": "function",
            "function": {"name": p.tool_name, "arguments": args_json(p)},
        }
        for p in parts
        if p.type == "tool-call" and not p.provider_executed
    ]
    if not text.strip() and not calls:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": text if text.strip() else None}
    if calls:
        message["tool_calls"] = calls
    return message


# --- factory --------------------------------------------------------------------------------

make_model = OpenAIChatModel.for_config
"""The model for a config (titles too use the config's model)."""
