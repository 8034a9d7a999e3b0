"""The agent tools through real chat turns on the test server: the scripted model calls them,
they run on a real kernel agent bound to every chat (a :class:`FixedAgentResolver`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.models import Chat
from coderchat_ext.tools._agent import REUSE_WORKSPACE
from coderchat_ext.tools.agent import agent_tools
from coderchat_ext.tools.base import ToolContext
from coderchat_ext.workspaces.agents import (
    AGENT_DISCONNECTED,
    NO_WORKSPACE,
    AgentResolver,
    AgentUnavailable,
)


def calls(*specs: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {"tool_calls": [{"id": i, "name": n, "args": a} for i, n, a in specs]}


def tool_results(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        m["content"][0]["tool_call_id"]: m["content"][0] for m in messages if m["role"] == "tool"
    }


class Stream:
    """A chat's WebSocket stream, read until an event matches."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            while checked < len(self.events):
                checked += 1
                if predicate(self.events[checked - 1]):
                    return
            remaining = deadline - time.monotonic()
            assert remaining > 0, "no matching stream event"
            frame = await asyncio.wait_for(self.ws.read_message(), remaining)
            assert frame is not None, "stream closed"
            self.events.extend(json.loads(frame))

    def deltas(self, call_id: str) -> str:
        return "".join(
            e["message_part"]["part"]["result_delta"]
            for e in self.events
            if e["type"] == "message_part"
            and e["message_part"]["part"].get("tool_call_id") == call_id
            and "result_delta" in e["message_part"]["part"]
        )


@pytest.fixture
def open_stream(jp_ws_fetch: Any) -> Any:
    sockets: list[Any] = []

    async def open_(chat_id: str) -> Stream:
        ws = await jp_ws_fetch("api", "coderchat", "chats", chat_id, "stream")
        sockets.append(ws)
        return Stream(ws)

    yield open_
    for ws in sockets:
        ws.close()


def is_waiting(event: dict[str, Any]) -> bool:
    return event["type"] == "status" and event["status"] == "waiting"


async def start_chat(api: Any, text: str) -> str:
    chat = await api.ok("POST", "chats", {"content": [{"type": "text", "text": text}]})
    return str(chat["id"])


async def test_execute_streams_output_to_the_tool_card_and_returns_the_result(
    api: Any, scripted: Any, kernel_agent: Any, open_stream: Any
) -> None:
    scripted.push(calls(("run", "execute", {"command": "echo one; sleep 0.3; echo two"})))
    scripted.push({"text": "ran it"})
    chat_id = await start_chat(api, "run something")
    stream = await open_stream(chat_id)
    await stream.until(is_waiting)
    assert stream.deltas("run") == "one\ntwo\n"
    result = tool_results(await api.messages(chat_id))["run"]
    assert result.get("is_error") is None
    assert result["result"]["output"] == "one\ntwo\n"
    assert result["result"]["success"] is True
    assert result["result"]["exit_code"] == 0


async def test_file_tools_write_edit_and_read_in_the_workspace(
    api: Any, scripted: Any, kernel_agent: Any, jp_root_dir: Path
) -> None:
    scripted.push(calls(("w", "write_file", {"path": "notes/a.txt", "content": "alpha\nbeta\n"})))
    scripted.push(
        calls(
            (
                "e",
                "edit_files",
                {"files": [{"path": "notes/a.txt", "edits": [{"search": "beta", "replace": "B"}]}]},
            )
        )
    )
    scripted.push(
        calls(("r", "read_file", {"path": "notes/a.txt"}), ("d", "read_file", {"path": "notes"}))
    )
    scripted.push({"text": "done"})
    chat_id = await start_chat(api, "take notes")
    await api.wait_status(chat_id, "waiting", timeout=30)
    results = tool_results(await api.messages(chat_id))
    assert results["w"]["result"] == {"ok": True}
    assert results["e"]["result"]["ok"] is True
    assert "-beta\n+B\n" in results["e"]["result"]["files"][0]["diff"]
    assert results["r"]["result"] == {
        "content": "1\talpha\n2\tB",
        "file_size": 8,
        "total_lines": 2,
        "lines_read": 2,
    }
    assert results["d"]["result"]["content"] == "1\ta.txt\n"
    assert (jp_root_dir / "notes" / "a.txt").read_text() == "alpha\nB\n"


async def test_failed_operations_are_text_errors_for_the_model(
    api: Any, scripted: Any, kernel_agent: Any, jp_root_dir: Path
) -> None:
    skill = jp_root_dir / ".agents" / "skills" / "x"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: x\n---\n")
    scripted.push(
        calls(
            ("missing", "read_file", {"path": "nope.txt"}),
            ("empty", "read_file", {"path": ""}),
            ("timeout", "execute", {"command": "true", "timeout": "soon"}),
            ("signal", "process_signal", {"process_id": "p", "signal": "stop"}),
            ("skill", "read_skill", {"name": "nope"}),
            ("hidden", "read_skill_file", {"name": "x", "path": ".secret"}),
            ("outside", "read_file", {"path": "/proc/self/environ"}),
        )
    )
    scripted.push({"text": "ok"})
    chat_id = await start_chat(api, "try things")
    await api.wait_status(chat_id, "waiting", timeout=30)
    results = tool_results(await api.messages(chat_id))
    assert {k: (v["result"], v.get("is_error")) for k, v in results.items()} == {
        "missing": ("file does not exist: nope.txt", True),
        "empty": ("path is required", True),
        "timeout": ('invalid timeout "soon": time: invalid duration "soon"', True),
        "signal": ('signal must be "terminate" or "kill"', True),
        "skill": ('skill "nope" not found', True),
        "hidden": ("hidden file components are not allowed", True),
        "outside": (
            f'Path "/proc/self/environ" is outside the workspace root {jp_root_dir}. '
            "Use a path inside the workspace folder (relative paths are relative to it).",
            True,
        ),
    }


async def test_background_process_lifecycle_through_the_tools(
    api: Any, scripted: Any, kernel_agent: Any
) -> None:
    scripted.push(calls(("bg", "execute", {"command": "sleep 30 &"})))
    chat_id = await start_chat(api, "start a server")
    await api.wait_status(chat_id, "waiting", timeout=30)
    started = tool_results(await api.messages(chat_id))["bg"]["result"]
    assert started["success"] is True
    pid = started["background_process_id"]
    scripted.push(
        calls(
            ("list", "process_list", {}),
            ("out", "process_output", {"process_id": pid, "wait_timeout": "0s"}),
        )
    )
    scripted.push(calls(("kill", "process_signal", {"process_id": pid, "signal": "kill"})))
    scripted.push(calls(("final", "process_output", {"process_id": pid})))
    scripted.push({"text": "stopped"})
    await api.ok(
        "POST", f"chats/{chat_id}/messages", {"content": [{"type": "text", "text": "stop it"}]}
    )
    await api.wait_status(chat_id, "waiting", timeout=30)
    results = tool_results(await api.messages(chat_id))
    [listed] = results["list"]["result"]["processes"]
    assert (listed["id"], listed["command"], listed["running"]) == (pid, "sleep 30", True)
    assert results["out"]["result"]["note"] == "process is still running"
    assert results["kill"]["result"] == {
        "success": True,
        "message": f'signal "kill" sent to process {pid}',
    }
    assert results["final"]["result"]["exit_code"] == -9


async def test_a_kernel_killed_during_a_tool_call_gives_an_error_and_the_chat_goes_on(
    api: Any, scripted: Any, kernel_agent: Any, open_stream: Any, jp_serverapp: Any
) -> None:
    kernel = jp_serverapp.kernel_manager.get_kernel(
        kernel_agent.manager.kernel_id(kernel_agent.agent_id)
    )
    kernel.stop_restarter()
    scripted.push(calls(("run", "execute", {"command": "echo started; sleep 60", "timeout": "2m"})))
    scripted.push({"text": "the workspace went away"})
    chat_id = await start_chat(api, "long job")
    stream = await open_stream(chat_id)
    await stream.until(lambda e: "started" in str(e.get("message_part", {})))
    os.kill(int(kernel.provisioner.process.pid), signal.SIGKILL)
    await stream.until(is_waiting)
    messages = await api.messages(chat_id)
    # One copy of each step (the user messages are the prompt and the workspace context).
    assert [m["role"] for m in messages if m["role"] != "user"] == [
        "assistant",
        "tool",
        "assistant",
    ]
    result = tool_results(messages)["run"]
    assert (result["result"], result["is_error"]) == (AGENT_DISCONNECTED, True)
    assert messages[-1]["content"][0]["text"] == "the workspace went away"
    assert kernel_agent.status == "disconnected"


async def test_interrupting_the_chat_kills_the_running_command(
    api: Any, scripted: Any, kernel_agent: Any, open_stream: Any
) -> None:
    scripted.push(calls(("run", "execute", {"command": "echo started; sleep 60", "timeout": "2m"})))
    chat_id = await start_chat(api, "long job")
    stream = await open_stream(chat_id)
    await stream.until(lambda e: "started" in str(e.get("message_part", {})))
    await api.ok("POST", f"chats/{chat_id}/interrupt")
    await api.wait_status(chat_id, "waiting")
    deadline = time.monotonic() + 10
    while True:
        listing = await kernel_agent.call("process_list", {})
        if not any(p["running"] for p in listing["processes"]):
            break
        assert time.monotonic() < deadline, "the command is still running"
        await asyncio.sleep(0.05)


async def test_skill_tools_are_offered_only_when_the_workspace_has_skills(
    api: Any, scripted: Any, kernel_agent: Any, jp_root_dir: Path
) -> None:
    def offered() -> set[str]:
        return {t.name for t in scripted.requests[-1].tools}

    chat_id = await start_chat(api, "hi")
    await api.wait_status(chat_id, "waiting", timeout=30)
    assert "read_file" in offered()
    assert not offered() & {"read_skill", "read_skill_file"}
    skill = jp_root_dir / ".agents" / "skills" / "lint"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: lint\n---\nRun ruff.\n")
    scripted.push(calls(("s", "read_skill", {"name": "lint"})))
    await api.ok("POST", f"chats/{chat_id}/messages", {"content": [{"type": "text", "text": "go"}]})
    await api.wait_status(chat_id, "waiting", timeout=30)
    assert {"read_skill", "read_skill_file"} <= offered()
    result = tool_results(await api.messages(chat_id))["s"]["result"]
    assert (result["name"], result["body"], result["files"]) == ("lint", "Run ruff.\n", [])


# --- connection errors (no model needed) ---------------------------------------------------------


def context(chat: Chat, agents: AgentResolver | None) -> ToolContext:
    async def emit(delta: str) -> None:
        raise AssertionError("nothing should stream")

    return ToolContext(chat=chat, tool_call_id="call", emit=emit, agents=agents)


class Unreachable:
    async def agent_for_chat(self, chat: Chat) -> Any:
        raise AgentUnavailable(AGENT_DISCONNECTED)


@pytest.mark.parametrize(
    ("agents", "error"),
    [(None, NO_WORKSPACE), (Unreachable(), AGENT_DISCONNECTED)],
)
async def test_every_agent_tool_reports_connection_errors_as_text_errors(
    agents: AgentResolver | None, error: str
) -> None:
    chat = Chat(
        id="c",
        organization_id="o",
        owner="me",
        title="t",
        status="running",
        created_at="2024-01-01T00:00:00Z",
        updated_at="2024-01-01T00:00:00Z",
    )
    valid_args = {
        "read_file": {"path": "a"},
        "write_file": {"path": "a", "content": ""},
        "edit_files": {"files": [{"path": "a", "edits": [{"search": "a", "replace": "b"}]}]},
        "execute": {"command": "true"},
        "process_output": {"process_id": "p"},
        "process_list": {},
        "process_signal": {"process_id": "p", "signal": "kill"},
        "read_skill": {"name": "s"},
        "read_skill_file": {"name": "s", "path": "f.md"},
    }
    tools = agent_tools()
    assert [t.name for t in tools] == list(valid_args)
    for tool in tools:
        result = await tool.run(tool.parse(valid_args[tool.name]), context(chat, agents))
        assert (result.result, result.is_error) == (error, True), tool.name


def test_tool_schemas_describe_every_argument_and_ask_to_reuse_the_workspace() -> None:
    for tool in agent_tools():
        spec = tool.spec()
        if tool.name in ("read_file", "write_file", "edit_files", "execute"):
            assert REUSE_WORKSPACE in spec.description
        for name, prop in spec.input_schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name}"
    signal_schema = next(t for t in agent_tools() if t.name == "process_signal").spec()
    assert signal_schema.input_schema["properties"]["signal"]["enum"] == ["terminate", "kill"]
