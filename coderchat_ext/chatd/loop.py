"""The step loop of one turn (docs/loop.md#steps, docs/loop.md#tool-execution,
docs/status-machine.md#interrupt-vs-shutdown).

A turn is a series of steps. Each step streams one model response (wrapped in retry, with the
first-chunk timeout), runs the step's local tool calls concurrently, then persists one assistant
message plus one tool message per local result. The loop continues while the model asks for local
tools with finish reason ``tool-calls``, up to ``max_steps`` (reaching it ends the turn silently
as a success).

Cancellation: the daemon cancels the running task after setting :attr:`TurnEnv.cancel_reason`.
``interrupt`` persists the partial step (text, reasoning, tool calls, and the synthetic error
result for every unanswered local call) and ends the turn; ``shutdown`` persists nothing, so the
step is redone when the chat resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..models import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    ChatError,
    ChatMessage,
    ChatMessagePart,
    ChatMessageUsage,
    ChatModelCallConfig,
    ChatModelConfig,
    DynamicTool,
    utcnow,
)
from ..providers.base import (
    Finish,
    FinishReason,
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
    ToolSpec,
)
from ..tools.base import Tool, ToolContext, ToolResult
from .errors import Classification, ClassifiedError, classify
from .retry import retry

log = logging.getLogger(__name__)

MAX_STEPS = 1200
"""Steps per turn at most, upstream's ``maxChatSteps``; reaching it ends the turn as a success
(docs/loop.md#steps)."""
STARTUP_TIMEOUT = 60.0
"""Seconds to open the stream and receive its first part (docs/loop.md#startup-timeout)."""

INTERRUPTED_RESULT = "tool call was interrupted before it produced a result"
"""The synthetic result of a local call cut off by an interrupt
(docs/status-machine.md#interrupt-vs-shutdown)."""

CancelReason = Literal["interrupt", "shutdown"]
Outcome = Literal["completed", "interrupted", "shutdown", "requires_action"]


class NotOwner(Exception):
    """The chat is no longer this worker's to write (another worker, or an edit set it
    ``pending``): the step is dropped (docs/status-machine.md#finishing)."""


@dataclass
class StepRecord:
    """What one step produced, ready to persist."""

    assistant: list[ChatMessagePart]
    tool_results: list[ChatMessagePart]
    usage: ChatMessageUsage | None
    cost_micros: int | None
    runtime_ms: int
    provider_response_id: str | None
    pending_dynamic: list[ChatMessagePart] = field(default_factory=list)


@dataclass
class TurnEnv:
    """Everything the loop needs from the daemon for one turn.

    ``publish`` sends one stream event dict; ``persist`` writes a step in one transaction and
    returns the inserted messages (raising :class:`NotOwner` when it may not, and accepting
    ``interrupted=True`` for the interrupt-safe path); ``on_retry`` is called before each retry
    wait; ``clear_parts`` forgets the buffered parts of the step in flight; ``redact`` is
    applied to every local tool result before it is published, persisted or sent (it removes
    secret values, :mod:`.secrets`).
    """

    chat_id: str
    model: Model
    model_config: ChatModelConfig
    provider_name: str
    system: list[str]
    history: list[ChatMessage]
    tools: dict[str, Tool]
    known_tools: set[str]
    dynamic_tools: dict[str, DynamicTool]
    tool_context: Callable[[str], ToolContext]
    publish: Callable[[dict[str, Any]], None]
    persist: Callable[[StepRecord, bool], Awaitable[list[ChatMessage]]]
    on_retry: Callable[[int, BaseException, Classification, float], Awaitable[None]]
    clear_parts: Callable[[], None]
    max_steps: int = MAX_STEPS
    startup_timeout: float = STARTUP_TIMEOUT
    cancel_reason: CancelReason | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    redact: Callable[[ChatMessagePart], ChatMessagePart] = lambda part: part


class _Step:
    """Accumulates one model response from stream parts, in model order."""

    def __init__(self) -> None:
        self.parts: list[ChatMessagePart] = []
        self.calls: dict[str, ChatMessagePart] = {}
        self.raw_args: dict[str, str] = {}
        self.finish: Finish | None = None
        # The text or reasoning part that deltas of the same kind and block extend.
        self._open: ChatMessagePart | None = None
        self._block: tuple[str, Any] | None = None

    def add(self, part: StreamPart) -> dict[str, Any] | None:
        """Fold ``part`` in; returns the ``message_part`` payload to publish (or None)."""
        if isinstance(part, TextDelta):
            self._fold("text", part)
            return _delta_payload("text", part.text)
        if isinstance(part, ReasoningDelta):
            reasoning = self._fold("reasoning", part)
            if part.signature is not None:
                reasoning.signature = part.signature
                self._close()
            return _delta_payload("reasoning", part.text)
        if isinstance(part, ToolCallStart):
            self._close()
            call = ChatMessagePart(
                type="tool-call",
                tool_call_id=part.tool_call_id,
                tool_name=part.tool_name,
                provider_executed=part.provider_executed or None,
                provider_metadata=part.provider_metadata,
            )
            self.calls[part.tool_call_id] = call
            self.raw_args[part.tool_call_id] = ""
            self.parts.append(call)
            return {
                "role": "assistant",
                "part": {
                    "type": "tool-call",
                    "tool_call_id": part.tool_call_id,
                    "tool_name": part.tool_name,
                    "args_delta": "",
                    **({"provider_executed": True} if part.provider_executed else {}),
                },
            }
        if isinstance(part, ToolCallDelta):
            started = self.calls.get(part.tool_call_id)
            if started is None:
                return None
            self.raw_args[part.tool_call_id] += part.args_delta
            return {
                "role": "assistant",
                "part": {
                    "type": "tool-call",
                    "tool_call_id": part.tool_call_id,
                    "tool_name": started.tool_name,
                    "args_delta": part.args_delta,
                },
            }
        if isinstance(part, ToolCallEnd):
            ended = self.calls.get(part.tool_call_id)
            if ended is None:
                return None
            raw = part.args if part.args is not None else self.raw_args[part.tool_call_id]
            self.raw_args[part.tool_call_id] = raw
            ended.args = _parse_args(raw)
            ended.created_at = utcnow()
            return {"role": "assistant", "part": ended.strip_internal().dump()}
        if isinstance(part, ProviderToolResult):
            self._close()
            result = ChatMessagePart.tool_result(
                part.tool_call_id,
                part.tool_name,
                part.result,
                is_error=part.is_error,
                provider_executed=True,
                provider_metadata=part.provider_metadata,
            )
            self.parts.append(result)
            return {"role": "tool", "part": result.strip_internal().dump()}
        if isinstance(part, Source):
            self._close()
            source = ChatMessagePart(
                type="source", source_id=part.source_id, url=part.url, title=part.title
            )
            self.parts.append(source)
            return {"role": "assistant", "part": source.dump()}
        if isinstance(part, Finish):
            self.finish = part
        return None

    def _fold(
        self, kind: Literal["text", "reasoning"], delta: TextDelta | ReasoningDelta
    ) -> ChatMessagePart:
        """The open ``kind`` part of ``delta``'s block (a new one after any other part), with
        ``delta``'s text appended and its provider metadata merged."""
        part = self._open
        if part is None or self._block != (kind, delta.block):
            self._close()
            part = self._open = ChatMessagePart(type=kind, text="")
            self.parts.append(part)
            self._block = (kind, delta.block)
        part.text = (part.text or "") + delta.text
        _merge_metadata(part, delta.provider_metadata)
        return part

    def _close(self) -> None:
        self._open = None
        self._block = None

    def local_calls(self) -> list[ChatMessagePart]:
        return [c for c in self.calls.values() if not c.provider_executed]

    def content(self) -> list[ChatMessagePart]:
        """The assistant parts to persist: empty or whitespace-only text and reasoning dropped
        (padded text kept verbatim); an unfinished call keeps the arguments streamed so far."""
        out = []
        for part in self.parts:
            blank = part.type in ("text", "reasoning") and not (part.text or "").strip()
            # A signed (or otherwise provider-tagged) reasoning block stays even when empty: the
            # provider needs it back (Anthropic redacted thinking, Responses encrypted reasoning).
            keep = part.type == "reasoning" and (part.signature or part.provider_metadata)
            if blank and not keep:
                continue
            if part.type == "tool-call" and part.args is None:
                part = part.model_copy(
                    update={"args": _parse_args(self.raw_args.get(part.tool_call_id or "", ""))}
                )
            out.append(part)
        return out


def _delta_payload(kind: Literal["text", "reasoning"], text: str) -> dict[str, Any] | None:
    """The ``message_part`` payload of a text or reasoning delta (None for an empty one)."""
    if not text:
        return None
    return {"role": "assistant", "part": {"type": kind, "text": text}}


def _merge_metadata(part: ChatMessagePart, metadata: dict[str, dict[str, Any]] | None) -> None:
    """Fold a stream part's provider metadata into ``part`` (per provider, later keys win)."""
    if not metadata:
        return
    merged = dict(part.provider_metadata or {})
    for provider, values in metadata.items():
        merged[provider] = {**merged.get(provider, {}), **values}
    part.provider_metadata = merged


def _parse_args(raw: str) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _result_part(call: ChatMessagePart, result: ToolResult) -> ChatMessagePart:
    value = result.result
    if isinstance(value, str):
        value = value.encode("utf-8", "replace").decode("utf-8")
    return ChatMessagePart.tool_result(
        call.tool_call_id, call.tool_name, value, is_error=result.is_error
    )


def exclusive_violation(
    calls: list[ChatMessagePart], tools: dict[str, Tool]
) -> list[ToolResult] | None:
    """The exclusive-tool policy (docs/loop.md#exclusive-tools): if a batch of more than one local
    call holds an exclusive tool, nothing runs and every call gets an error result. Returns those
    results in call order, or None when the batch may run."""
    if len(calls) < 2:
        return None
    exclusive = next(
        (c.tool_name for c in calls if (t := tools.get(c.tool_name or "")) and t.exclusive),
        None,
    )
    if exclusive is None:
        return None
    out = []
    for call in calls:
        if call.tool_name == exclusive:
            text = (
                f"{exclusive} must be called alone, without other tools in the same batch. "
                f"Retry with only the {exclusive} call."
            )
        else:
            text = (
                f"this tool was skipped because {exclusive} must run alone in its batch. "
                f"Retry your tool calls without {exclusive}, or call {exclusive} separately "
                "first."
            )
        out.append(ToolResult(text, is_error=True))
    return out


def cost_micros(usage: ChatMessageUsage | None, config: ChatModelConfig) -> int | None:
    """Cost of one call in micro-dollars from the config's per-million prices
    (docs/data-model.md#usage-and-cost); None when the config has no prices."""
    cost = config.model_config_.cost if config.model_config_ else None
    if usage is None or cost is None:
        return None
    total = (
        (usage.input_tokens or 0) * (cost.input_price_per_million_tokens or 0)
        + (usage.output_tokens or 0) * (cost.output_price_per_million_tokens or 0)
        + (usage.cache_read_tokens or 0) * (cost.cache_read_price_per_million_tokens or 0)
        + (usage.cache_creation_tokens or 0) * (cost.cache_write_price_per_million_tokens or 0)
    )
    return round(total)


class TurnRunner:
    """Runs one turn in the environment ``env``; :meth:`run` returns the outcome or raises a
    :class:`ClassifiedError` for a failed turn."""

    def __init__(self, env: TurnEnv) -> None:
        self.env = env
        self._step: _Step | None = None
        self._step_started = 0.0
        self._done_results: dict[str, ChatMessagePart] = {}

    def _request(self) -> ModelRequest:
        env = self.env
        # Per-turn system blocks follow the system messages persisted at creation (default and
        # deployment prompt, chat system prompt, workspace note) and precede the conversation.
        lead = 0
        while lead < len(env.history) and env.history[lead].role == "system":
            lead += 1
        messages = [PromptMessage(m.role, m.content) for m in env.history[:lead]]
        messages += [
            PromptMessage("system", [ChatMessagePart(type="text", text=s)]) for s in env.system if s
        ]
        messages += [PromptMessage(m.role, m.content) for m in env.history[lead:]]
        tools = [t.spec() for t in env.tools.values()]
        tools += [
            ToolSpec(d.name, d.description or "", d.input_schema)
            for d in env.dynamic_tools.values()
            if d.name not in env.tools
        ]
        options = env.model_config.model_config_
        max_tokens = (options.max_output_tokens if options else None) or DEFAULT_MAX_OUTPUT_TOKENS
        return ModelRequest(
            messages=messages,
            tools=tools,
            max_output_tokens=max_tokens,
            options=options or ChatModelCallConfig(),
        )

    async def run(self) -> Outcome:
        env = self.env
        try:
            for _ in range(max(env.max_steps, 1)):
                step = await self._stream_step()
                record = await self._run_tools(step)
                messages = await env.persist(record, False)
                env.history.extend(messages)
                self._step = None
                if record.pending_dynamic:
                    return "requires_action"
                finish_reason: FinishReason = step.finish.reason if step.finish else "stop"
                if not (step.local_calls() and finish_reason == "tool-calls"):
                    return "completed"
            return "completed"
        except asyncio.CancelledError:
            reason = env.cancel_reason
            if reason is None:
                raise
            _uncancel()
            if reason == "shutdown":
                return "shutdown"
            await self._persist_interrupted()
            return "interrupted"

    async def _persist_interrupted(self) -> None:
        step = self._step
        if step is None:
            return
        content = step.content()
        results = [
            ChatMessagePart.tool_result(
                c.tool_call_id, c.tool_name, INTERRUPTED_RESULT, is_error=True
            )
            for c in step.local_calls()
            if c.tool_call_id not in self._done_results
        ]
        done = [
            self._done_results[c.tool_call_id or ""]
            for c in step.local_calls()
            if c.tool_call_id in self._done_results
        ]
        ordered = {p.tool_call_id: p for p in [*done, *results]}
        record = StepRecord(
            assistant=content,
            tool_results=[ordered[c.tool_call_id] for c in step.local_calls()],
            usage=None,
            cost_micros=None,
            runtime_ms=int((time.monotonic() - self._step_started) * 1000),
            provider_response_id=None,
        )
        if not record.assistant and not record.tool_results:
            return
        try:
            await asyncio.shield(self.env.persist(record, True))
        except NotOwner:
            log.info("chat %s: interrupted step not persisted (no longer owner)", self.env.chat_id)

    async def _stream_step(self) -> _Step:
        env = self.env
        request = self._request()
        self._done_results = {}

        async def attempt() -> _Step:
            step = _Step()
            self._step = step
            self._step_started = time.monotonic()
            stream = env.model.stream(request)
            try:
                try:
                    first = await asyncio.wait_for(anext(stream), env.startup_timeout)
                except (asyncio.TimeoutError, StopAsyncIteration):
                    raise _startup_timeout(env.provider_name) from None
                self._fold(step, first)
                async for part in stream:
                    self._fold(step, part)
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()  # type: ignore[attr-defined]
            return step

        async def on_retry(
            attempt_no: int, err: BaseException, classified: Classification, delay: float
        ) -> None:
            self._step = None
            env.clear_parts()
            await env.on_retry(attempt_no, err, classified, delay)

        return await retry(attempt, on_retry=on_retry, provider=env.provider_name, sleep=env.sleep)

    def _fold(self, step: _Step, part: StreamPart) -> None:
        payload = step.add(part)
        if payload is not None:
            self.env.publish(
                {"type": "message_part", "chat_id": self.env.chat_id, "message_part": payload}
            )

    async def _run_tools(self, step: _Step) -> StepRecord:
        env = self.env
        calls = step.local_calls()
        dynamic = [
            c for c in calls if c.tool_name in env.dynamic_tools and c.tool_name not in env.tools
        ]
        builtin = [c for c in calls if c not in dynamic]
        results: dict[str, ChatMessagePart] = {}
        violation = exclusive_violation(calls, env.tools)
        if violation is not None:
            for call, res in zip(calls, violation, strict=True):
                results[call.tool_call_id or ""] = self._result(call, res)
            dynamic = []
        else:
            tasks = {
                c.tool_call_id or "": asyncio.ensure_future(self._run_tool(c)) for c in builtin
            }
            try:
                if tasks:
                    await asyncio.wait(tasks.values())
            except asyncio.CancelledError:
                for call_id, task in tasks.items():
                    if task.done() and not task.cancelled():
                        self._done_results[call_id] = task.result()
                    else:
                        task.cancel()
                await asyncio.gather(*tasks.values(), return_exceptions=True)
                raise
            for call_id, task in tasks.items():
                results[call_id] = task.result()
        ordered = [results[c.tool_call_id or ""] for c in calls if c.tool_call_id in results]
        for part in ordered:
            env.publish(
                {
                    "type": "message_part",
                    "chat_id": env.chat_id,
                    "message_part": {"role": "tool", "part": part.dump()},
                }
            )
        usage = None
        finish = step.finish
        if finish is not None:
            u = finish.usage
            usage = ChatMessageUsage(
                input_tokens=u.input_tokens or None,
                output_tokens=u.output_tokens or None,
                total_tokens=u.total_tokens or (u.input_tokens + u.output_tokens) or None,
                reasoning_tokens=u.reasoning_tokens or None,
                cache_creation_tokens=u.cache_creation_tokens or None,
                cache_read_tokens=u.cache_read_tokens or None,
                context_limit=finish.context_limit or env.model_config.context_limit,
            )
        return StepRecord(
            assistant=step.content(),
            tool_results=ordered,
            usage=usage,
            cost_micros=cost_micros(usage, env.model_config),
            runtime_ms=int((time.monotonic() - self._step_started) * 1000),
            provider_response_id=finish.provider_response_id if finish else None,
            pending_dynamic=dynamic,
        )

    async def _run_tool(self, call: ChatMessagePart) -> ChatMessagePart:
        env = self.env
        name = call.tool_name or ""
        tool = env.tools.get(name)
        if tool is None:
            text = (
                f"Tool not active in this turn: {name}"
                if name in env.known_tools
                else f"Tool not found: {name}"
            )
            return self._result(call, ToolResult(text, is_error=True))
        try:
            args = tool.parse(call.args)
        except ValueError as exc:
            return self._result(call, ToolResult(f"invalid parameters: {exc}", is_error=True))
        try:
            result = await tool.run(args, env.tool_context(call.tool_call_id or ""))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("tool %s failed", name)
            result = ToolResult(f"tool failed: {exc}", is_error=True)
        if not isinstance(result, ToolResult):
            result = ToolResult(result)
        return self._result(call, result)

    def _result(self, call: ChatMessagePart, result: ToolResult) -> ChatMessagePart:
        # The one place every local result passes: nothing reaches the stream, the database or
        # the provider unredacted.
        return self.env.redact(_result_part(call, result))


def _startup_timeout(provider: str) -> ClassifiedError:
    """The first-chunk timeout error (docs/loop.md#startup-timeout); its message is derived from the
    kind and provider ("<Provider> did not start responding in time.")."""
    return ClassifiedError(
        "startup timeout",
        ChatError(message="", kind="startup_timeout", provider=provider, retryable=True),
    )


def _uncancel() -> None:
    # Python >= 3.11: clear the cancellation request we handled, so later timeouts in this task
    # (persisting the interrupted step) behave normally.
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        while task.cancelling():  # type: ignore[attr-defined]
            task.uncancel()


def classify_failure(err: BaseException, provider: str) -> ChatError:
    """The :class:`ChatError` of a failed turn, with the model's provider applied."""
    if isinstance(err, ClassifiedError):
        return err.error
    classified = classify(err, provider=provider)
    return (
        classified.error
        if classified
        else ChatError(message="The chat request failed unexpectedly.", provider=provider)
    )
