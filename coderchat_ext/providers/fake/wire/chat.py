"""The OpenAI Chat Completions wire (also Ollama, vLLM, LM Studio): data-only SSE ending with
``data: [DONE]``, as in the recorded ``tool_calls_parallel_include_usage.sse``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..script import ErrorSpec
from ._common import (
    Frame,
    Plan,
    Rendered,
    chunks,
    data_frame,
    random_id,
)
from .errors import CHAT_STREAM_ERROR, merge_error

_CHAT_STOP = {
    "stop": "stop",
    "tool-calls": "tool_calls",
    "length": "length",
    "content-filter": "content_filter",
}
# Responses: an unfinished response is `incomplete` with one of these reasons.


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
        "id": random_id("chatcmpl-", 29),
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
        out.frames.append(data_frame({**envelope, "choices": [choice]}, chunk=chunk))

    emit({"role": "assistant", "content": ""})
    for piece in chunks("\n\n".join(plan.reasoning), plan.chunk_size):
        emit({plan.reasoning_field: piece}, chunk=True)
    for piece in chunks(plan.text, plan.chunk_size):
        emit({"content": piece}, chunk=True)
    out.text_end = len(out.frames)
    for index, call in enumerate(plan.calls):
        function = {"name": call.name, "arguments": ""}
        start = {"index": index, "id": call.id, "type": "function", "function": function}
        emit({"tool_calls": [start]})
        for piece in chunks(call.arguments, plan.chunk_size):
            emit({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, chunk=True)
    out.final_start = len(out.frames)
    emit({}, _CHAT_STOP.get(plan.stop, plan.stop))
    if with_usage:
        out.frames.append(data_frame({**envelope, "choices": [], "usage": _chat_usage(plan)}))
    out.frames.append(data_frame("[DONE]"))
    return out


def _chat_error_frames(cut: int, error: ErrorSpec | None) -> list[Frame]:
    """A ``data: {"error": ...}`` chunk and no ``[DONE]``, as OpenAI-compatible servers fail."""
    return [data_frame({"error": merge_error(CHAT_STREAM_ERROR, error)})]


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
        "id": random_id("chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": plan.model,
        "choices": [choice],
        "usage": _chat_usage(plan),
        "system_fingerprint": "fp_fake",
    }
