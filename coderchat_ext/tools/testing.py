"""Tools for tests, benchmarks and the scripted model; registered only when
``CoderChatApp.test_tools`` is on. They touch nothing outside the process."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from .base import Tool, ToolArgs, ToolContext, ToolResult


class EchoArgs(ToolArgs):
    text: str = Field(description="Text to return unchanged.")


class EchoTool(Tool):
    name = "echo"
    description = "Return the given text unchanged."
    Args = EchoArgs

    async def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        return ToolResult({"text": args.text})


class SleepArgs(ToolArgs):
    seconds: float = Field(ge=0, le=600, description="How long to sleep, in seconds.")


class SleepTool(Tool):
    name = "sleep"
    description = "Sleep for a number of seconds, streaming a progress line each second."
    Args = SleepArgs

    async def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        remaining = float(args.seconds)
        while remaining > 0:
            step = min(1.0, remaining)
            await asyncio.sleep(step)
            remaining -= step
            await ctx.emit(f"slept {args.seconds - remaining:g}s\n")
        return ToolResult({"slept": args.seconds})


class FailArgs(ToolArgs):
    message: str = Field(default="boom", description="The exception message.")


class FailTool(Tool):
    name = "fail"
    description = "Raise an exception (to test that tool failures become error results)."
    Args = FailArgs

    async def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        raise RuntimeError(args.message)


class ExclusiveArgs(ToolArgs):
    question: str = Field(default="", description="Anything.")


class ExclusiveTool(Tool):
    """Stands in for the advisor: an exclusive tool (docs/loop.md#exclusive-tools)."""

    name = "solo"
    description = "A tool that must be called alone in its batch."
    Args = ExclusiveArgs
    exclusive = True

    async def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        return ToolResult({"answer": f"solo: {args.question}"})


def testing_tools() -> list[Tool]:
    return [EchoTool(), SleepTool(), FailTool(), ExclusiveTool()]
