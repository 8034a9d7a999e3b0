"""Fixtures: a real Jupyter server (pytest-jupyter) with coderchat_ext loaded, the scripted
model and the test tools, and a small JSON API helper."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture
def coderchat_config(tmp_path: Any) -> dict[str, Any]:
    """The ``CoderChatApp`` config of the test server; tests may override this fixture."""
    return {
        "db_path": str(tmp_path / "coderchat" / "coderchat.db"),
        "scripted_model": {},
        "test_tools": True,
        "model_configs": [
            {
                "provider": "scripted",
                "model": "scripted-1",
                "context_limit": 100_000,
                "model_config": {
                    "cost": {
                        "input_price_per_million_tokens": 3,
                        "output_price_per_million_tokens": 15,
                    }
                },
            }
        ],
        "acquire_interval": 0.05,
    }


@pytest.fixture
def jp_server_config(coderchat_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {
            # Terminals are not needed, and their TermSocket trips JupyterServerAuthWarning.
            "jpserver_extensions": {"coderchat_ext": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        },
        "CoderChatApp": coderchat_config,
    }


@pytest.fixture
def app(jp_serverapp: Any, jp_asyncio_loop: Any) -> Any:
    """The running ``CoderChatApp`` (pytest-jupyter does not run the server's async start
    hooks, so this runs them as ``ServerApp.start`` would)."""
    jp_asyncio_loop.run_until_complete(jp_serverapp._post_start())
    (instance,) = jp_serverapp.extension_manager.extension_apps["coderchat_ext"]
    return instance


@pytest.fixture
def published(app: Any) -> list[tuple[str, Any]]:
    """Every pubsub event, in order (the chat streams and watch feeds are built from these)."""
    events: list[tuple[str, Any]] = []
    original = app.services.pubsub.publish

    def record(channel: str, message: Any) -> None:
        events.append((channel, message))
        original(channel, message)

    app.services.pubsub.publish = record
    return events


@pytest.fixture
def scripted(app: Any) -> Any:
    """The scripted model every chat of the test server talks to."""
    return app.services.scripted


class Api:
    """Calls ``api/coderchat/...`` and returns ``(status, json_or_None)`` without raising."""

    def __init__(self, fetch: Callable[..., Awaitable[Any]]) -> None:
        self._fetch = fetch

    async def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"method": method, "params": params}
        if headers is not None:
            kwargs["headers"] = headers
        if raw is not None:
            kwargs["body"] = raw
        elif body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b""
        try:
            response = await self._fetch("api", "coderchat", *path.split("/"), **kwargs)
        except HTTPClientError as exc:
            if exc.response is None:
                raise
            response = exc.response
        text = response.body.decode() if response.body else ""
        return response.code, json.loads(text) if text else None

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, data = await self(method, path, body, **kw)
        assert 200 <= status < 300, (status, data)
        return data

    async def wait_status(
        self, chat_id: str, *statuses: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll the chat until its status is one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while True:
            chat = await self.ok("GET", f"chats/{chat_id}")
            if chat["status"] in statuses:
                return chat
            if time.monotonic() > deadline:
                raise AssertionError(f"chat stayed {chat['status']}, wanted {statuses}")
            await asyncio.sleep(0.02)

    async def messages(self, chat_id: str) -> list[dict[str, Any]]:
        page = await self.ok("GET", f"chats/{chat_id}/messages", params={"limit": 200})
        return list(reversed(page["messages"]))


@pytest.fixture
def api(jp_fetch: Any, app: Any) -> Api:
    return Api(jp_fetch)


@pytest.fixture
def kernel_agent(
    app: Any, jp_serverapp: Any, jp_asyncio_loop: Any, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """A real kernel agent (``python3``, in the server's root folder) bound to every chat of
    the test server (it stands in for the daemon's agent resolver, the workspace service),
    with the agent tools registered. Yields its ``AgentHandle``."""
    from coderchat_ext.tools.agent import agent_tools
    from coderchat_ext.workspaces.agents import AgentManager, FixedAgentResolver

    manager = AgentManager(jp_serverapp.kernel_manager, poll_interval=0.1)
    jp_asyncio_loop.run_until_complete(
        manager.start(KERNEL_AGENT_ID, kernel_name="python3", path="")
    )
    for tool in agent_tools():
        app.services.tools.register(tool)
    resolver = FixedAgentResolver(manager.handle(KERNEL_AGENT_ID))
    monkeypatch.setattr(app.services.daemon, "agents", resolver)
    yield manager.handle(KERNEL_AGENT_ID)
    monkeypatch.undo()
    jp_asyncio_loop.run_until_complete(manager.shutdown(KERNEL_AGENT_ID))
    jp_asyncio_loop.run_until_complete(manager.close())


KERNEL_AGENT_ID = "kernel-agent"
