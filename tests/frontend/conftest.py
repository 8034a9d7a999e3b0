"""A real ``jupyter server`` process with coderchat_ext on the offline demo model, shared by
the notebook, magics and widget relay tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.test_restart import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "frontend-test-token"


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("fe")
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
            "acquire_interval": 0.05,
            "template_paths": [str(ROOT / "notebooks" / "templates")],
        },
    }
    (tmp / "config").mkdir()
    (tmp / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "CODERCHAT_URL", "CODERCHAT_TOKEN")
    }
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        PYTHONPATH=str(ROOT),
    )
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            headers = {"Authorization": f"token {TOKEN}"}
            if httpx.get(url + "api/coderchat/info", headers=headers, timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, (tmp / "server.log").read_text()
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)
    kernel_env = {**env, "CODERCHAT_URL": url, "CODERCHAT_TOKEN": TOKEN}
    try:
        yield {"url": url, "token": TOKEN, "tmp": str(tmp), "env": json.dumps(kernel_env)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
