"""Workspace confinement on a real kernel: every path a file tool takes stays inside the
workspace root (``..``, absolute paths elsewhere, symbolic links out and ``/proc`` are refused
with an error the model can act on), while in-root absolute, nested and linked paths work."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.workspaces.agents import AgentError
from tests.workspaces.test_agents import Agents, make_agents

__all__ = ["make_agents"]

SECRET = "server secret\n"


@pytest.fixture
def layout(jp_root_dir: Path) -> Path:
    """The server's root with ``secret.txt`` and ``outside/`` next to the workspace ``ws/``,
    which holds a file, links out (to a file and to a folder), a link in, and skills: one with
    a supporting file linking out, one whose folder links out."""
    (jp_root_dir / "secret.txt").write_text(SECRET)
    outside = jp_root_dir / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "SKILL.md").write_text("---\nname: evil\ndescription: outside\n---\nleak\n")
    ws = jp_root_dir / "ws"
    (ws / "notes").mkdir(parents=True)
    (ws / "notes" / "in.txt").write_text("inside\n")
    os.symlink("../secret.txt", ws / "link-out")
    os.symlink("../outside", ws / "dir-out")
    os.symlink("notes/in.txt", ws / "link-in")
    skills = ws / ".agents" / "skills"
    (skills / "good").mkdir(parents=True)
    (skills / "good" / "SKILL.md").write_text("---\nname: good\ndescription: fine\n---\nok\n")
    os.symlink(str(jp_root_dir / "secret.txt"), skills / "good" / "leak.md")
    os.symlink(str(outside), skills / "evil")
    return ws.resolve()


@pytest.fixture
def agent(make_agents: Any, layout: Path, jp_asyncio_loop: Any) -> Agents:
    """An agent whose kernel runs in ``ws/`` (the workspace root)."""
    agents: Agents = make_agents()
    agents.started.append("ws")
    jp_asyncio_loop.run_until_complete(agents.manager.start("ws", kernel_name="python3", path="ws"))
    return agents


async def refusal(agents: Agents, op: str, args: dict[str, Any]) -> str:
    with pytest.raises(AgentError) as refused:
        await agents.manager.call("ws", op, args)
    return refused.value.message


def escapes(root: Path) -> dict[str, str]:
    """Each way out of the workspace, by name: the path a model would give."""
    return {
        "dotdot": "../secret.txt",
        "dotdot-inside-first": "notes/../../secret.txt",
        "absolute": str(root / "secret.txt"),
        "symlink": "link-out",
        "symlinked-folder": "dir-out/secret.txt",
        "proc": "/proc/self/environ",
        "home": "~/.bashrc",
    }


def outside_root(path: str, ws: Path) -> str:
    return f'Path "{path}" is outside the workspace root {ws}'


async def test_every_file_tool_refuses_every_escape_with_an_actionable_error(
    agent: Agents, layout: Path, jp_root_dir: Path
) -> None:
    ws = layout
    tools = {
        "read_file": lambda p: ("read_file", {"path": p}),
        "write_file": lambda p: ("write_file", {"path": p, "content": "pwned"}),
        "edit_files": lambda p: (
            "edit_files",
            {"files": [{"path": p, "edits": [{"search": "server", "replace": "pwned"}]}]},
        ),
        "execute workdir": lambda p: ("execute", {"command": "pwd", "workdir": p}),
        "git_status": lambda p: ("git_status", {"path": p}),
    }
    leaks = []
    for tool, make in tools.items():
        for name, path in escapes(jp_root_dir).items():
            op, args = make(path)
            try:
                result = await agent.manager.call("ws", op, args)
            except AgentError as exc:
                if not exc.message.startswith(outside_root(path, ws)):
                    leaks.append((tool, name, exc.message))
            else:
                leaks.append((tool, name, result))
    assert leaks == []
    assert (jp_root_dir / "secret.txt").read_text() == SECRET
    assert (jp_root_dir / "outside" / "secret.txt").read_text() == SECRET


async def test_the_errors_say_what_is_wrong_and_what_to_do(agent: Agents, layout: Path) -> None:
    ws = layout
    assert await refusal(agent, "read_file", {"path": "/etc/passwd"}) == (
        f'Path "/etc/passwd" is outside the workspace root {ws}. Use a path inside the '
        "workspace folder (relative paths are relative to it)."
    )
    assert await refusal(agent, "write_file", {"path": "dir-out/new.txt", "content": "x"}) == (
        f'Path "dir-out/new.txt" is outside the workspace root {ws}: a symbolic link in it leads '
        f"to {ws.parent / 'outside' / 'new.txt'}. Only files inside the workspace folder can "
        "be used."
    )
    assert not (ws.parent / "outside" / "new.txt").exists()
    # edit_files reports every refused file of the batch and applies none.
    message = await refusal(
        agent,
        "edit_files",
        {
            "files": [
                {"path": "notes/in.txt", "edits": [{"search": "inside", "replace": "x"}]},
                {"path": "../secret.txt", "edits": [{"search": "server", "replace": "x"}]},
            ]
        },
    )
    assert message.splitlines() == [
        f"{outside_root('../secret.txt', ws)}. Use a path inside the workspace folder "
        "(relative paths are relative to it).",
        "no files in this batch were applied",
    ]
    assert (ws / "notes" / "in.txt").read_text() == "inside\n"


async def test_skills_and_context_files_that_lead_out_are_not_read(
    agent: Agents, layout: Path, jp_root_dir: Path
) -> None:
    os.symlink("../secret.txt", layout / "AGENTS.md")
    context = await agent.manager.call("ws", "context", {})
    assert context["files"] == []
    assert [s["name"] for s in context["skills"]] == ["good"]
    assert await refusal(agent, "read_skill", {"name": "evil"}) == 'skill "evil" not found'
    assert await refusal(agent, "read_skill_file", {"name": "evil", "path": "secret.txt"}) == (
        'skill "evil" not found'
    )
    assert await refusal(agent, "read_skill_file", {"name": "good", "path": "leak.md"}) == (
        "path traversal is not allowed"
    )
    for path, error in [
        ("/proc/self/environ", "absolute paths are not allowed"),
        (str(jp_root_dir / "secret.txt"), "absolute paths are not allowed"),
        ("../../../secret.txt", "path traversal is not allowed"),
    ]:
        assert await refusal(agent, "read_skill_file", {"name": "good", "path": path}) == error


async def test_in_root_absolute_nested_and_linked_paths_still_work(
    agent: Agents, layout: Path
) -> None:
    ws = layout
    call = agent.manager.call
    assert await call("ws", "write_file", {"path": str(ws / "a/b/c.txt"), "content": "one\n"}) == {
        "ok": True
    }
    assert (ws / "a" / "b" / "c.txt").read_text() == "one\n"
    edited = await call(
        "ws",
        "edit_files",
        {"files": [{"path": "a/b/../b/c.txt", "edits": [{"search": "one", "replace": "two"}]}]},
    )
    assert edited["ok"] is True
    read = await call("ws", "read_file", {"path": str(ws / "a" / "b" / "c.txt")})
    assert read["content"] == "1\ttwo"
    assert (await call("ws", "read_file", {"path": "link-in"}))["content"] == "1\tinside"
    await call("ws", "write_file", {"path": "link-in", "content": "through the link\n"})
    assert (ws / "notes" / "in.txt").read_text() == "through the link\n"
    listing = await call("ws", "read_file", {"path": str(ws)})
    assert listing["absolute_path"] == str(ws)
    assert "notes/" in listing["content"]
    result = await call("ws", "execute", {"command": "pwd", "workdir": "notes"})
    assert result["output"] == f"{ws / 'notes'}\n"
