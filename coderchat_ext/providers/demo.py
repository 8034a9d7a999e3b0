"""The offline demo provider (``demo``): the fake provider server started in-process on
loopback with a built-in script, reached through the real Anthropic SDK adapter
(docs/providers.md#adapters).

A fresh install with no API key uses it, so the chat works end to end before anything is
configured. It answers with guidance on configuring a real provider; when the workspace tools are
offered it first runs a short real agent session: create a workspace from the blank Python
template, write a file, run it, report. It is labelled "Offline demo model" wherever it appears.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from ..models import ChatModelConfig
from .base import Model
from .registry import ResolvedProvider
from .scripted import ScriptedModel

if TYPE_CHECKING:
    from .fake import FakeProviderServer

DEMO_API_KEY = "coderchat-offline-demo"
"""The key the demo's SDK client sends to its loopback server (never a real key)."""

GUIDANCE = """\
**You are talking to the offline demo model.** It runs on this machine, answers from a fixed \
script and never sends your messages anywhere.

To chat with a real model, configure a provider, then pick its model in the model picker:

- **Environment:** start Jupyter with `ANTHROPIC_API_KEY` or `OPENAI_API_KEY` set \
(`OPENAI_BASE_URL` points the OpenAI-compatible provider at Ollama, vLLM or LM Studio).
- **Jupyter config:** `c.CoderChatApp.providers = {"anthropic": {"api_key": "..."}}` in \
`jupyter_server_config.py`.
- **API:** an administrator can `POST api/coderchat/providers` with \
`{"provider": "anthropic", "api_key": "..."}`; keys are stored encrypted.

Known models (context limits and prices) appear as soon as a provider has a key."""

HELLO_PY = '''\
"""Written by the coderchat offline demo."""

import platform
import sys

print(f"Hello from Python {sys.version.split()[0]} on {platform.system()}!")
print("Squares:", [n * n for n in range(1, 6)])
'''

AGENT_TOOLS = ["create_workspace", "write_file", "execute"]
"""The tools the demo's agent session needs; without them it only gives guidance."""


def demo_script(template_id: str | None) -> dict[str, Any]:
    """The demo's fake-server script. ``template_id``: the blank Python template the agent
    session creates its workspace from (None: guidance only)."""
    script: dict[str, Any] = {
        "default": {"text": GUIDANCE, "chunk_size": 24},
        "models": ["coderchat-demo"],
    }
    if template_id is None:
        return script
    script["rules"] = [
        {
            "tools": AGENT_TOOLS,
            "steps": [
                {
                    "text": "I'm the offline demo model. Let me show what an agent does here: "
                    "I'll create a workspace (a folder with a Jupyter kernel), write a small "
                    "program in it and run it.",
                    "tool_calls": [
                        {"name": "create_workspace", "arguments": {"template_id": template_id}}
                    ],
                },
                {
                    "text": "The workspace is up. Writing `hello.py`.",
                    "tool_calls": [
                        {
                            "name": "write_file",
                            "arguments": {"path": "hello.py", "content": HELLO_PY},
                        }
                    ],
                },
                {
                    "text": "Running it in the workspace.",
                    "tool_calls": [
                        {"name": "execute", "arguments": {"command": "python hello.py"}}
                    ],
                },
                {
                    "text": "That was a real agent session: the workspace, the file and the "
                    "output above are real, and the files are in the Jupyter file browser "
                    "under `workspaces/`. Only my words were scripted.\n\n" + GUIDANCE,
                    "chunk_size": 24,
                },
            ],
        }
    ]
    return script


class DemoProvider:
    """Owns the demo's loopback server: started on the first model call, stopped by
    :meth:`close`. ``make_model`` is the ``demo`` entry of ``ProviderCatalog.factories``."""

    def __init__(self, template_id: str | None = None) -> None:
        self.template_id = template_id
        self._server: FakeProviderServer | None = None
        self._lock = threading.Lock()

    @property
    def server(self) -> FakeProviderServer:
        """The running loopback server (started on first use)."""
        with self._lock:
            if self._server is None:
                # Imported on first use: loading the extension need not load the fake server.
                from .fake import FakeProviderServer

                self._server = FakeProviderServer(demo_script(self.template_id)).start()
            return self._server

    def make_model(
        self, config: ChatModelConfig, resolved: ResolvedProvider, purpose: str
    ) -> Model:
        """The demo model for ``config``. Titles come from an in-process echo of the message
        (the first words make a fine title and cost nothing)."""
        if purpose == "title":
            return ScriptedModel({"default": {"echo": True}})
        from .anthropic import make_model

        local = dataclasses.replace(resolved, base_url=self.server.url, api_key=DEMO_API_KEY)
        return make_model(config, local, purpose)

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.stop()
                self._server = None
