"""The tool interface (docs/workspaces.md#tools): pydantic argument models whose JSON schema the
model sees.

A tool never raises through the loop: the loop turns a validation failure into the error result
"invalid parameters: ..." and any exception into "tool failed: ..." (docs/loop.md#tool-execution). A
tool reports failures the model should see as ``ToolResult(..., is_error=True)``, or as a non-error
JSON payload with an ``error`` key where structure must survive (docs/workspaces.md#tools).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from ..models import Chat
from ..providers.base import ToolSpec
from ..workspaces.agents import AgentResolver

Emit = Callable[[str], Awaitable[None]]
"""Streams one ``result_delta`` (text) to the tool card."""


class WorkspaceTools(Protocol):
    """The workspace operations the workspace tools call (docs/workspaces.md#tools); the
    :class:`~coderchat_ext.workspaces.service.WorkspaceService` implements them. Each returns
    the tool's JSON result and raises ``ToolFailure`` with the text error the model sees."""

    async def chat_list_templates(
        self, chat: Chat, query: str | None, page: int
    ) -> dict[str, Any]: ...

    async def chat_read_template(self, chat: Chat, template_id: str) -> dict[str, Any]: ...

    async def chat_create_workspace(
        self,
        chat: Chat,
        *,
        template_id: str | None,
        name: str | None,
        parameters: Mapping[str, Any] | None,
        preset_id: str | None,
        emit: Emit,
    ) -> dict[str, Any]: ...

    async def chat_start_workspace(
        self, chat: Chat, *, parameters: Mapping[str, Any] | None, emit: Emit
    ) -> dict[str, Any]: ...

    async def chat_stop_workspace(self, chat: Chat, *, emit: Emit) -> dict[str, Any]: ...


@dataclass
class ToolResult:
    """A tool's answer: any JSON value (a string stays a string), and whether it is an error."""

    result: Any
    is_error: bool = False


@dataclass
class ToolContext:
    """What a running tool may use.

    ``emit`` streams a ``result_delta`` (text) to the tool card while the tool runs;
    ``agents`` finds the chat's workspace agent (the agent tools) and ``workspaces`` provisions
    workspaces (the workspace tools); None where the server has none.
    """

    chat: Chat
    tool_call_id: str
    emit: Emit
    agents: AgentResolver | None = None
    workspaces: WorkspaceTools | None = None


class ToolArgs(BaseModel):
    """Base of argument models: unknown keys are rejected so typos reach the model as errors."""

    model_config = ConfigDict(extra="forbid")


@functools.cache
def _input_schema(args: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of an argument model, built once: pydantic's schema generation costs
    milliseconds per tool and every model call of every turn offers every tool."""
    schema = args.model_json_schema()
    schema.pop("title", None)
    schema.setdefault("properties", {})
    return schema


class Tool(ABC):
    """A tool the model can call. Subclasses set ``name``, ``description``, ``Args``."""

    name: ClassVar[str]
    description: ClassVar[str]
    Args: ClassVar[type[BaseModel]] = ToolArgs
    exclusive: ClassVar[bool] = False
    """An exclusive tool must be called alone in its batch (docs/loop.md#exclusive-tools)."""

    def spec(self) -> ToolSpec:
        """What the model is offered. The schema dict is shared between calls: read it, do
        not change it."""
        return ToolSpec(self.name, self.description, _input_schema(self.Args))

    def is_active(self, chat: Chat) -> bool:
        """Whether the tool is offered in this chat's turn (known but inactive tools get
        "Tool not active in this turn: <name>")."""
        return True

    def parse(self, args: Any) -> BaseModel:
        """Validate raw arguments; raises ``ValueError`` with a readable message."""
        try:
            return self.Args.model_validate(args if args is not None else {})
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ValueError(details) from None

    @abstractmethod
    async def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        """Run with validated ``args`` (an instance of ``Args``)."""


class ToolRegistry:
    """The tools the daemon knows, by name. Later registrations replace earlier ones."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        self._tools[tool.name] = tool

    def unregister(self, name: str) -> None:
        self._tools.pop(name, None)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def all(self) -> list[Tool]:
        return list(self._tools.values())

    def active(self, chat: Chat) -> list[Tool]:
        return [t for t in self._tools.values() if t.is_active(chat)]
