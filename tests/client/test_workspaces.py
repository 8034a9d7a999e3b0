"""The client's template, workspace, build and build-log methods against a real server whose
builds start real kernels (the built-in ``python`` template and test templates)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.client import ApiError, AsyncChatClient, BuildTimeout, ChatClient
from coderchat_ext.models import ApiValidation, ProvisionerJobLog, Workspace
from tests.client.conftest import DEADLINE
from tests.workspaces.helpers import template_id, write_template

BUILD_TIMEOUT = 120.0
PYTHON = template_id("python")
CHATTY = template_id("chatty")
NEEDS_REGION = template_id("needs-region")


@pytest.fixture
def coderchat_config(coderchat_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    folder = tmp_path / "templates"
    write_template(
        folder / "chatty",
        """
        name = "chatty"
        description = "Its init writes three log lines."
        init = "echo one; echo two; echo three"
        """,
    )
    write_template(
        folder / "needs-region",
        """
        name = "needs-region"

        [[parameters]]
        name = "region"
        required = true
        options = ["eu", "us"]

        [[presets]]
        name = "europe"
        parameters = { region = "eu" }
        """,
    )
    return {**coderchat_config, "template_paths": [str(folder)]}


async def built(client: AsyncChatClient, workspace: Workspace) -> Workspace:
    done = await client.wait_for_build(workspace.id, timeout=BUILD_TIMEOUT)
    assert done.latest_build.job.status == "succeeded", done.latest_build.job
    return done


async def test_templates_are_listed_and_read_with_parameters_presets_and_agents(
    client: AsyncChatClient,
) -> None:
    templates = {t.name: t for t in await client.list_templates()}
    assert {"python", "data-analysis", "chatty", "needs-region"} <= set(templates)
    assert templates["python"].id == PYTHON

    detail = await client.get_template(NEEDS_REGION)
    [region] = detail.parameters
    assert (region.name, region.required) == ("region", True)
    assert [o.value for o in region.options or []] == ["eu", "us"]
    assert [(p.name, p.parameters) for p in detail.presets] == [("europe", {"region": "eu"})]
    assert [(a.name, a.kernel) for a in detail.agents] == [("main", "python3")]

    with pytest.raises(ApiError) as missing:
        await client.get_template(str(uuid.uuid4()))
    assert (missing.value.status, missing.value.message) == (404, "Template not found.")


async def test_a_workspace_is_created_built_on_a_kernel_listed_and_read(
    client: AsyncChatClient, jp_fetch: Any
) -> None:
    created = await client.create_workspace(PYTHON, name="scratch")
    assert (created.name, created.template_name, created.status) == ("scratch", "python", "pending")
    assert created.latest_build.build_number == 1

    workspace = await built(client, created)

    assert workspace.status == "running"
    [agent] = workspace.latest_build.agents
    assert (agent.name, agent.status, agent.lifecycle_state) == ("main", "connected", "ready")
    kernels = await jp_fetch("api", "kernels")
    assert agent.kernel_id is not None
    assert agent.kernel_id.encode() in kernels.body
    assert [w.id for w in await client.list_workspaces()] == [created.id]
    assert (await client.get_workspace(created.id)).latest_build.agents == [agent]
    await client.create_build(created.id, "delete")
    await client.wait_for_build(created.id, timeout=BUILD_TIMEOUT)


async def test_refused_workspaces_raise_api_errors_with_validations(
    client: AsyncChatClient,
) -> None:
    with pytest.raises(ApiError) as invalid:
        await client.create_workspace(NEEDS_REGION, parameters={"region": "mars", "colour": 1})
    assert (invalid.value.status, invalid.value.message) == (400, "Invalid parameters.")
    assert {v.field for v in invalid.value.validations} == {"region", "colour"}
    assert all(isinstance(v, ApiValidation) and v.detail for v in invalid.value.validations)

    with pytest.raises(ApiError) as bad_name:
        await client.create_workspace(NEEDS_REGION, name="not a name", preset_id="europe")
    assert bad_name.value.status == 400
    assert [v.field for v in bad_name.value.validations] == ["name"]

    with pytest.raises(ApiError) as unknown:
        await client.get_workspace(str(uuid.uuid4()))
    assert (unknown.value.status, unknown.value.message) == (404, "Workspace not found.")


async def test_builds_stop_and_delete_a_workspace_and_refuse_a_second_stop(
    client: AsyncChatClient,
) -> None:
    workspace = await built(client, await client.create_workspace(PYTHON))

    stop = await client.create_build(workspace.id, "stop")
    assert (stop.build_number, stop.transition, stop.workspace_id) == (2, "stop", workspace.id)
    stopped = await client.wait_for_build(workspace.id, timeout=BUILD_TIMEOUT)
    assert (stopped.status, stopped.latest_build.agents) == ("stopped", [])
    with pytest.raises(ApiError) as again:
        await client.create_build(workspace.id, "stop")
    assert again.value.status == 409

    await client.create_build(workspace.id, "delete")
    deleted = await client.wait_for_build(workspace.id, timeout=BUILD_TIMEOUT)
    assert (deleted.status, deleted.deleted) == ("deleted", True)


async def test_wait_for_build_gives_up_after_its_timeout(client: AsyncChatClient) -> None:
    created = await client.create_workspace(PYTHON)

    with pytest.raises(BuildTimeout) as gave_up:
        await client.wait_for_build(created.id, timeout=0)

    assert gave_up.value.workspace_id == created.id
    await built(client, created)
    await client.create_build(created.id, "delete")
    await client.wait_for_build(created.id, timeout=BUILD_TIMEOUT)


async def test_build_logs_are_followed_live_until_the_job_ends_and_read_back(
    client: AsyncChatClient,
) -> None:
    created = await client.create_workspace(CHATTY)
    job_id = created.latest_build.job.id

    async def follow() -> list[ProvisionerJobLog]:
        return [entry async for entry in client.follow_job_logs(job_id)]

    # The iteration ends on its own once the job has ended (the server closes with 1000).
    followed = await asyncio.wait_for(follow(), BUILD_TIMEOUT)

    outputs = [entry.output for entry in followed]
    assert [o for o in outputs if o in ("one", "two", "three")] == ["one", "two", "three"]
    assert (await client.get_workspace(created.id)).latest_build.job.status == "succeeded"
    assert await client.get_job_logs(job_id) == followed
    assert await client.get_job_logs(job_id, after=followed[1].id) == followed[2:]
    replayed = [e async for e in client.follow_job_logs(job_id, after=followed[-2].id)]
    assert replayed == followed[-1:]

    missing = str(uuid.uuid4())
    with pytest.raises(ApiError) as rest:
        await client.get_job_logs(missing)
    assert (rest.value.status, rest.value.message) == (404, "Provisioner job not found.")
    with pytest.raises(ApiError) as socket:
        async for _ in client.follow_job_logs(missing):
            pass
    assert socket.value.status == 404
    await client.create_build(created.id, "delete")
    await client.wait_for_build(created.id, timeout=BUILD_TIMEOUT)


async def test_the_blocking_client_builds_and_follows_logs_from_a_thread(
    base_url: str, token: str
) -> None:
    def build_with_the_blocking_client() -> tuple[Workspace, list[str], list[str]]:
        with ChatClient(base_url, token) as blocking:
            created = blocking.create_workspace(CHATTY, name="from-a-thread")
            followed = [e.output for e in blocking.follow_job_logs(created.latest_build.job.id)]
            workspace = blocking.wait_for_build(created.id, timeout=BUILD_TIMEOUT)
            read = [e.output for e in blocking.get_job_logs(workspace.latest_build.job.id)]
            blocking.create_build(created.id, "delete")
            blocking.wait_for_build(created.id, timeout=BUILD_TIMEOUT)
        return workspace, followed, read

    workspace, followed, read = await asyncio.wait_for(
        asyncio.to_thread(build_with_the_blocking_client), BUILD_TIMEOUT + DEADLINE
    )
    assert (workspace.name, workspace.status) == ("from-a-thread", "running")
    assert followed == read
    assert "three" in followed
