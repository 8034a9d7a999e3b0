"""A real ``jupyter server`` process stopped mid-turn leaves the chat ``pending``; a new server
on the same database file resumes and finishes it (docs/status-machine.md#interrupt-vs-shutdown)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.jupyter_process import JupyterProcess, start_jupyter

TOKEN = "restart-test-token"


def start_server(tmp: Path, script: dict[str, Any]) -> JupyterProcess:
    return start_jupyter(
        tmp,
        token=TOKEN,
        coderchat={
            "db_path": str(tmp / "chat.db"),
            "scripted_model": script,
            "test_tools": True,
            "acquire_interval": 0.05,
            "model_configs": [{"provider": "scripted", "model": "s", "context_limit": 1000}],
        },
        timeout=30,
    )


def headers() -> dict[str, str]:
    return {"Authorization": f"token {TOKEN}"}


def wait_chat(url: str, chat_id: str, predicate: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        chat = httpx.get(f"{url}chats/{chat_id}", headers=headers()).json()
        if predicate(chat):
            return chat
        assert time.monotonic() < deadline, chat
        time.sleep(0.05)


def test_a_chat_running_when_the_server_stops_resumes_on_the_next_start(
    tmp_path: Path,
) -> None:
    first = start_server(
        tmp_path,
        {
            "turns": [
                {"tool_calls": [{"id": "a", "name": "echo", "args": {"text": "1"}}]},
                {"tool_calls": [{"id": "b", "name": "sleep", "args": {"seconds": 60}}]},
            ],
        },
    )
    url = first.api
    try:
        chat = httpx.post(
            url + "chats", headers=headers(), json={"content": "work, then wait"}
        ).json()

        def on_second_step(c: dict[str, Any]) -> bool:
            page = httpx.get(f"{url}chats/{c['id']}/messages", headers=headers()).json()
            return c["status"] == "running" and any(m["role"] == "tool" for m in page["messages"])

        wait_chat(url, chat["id"], on_second_step)
    finally:
        first.stop()

    second = start_server(tmp_path, {"default": {"text": "resumed after restart"}})
    url = second.api
    try:
        done = wait_chat(url, chat["id"], lambda c: c["status"] == "waiting")
        assert done.get("last_error") is None
        page = httpx.get(
            f"{url}chats/{chat['id']}/messages", headers=headers(), params={"after_id": 0}
        ).json()
        roles = [m["role"] for m in page["messages"]]
        assert roles == ["user", "assistant", "tool", "assistant"]
        assert page["messages"][-1]["content"][0]["text"] == "resumed after restart"
    finally:
        second.stop()
