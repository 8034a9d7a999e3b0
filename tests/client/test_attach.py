"""``attach_kernel``: a running kernel of the server becomes the external agent of a
workspace, and the chat bound to it runs its tools there (``run_tool``), with the async client
and with the blocking client's :meth:`~coderchat_ext.client.ChatClient.submit`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.client import ApiError, AsyncChatClient, ChatClient
from coderchat_ext.models import Workspace
from tests.client.conftest import DEADLINE, wait_for_status
from tests.workspaces.helpers import template_id, write_template

OFFLINE = template_id("offline")
BUILD_TIMEOUT = 120.0


@pytest.fixture
def coderchat_config(coderchat_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    folder = tmp_path / "templates"
    write_template(
        folder / "offline",
        """
        name = "offline"
        description = "An external agent: the user attaches a kernel."
        external = true
        """,
    )
    return {**coderchat_config, "template_paths": [str(folder)]}


@pytest.fixture
def kernel_id(jp_fetch: Any, jp_asyncio_loop: Any, app: Any) -> Iterator[str]:
    """A python3 kernel the server started (as JupyterLab starts a notebook's)."""
    run = jp_asyncio_loop.run_until_complete
    response = run(jp_fetch("api", "kernels", method="POST", body=json.dumps({})))
    kid = str(json.loads(response.body)["id"])
    yield kid
    run(jp_fetch("api", "kernels", kid, method="DELETE"))


async def external_workspace(client: AsyncChatClient) -> Workspace:
    created = await client.create_workspace(OFFLINE)
    workspace = await client.wait_for_build(created.id, timeout=BUILD_TIMEOUT)
    [agent] = workspace.latest_build.agents
    assert (workspace.status, agent.external, agent.status) == ("running", True, "disconnected")
    return workspace


async def test_an_attached_kernel_is_the_agent_and_runs_the_chats_tools(
    client: AsyncChatClient, kernel_id: str
) -> None:
    workspace = await external_workspace(client)

    agent = await client.attach_kernel(workspace.id, kernel_id)

    assert (agent.status, agent.kernel_id, agent.external) == ("connected", kernel_id, True)
    [listed] = (await client.get_workspace(workspace.id)).latest_build.agents
    assert (listed.kernel_id, listed.status) == (kernel_id, "connected")
    chat = await client.create_chat("hi", workspace_id=workspace.id)
    await wait_for_status(client, chat.id, "waiting")
    ran = await client.run_tool(chat.id, "execute", {"command": "echo attached"})
    assert (ran.tool_name, ran.is_error, ran.args["command"]) == ("execute", False, "echo attached")
    assert ran.result["output"].strip() == "attached"


async def test_attach_refusals_are_api_errors(client: AsyncChatClient) -> None:
    workspace = await external_workspace(client)

    with pytest.raises(ApiError) as no_kernel:
        await client.attach_kernel(workspace.id, "no-such-kernel")
    assert (no_kernel.value.status, no_kernel.value.message) == (400, "Cannot attach the kernel.")
    with pytest.raises(ApiError) as no_agent:
        await client.attach_kernel(workspace.id, "no-such-kernel", agent="nobody")
    assert (no_agent.value.status, no_agent.value.message) == (400, "No such external agent.")
    assert [v.field for v in no_agent.value.validations] == ["agent"]


async def test_the_blocking_client_attaches_without_waiting_through_submit(
    client: AsyncChatClient, base_url: str, token: str, kernel_id: str
) -> None:
    workspace = await external_workspace(client)

    def attach_in_the_background() -> tuple[Any, str, str]:
        with ChatClient(base_url, token) as blocking:
            future = blocking.submit(blocking.aio.attach_kernel(workspace.id, kernel_id))
            agent = future.result(DEADLINE)
        return future, agent.status, str(agent.kernel_id)

    future, status, attached = await asyncio.wait_for(
        asyncio.to_thread(attach_in_the_background), DEADLINE * 2
    )
    assert isinstance(future, concurrent.futures.Future)
    assert (status, attached) == ("connected", kernel_id)
