"""What the three wire formats share: a scripted turn resolved against one request (:class:`Plan`),
SSE frames, ids and token estimates."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..script import ErrorSpec, Turn, Wire

NEUTRAL_STOP_REASONS = ("stop", "tool-calls", "length", "content-filter")
"""The wire-independent stop reasons a turn may give (also ``Model`` finish reasons)."""

_ALNUM = string.ascii_letters + string.digits


def random_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def hex_id(prefix: str) -> str:
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


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def tokens(text: str) -> int:
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
        PlannedCall(call.id or random_id(prefix), call.name, call.arguments_json())
        for call in turn.tool_calls
    ]
    usage = turn.usage
    reasoning_tokens = (
        usage.reasoning_tokens
        if usage.reasoning_tokens is not None
        else sum(tokens(r) for r in reasoning)
    )
    output_tokens = (
        usage.output_tokens
        if usage.output_tokens is not None
        else max(1, tokens(text) + sum(tokens(c.arguments) for c in calls) + reasoning_tokens)
    )
    prompt = request.get("messages") if wire != "responses" else request.get("input")
    input_tokens = (
        usage.input_tokens
        if usage.input_tokens is not None
        else max(1, tokens(dumps(prompt)) + tokens(dumps(request.get("system") or "")))
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


def no_error_frames(cut: int, error: ErrorSpec | None) -> list[Frame]:
    return []


@dataclass
class Rendered:
    """A whole stream: ``frames`` in order, ``text_end`` the frame index just after the text
    deltas (where ``error_midstream: true`` cuts), ``final_start`` the first terminal frame, and
    ``error_frames(cut, error)`` the wire's in-stream error to send after ``frames[:cut]``."""

    frames: list[Frame] = field(default_factory=list)
    text_end: int = 0
    final_start: int = 0
    error_frames: Callable[[int, ErrorSpec | None], list[Frame]] = no_error_frames

    def cut_after(self, chunks: int) -> int:
        """The frame index just after ``chunks`` content deltas (before the first one for 0),
        at most :attr:`final_start`."""
        positions = [i for i, frame in enumerate(self.frames) if frame.chunk]
        if chunks < len(positions):
            cut = positions[chunks - 1] + 1 if chunks else positions[0]
            return min(cut, self.final_start)
        return self.final_start


def event_frame(name: str, data: Mapping[str, Any], *, chunk: bool = False) -> Frame:
    return Frame(f"event: {name}\ndata: {dumps(data)}\n\n".encode(), chunk)


def data_frame(data: Mapping[str, Any] | str, *, chunk: bool = False) -> Frame:
    payload = data if isinstance(data, str) else dumps(data)
    return Frame(f"data: {payload}\n\n".encode(), chunk)


def parsed_arguments(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
