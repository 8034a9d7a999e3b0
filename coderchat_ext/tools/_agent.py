"""The base of the tools that run on the chat's workspace agent (docs/workspaces.md#tools).

The agent comes from the :class:`~coderchat_ext.workspaces.agents.AgentResolver` in
``ctx.agents``. Connection problems (no workspace, stopped, disconnected, timed
out) and failed operations are text errors (``is_error``) with upstream's strings; results
are the runtime's JSON values.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from pydantic import BaseModel

from ..workspaces.agents import NO_WORKSPACE, AgentError, AgentHandle, AgentUnavailable
from .base import Tool, ToolContext, ToolResult

REUSE_WORKSPACE = (
    "It runs in the chat's workspace; reuse it, and create a workspace only when the chat has "
    "none and the task needs one."
)


async def chat_agent(ctx: ToolContext) -> AgentHandle | ToolResult:
    """The chat's agent, or the text error that says why there is none."""
    if ctx.agents is None:
        return ToolResult(NO_WORKSPACE, is_error=True)
    try:
        handle = await ctx.agents.agent_for_chat(ctx.chat)
    except AgentUnavailable as exc:
        return ToolResult(exc.message, is_error=True)
    return handle


class AgentTool(Tool):
    """A tool that is one runtime operation ``op`` on the chat's agent.

    Subclasses may override :meth:`check` (argument errors found before the agent is
    reached), :meth:`agent_args`, :meth:`timeout` and :meth:`finish`.
    """

    op: ClassVar[str]

    def check(self, args: Any) -> str | None:
        """A text error for ``args`` that needs no agent, or None."""
        return None

    def agent_args(self, args: BaseModel) -> dict[str, Any]:
        return args.model_dump(exclude_none=True)

    def timeout(self, args: Any) -> float | None:
        """Seconds the whole call may take (None: the agent manager's default)."""
        return None

    def finish(self, result: Any) -> ToolResult:
        return ToolResult(result)

    def output(self, ctx: ToolContext) -> Callable[[str], Awaitable[None]] | None:
        """Where streamed output goes (None: nowhere)."""
        return None

    async def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        error = self.check(args)
        if error is not None:
            return ToolResult(error, is_error=True)
        agent = await chat_agent(ctx)
        if isinstance(agent, ToolResult):
            return agent
        try:
            result = await agent.call(
                self.op,
                self.agent_args(args),
                on_output=self.output(ctx),
                timeout=self.timeout(args),
            )
        except (AgentUnavailable, AgentError) as exc:
            return ToolResult(exc.message, is_error=True)
        return self.finish(result)
