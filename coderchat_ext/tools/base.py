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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..models import Chat
from ..providers.base import ToolSpec


@dataclass
class ToolResult:
    """A tool's answer: any JSON value (a string stays a string), and whether it is an error."""

    result: Any
    is_error: bool = False


@dataclass
class ToolContext:
    """What a running tool may use.

    ``emit`` streams a ``result_delta`` (text) to the tool card while the tool runs; ``services``
    carries objects later subsystems register (the workspace manager, ...).
    """

    chat: Chat
    tool_call_id: str
    emit: Callable[[str], Awaitable[None]]
    services: dict[str, Any] = field(default_factory=dict)


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
