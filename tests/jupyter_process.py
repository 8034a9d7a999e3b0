"""A Jupyter server (or JupyterLab) with coderchat_ext in a subprocess, for the tests that need
a real process: a restart, kernels that talk back to the server, a browser.

Each process gets a free port on 127.0.0.1, a token, its own config dir (``config-<port>``)
and log file under ``tmp``; provider keys and discovery variables of the test environment are
not passed on, so the offline demo model answers unless the config says otherwise."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
"""The checkout (kernels get it on ``PYTHONPATH`` to import this coderchat_ext)."""

HIDDEN_ENV = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "CODERCHAT_URL",
    "CODERCHAT_TOKEN",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class JupyterProcess:
    """A running server: ``url`` is its base URL (trailing slash), ``api`` the chat API's."""

    proc: subprocess.Popen[bytes]
    url: str
    token: str
    root: Path
    log_path: Path
    env: dict[str, str]

    @property
    def api(self) -> str:
        return self.url + "api/coderchat/"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_jupyter(
    tmp: Path,
    *,
    token: str,
    coderchat: dict[str, Any],
    module: str = "jupyter_server",
    root: Path | None = None,
    data_dir: Path | None = None,
    extra_config: dict[str, Any] | None = None,
    config_files: dict[str, str] | None = None,
    timeout: float = 60,
) -> JupyterProcess:
    """Start ``python -m <module>`` with ``c.CoderChatApp`` = ``coderchat`` and wait until
    ``GET api/coderchat/info`` answers. ``config_files`` are written into the config dir
    (e.g. ``labconfig/page_config.json``). Raises AssertionError with the log when the
    process exits or is not ready within ``timeout`` seconds."""
    port = free_port()
    root = root or tmp
    root.mkdir(parents=True, exist_ok=True)
    config_dir = tmp / f"config-{port}"
    config_dir.mkdir()
    config = {
        "ServerApp": {
            "jpserver_extensions": {"coderchat_ext": True, "jupyter_server_terminals": False},
            "open_browser": False,
            "port": port,
            "ip": "127.0.0.1",
            "root_dir": str(root),
            "allow_root": True,
        },
        "IdentityProvider": {"token": token},
        "CoderChatApp": coderchat,
        **(extra_config or {}),
    }
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
    for name, text in (config_files or {}).items():
        (config_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (config_dir / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in HIDDEN_ENV}
    env.update(
        JUPYTER_CONFIG_DIR=str(config_dir),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_DATA_DIR=str(data_dir or tmp / "data"),
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    )
    log_path = tmp / f"{module}-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module], env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT
        )
    server = JupyterProcess(proc, f"http://127.0.0.1:{port}/", token, root, log_path, env)
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(server.api + "info", headers=server.headers(), timeout=1)
            if response.status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"{module} exited with {proc.returncode}:\n{server.log()}")
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"{module} was not ready in {timeout} s:\n{server.log()}")
        time.sleep(0.1)
