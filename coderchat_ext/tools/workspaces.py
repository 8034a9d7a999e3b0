"""The workspace tools: ``list_templates``, ``read_template``, ``create_workspace``,
``start_workspace``, ``stop_workspace`` (docs/workspaces.md#tools,
docs/workspaces.md#create_workspace).

Each tool parses its arguments and calls the :class:`~coderchat_ext.tools.base.WorkspaceTools`
in ``ctx.workspaces`` (the :class:`~coderchat_ext.workspaces.service.WorkspaceService`).
Upstream's text errors come back as error results; build and quota failures are non-error JSON
results with an ``error`` key, so their structure reaches the model and the tool card intact.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..models import Chat
from ..workspaces.service import ToolFailure
from .base import Tool, ToolArgs, ToolContext, ToolResult, WorkspaceTools

__all__ = ["workspace_tools"]

_NOT_AVAILABLE = "workspaces are not available on this server"


class _WorkspaceTool(Tool):
    """Resolves the service and turns :class:`ToolFailure` into an error result. Offered to
    root chats only: subagents use their parent's workspace (docs/workspaces.md#tools)."""

    def is_active(self, chat: Chat) -> bool:
        return chat.parent_chat_id is None

    async def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        service = ctx.workspaces
        if service is None:
            return ToolResult(_NOT_AVAILABLE, is_error=True)
        try:
            return ToolResult(await self.call(service, args, ctx))
        except ToolFailure as exc:
            return ToolResult(str(exc), is_error=True)

    async def call(self, service: WorkspaceTools, args: Any, ctx: ToolContext) -> Any:
        raise NotImplementedError


class ListTemplatesArgs(ToolArgs):
    query: str | None = Field(
        default=None, description="Only templates whose name or description contains this."
    )
    page: int = Field(default=1, ge=1, description="Page number, 10 templates per page.")


class ListTemplatesTool(_WorkspaceTool):
    name = "list_templates"
    description = (
        "List the workspace templates you can create a workspace from (10 per page). Only "
        "needed when the chat has no workspace and the task needs one (running code, files)."
    )
    Args = ListTemplatesArgs

    async def call(self, service: WorkspaceTools, args: Any, ctx: ToolContext) -> Any:
        return await service.chat_list_templates(ctx.chat, args.query, args.page)


class ReadTemplateArgs(ToolArgs):
    template_id: str = Field(description="The template ID from list_templates.")


class ReadTemplateTool(_WorkspaceTool):
    name = "read_template"
    description = (
        "Show a template's parameters (name, type, default, options, validation) and presets, "
        "to pass to create_workspace or start_workspace."
    )
    Args = ReadTemplateArgs

    async def call(self, service: WorkspaceTools, args: Any, ctx: ToolContext) -> Any:
        return await service.chat_read_template(ctx.chat, args.template_id)


_PARAMETERS_DESCRIPTION = (
    "Parameter values by parameter name, as strings (see read_template): numbers in decimal, "
    'booleans "true"/"false", list(string) as a JSON array.'
)


class CreateWorkspaceArgs(ToolArgs):
    template_id: str | None = Field(default=None, description="The template ID (required).")
    name: str | None = Field(
        default=None,
        description="Workspace name: 1-32 letters, digits and inner hyphens. Default: the "
        "template name and 4 random hex digits.",
    )
    parameters: dict[str, Any] | None = Field(default=None, description=_PARAMETERS_DESCRIPTION)
    preset_id: str | None = Field(
        default=None,
        description="A preset ID from read_template; its parameter values apply. Default: "
        "the template's default preset.",
    )


class CreateWorkspaceTool(_WorkspaceTool):
    name = "create_workspace"
    description = (
        "Create a workspace (a folder and a Jupyter kernel that runs your file and shell tools) "
        "from a template and bind it to this chat. Only create one when the task truly needs "
        "a workspace; if the chat already has one this returns it instead of creating another. "
        "Waits for the build and streams its logs."
    )
    Args = CreateWorkspaceArgs

    async def call(self, service: WorkspaceTools, args: Any, ctx: ToolContext) -> Any:
        return await service.chat_create_workspace(
            ctx.chat,
            template_id=args.template_id,
            name=args.name,
            parameters=args.parameters,
            preset_id=args.preset_id,
            emit=ctx.emit,
        )


class StartWorkspaceArgs(ToolArgs):
    parameters: dict[str, Any] | None = Field(
        default=None,
        description=_PARAMETERS_DESCRIPTION + " Only needed when the template asks for new values.",
    )


class StartWorkspaceTool(_WorkspaceTool):
    name = "start_workspace"
    description = (
        "Start this chat's workspace when it is stopped (or its kernel is gone). Does nothing "
        "when it is already running. Waits for the build and streams its logs."
    )
    Args = StartWorkspaceArgs

    async def call(self, service: WorkspaceTools, args: Any, ctx: ToolContext) -> Any:
        return await service.chat_start_workspace(
            ctx.chat, parameters=args.parameters, emit=ctx.emit
        )


class StopWorkspaceTool(_WorkspaceTool):
    name = "stop_workspace"
    description = (
        "Stop this chat's workspace: its kernels shut down, its files stay. Use when the user "
        "asks; start_workspace starts it again."
    )
    Args = ToolArgs

    async def call(self, service: WorkspaceTools, args: Any, ctx: ToolContext) -> Any:
        return await service.chat_stop_workspace(ctx.chat, emit=ctx.emit)


def workspace_tools() -> list[Tool]:
    """The workspace provisioning tools, in upstream's order (docs/workspaces.md#tools)."""
    return [
        ListTemplatesTool(),
        ReadTemplateTool(),
        CreateWorkspaceTool(),
        StartWorkspaceTool(),
        StopWorkspaceTool(),
    ]
