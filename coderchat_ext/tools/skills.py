"""Skill tools on the chat's workspace agent: ``read_skill``, ``read_skill_file``
(docs/workspaces.md#tools, docs/workspaces.md#context-files-and-skills). Skills are
``.agents/skills/<name>/SKILL.md`` in the workspace."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..models import Chat
from ..workspaces import agent_runtime
from ._agent import AgentTool
from .base import ToolArgs


class _SkillTool(AgentTool):
    """Offered only when the chat's workspace has skills (docs/workspaces.md#tools): its
    injected context (``last_injected_context``, docs/workspaces.md#context-files-and-skills)
    lists at least one."""

    def is_active(self, chat: Chat) -> bool:
        return any(p.type == "skill" for p in chat.last_injected_context or [])


class ReadSkillArgs(ToolArgs):
    name: str = Field(description="The name of the skill to read.")


class ReadSkillTool(_SkillTool):
    name = "read_skill"
    op = "read_skill"
    description = (
        "Read the full instructions for a skill by name. Returns the skill meta file body and a "
        "list of supporting files. Use read_skill before following a skill's instructions."
    )
    Args = ReadSkillArgs

    def check(self, args: Any) -> str | None:
        return None if args.name else "name is required"


class ReadSkillFileArgs(ToolArgs):
    name: str = Field(description="The name of the skill.")
    path: str = Field(
        description="Relative path to a file in the skill directory (e.g. "
        "roles/security-reviewer.md)."
    )


class ReadSkillFileTool(_SkillTool):
    name = "read_skill_file"
    op = "read_skill_file"
    description = (
        "Read a supporting file from a skill's directory (e.g. roles/security-reviewer.md)."
    )
    Args = ReadSkillFileArgs

    def check(self, args: Any) -> str | None:
        if not args.name:
            return "name is required"
        # The runtime's own path rules, applied before the agent is reached.
        try:
            agent_runtime.check_skill_path(args.path)
        except agent_runtime.OpError as exc:
            return str(exc)
        return None
