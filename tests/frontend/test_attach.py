"""``%chat attach`` in a kernel the server started (as JupyterLab starts a notebook's kernel):
the notebook's own kernel becomes the workspace agent, and the chat's tools run in it while
the notebook's ``%%chat`` cell is still waiting for the turn."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from jupyter_client.blocking import BlockingKernelClient


def run(client: BlockingKernelClient, code: str, timeout: float = 120) -> str:
    """Execute ``code``; the text it printed or displayed (errors included)."""
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        content = msg["content"]
        if msg["msg_type"] == "stream":
            out.append(content["text"])
        elif msg["msg_type"] in ("display_data", "execute_result", "update_display_data"):
            out.append(content["data"].get("text/plain", ""))
        elif msg["msg_type"] == "error":
            out.append("\n".join(content["traceback"]))

    client.execute_interactive(code, timeout=timeout, output_hook=hook)
    return "\n".join(out)


def test_attach_makes_this_kernel_the_agent_and_the_chat_works_in_it(
    server: dict[str, str],
) -> None:
    api = httpx.Client(
        base_url=server["url"], headers={"Authorization": f"token {server['token']}"}, timeout=30
    )
    kernel_id = api.post("api/kernels", json={"name": "python3"}).json()["id"]
    client = BlockingKernelClient()
    client.load_connection_file(Path(server["tmp"]) / "runtime" / f"kernel-{kernel_id}.json")
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        assert "Traceback" not in run(client, "%load_ext coderchat_ext")
        attached = run(client, "%chat attach notebook")
        assert f"attaching kernel {kernel_id}" in attached, attached

        deadline = time.monotonic() + 60
        while True:
            workspaces = api.get("api/coderchat/workspaces").json()
            mine = [
                w
                for w in workspaces
                if w["template_name"] == "notebook"
                and any(a.get("kernel_id") == kernel_id for a in w["latest_build"]["agents"])
            ]
            if mine and mine[0]["latest_build"]["agents"][0]["status"] == "connected":
                break
            assert time.monotonic() < deadline, workspaces
            time.sleep(0.1)

        # The demo model's agent session reuses the chat's (attached) workspace: it writes and
        # runs hello.py through this very kernel, on a subshell, while this cell waits.
        transcript = run(client, "%%chat\nShow me what an agent does.")
        assert "Hello from Python" in transcript, transcript
        assert run(client, "import os; print(os.path.exists('hello.py'))").strip() == "True"
    finally:
        client.stop_channels()
        api.delete(f"api/kernels/{kernel_id}")
