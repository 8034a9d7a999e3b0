"""An in-process scripted model for tests and benchmarks (provider ``scripted``).

A script is JSON-able so it can come from traitlets config as well as from a test::

    {
      "turns": [                      # consumed in order, one per model call
        {"reasoning": "...", "text": "...", "tool_calls": [{"name": "echo", "args": {...}}]},
        {"error": {"status": 429, "message": "rate limited"}},
        {"text": "done", "usage": {"input_tokens": 10, "output_tokens": 2}}
      ],
      "rules": [                      # when the turns are used up: first regex match on the
        {"match": "hello", "turn": {"text": "hi"}}       # last user message's text
      ],
      "default": {"text": "ok"}        # when nothing else applies
    }

A turn may also set ``delay_first`` (seconds before the first part), ``chunk_delay`` (seconds
between parts), ``chunk_size`` (characters per text delta, default 8), ``finish_reason``,
``error_after_text`` (stream the text, then fail with ``error``), and ``echo`` (reply with the
last user message's text) and ``provider_tools`` (provider-executed calls with their results,
``[{"name", "args", "result"}]``). The model records every request it receives in ``requests``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..models import new_id
from .base import (
    Finish,
    ModelRequest,
    ProviderError,
    ProviderToolResult,
    ReasoningDelta,
    StreamPart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

Turn = dict[str, Any]


def last_user_text(request: ModelRequest) -> str:
    """The text of the newest user message of a request ("" when there is none)."""
    for message in reversed(request.messages):
        if message.role == "user":
            return "".join(p.text or "" for p in message.content if p.type == "text")
    return ""


class ScriptedModel:
    """A :class:`~coderchat_ext.providers.base.Model` that plays scripted turns.

    ``handler``, when given, computes each turn from the request instead of the script.
    """

    provider = "scripted"

    def __init__(
        self,
        script: dict[str, Any] | None = None,
        *,
        model: str = "scripted-1",
        handler: Callable[[ModelRequest], Turn] | None = None,
    ) -> None:
        script = script or {}
        self.model = model
        self.turns: deque[Turn] = deque(script.get("turns", []))
        self.rules: list[tuple[re.Pattern[str], Turn]] = [
            (re.compile(r["match"], re.IGNORECASE | re.DOTALL), r["turn"])
            for r in script.get("rules", [])
        ]
        self.default: Turn = script.get("default", {"echo": True})
        self.handler = handler
        self.requests: list[ModelRequest] = []

    def push(self, *turns: Turn) -> None:
        """Append turns to the queue."""
        self.turns.extend(turns)

    def _next_turn(self, request: ModelRequest) -> Turn:
        if self.handler is not None:
            return self.handler(request)
        if self.turns:
            return self.turns.popleft()
        text = last_user_text(request)
        for pattern, turn in self.rules:
            if pattern.search(text):
                return turn
        return self.default

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamPart]:
        """Play the next turn as stream parts; raises :class:`ProviderError` for ``error``."""
        self.requests.append(request)
        turn = self._next_turn(request)
        chunk_delay = float(turn.get("chunk_delay", 0))
        size = int(turn.get("chunk_size", 8))
        if turn.get("delay_first"):
            await asyncio.sleep(float(turn["delay_first"]))
        error = turn.get("error")
        if error and not turn.get("error_after_text"):
            raise _error(error)

        async def pause() -> None:
            if chunk_delay:
                await asyncio.sleep(chunk_delay)

        if turn.get("reasoning"):
            for piece in _chunks(turn["reasoning"], size):
                yield ReasoningDelta(text=piece)
                await pause()
            yield ReasoningDelta(signature=turn.get("signature", "sig-" + new_id()[:8]))
        for tool in turn.get("provider_tools", []):
            call_id = tool.get("id") or "srvtoolu_" + new_id().replace("-", "")[:16]
            yield ToolCallStart(call_id, tool["name"], provider_executed=True)
            yield ToolCallEnd(call_id, json.dumps(tool.get("args", {})))
            yield ProviderToolResult(call_id, tool["name"], tool.get("result"))
        text = last_user_text(request) if turn.get("echo") else turn.get("text", "")
        for piece in _chunks(text, size):
            yield TextDelta(piece)
            await pause()
        if error:
            raise _error(error)
        calls = turn.get("tool_calls", [])
        for call in calls:
            call_id = call.get("id") or "call_" + new_id().replace("-", "")[:16]
            args = call.get("args", {})
            raw = args if isinstance(args, str) else json.dumps(args)
            yield ToolCallStart(call_id, call["name"])
            for piece in _chunks(raw, 16):
                yield ToolCallDelta(call_id, piece)
                await pause()
            yield ToolCallEnd(call_id)
        usage = turn.get("usage") or {}
        out_tokens = usage.get("output_tokens", max(1, len(text) // 4))
        in_tokens = usage.get("input_tokens", 10)
        yield Finish(
            reason=turn.get("finish_reason", "tool-calls" if calls else "stop"),
            usage=Usage(
                input_tokens=in_tokens,
                output_tokens=out_tokens,
                total_tokens=usage.get("total_tokens", in_tokens + out_tokens),
                reasoning_tokens=usage.get("reasoning_tokens", 0),
                cache_creation_tokens=usage.get("cache_creation_tokens", 0),
                cache_read_tokens=usage.get("cache_read_tokens", 0),
            ),
            provider_response_id=turn.get("provider_response_id"),
            context_limit=turn.get("context_limit"),
        )


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] if text else []


def _error(spec: dict[str, Any]) -> ProviderError:
    status = spec.get("status")
    message = spec.get("message", "scripted failure")
    return ProviderError(
        f"status {status}: {message}" if status else message,
        status_code=status,
        body={"error": {"message": message, "type": spec.get("type", "error")}},
        headers=spec.get("headers"),
    )
