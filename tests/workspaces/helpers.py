"""Shared set-up of the workspace tests: a server with two users (``alice``, ``bob``) and an
administrator (the server token, user ``server``), test templates next to the built-in ones, a
quota group, and helpers that wait for builds and run workspace tools through a chat."""

from __future__ import annotations

import asyncio
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.workspaces.templates import template_id_for
from tests.server.test_ownership import TwoUserIdentityProvider

TEMPLATES = {
    "needs-region": """
        name = "needs-region"
        display_name = "Needs a region"
        description = "A template with required, ranged and immutable parameters."

        [[parameters]]
        name = "region"
        required = true
        options = ["eu", "us"]

        [[parameters]]
        name = "cpus"
        type = "number"
        default = 2
        validation = { min = 1, max = 8 }

        [[parameters]]
        name = "image"
        default = "base"
        mutable = false

        [[presets]]
        name = "europe"
        parameters = { region = "eu", cpus = 4 }
    """,
    "offline": """
        name = "offline"
        description = "An external agent: the user attaches a kernel."
        external = true
    """,
    "lab": """
        name = "lab"
        description = "Only for the research organization."
        organization = "research"
    """,
    "costly": """
        name = "costly"
        description = "Costs more than anyone's budget."
        daily_cost = 5
    """,
    "broken-init": """
        name = "broken-init"
        description = "Its init fails."
        init = "echo about to fail; exit 3"
    """,
}
BUDGET = 4


def template_id(name: str, organization: str = "default") -> str:
    return template_id_for(organization, name)


def write_template(folder: Path, manifest: str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "template.toml").write_text(textwrap.dedent(manifest))
    for path, content in (files or {}).items():
        target = folder / "files" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return folder


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    for name, manifest in TEMPLATES.items():
        write_template(folder / name, manifest)
    return folder


@pytest.fixture
def coderchat_config(coderchat_config: dict[str, Any], template_dir: Path) -> dict[str, Any]:
    return {
        **coderchat_config,
        "template_paths": [str(template_dir)],
        "groups": {"everyone": {"members": ["*"], "budget": BUDGET}},
        "organizations": {"research": ["alice"]},
        "multi_user": True,
        "admin_users": ["server"],
    }


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    server = {**jp_server_config["ServerApp"], "identity_provider_class": TwoUserIdentityProvider}
    return {**jp_server_config, "ServerApp": server}


def as_user(name: str) -> dict[str, str]:
    return {"Authorization": f"token {name}"}


ALICE = as_user("alice")
BOB = as_user("bob")


async def wait_build(
    api: Any, workspace_id: str, *, headers: dict[str, str] | None = None, timeout: float = 60
) -> dict[str, Any]:
    """Poll the workspace until its latest build's job has ended; returns the workspace."""
    deadline = time.monotonic() + timeout
    while True:
        workspace = await api.ok("GET", f"workspaces/{workspace_id}", headers=headers)
        if workspace["latest_build"]["job"]["status"] not in ("pending", "running", "canceling"):
            return workspace
        assert time.monotonic() < deadline, f"build still {workspace['status']}"
        await asyncio.sleep(0.05)


async def wait_chat(
    api: Any, chat_id: str, *, headers: dict[str, str] | None = None, timeout: float = 60
) -> dict[str, Any]:
    """Poll a chat (as ``headers``' user) until its turn is over (``waiting`` or ``error``)."""
    deadline = time.monotonic() + timeout
    while True:
        chat = await api.ok("GET", f"chats/{chat_id}", headers=headers)
        if chat["status"] in ("waiting", "error"):
            return dict(chat)
        assert time.monotonic() < deadline, f"chat stayed {chat['status']}"
        await asyncio.sleep(0.05)


async def run_tools(
    api: Any,
    scripted: Any,
    calls: list[tuple[str, dict[str, Any]]],
    *,
    chat_id: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[str, list[dict[str, Any]]]:
    """Have the scripted model call ``calls`` in one step; returns the chat id and the
    tool-result parts in call order."""
    ids = [f"call_{uuid.uuid4().hex[:12]}" for _ in calls]
    scripted.push(
        {
            "tool_calls": [
                {"id": call_id, "name": name, "args": args}
                for call_id, (name, args) in zip(ids, calls, strict=True)
            ]
        },
        {"text": "Done."},
    )
    if chat_id is None:
        chat = await api.ok("POST", "chats", {"content": "Use the tools."}, headers=headers)
        chat_id = chat["id"]
    else:
        await api.ok("POST", f"chats/{chat_id}/messages", {"content": "Again."}, headers=headers)
    chat = await wait_chat(api, chat_id, headers=headers, timeout=timeout)
    assert chat["status"] == "waiting", chat.get("last_error")
    page = await api.ok("GET", f"chats/{chat_id}/messages", params={"limit": 200}, headers=headers)
    results = {
        part["tool_call_id"]: part
        for message in page["messages"]
        for part in message["content"]
        if part["type"] == "tool-result"
    }
    return chat_id, [results[i] for i in ids]
