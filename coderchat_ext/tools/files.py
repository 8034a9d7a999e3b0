"""File tools on the chat's workspace agent: ``read_file``, ``write_file``, ``edit_files``
(docs/workspaces.md#tools)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ._agent import REUSE_WORKSPACE, AgentTool
from .base import ToolArgs

_PATHS = (
    "Paths must be inside the workspace folder; relative paths are relative to it, and paths "
    "that lead out of it (.., absolute paths elsewhere, symbolic links out) are refused."
)


class ReadFileArgs(ToolArgs):
    path: str = Field(
        description="The file or folder to read (workspace-relative, or absolute inside it)."
    )
    offset: int | None = Field(
        default=None,
        ge=1,
        description="The 1-based line number (or directory entry) to start at. Default: 1.",
    )
    limit: int | None = Field(
        default=None,
        ge=1,
        description="How many lines (or directory entries) to return. Default: 2000.",
    )


class ReadFileTool(AgentTool):
    name = "read_file"
    op = "read_file"
    description = (
        "Read a file from the workspace. Returns line-numbered content. When reading a "
        "directory, returns a non-recursive directory listing. The offset parameter is a "
        "1-based line number or directory entry (default: 1). The limit parameter is the number "
        "of lines or directory entries to return (default: 2000). For large files and "
        f"directories, use offset and limit to paginate. {_PATHS} {REUSE_WORKSPACE}"
    )
    Args = ReadFileArgs

    def check(self, args: Any) -> str | None:
        return None if args.path else "path is required"


class WriteFileArgs(ToolArgs):
    path: str = Field(
        description="The file to write (workspace-relative, or absolute inside the workspace)."
    )
    content: str = Field(description="Complete file contents. Replaces any existing contents.")


class WriteFileTool(AgentTool):
    name = "write_file"
    op = "write_file"
    description = (
        "Write a file in the workspace, creating it (and its folders) or replacing its "
        f"contents. The write is atomic. {_PATHS} To change part of a file, prefer edit_files. "
        f"{REUSE_WORKSPACE}"
    )
    Args = WriteFileArgs

    def check(self, args: Any) -> str | None:
        return None if args.path else "path is required"


class FileEdit(ToolArgs):
    search: str = Field(description="The text to find; it must match exactly one location.")
    replace: str = Field(description="The text to put in its place.")
    replace_all: bool | None = Field(
        default=None, description="Replace every match instead of requiring exactly one."
    )


class FileEdits(ToolArgs):
    path: str = Field(
        description="The file to edit (workspace-relative, or absolute inside the workspace)."
    )
    edits: list[FileEdit] = Field(description="Edits applied in order; at least one.")


class EditFilesArgs(ToolArgs):
    files: list[FileEdits] = Field(
        description="Files to edit. Every entry must include path and at least one edit."
    )


class EditFilesTool(AgentTool):
    name = "edit_files"
    op = "edit_files"
    description = (
        "Perform edits on one or more workspace files by replacing search text with replace "
        "text. Matching is exact first, then tolerant of trailing whitespace and indentation. "
        "Errors if search matches zero locations, or more than one unless replace_all is set. "
        "All edits in a batch are checked before any file is written: the batch applies "
        f"entirely or not at all. Read a file before editing it. {_PATHS} {REUSE_WORKSPACE}"
    )
    Args = EditFilesArgs

    def check(self, args: Any) -> str | None:
        if not args.files:
            return "files is required"
        for i, entry in enumerate(args.files):
            if not entry.path.strip():
                return (
                    f"files[{i}].path is required; provide the path of the file to edit; no "
                    "files in this batch were applied"
                )
            if not entry.edits:
                return (
                    f"files[{i}].edits must contain at least one edit; no files in this batch "
                    "were applied"
                )
        return None
