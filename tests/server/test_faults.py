"""The fault matrix: a fault hits while a turn is in flight; every cell asserts that no persisted
message is lost, none is duplicated (0 lost, 0 duplicated), and the documented final status.

==============================================  =====================================  ====
fault                                           final status                           test
==============================================  =====================================  ====
provider 429 (twice), then success              ``waiting``                            [p]
provider 500 / 529, then success                ``waiting``                            [p]
provider error mid-stream, then success         ``waiting``                            [p]
provider drops the connection mid-stream        ``waiting``                            [p]
provider stalls before the first chunk          ``waiting`` (startup_timeout retried)  [p]
provider error mid-stream, then 401             ``error`` (auth)                       [p]
SIGTERM mid-turn, then restart                  ``waiting`` (the step in flight redone) [r]
SIGKILL mid-turn, restart (default settings)    ``waiting``, resumed within seconds    here
SIGKILL, then interrupt the orphan (queued msg) ``waiting``, the queued message answered here
kernel killed mid-tool                          ``waiting`` (the tool result an error) [t]
disk full mid-turn, then freed                  ``error`` (kind storage), usable again here
disk full at request time                       507, then 200 once freed               here
==============================================  =====================================  ====

[p] ``tests/server/test_provider_turns.py``, [r] ``tests/server/test_restart.py``,
[t] ``tests/tools/test_agent_tools.py``. The disk cells mount a small tmpfs for the database
folder (the tests run as root) and skip when mounting is not permitted.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coderchat_ext.providers.base import ModelRequest
from tests.jupyter_process import JupyterProcess, start_jupyter

TOKEN = "fault-test-token"


# --- a real server process, stopped hard --------------------------------------------------


def start_server(tmp: Path, script: dict[str, Any]) -> JupyterProcess:
    """A server on ``tmp/chat.db`` with the scripted model, and otherwise default settings
    (heartbeats every 30 s, stale after 300 s, acquisition every second)."""
    return start_jupyter(
        tmp,
        token=TOKEN,
        coderchat={
            "db_path": str(tmp / "chat.db"),
            "scripted_model": script,
            "test_tools": True,
            "model_configs": [{"provider": "scripted", "model": "s", "context_limit": 1000}],
        },
        timeout=60,
    )


def call(server: JupyterProcess, method: str, path: str, **kw: Any) -> Any:
    response = httpx.request(method, server.api + path, headers=server.headers(), **kw)
    assert response.status_code < 300, (response.status_code, response.text)
    return response.json() if response.content else None


def messages(server: JupyterProcess, chat_id: str) -> dict[str, Any]:
    page: dict[str, Any] = call(
        server, "GET", f"chats/{chat_id}/messages", params={"after_id": 0, "limit": 200}
    )
    return page


def wait_chat(server: JupyterProcess, chat_id: str, predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        chat = call(server, "GET", f"chats/{chat_id}")
        if predicate(chat):
            return chat
        assert time.monotonic() < deadline, chat
        time.sleep(0.05)


SLOW_TURN = {
    "turns": [
        {"tool_calls": [{"id": "a", "name": "echo", "args": {"text": "kept"}}]},
        {"tool_calls": [{"id": "b", "name": "sleep", "args": {"seconds": 120}}]},
    ],
}
"""Step 1 is persisted, step 2 runs a two-minute tool: the fault hits during step 2."""


def start_slow_chat(server: JupyterProcess) -> str:
    """A chat whose turn is in step 2 (step 1 persisted) -> its id."""
    chat = call(server, "POST", "chats", json={"content": "work, then wait"})

    def on_second_step(c: dict[str, Any]) -> bool:
        page = messages(server, c["id"])
        return c["status"] == "running" and any(m["role"] == "tool" for m in page["messages"])

    wait_chat(server, chat["id"], on_second_step, timeout=20)
    return str(chat["id"])


def kill(server: JupyterProcess) -> None:
    """SIGKILL: no shutdown hook runs, the chat stays ``running`` under the dead server's id."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)


def test_sigkill_mid_turn_then_restart_resumes_the_chat_within_seconds(tmp_path: Path) -> None:
    first = start_server(tmp_path, SLOW_TURN)
    try:
        chat_id = start_slow_chat(first)
    finally:
        kill(first)

    second = start_server(tmp_path, {"default": {"text": "resumed after a crash"}})
    try:
        # stale_after is 300 s: only knowing its own instance id lets the server resume now.
        done = wait_chat(second, chat_id, lambda c: c["status"] == "waiting", timeout=20)
        assert done.get("last_error") is None
        page = messages(second, chat_id)
        assert [m["role"] for m in page["messages"]] == ["user", "assistant", "tool", "assistant"]
        assert page["messages"][2]["content"][0]["result"] == {"text": "kept"}
        assert page["messages"][-1]["content"][0]["text"] == "resumed after a crash"
    finally:
        second.stop()


def test_interrupting_an_orphan_promotes_its_queue_and_live_servers_keep_their_chats(
    tmp_path: Path,
) -> None:
    first = start_server(tmp_path, SLOW_TURN)
    second: JupyterProcess | None = None
    try:
        chat_id = start_slow_chat(first)
        before = call(first, "GET", f"chats/{chat_id}")
        second = start_server(tmp_path, {"default": {"text": "answered by the other server"}})
        # The second server's start recovery leaves a live server's chat alone.
        untouched = call(second, "GET", f"chats/{chat_id}")
        assert (untouched["status"], untouched["worker_id"]) == ("running", before["worker_id"])
        kill(first)

        sent = call(
            second,
            "POST",
            f"chats/{chat_id}/messages",
            json={"content": [{"type": "text", "text": "queued while orphaned"}]},
        )
        assert sent["queued"] is True
        call(second, "POST", f"chats/{chat_id}/interrupt")

        def answered(c: dict[str, Any]) -> bool:
            return (
                c["status"] == "waiting"
                and messages(second, chat_id)["messages"][-1]["role"] == "assistant"
            )

        wait_chat(second, chat_id, answered, timeout=20)
        page = messages(second, chat_id)
        assert [m["role"] for m in page["messages"]] == [
            "user",
            "assistant",
            "tool",
            "user",
            "assistant",
        ]
        assert page["messages"][3]["content"][0]["text"] == "queued while orphaned"
        assert page["messages"][-1]["content"][0]["text"] == "answered by the other server"
        assert page["queued_messages"] == []
    finally:
        kill(first)
        if second is not None:
            second.stop()


# --- a full disk under the test server ----------------------------------------------------


class Disk:
    """A tmpfs mounted at ``root``: :meth:`fill` writes a file until it is full, :meth:`free`
    deletes it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        chunk = b"\0" * 65536
        try:
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    return
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    root = tmp_path / "disk"
    root.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(root)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the disk-full cells: {mounted.stderr.strip()}")
    try:
        yield Disk(root)
    finally:
        # Lazy: the test server may still hold the database open while it shuts down.
        subprocess.run(["umount", "-l", str(root)], check=False)


@pytest.fixture
def coderchat_config(disk: Disk) -> dict[str, Any]:
    return {
        "db_path": str(disk.root / "coderchat.db"),
        "scripted_model": {},
        "test_tools": True,
        "model_configs": [{"provider": "scripted", "model": "s", "context_limit": 100_000}],
        "acquire_interval": 0.05,
    }


async def wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_full_disk_mid_turn_ends_in_a_storage_error_and_loses_nothing(
    api: Any, app: Any, disk: Disk, published: list[tuple[str, Any]]
) -> None:
    calls = 0

    def model(request: ModelRequest) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"tool_calls": [{"id": "a", "name": "echo", "args": {"text": "kept"}}]}
        if calls == 2:
            disk.fill()  # while step 2 streams: its COMMIT and the status write will fail
            return {"text": "never stored"}
        return {"text": "answered once space returned"}

    app.services.scripted.handler = model
    chat = await api.ok("POST", "chats", {"content": [{"type": "text", "text": "go"}]})
    chat_id = chat["id"]

    def storage_errors() -> list[Any]:
        return [
            e["error"]
            for ch, e in published
            if ch == f"chat:{chat_id}" and e["type"] == "error" and e["error"]["kind"] == "storage"
        ]

    await wait_for(lambda: bool(storage_errors()))
    # Clients see the error while the status write still waits for space.
    assert (await api.ok("GET", f"chats/{chat_id}"))["status"] == "running"
    disk.free()

    failed = await api.wait_status(chat_id, "error", timeout=30)
    error = failed["last_error"]
    assert (error["kind"], error["retryable"]) == ("storage", True)
    assert "disk is full" in error["message"]
    assert len(storage_errors()) == 1
    history = await api.messages(chat_id)
    assert [m["role"] for m in history] == ["user", "assistant", "tool"]
    assert history[2]["content"][0]["result"] == {"text": "kept"}
    assert "never stored" not in str(history)

    await api.ok(
        "POST", f"chats/{chat_id}/messages", {"content": [{"type": "text", "text": "again"}]}
    )
    done = await api.wait_status(chat_id, "waiting")
    assert done.get("last_error") is None
    history = await api.messages(chat_id)
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "user", "assistant"]
    assert history[-1]["content"][0]["text"] == "answered once space returned"


async def test_a_write_refused_by_a_full_disk_answers_507(api: Any, disk: Disk) -> None:
    chat = await api.ok("POST", "chats", {"content": [{"type": "text", "text": "before"}]})
    await api.wait_status(chat["id"], "waiting")
    disk.fill()
    try:
        status, body = await api("POST", "chats", {"content": [{"type": "text", "text": "x"}]})
        assert (status, body["message"]) == (507, "The server's disk is full.")
        assert "Free disk space" in body["detail"]
        status, body = await api(
            "POST", f"chats/{chat['id']}/messages", {"content": [{"type": "text", "text": "y"}]}
        )
        assert status == 507
    finally:
        disk.free()
    created = await api.ok("POST", "chats", {"content": [{"type": "text", "text": "after"}]})
    await api.wait_status(created["id"], "waiting")
    history = await api.messages(chat["id"])
    assert [m["role"] for m in history] == ["user", "assistant"]
