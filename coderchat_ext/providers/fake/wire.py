"""Rendering a scripted turn in the three wire formats, streaming and not, plus error bodies.

The shapes follow the recorded transcripts in ``shared/acceptance/fixtures`` (Anthropic
``thinking_tool_use.sse``, ``error_overloaded_midstream.sse``; Responses
``reasoning_summary_function_call.sse``, ``error_insufficient_quota.sse``; chat
``tool_calls_parallel_include_usage.sse``) and their error bodies: Anthropic sends compact JSON
with an ``event:`` line per event, OpenAI pretty-prints error bodies, the Responses API names
every event after its ``type`` and has no ``[DONE]``, Chat Completions is data-only and ends with
``data: [DONE]``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .script import ErrorSpec, Turn, Wire

NEUTRAL_STOP_REASONS = ("stop", "tool-calls", "length", "content-filter")
"""The wire-independent stop reasons a turn may give (also ``Model`` finish reasons)."""

_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "tool-calls": "tool_use",
    "length": "max_tokens",
    "content-filter": "refusal",
}
_CHAT_STOP = {
    "stop": "stop",
    "tool-calls": "tool_calls",
    "length": "length",
    "content-filter": "content_filter",
}
# Responses: an unfinished response is `incomplete` with one of these reasons.
_RESPONSES_INCOMPLETE = {
    "length": "max_output_tokens",
    "max_output_tokens": "max_output_tokens",
    "content-filter": "content_filter",
    "content_filter": "content_filter",
}

_ALNUM = string.ascii_letters + string.digits


def _random_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def _hex_id(prefix: str) -> str:
    return prefix + secrets.token_hex(25)


def thinking_signature(text: str) -> str:
    """The signature the fake server gives an Anthropic thinking block it did not get one for
    (deterministic, so a test can check that the next request sends it back)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.b64encode(b"fake-thinking-signature:" + digest).decode("ascii")


def encrypted_reasoning(text: str) -> str:
    """The ``encrypted_content`` of a Responses reasoning item (deterministic, like
    :func:`thinking_signature`); sent only when the request includes
    ``reasoning.encrypted_content``."""
    return "fake-encrypted:" + base64.b64encode(text.encode("utf-8")).decode("ascii")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _tokens(text: str) -> int:
    return (len(text) + 3) // 4


@dataclass
class PlannedCall:
    id: str
    name: str
    arguments: str


@dataclass
class Plan:
    """A turn resolved against one request: ids, texts, usage counts and options."""

    wire: Wire
    model: str
    text: str
    reasoning: list[str]
    signatures: list[str]
    calls: list[PlannedCall]
    stop: str
    chunk_size: int
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    reasoning_field: str
    request: Mapping[str, Any]


def build_plan(turn: Turn, wire: Wire, request: Mapping[str, Any], user_text: str) -> Plan:
    """Resolve ``turn`` for a request body: echo, default ids, estimated usage, stop reason."""
    text = user_text if turn.echo else (turn.text or "")
    reasoning = turn.reasoning_blocks
    prefix = "toolu_" if wire == "anthropic" else "call_"
    calls = [
        PlannedCall(call.id or _random_id(prefix), call.name, call.arguments_json())
        for call in turn.tool_calls
    ]
    usage = turn.usage
    reasoning_tokens = (
        usage.reasoning_tokens
        if usage.reasoning_tokens is not None
        else sum(_tokens(r) for r in reasoning)
    )
    output_tokens = (
        usage.output_tokens
        if usage.output_tokens is not None
        else max(1, _tokens(text) + sum(_tokens(c.arguments) for c in calls) + reasoning_tokens)
    )
    prompt = request.get("messages") if wire != "responses" else request.get("input")
    input_tokens = (
        usage.input_tokens
        if usage.input_tokens is not None
        else max(1, _tokens(_dumps(prompt)) + _tokens(_dumps(request.get("system") or "")))
    )
    return Plan(
        wire=wire,
        model=turn.model or str(request.get("model") or "fake-model"),
        text=text,
        reasoning=reasoning,
        signatures=[turn.signature or thinking_signature(r) for r in reasoning],
        calls=calls,
        stop=turn.stop_reason or ("tool-calls" if calls else "stop"),
        chunk_size=turn.chunk_size,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning_tokens,
        cache_creation_tokens=usage.cache_creation_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        reasoning_field=turn.reasoning_field,
        request=request,
    )


@dataclass
class Frame:
    """One SSE event as bytes; ``chunk`` marks content deltas (what chunk counts count)."""

    data: bytes
    chunk: bool = False


def _no_error_frames(cut: int, error: ErrorSpec | None) -> list[Frame]:
    return []


@dataclass
class Rendered:
    """A whole stream: ``frames`` in order, ``text_end`` the frame index just after the text
    deltas (where ``error_midstream: true`` cuts), ``final_start`` the first terminal frame, and
    ``error_frames(cut, error)`` the wire's in-stream error to send after ``frames[:cut]``."""

    frames: list[Frame] = field(default_factory=list)
    text_end: int = 0
    final_start: int = 0
    error_frames: Callable[[int, ErrorSpec | None], list[Frame]] = _no_error_frames

    def cut_after(self, chunks: int) -> int:
        """The frame index just after ``chunks`` content deltas (before the first one for 0),
        at most :attr:`final_start`."""
        positions = [i for i, frame in enumerate(self.frames) if frame.chunk]
        if chunks < len(positions):
            cut = positions[chunks - 1] + 1 if chunks else positions[0]
            return min(cut, self.final_start)
        return self.final_start


def _event(name: str, data: Mapping[str, Any], *, chunk: bool = False) -> Frame:
    return Frame(f"event: {name}\ndata: {_dumps(data)}\n\n".encode(), chunk)


def _data(data: Mapping[str, Any] | str, *, chunk: bool = False) -> Frame:
    payload = data if isinstance(data, str) else _dumps(data)
    return Frame(f"data: {payload}\n\n".encode(), chunk)


def _parsed_arguments(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


# --- Anthropic Messages --------------------------------------------------------------------


def _anthropic_usage(plan: Plan, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": plan.input_tokens,
        "cache_creation_input_tokens": plan.cache_creation_tokens,
        "cache_read_input_tokens": plan.cache_read_tokens,
        "output_tokens": output_tokens,
    }


def anthropic_stream(plan: Plan) -> Rendered:
    """``message_start``, one block per thinking block (``thinking_delta``s then a
    ``signature_delta``), a text block, one ``tool_use`` block per call (an empty
    ``input_json_delta`` then the argument chunks), ``message_delta`` with the stop reason and
    the full usage, ``message_stop``; a ``ping`` after the first block start, as the API does."""
    out = Rendered(error_frames=_anthropic_error_frames)
    frames = out.frames
    start_usage = {
        **_anthropic_usage(plan, 1),
        "cache_creation": {
            "ephemeral_5m_input_tokens": plan.cache_creation_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "service_tier": "standard",
    }
    message: dict[str, Any] = {
        "model": plan.model,
        "id": _random_id("msg_"),
        "type": "message",
        "role": "assistant",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    frames.append(_event("message_start", {"type": "message_start", "message": message}))
    index = 0

    def block(content_block: dict[str, Any], deltas: list[dict[str, Any]], *, text: bool) -> None:
        nonlocal index
        start = {"type": "content_block_start", "index": index, "content_block": content_block}
        frames.append(_event("content_block_start", start))
        if index == 0:
            frames.append(_event("ping", {"type": "ping"}))
        for delta in deltas:
            chunk = delta.pop("_chunk", True)
            event = {"type": "content_block_delta", "index": index, "delta": delta}
            frames.append(_event("content_block_delta", event, chunk=chunk))
        if text:
            out.text_end = len(frames)
        frames.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    for reasoning, signature in zip(plan.reasoning, plan.signatures, strict=True):
        deltas: list[dict[str, Any]] = [
            {"type": "thinking_delta", "thinking": piece}
            for piece in _chunks(reasoning, plan.chunk_size)
        ]
        deltas.append({"type": "signature_delta", "signature": signature, "_chunk": False})
        block({"type": "thinking", "thinking": "", "signature": ""}, deltas, text=False)
    out.text_end = len(frames)
    if plan.text:
        deltas = [{"type": "text_delta", "text": p} for p in _chunks(plan.text, plan.chunk_size)]
        block({"type": "text", "text": ""}, deltas, text=True)
    for call in plan.calls:
        deltas = [{"type": "input_json_delta", "partial_json": "", "_chunk": False}]
        deltas += [
            {"type": "input_json_delta", "partial_json": piece}
            for piece in _chunks(call.arguments, plan.chunk_size)
        ]
        tool_use = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        block(tool_use, deltas, text=False)
    if index == 0:
        frames.append(_event("ping", {"type": "ping"}))
    out.final_start = len(frames)
    frames.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": _ANTHROPIC_STOP.get(plan.stop, plan.stop),
                    "stop_sequence": None,
                },
                "usage": _anthropic_usage(plan, plan.output_tokens),
            },
        )
    )
    frames.append(_event("message_stop", {"type": "message_stop"}))
    return out


def _anthropic_error_frames(cut: int, error: ErrorSpec | None) -> list[Frame]:
    """``event: error`` (default ``overloaded_error``), as in ``error_overloaded_midstream.sse``."""
    fields = _merge(_ANTHROPIC_STREAM_ERROR, error)
    return [_event("error", {"type": "error", "error": fields})]


def anthropic_message(plan: Plan) -> dict[str, Any]:
    """The non-streaming Messages response."""
    content: list[dict[str, Any]] = [
        {"type": "thinking", "thinking": r, "signature": s}
        for r, s in zip(plan.reasoning, plan.signatures, strict=True)
    ]
    if plan.text:
        content.append({"type": "text", "text": plan.text})
    content += [
        {
            "type": "tool_use",
            "id": c.id,
            "name": c.name,
            "input": _parsed_arguments(c.arguments),
        }
        for c in plan.calls
    ]
    return {
        "model": plan.model,
        "id": _random_id("msg_"),
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": _ANTHROPIC_STOP.get(plan.stop, plan.stop),
        "stop_sequence": None,
        "usage": {**_anthropic_usage(plan, plan.output_tokens), "service_tier": "standard"},
    }


# --- OpenAI Responses ----------------------------------------------------------------------


def _responses_usage(plan: Plan) -> dict[str, Any]:
    prompt = plan.input_tokens + plan.cache_read_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": plan.cache_read_tokens},
        "output_tokens": plan.output_tokens,
        "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
        "total_tokens": prompt + plan.output_tokens,
    }


class _ResponsesBuilder:
    """Builds the items of one Responses response and its lifecycle envelopes."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        request = plan.request
        self.id = _hex_id("resp_")
        self.created_at = int(time.time())
        include = request.get("include")
        self.encrypted = isinstance(include, list) and "reasoning.encrypted_content" in include
        reasoning = request.get("reasoning") if isinstance(request.get("reasoning"), dict) else {}
        self.envelope: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": "in_progress",
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "model": plan.model,
            "output": [],
            "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "previous_response_id": request.get("previous_response_id"),
            "reasoning": {
                "effort": (reasoning or {}).get("effort"),
                "summary": (reasoning or {}).get("summary"),
            },
            "store": request.get("store", True),
            "temperature": request.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": request.get("tools") or [],
            "top_p": request.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": None,
            "user": None,
            "metadata": {},
        }

    def reasoning_item(self, done: bool) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": self.reasoning_id,
            "type": "reasoning",
            "summary": (
                [{"type": "summary_text", "text": r} for r in self.plan.reasoning] if done else []
            ),
        }
        if self.encrypted:
            item["encrypted_content"] = encrypted_reasoning("\n\n".join(self.plan.reasoning))
        return item

    def message_item(self, done: bool) -> dict[str, Any]:
        content = [self.text_part(self.plan.text)] if done else []
        return {
            "id": self.message_id,
            "type": "message",
            "status": "completed" if done else "in_progress",
            "content": content,
            "role": "assistant",
        }

    @staticmethod
    def text_part(text: str) -> dict[str, Any]:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}

    def call_item(self, call: PlannedCall, item_id: str, done: bool) -> dict[str, Any]:
        return {
            "id": item_id,
            "type": "function_call",
            "status": "completed" if done else "in_progress",
            "arguments": call.arguments if done else "",
            "call_id": call.id,
            "name": call.name,
        }

    def final(self) -> tuple[str, dict[str, Any]]:
        """The terminal event type and its response object."""
        response = dict(self.envelope)
        response["output"] = self.output()
        response["usage"] = _responses_usage(self.plan)
        reason = _RESPONSES_INCOMPLETE.get(self.plan.stop)
        if reason is not None:
            response["status"] = "incomplete"
            response["incomplete_details"] = {"reason": reason}
            return "response.incomplete", response
        response["status"] = "completed"
        response["completed_at"] = int(time.time())
        return "response.completed", response

    def output(self) -> list[dict[str, Any]]:
        items = [self.reasoning_item(True)] if self.plan.reasoning else []
        if self.plan.text:
            items.append(self.message_item(True))
        calls = zip(self.plan.calls, self.call_ids, strict=True)
        items += [self.call_item(call, item_id, True) for call, item_id in calls]
        return items

    @property
    def reasoning_id(self) -> str:
        return self.id.replace("resp_", "rs_", 1)

    @property
    def message_id(self) -> str:
        return self.id.replace("resp_", "msg_", 1)

    @property
    def call_ids(self) -> list[str]:
        return [self.id.replace("resp_", f"fc_{n}", 1) for n in range(len(self.plan.calls))]


def responses_stream(plan: Plan) -> Rendered:
    """``response.created``/``in_progress``; a reasoning item (summary part added, text
    deltas, text done, part done per block); a message item (content part, ``output_text``
    deltas); one ``function_call`` item per call (argument deltas, arguments done); each item
    closed by ``output_item.done``; then ``response.completed`` (or ``response.incomplete``)
    with the whole output and the usage. Every event carries ``sequence_number``."""
    out = Rendered()
    builder = _ResponsesBuilder(plan)
    sequence = 0

    def emit(kind: str, fields: Mapping[str, Any], *, chunk: bool = False) -> None:
        nonlocal sequence
        out.frames.append(
            _event(kind, {"type": kind, **fields, "sequence_number": sequence}, chunk=chunk)
        )
        sequence += 1

    emit("response.created", {"response": builder.envelope})
    emit("response.in_progress", {"response": builder.envelope})
    index = 0
    if plan.reasoning:
        item_id = builder.reasoning_id
        added = {"item": builder.reasoning_item(False), "output_index": index}
        emit("response.output_item.added", added)
        for n, text in enumerate(plan.reasoning):
            where = {"item_id": item_id, "output_index": index, "summary_index": n}
            part = {"type": "summary_text", "text": ""}
            emit("response.reasoning_summary_part.added", {**where, "part": part})
            for piece in _chunks(text, plan.chunk_size):
                delta = {**where, "delta": piece}
                emit("response.reasoning_summary_text.delta", delta, chunk=True)
            emit("response.reasoning_summary_text.done", {**where, "text": text})
            part = {"type": "summary_text", "text": text}
            emit("response.reasoning_summary_part.done", {**where, "part": part})
        done = {"item": builder.reasoning_item(True), "output_index": index}
        emit("response.output_item.done", done)
        index += 1
    out.text_end = len(out.frames)
    if plan.text:
        where = {"item_id": builder.message_id, "output_index": index, "content_index": 0}
        added = {"item": builder.message_item(False), "output_index": index}
        emit("response.output_item.added", added)
        emit("response.content_part.added", {**where, "part": builder.text_part("")})
        for piece in _chunks(plan.text, plan.chunk_size):
            delta = {**where, "delta": piece, "logprobs": []}
            emit("response.output_text.delta", delta, chunk=True)
        out.text_end = len(out.frames)
        emit("response.output_text.done", {**where, "text": plan.text, "logprobs": []})
        emit("response.content_part.done", {**where, "part": builder.text_part(plan.text)})
        done = {"item": builder.message_item(True), "output_index": index}
        emit("response.output_item.done", done)
        index += 1
    for call, item_id in zip(plan.calls, builder.call_ids, strict=True):
        where = {"item_id": item_id, "output_index": index}
        added = {"item": builder.call_item(call, item_id, False), "output_index": index}
        emit("response.output_item.added", added)
        for piece in _chunks(call.arguments, plan.chunk_size):
            emit("response.function_call_arguments.delta", {**where, "delta": piece}, chunk=True)
        emit("response.function_call_arguments.done", {**where, "arguments": call.arguments})
        done = {"item": builder.call_item(call, item_id, True), "output_index": index}
        emit("response.output_item.done", done)
        index += 1
    out.final_start = len(out.frames)
    kind, response = builder.final()
    emit(kind, {"response": response})

    def error_frames(cut: int, error: ErrorSpec | None) -> list[Frame]:
        # An `error` event then `response.failed`, as in error_insufficient_quota.sse; every
        # frame carries one sequence number, so the cut continues the numbering.
        fields = _merge(_RESPONSES_STREAM_ERROR, error)
        failed = {**builder.envelope, "status": "failed"}
        failed["error"] = {"code": fields["code"] or fields["type"], "message": fields["message"]}
        return [
            _event("error", {"type": "error", "sequence_number": cut, "error": fields}),
            _event(
                "response.failed",
                {"type": "response.failed", "sequence_number": cut + 1, "response": failed},
            ),
        ]

    out.error_frames = error_frames
    return out


def responses_object(plan: Plan) -> dict[str, Any]:
    """The non-streaming Responses response."""
    return _ResponsesBuilder(plan).final()[1]


# --- OpenAI Chat Completions ---------------------------------------------------------------


def _chat_usage(plan: Plan) -> dict[str, Any]:
    prompt = plan.input_tokens + plan.cache_read_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": plan.output_tokens,
        "total_tokens": prompt + plan.output_tokens,
        "prompt_tokens_details": {"cached_tokens": plan.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": plan.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _include_usage(request: Mapping[str, Any]) -> bool:
    options = request.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def chat_stream(plan: Plan) -> Rendered:
    """A role chunk, reasoning deltas (``reasoning_content`` or ``reasoning``), ``content``
    deltas, ``tool_calls`` deltas by index (id and name first with empty arguments, then the
    argument pieces), a finish chunk, the usage-only chunk (``choices: []``) when
    ``stream_options.include_usage``, and ``data: [DONE]``."""
    out = Rendered(error_frames=_chat_error_frames)
    envelope: dict[str, Any] = {
        "id": _random_id("chatcmpl-", 29),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": plan.model,
        "system_fingerprint": "fp_fake",
    }
    with_usage = _include_usage(plan.request)
    if with_usage:
        envelope["usage"] = None

    def emit(delta: dict[str, Any], finish: str | None = None, chunk: bool = False) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        out.frames.append(_data({**envelope, "choices": [choice]}, chunk=chunk))

    emit({"role": "assistant", "content": ""})
    for piece in _chunks("\n\n".join(plan.reasoning), plan.chunk_size):
        emit({plan.reasoning_field: piece}, chunk=True)
    for piece in _chunks(plan.text, plan.chunk_size):
        emit({"content": piece}, chunk=True)
    out.text_end = len(out.frames)
    for index, call in enumerate(plan.calls):
        function = {"name": call.name, "arguments": ""}
        start = {"index": index, "id": call.id, "type": "function", "function": function}
        emit({"tool_calls": [start]})
        for piece in _chunks(call.arguments, plan.chunk_size):
            emit({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, chunk=True)
    out.final_start = len(out.frames)
    emit({}, _CHAT_STOP.get(plan.stop, plan.stop))
    if with_usage:
        out.frames.append(_data({**envelope, "choices": [], "usage": _chat_usage(plan)}))
    out.frames.append(_data("[DONE]"))
    return out


def _chat_error_frames(cut: int, error: ErrorSpec | None) -> list[Frame]:
    """A ``data: {"error": ...}`` chunk and no ``[DONE]``, as OpenAI-compatible servers fail."""
    return [_data({"error": _merge(_CHAT_STREAM_ERROR, error)})]


def chat_completion(plan: Plan) -> dict[str, Any]:
    """The non-streaming Chat Completions response."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": plan.text or None,
        "refusal": None,
    }
    if plan.reasoning:
        message[plan.reasoning_field] = "\n\n".join(plan.reasoning)
    if plan.calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in plan.calls
        ]
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": _CHAT_STOP.get(plan.stop, plan.stop),
    }
    return {
        "id": _random_id("chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": plan.model,
        "choices": [choice],
        "usage": _chat_usage(plan),
        "system_fingerprint": "fp_fake",
    }


# --- errors --------------------------------------------------------------------------------

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "prompt is too long: 208445 tokens > 200000 maximum"),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit "
        "(https://docs.anthropic.com/en/api/rate-limits); see the response headers for current "
        "usage. Please reduce the prompt length or the maximum tokens requested, or try again "
        "later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss "
        "your options for a rate limit increase.",
    ),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
# Anthropic error type -> the status the API sends it with (non-streaming mid-stream errors).
_ANTHROPIC_STATUS = {kind: status for status, (kind, _) in _ANTHROPIC_ERRORS.items()}

_OPENAI_SERVER_ERROR = (
    "The server had an error processing your request. Sorry about that! You can retry your "
    "request, or contact us through our help center at help.openai.com if you keep seeing this "
    "error."
)
_OPENAI_ERRORS: dict[int, tuple[str, str, str | None]] = {
    401: (
        "invalid_request_error",
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_api_key",
    ),
    403: ("invalid_request_error", "You are not allowed to access this resource.", None),
    404: (
        "invalid_request_error",
        "The model does not exist or you do not have access to it.",
        "model_not_found",
    ),
    429: (
        "requests",
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please "
        "try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.",
        "rate_limit_exceeded",
    ),
    500: ("server_error", _OPENAI_SERVER_ERROR, None),
    503: (
        "server_error",
        "The engine is currently overloaded, please try again later.",
        None,
    ),
}
_OPENAI_CONTEXT_LENGTH = {
    "chat": (
        "This model's maximum context length is 128000 tokens. However, your messages resulted "
        "in 131072 tokens. Please reduce the length of the messages.",
        "messages",
    ),
    "responses": (
        "Your input exceeds the context window of this model. Please adjust your input and try "
        "again.",
        "input",
    ),
}
_ANTHROPIC_STREAM_ERROR = {"details": None, "type": "overloaded_error", "message": "Overloaded"}
_RESPONSES_STREAM_ERROR = {
    "type": "server_error",
    "code": "server_error",
    "message": _OPENAI_SERVER_ERROR,
    "param": None,
}
_CHAT_STREAM_ERROR = {
    "message": _OPENAI_SERVER_ERROR,
    "type": "server_error",
    "param": None,
    "code": None,
}


def _merge(defaults: Mapping[str, Any], error: ErrorSpec | None) -> dict[str, Any]:
    merged = dict(defaults)
    if error is not None:
        merged.update(error.model_dump(exclude_none=True))
    return merged


def error_fields(wire: Wire, status: int, error: ErrorSpec | None) -> dict[str, Any]:
    """The ``error`` object of an HTTP error response: the wire's default for ``status``
    (400: context length exceeded) with ``error``'s fields laid over it."""
    if wire == "anthropic":
        kind, message = _ANTHROPIC_ERRORS.get(
            status,
            ("api_error", "Internal server error")
            if status >= 500
            else ("invalid_request_error", "Invalid request"),
        )
        defaults: dict[str, Any] = {"type": kind, "message": message}
        if status == 529:
            defaults = {"details": None, **defaults}
        return _merge(defaults, error)
    if status == 400:
        message, param = _OPENAI_CONTEXT_LENGTH[wire]
        defaults = {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": "context_length_exceeded",
        }
    else:
        kind, message, code = _OPENAI_ERRORS.get(
            status,
            ("server_error", _OPENAI_SERVER_ERROR, None)
            if status >= 500
            else ("invalid_request_error", "Invalid request.", None),
        )
        defaults = {"message": message, "type": kind, "param": None, "code": code}
    return _merge(defaults, error)


def error_body(wire: Wire, status: int, error: ErrorSpec | None, body: Any = None) -> bytes:
    """The body of an HTTP error response. ``body`` (a JSON value, or a string sent as is)
    replaces the default; Anthropic bodies are compact with a ``request_id``, OpenAI bodies
    pretty-printed with a 2-space indent, as the live APIs send them."""
    if isinstance(body, str):
        return body.encode("utf-8")
    if wire == "anthropic":
        value = (
            body
            if body is not None
            else {
                "type": "error",
                "error": error_fields(wire, status, error),
                "request_id": _random_id("req_"),
            }
        )
        return _dumps(value).encode("utf-8")
    value = body if body is not None else {"error": error_fields(wire, status, error)}
    return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8")


def midstream_status(wire: Wire, error: ErrorSpec | None) -> int:
    """The status a non-streaming request gets for a turn with ``error_midstream``: the status
    the API sends that error type with (Anthropic ``overloaded_error``: 529), else 500."""
    if wire == "anthropic":
        kind = (error.type if error is not None else None) or "overloaded_error"
        return _ANTHROPIC_STATUS.get(kind, 500)
    return 500


def midstream_http_error(wire: Wire, error: ErrorSpec | None) -> ErrorSpec:
    """The wire's in-stream error as the error fields of an HTTP error (non-streaming)."""
    defaults = {
        "anthropic": _ANTHROPIC_STREAM_ERROR,
        "responses": _RESPONSES_STREAM_ERROR,
        "chat": _CHAT_STREAM_ERROR,
    }[wire]
    fields = {k: v for k, v in _merge(defaults, error).items() if k != "details"}
    return ErrorSpec.model_validate(fields)


def render_stream(plan: Plan) -> Rendered:
    """The stream of ``plan`` in its wire format."""
    if plan.wire == "anthropic":
        return anthropic_stream(plan)
    if plan.wire == "responses":
        return responses_stream(plan)
    return chat_stream(plan)


def render_body(plan: Plan) -> dict[str, Any]:
    """The non-streaming response of ``plan`` in its wire format."""
    if plan.wire == "anthropic":
        return anthropic_message(plan)
    if plan.wire == "responses":
        return responses_object(plan)
    return chat_completion(plan)
