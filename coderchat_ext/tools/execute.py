"""Process tools on the chat's workspace agent: ``execute``, ``process_output``,
``process_list``, ``process_signal`` (docs/workspaces.md#tools).

``execute`` streams the command's output to the tool card (``result_delta``) while it runs;
its result is the runtime's ``ExecuteResult`` (a timed-out or unstartable command is a
non-error JSON result, as upstream does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field

from ..workspaces import agent_runtime
from ._agent import REUSE_WORKSPACE, AgentTool
from .base import ToolArgs, ToolContext

CALL_MARGIN = 30.0
"""Seconds a call may outlast the command's own timeout (upstream's snapshot budget)."""


def _seconds(duration: str | None, default: float) -> float:
    """A Go duration in seconds, ``default`` when absent or invalid (the runtime reports the
    invalid ones), capped at the runtime's maximum."""
    if duration is None:
        return default
    try:
        return min(max(agent_runtime.parse_duration(duration), 0.0), agent_runtime.MAX_TIMEOUT)
    except ValueError:
        return default


class ExecuteArgs(ToolArgs):
    command: str = Field(description='The shell command to execute. Runs under "sh -c" (POSIX).')
    timeout: str | None = Field(
        default=None,
        description="How long to wait for completion (e.g. '30s', '5m'). Default is 10s. The "
        "process keeps running if this expires and you get a background_process_id to "
        "re-attach. Only applies to foreground commands.",
    )
    workdir: str | None = Field(
        default=None,
        description="Working directory for the command, inside the workspace folder (default: "
        "the workspace folder).",
    )
    run_in_background: bool | None = Field(
        default=None,
        description="Run without blocking. Use for persistent processes (dev servers, file "
        "watchers) or when you want to continue working while a command runs and check the "
        "result later with process_output. For commands whose result you need before "
        "continuing, prefer foreground with a longer timeout. Do NOT use shell & to background "
        "processes. Always use this parameter instead.",
    )


class ExecuteTool(AgentTool):
    name = "execute"
    op = "execute"
    description = (
        'Execute a shell command in the workspace. Runs under "sh -c" (POSIX) in the workspace '
        "folder. Waits for completion up to the timeout (default 10s, override with the timeout "
        "parameter e.g. '30s', '5m'). If the command exceeds the timeout, the response "
        "includes a background_process_id; use process_output with that ID to re-attach and "
        "wait for the result. Use run_in_background=true for persistent processes (dev "
        "servers, file watchers) or when you want to continue other work while the command "
        "runs. Never use shell '&' for backgrounding. Output is capped at 32 KiB (head and "
        f"tail). To read files, prefer read_file. {REUSE_WORKSPACE}"
    )
    Args = ExecuteArgs

    def check(self, args: Any) -> str | None:
        return None if args.command.strip() else "command is required"

    def timeout(self, args: Any) -> float | None:
        if args.run_in_background:
            return None
        return _seconds(args.timeout, agent_runtime.DEFAULT_TIMEOUT) + CALL_MARGIN

    def output(self, ctx: ToolContext) -> Callable[[str], Awaitable[None]] | None:
        return ctx.emit


class ProcessOutputArgs(ToolArgs):
    process_id: str = Field(
        description="The process ID from execute (background_process_id) or process_list."
    )
    wait_timeout: str | None = Field(
        default=None,
        description="Override the default 10s block duration. The call blocks until the "
        "process exits or this timeout is reached. Set to '0s' for an immediate snapshot "
        "without waiting.",
    )


class ProcessOutputTool(AgentTool):
    name = "process_output"
    op = "process_output"
    description = (
        "Retrieve output from a tracked process by ID. Use the process_id returned by execute "
        "with run_in_background=true or from a timed-out execute's background_process_id. "
        "Blocks up to 10s for the process to exit, then returns the output and exit_code. If "
        "still running after the timeout, returns the output so far. Use wait_timeout to "
        "override the default 10s wait (e.g. '30s', or '0s' for an immediate snapshot without "
        "waiting)."
    )
    Args = ProcessOutputArgs

    def check(self, args: Any) -> str | None:
        return None if args.process_id else "process_id is required"

    def timeout(self, args: Any) -> float | None:
        return _seconds(args.wait_timeout, agent_runtime.DEFAULT_WAIT_TIMEOUT) + CALL_MARGIN


class ProcessListTool(AgentTool):
    name = "process_list"
    op = "process_list"
    description = (
        "List all tracked processes in the workspace. Returns process IDs, commands, status "
        "(running or exited), and exit codes. Use this to discover processes or check which "
        "are still running."
    )


_SIGNALS = ("terminate", "kill")


class ProcessSignalArgs(ToolArgs):
    process_id: str = Field(description="The process ID from execute or process_list.")
    signal: str = Field(
        description='"terminate" (SIGTERM) for graceful shutdown or "kill" (SIGKILL) to force '
        "stop.",
        json_schema_extra={"enum": list(_SIGNALS)},
    )


class ProcessSignalTool(AgentTool):
    name = "process_signal"
    op = "process_signal"
    description = (
        'Send a signal to a tracked process. Use "terminate" (SIGTERM) for graceful shutdown '
        'or "kill" (SIGKILL) to force stop. Use the process_id returned by execute with '
        "run_in_background=true or from process_list."
    )
    Args = ProcessSignalArgs

    def check(self, args: Any) -> str | None:
        if not args.process_id:
            return "process_id is required"
        if args.signal not in _SIGNALS:
            return 'signal must be "terminate" or "kill"'
        return None
