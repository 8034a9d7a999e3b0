"""The OpenAI Responses wire: every event named after its ``type``, no ``[DONE]``, as in the
recorded ``reasoning_summary_function_call.sse`` and ``error_insufficient_quota.sse``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..script import ErrorSpec
from ._common import (
    Frame,
    Plan,
    PlannedCall,
    Rendered,
    chunks,
    encrypted_reasoning,
    event_frame,
    hex_id,
)
from .errors import RESPONSES_STREAM_ERROR, merge_error

# An unfinished response is `incomplete` with one of these reasons.
_RESPONSES_INCOMPLETE = {
    "length": "max_output_tokens",
    "max_output_tokens": "max_output_tokens",
    "content-filter": "content_filter",
    "content_filter": "content_filter",
}


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
        self.id = hex_id("resp_")
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
            event_frame(kind, {"type": kind, **fields, "sequence_number": sequence}, chunk=chunk)
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
            for piece in chunks(text, plan.chunk_size):
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
        for piece in chunks(plan.text, plan.chunk_size):
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
        for piece in chunks(call.arguments, plan.chunk_size):
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
        fields = merge_error(RESPONSES_STREAM_ERROR, error)
        failed = {**builder.envelope, "status": "failed"}
        failed["error"] = {"code": fields["code"] or fields["type"], "message": fields["message"]}
        return [
            event_frame("error", {"type": "error", "sequence_number": cut, "error": fields}),
            event_frame(
                "response.failed",
                {"type": "response.failed", "sequence_number": cut + 1, "response": failed},
            ),
        ]

    out.error_frames = error_frames
    return out


def responses_object(plan: Plan) -> dict[str, Any]:
    """The non-streaming Responses response."""
    return _ResponsesBuilder(plan).final()[1]
