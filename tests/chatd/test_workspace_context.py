"""Workspace context (docs/workspaces.md#context-files-and-skills): ``AGENTS.md`` and skills
read from the chat's agent each turn, stored when they change, rendered as system blocks, and taken
from the stored copy when the agent cannot be reached."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.chatd.context import context_parts
from coderchat_ext.chatd.prompt import SKILLS_INDEX_INTRO, context_blocks
from coderchat_ext.models import Chat
from coderchat_ext.workspaces.agents import NO_WORKSPACE, AgentUnavailable

SKILL = "---\nname: plotting\ndescription: Make charts with matplotlib\n---\n\nUse plt.\n"


def workspace_files(root: Path, agents_md: str) -> None:
    (root / "AGENTS.md").write_text(agents_md)
    skill = root / ".agents" / "skills" / "plotting"
    skill.mkdir(parents=True, exist_ok=True)
    (skill / "SKILL.md").write_text(SKILL)


def system_texts(scripted: Any) -> list[str]:
    """The system blocks of the model's latest request."""
    request = scripted.requests[-1]
    return [
        "".join(p.text or "" for p in m.content) for m in request.messages if m.role == "system"
    ]


async def turn(api: Any, chat_id: str | None, text: str) -> str:
    content = [{"type": "text", "text": text}]
    if chat_id is None:
        chat_id = str((await api.ok("POST", "chats", {"content": content}))["id"])
    else:
        await api.ok("POST", f"chats/{chat_id}/messages", {"content": content})
    await api.wait_status(chat_id, "waiting", timeout=30)
    return chat_id


def context_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        m for m in messages if any(p["type"] in ("context-file", "skill") for p in m["content"])
    ]


async def test_instructions_and_skills_reach_the_prompt_and_are_stored_once(
    api: Any, scripted: Any, kernel_agent: Any, jp_root_dir: Path
) -> None:
    workspace_files(jp_root_dir, "Always answer in French.\n")
    chat_id = await turn(api, None, "bonjour")
    blocks = system_texts(scripted)
    [instructions] = [b for b in blocks if "Always answer in French." in b]
    assert f'<context-file path="{jp_root_dir / "AGENTS.md"}">' in instructions
    assert f"folder: {jp_root_dir}" in instructions
    assert "operating system: linux" in instructions
    [skills] = [b for b in blocks if b.startswith("<available-skills>")]
    assert skills.endswith("- plotting: Make charts with matplotlib\n</available-skills>")
    assert SKILLS_INDEX_INTRO in skills

    messages = await api.messages(chat_id)
    [stored] = context_messages(messages)
    assert stored["role"] == "user"
    assert [m["role"] for m in messages] == ["user", "user", "assistant"]
    file_part, skill_part = stored["content"]
    # Internal fields never leave the server.
    assert "context_file_content" not in file_part
    assert "skill_dir" not in skill_part
    assert file_part["context_file_path"] == str(jp_root_dir / "AGENTS.md")
    assert file_part["context_file_agent_id"] == kernel_agent.agent_id
    assert skill_part["skill_name"] == "plotting"
    chat = await api.ok("GET", f"chats/{chat_id}")
    assert chat["last_injected_context"] == stored["content"]

    # Unchanged: nothing new is stored, the prompt still has it.
    await turn(api, chat_id, "encore")
    assert len(context_messages(await api.messages(chat_id))) == 1
    assert any("Always answer in French." in b for b in system_texts(scripted))
    # The stored context message is not part of the model's history.
    history = [m for m in scripted.requests[-1].messages if m.role == "user"]
    assert all(p.type == "text" for m in history for p in m.content)

    # Changed: stored again, the prompt follows.
    (jp_root_dir / "AGENTS.md").write_text("Always answer in German.\n")
    await turn(api, chat_id, "noch einmal")
    assert len(context_messages(await api.messages(chat_id))) == 2
    blocks = system_texts(scripted)
    assert any("Always answer in German." in b for b in blocks)
    assert not any("French" in b for b in blocks)


async def test_an_unreachable_agent_falls_back_to_the_stored_context(
    api: Any, scripted: Any, kernel_agent: Any, jp_root_dir: Path, jp_serverapp: Any
) -> None:
    workspace_files(jp_root_dir, "Use tabs.\n")
    chat_id = await turn(api, None, "first")
    kernel = jp_serverapp.kernel_manager.get_kernel(
        kernel_agent.manager.kernel_id(kernel_agent.agent_id)
    )
    kernel.stop_restarter()
    os.kill(int(kernel.provisioner.process.pid), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while kernel_agent.status != "disconnected":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    (jp_root_dir / "AGENTS.md").write_text("Use spaces.\n")
    await turn(api, chat_id, "second")
    assert any("Use tabs." in b for b in system_texts(scripted))
    assert len(context_messages(await api.messages(chat_id))) == 1


async def test_a_workspace_without_files_stores_a_blank_marker_once(
    api: Any, scripted: Any, kernel_agent: Any
) -> None:
    chat_id = await turn(api, None, "hi")
    await turn(api, chat_id, "again")
    [stored] = context_messages(await api.messages(chat_id))
    assert stored["content"] == [
        {"type": "context-file", "context_file_agent_id": kernel_agent.agent_id}
    ]
    assert not any(
        "<context-file" in b or "<available-skills>" in b for b in system_texts(scripted)
    )


class NoWorkspace:
    async def agent_for_chat(self, chat: Chat) -> Any:
        raise AgentUnavailable(NO_WORKSPACE)


async def test_a_chat_without_workspace_gets_no_context(
    api: Any, scripted: Any, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.services.daemon, "agents", NoWorkspace())
    chat_id = await turn(api, None, "hi")
    assert context_messages(await api.messages(chat_id)) == []
    assert (await api.ok("GET", f"chats/{chat_id}")).get("last_injected_context") is None


def test_context_blocks_render_truncation_and_skip_blank_markers() -> None:
    parts = context_parts(
        "a1",
        {
            "os": "linux",
            "directory": "/w",
            "files": [{"path": "/w/AGENTS.md", "content": "x" * 10, "truncated": True}],
            "skills": [{"name": "lint", "description": "", "dir": "/w/.agents/skills/lint"}],
        },
    )
    instructions, skills = context_blocks(parts)
    assert instructions.startswith(
        "Instructions from the workspace's instruction files (operating system: linux, folder: "
        "/w). Follow them when you work in the workspace."
    )
    assert '<context-file path="/w/AGENTS.md" truncated="true">\nxxxxxxxxxx\n</context-file>' in (
        instructions
    )
    assert skills.splitlines()[-2:] == ["- lint", "</available-skills>"]
    assert context_blocks(context_parts("a1", {})) == []
