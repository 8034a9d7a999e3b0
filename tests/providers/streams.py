"""Helpers for the adapter tests: run a model's stream to the end and fold its parts into what
a reader of the stream sees (text, reasoning blocks, tool calls with raw and parsed arguments,
provider tool results, sources, finish)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coderchat_ext.chatd.loop import _Step
from coderchat_ext.models import ChatMessagePart, MessageRole
from coderchat_ext.providers.base import (
    Finish,
    Model,
    ModelRequest,
    PromptMessage,
    ProviderToolResult,
    ReasoningDelta,
    Source,
    StreamPart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Call:
    id: str
    name: str
    provider_executed: bool
    metadata: dict[str, Any] | None
    deltas: str = ""
    final: str | None = None
    ended: bool = False

    @property
    def arguments(self) -> Any:
        raw = self.final if self.final is not None else self.deltas
        return json.loads(raw) if raw.strip() else {}


@dataclass
class Reasoning:
    text: str = ""
    signature: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Collected:
    """Everything a stream produced, in order; ``error`` is what it raised (if anything)."""

    parts: list[StreamPart] = field(default_factory=list)
    text: str = ""
    reasoning: dict[Any, Reasoning] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)
    results: list[ProviderToolResult] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    finish: Finish | None = None
    error: BaseException | None = None

    def local_calls(self) -> list[Call]:
        return [c for c in self.calls.values() if not c.provider_executed]

    def provider_calls(self) -> list[Call]:
        return [c for c in self.calls.values() if c.provider_executed]

    def add(self, part: StreamPart) -> None:
        self.parts.append(part)
        if isinstance(part, TextDelta):
            self.text += part.text
        elif isinstance(part, ReasoningDelta):
            block = self.reasoning.setdefault(part.block, Reasoning())
            block.text += part.text
            if part.signature is not None:
                block.signature = part.signature
            for provider, values in (part.provider_metadata or {}).items():
                block.metadata.setdefault(provider, {}).update(values)
        elif isinstance(part, ToolCallStart):
            assert part.tool_call_id not in self.calls, f"call {part.tool_call_id} started twice"
            self.calls[part.tool_call_id] = Call(
                part.tool_call_id, part.tool_name, part.provider_executed, part.provider_metadata
            )
        elif isinstance(part, ToolCallDelta):
            call = self.calls[part.tool_call_id]
            assert not call.ended, f"delta after the end of {call.id}"
            call.deltas += part.args_delta
        elif isinstance(part, ToolCallEnd):
            call = self.calls[part.tool_call_id]
            assert not call.ended, f"call {call.id} ended twice"
            call.ended, call.final = True, part.args
        elif isinstance(part, ProviderToolResult):
            self.results.append(part)
        elif isinstance(part, Source):
            self.sources.append(part)
        elif isinstance(part, Finish):
            assert self.finish is None, "two finish parts"
            self.finish = part


def collect(model: Model, request: ModelRequest) -> Collected:
    """Run ``model.stream(request)`` on a fresh event loop; an exception ends the collection
    and is kept in ``error``."""
    collected = Collected()

    async def run() -> None:
        try:
            async for part in model.stream(request):
                collected.add(part)
        except Exception as exc:
            collected.error = exc

    asyncio.run(run())
    return collected


def message(role: MessageRole, *parts: dict[str, Any]) -> PromptMessage:
    return PromptMessage(role, [ChatMessagePart.model_validate(p) for p in parts])


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def user_request(**kwargs: Any) -> ModelRequest:
    """A one-question request (what replayed fixtures answer does not depend on it)."""
    return ModelRequest(messages=[message("user", text("What is the weather?"))], **kwargs)


def persisted(model: Model, request: ModelRequest) -> tuple[list[ChatMessagePart], Finish | None]:
    """Run ``model.stream(request)`` through the chat loop's step accumulator: the assistant
    parts the loop would persist (provider metadata included) and the finish part."""
    step = _Step()

    async def run() -> None:
        async for part in model.stream(request):
            step.add(part)

    asyncio.run(run())
    return step.content(), step.finish


def tool_result(call: ChatMessagePart, result: Any, *, is_error: bool = False) -> dict[str, Any]:
    """The tool result part the loop would persist for ``call``."""
    return {
        "type": "tool-result",
        "tool_call_id": call.tool_call_id,
        "tool_name": call.tool_name,
        "result": result,
        **({"is_error": True} if is_error else {}),
    }
