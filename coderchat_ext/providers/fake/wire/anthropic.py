"""The Anthropic Messages wire: ``event:`` + compact ``data:`` SSE lines, as in the recorded
``thinking_tool_use.sse`` and ``error_overloaded_midstream.sse``."""

from __future__ import annotations

from typing import Any

from ..script import ErrorSpec
from ._common import (
    Frame,
    Plan,
    Rendered,
    chunks,
    event_frame,
    parsed_arguments,
    random_id,
)
from .errors import ANTHROPIC_STREAM_ERROR, merge_error

_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "tool-calls": "tool_use",
    "length": "max_tokens",
    "content-filter": "refusal",
}


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
        "id": random_id("msg_"),
        "type": "message",
        "role": "assistant",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    frames.append(event_frame("message_start", {"type": "message_start", "message": message}))
    index = 0

    def block(content_block: dict[str, Any], deltas: list[dict[str, Any]], *, text: bool) -> None:
        nonlocal index
        start = {"type": "content_block_start", "index": index, "content_block": content_block}
        frames.append(event_frame("content_block_start", start))
        if index == 0:
            frames.append(event_frame("ping", {"type": "ping"}))
        for delta in deltas:
            chunk = delta.pop("_chunk", True)
            event = {"type": "content_block_delta", "index": index, "delta": delta}
            frames.append(event_frame("content_block_delta", event, chunk=chunk))
        if text:
            out.text_end = len(frames)
        frames.append(
            event_frame("content_block_stop", {"type": "content_block_stop", "index": index})
        )
        index += 1

    for reasoning, signature in zip(plan.reasoning, plan.signatures, strict=True):
        deltas: list[dict[str, Any]] = [
            {"type": "thinking_delta", "thinking": piece}
            for piece in chunks(reasoning, plan.chunk_size)
        ]
        deltas.append({"type": "signature_delta", "signature": signature, "_chunk": False})
        block({"type": "thinking", "thinking": "", "signature": ""}, deltas, text=False)
    out.text_end = len(frames)
    if plan.text:
        deltas = [{"type": "text_delta", "text": p} for p in chunks(plan.text, plan.chunk_size)]
        block({"type": "text", "text": ""}, deltas, text=True)
    for call in plan.calls:
        deltas = [{"type": "input_json_delta", "partial_json": "", "_chunk": False}]
        deltas += [
            {"type": "input_json_delta", "partial_json": piece}
            for piece in chunks(call.arguments, plan.chunk_size)
        ]
        tool_use = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        block(tool_use, deltas, text=False)
    if index == 0:
        frames.append(event_frame("ping", {"type": "ping"}))
    out.final_start = len(frames)
    frames.append(
        event_frame(
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
    frames.append(event_frame("message_stop", {"type": "message_stop"}))
    return out


def _anthropic_error_frames(cut: int, error: ErrorSpec | None) -> list[Frame]:
    """``event: error`` (default ``overloaded_error``), as in ``error_overloaded_midstream.sse``."""
    fields = merge_error(ANTHROPIC_STREAM_ERROR, error)
    return [event_frame("error", {"type": "error", "error": fields})]


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
            "input": parsed_arguments(c.arguments),
        }
        for c in plan.calls
    ]
    return {
        "model": plan.model,
        "id": random_id("msg_"),
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": _ANTHROPIC_STOP.get(plan.stop, plan.stop),
        "stop_sequence": None,
        "usage": {**_anthropic_usage(plan, plan.output_tokens), "service_tier": "standard"},
    }
