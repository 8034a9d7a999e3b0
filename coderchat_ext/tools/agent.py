"""The tools that run on the chat's workspace agent (docs/workspaces.md#tools), in upstream's
order."""

from __future__ import annotations

from .base import Tool
from .execute import ExecuteTool, ProcessListTool, ProcessOutputTool, ProcessSignalTool
from .files import EditFilesTool, ReadFileTool, WriteFileTool
from .skills import ReadSkillFileTool, ReadSkillTool


def agent_tools() -> list[Tool]:
    """``read_file``, ``write_file``, ``edit_files``, ``execute``, ``process_output``,
    ``process_list``, ``process_signal``, ``read_skill``, ``read_skill_file``."""
    return [
        ReadFileTool(),
        WriteFileTool(),
        EditFilesTool(),
        ExecuteTool(),
        ProcessOutputTool(),
        ProcessListTool(),
        ProcessSignalTool(),
        ReadSkillTool(),
        ReadSkillFileTool(),
    ]
