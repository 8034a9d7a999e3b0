"""A real ``jupyter server`` process stopped mid-turn leaves the chat ``pending``; a new server
on the same database file resumes and finishes it (DESIGN §4, reference §5.5)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

TOKEN = "restart-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(tmp: Path, script: dict[str, Any]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = {
        "ServerApp": {
            "jpserver_extensions": {"coderchat_ext": True, "jupyter_server_terminals": False},
            "open_browser": False,
            "port": port,
            "ip": "127.0.0.1",
            "root_dir": str(tmp),
            "allow_root": True,
        },
        "IdentityProvider": {"token": TOKEN},
        "CoderChatApp": {
            "db_path": str(tmp / "chat.db"),
            "scripted_model": script,
            "test_tools": True,
            "acquire_interval": 0.05,
            "model_configs": [{"provider": "scripted", "model": "s", "context_limit": 1000}],
        },
    }
    config_dir = tmp / f"config-{port}"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
    }
    log = open(tmp / f"server-{port}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/api/coderchat/"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "info", headers=headers(), timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, (tmp / f"server-{port}.log").read_text()
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


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


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def test_a_chat_running_when_the_server_stops_resumes_on_the_next_start(
    tmp_path: Path,
) -> None:
    first, url = start_server(
        tmp_path,
        {
            "turns": [
                {"tool_calls": [{"id": "a", "name": "echo", "args": {"text": "1"}}]},
                {"tool_calls": [{"id": "b", "name": "sleep", "args": {"seconds": 60}}]},
            ],
        },
    )
    try:
        chat = httpx.post(
            url + "chats", headers=headers(), json={"content": "work, then wait"}
        ).json()

        def on_second_step(c: dict[str, Any]) -> bool:
            page = httpx.get(f"{url}chats/{c['id']}/messages", headers=headers()).json()
            return c["status"] == "running" and any(m["role"] == "tool" for m in page["messages"])

        wait_chat(url, chat["id"], on_second_step)
    finally:
        stop(first)

    second, url = start_server(tmp_path, {"default": {"text": "resumed after restart"}})
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
        stop(second)
