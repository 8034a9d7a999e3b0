"""Builds on real kernels: a start makes the folder and one kernel per agent (listed by the
server), writes the template's files through the agent and runs ``init``; a stop shuts the
kernels down; a delete removes the folder. Build logs over REST and the follow WebSocket,
external kernels attached, and the workspace tools' reuse and restart flows
(docs/workspaces.md#create_workspace)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.workspaces.agents import AgentUnavailable
from tests.workspaces.helpers import (
    BOB,
    coderchat_config,
    jp_server_config,
    run_tools,
    template_dir,
    template_id,
    wait_build,
    wait_chat,
    write_template,
)
from tests.workspaces.test_tools import _Bob, payload

__all__ = ["coderchat_config", "jp_server_config", "template_dir"]

BUILD_TIMEOUT = 120


async def kernel_ids(jp_fetch: Any) -> set[str]:
    response = await jp_fetch("api", "kernels")
    return {k["id"] for k in json.loads(response.body)}


async def build(api: Any, workspace_id: str, transition: str, **body: Any) -> dict[str, Any]:
    await api.ok(
        "POST",
        f"workspaces/{workspace_id}/builds",
        {"transition": transition, **body},
        headers=BOB,
    )
    return await wait_build(api, workspace_id, headers=BOB, timeout=BUILD_TIMEOUT)


async def create(api: Any, body: dict[str, Any]) -> dict[str, Any]:
    workspace = await api.ok("POST", "workspaces", body, headers=BOB)
    return await wait_build(api, workspace["id"], headers=BOB, timeout=BUILD_TIMEOUT)


async def logs(api: Any, workspace: dict[str, Any]) -> list[str]:
    job_id = workspace["latest_build"]["job"]["id"]
    return [e["output"] for e in await api.ok("GET", f"jobs/{job_id}/logs", headers=BOB)]


async def test_a_blank_workspace_runs_a_listed_kernel_and_stop_start_delete_work(
    api: Any, jp_fetch: Any, jp_root_dir: Path, app: Any
) -> None:
    workspace = await create(api, {"template_id": template_id("python"), "name": "blank"})
    assert workspace["status"] == "running", workspace["latest_build"]["job"]
    assert workspace["directory"] == "workspaces/blank"
    [agent] = workspace["latest_build"]["agents"]
    assert (agent["status"], agent["lifecycle_state"]) == ("connected", "ready")
    assert agent["first_connected_at"]
    first_kernel = agent["kernel_id"]
    assert first_kernel in await kernel_ids(jp_fetch)
    folder = await jp_fetch("api", "contents", "workspaces", "blank")
    assert json.loads(folder.body)["type"] == "directory"
    assert f"Agent main connected (kernel {first_kernel})." in await logs(api, workspace)

    stopped = await build(api, workspace["id"], "stop")
    assert stopped["status"] == "stopped"
    assert stopped["latest_build"]["agents"] == []
    assert first_kernel not in await kernel_ids(jp_fetch)
    await assert_agents_off(app, workspace["id"])

    started = await build(api, workspace["id"], "start")
    assert started["status"] == "running"
    assert started["latest_build"]["build_number"] == 3
    [again] = started["latest_build"]["agents"]
    assert again["id"] != agent["id"]
    assert again["kernel_id"] in await kernel_ids(jp_fetch)

    deleted = await build(api, workspace["id"], "delete")
    assert (deleted["status"], deleted["deleted"]) == ("deleted", True)
    assert again["kernel_id"] not in await kernel_ids(jp_fetch)
    assert not (jp_root_dir / "workspaces" / "blank").exists()
    assert await api.ok("GET", "workspaces", headers=BOB) == []


async def assert_agents_off(app: Any, workspace_id: str) -> None:
    """The workspace's agents are recorded as stopped."""
    async with app.services.db.read() as conn:
        rows = await conn.fetchall(
            "SELECT status, lifecycle_state, kernel_id FROM workspace_agents"
            " WHERE workspace_id = ?",
            (workspace_id,),
        )
    assert [tuple(r) for r in rows] == [("disconnected", "off", None)]


async def test_data_analysis_files_are_written_and_init_runs_with_the_parameters(
    api: Any, jp_root_dir: Path, app: Any
) -> None:
    workspace = await create(
        api,
        {
            "template_id": template_id("data-analysis"),
            "preset_id": "bare",
            "parameters": {"plot_style": "bmh", "max_rows": 5},
        },
    )
    assert workspace["status"] == "running", await logs(api, workspace)
    build_ = workspace["latest_build"]
    assert build_["parameters"] == {
        "packages": "",
        "dataset_url": "",
        "plot_style": "bmh",
        "max_rows": "5",
    }
    [agent] = build_["agents"]
    assert agent["lifecycle_state"] == "ready"
    folder = jp_root_dir / workspace["directory"]
    assert (folder / "AGENTS.md").read_text().startswith("# Data analysis workspace")
    assert (folder / "data" / "sample.csv").read_text().startswith("month,product")
    assert (folder / ".agents" / "skills" / "plotting" / "SKILL.md").exists()
    assert (folder / "output").is_dir()
    lines = await logs(api, workspace)
    assert "Packages ready: none requested" in lines
    assert "Matplotlib style: bmh" in lines
    assert "  AGENTS.md" in lines
    # The parameters are in the kernel's environment for every command.
    result = await app.services.workspaces.agents.call(
        agent["id"], "execute", {"command": "echo $PLOT_STYLE $MAX_ROWS"}
    )
    assert result["output"].strip() == "bmh 5"
    await build(api, workspace["id"], "delete")


async def test_a_failing_init_leaves_a_usable_workspace_with_start_error(
    api: Any, scripted: Any
) -> None:
    chat_id, [part] = await run_tools(
        api,
        scripted,
        [("create_workspace", {"template_id": template_id("broken-init")})],
        headers=BOB,
        timeout=BUILD_TIMEOUT,
    )
    result = payload(part)
    assert result["created"] is True
    assert result["startup_scripts"] == "startup_scripts_failed"
    assert result["lifecycle_state"] == "start_error"
    assert "agent_status" not in result
    chat = await api.ok("GET", f"chats/{chat_id}", headers=BOB)
    workspace = await api.ok("GET", f"workspaces/{chat['workspace_id']}", headers=BOB)
    assert workspace["status"] == "running"
    lines = await logs(api, workspace)
    assert "about to fail" in lines
    assert "init exited with code 3." in lines
    await build(api, workspace["id"], "delete")


async def test_create_workspace_twice_in_one_chat_reuses_the_first(
    api: Any, scripted: Any, jp_ws_fetch: Any
) -> None:
    watch = await jp_ws_fetch("api", "coderchat", "chats", "watch", headers=BOB)
    chat = await api.ok("POST", "chats", {"content": "hi"}, headers=BOB)
    await wait_chat(api, chat["id"], headers=BOB)
    stream = await jp_ws_fetch("api", "coderchat", "chats", chat["id"], "stream", headers=BOB)
    try:
        _, [first, second] = await run_tools(
            api,
            scripted,
            [
                ("create_workspace", {"template_id": template_id("python")}),
                ("create_workspace", {"template_id": template_id("data-analysis")}),
            ],
            chat_id=chat["id"],
            headers=BOB,
            timeout=BUILD_TIMEOUT,
        )
        created, reused = payload(first), payload(second)
        bound = await api.ok("GET", f"chats/{chat['id']}", headers=BOB)
        workspace = await api.ok("GET", f"workspaces/{bound['workspace_id']}", headers=BOB)
        assert created == {
            "created": True,
            "workspace_name": workspace["name"],
            "build_id": workspace["latest_build"]["id"],
        }
        assert workspace["name"].startswith("python-")
        assert reused == {
            "created": False,
            "status": "already_exists",
            "message": "workspace is already running and recently connected",
            "workspace_name": workspace["name"],
            "build_id": workspace["latest_build"]["id"],
        }
        assert len(await api.ok("GET", "workspaces", headers=BOB)) == 1
        [agent] = workspace["latest_build"]["agents"]
        assert bound["agent_id"] == agent["id"]
        assert bound["build_id"] == workspace["latest_build"]["id"]

        # The binding was announced at once, and the build logs streamed to the tool card.
        bindings = await watch_until(watch, lambda e: e["chat"].get("workspace_id"))
        assert bindings["kind"] == "status_change"
        deltas = await stream_until(stream, "Agent main connected")
        assert "==> Starting agents" in deltas

        _, [stopped] = await run_tools(
            api, scripted, [("stop_workspace", {})], chat_id=chat["id"], headers=BOB
        )
        assert payload(stopped)["stopped"] is True
    finally:
        watch.close()
        stream.close()
    await build(api, workspace["id"], "delete")


async def watch_until(watch: Any, predicate: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        event = json.loads(await asyncio.wait_for(watch.read_message(), 10))
        if predicate(event):
            return dict(event)
        assert time.monotonic() < deadline


async def stream_until(stream: Any, text: str) -> str:
    """The ``result_delta`` text a chat stream carried until it includes ``text``."""
    seen = ""
    deadline = time.monotonic() + 10
    while text not in seen:
        assert time.monotonic() < deadline, seen
        for event in json.loads(await asyncio.wait_for(stream.read_message(), 10)):
            part = (event.get("message_part") or {}).get("part") or {}
            seen += part.get("result_delta") or ""
    return seen


async def test_start_workspace_asks_for_a_new_required_parameter_then_starts(
    api: Any, scripted: Any, template_dir: Path, app: Any
) -> None:
    folder = write_template(template_dir / "evolving", 'name = "evolving"\n')
    await app.services.workspaces.catalog.refresh(force=True)
    chat_id, [created] = await run_tools(
        api,
        scripted,
        [("create_workspace", {"template_id": template_id("evolving")})],
        headers=BOB,
        timeout=BUILD_TIMEOUT,
    )
    assert payload(created)["created"] is True
    chat = await api.ok("GET", f"chats/{chat_id}", headers=BOB)
    await build(api, chat["workspace_id"], "stop")

    (folder / "template.toml").write_text(
        'name = "evolving"\n[[parameters]]\nname = "project"\nrequired = true\n'
    )
    await app.services.workspaces.catalog.refresh(force=True)
    _, [refused] = await run_tools(
        api, scripted, [("start_workspace", {})], chat_id=chat_id, headers=BOB
    )
    result = payload(refused)
    assert result["template_id"] == template_id("evolving")
    assert result["validations"] == [
        {"field": "project", "detail": "required parameter is missing"}
    ]
    assert result["error"] == (
        "start workspace: invalid parameters: project: required parameter is missing"
    )
    assert result["message"] == (
        "The template's active version needs parameter values this workspace does not have. "
        "Call read_template with template_id to see the parameters, then call start_workspace "
        "again with parameters. Ask the user if you are unsure which values to use."
    )

    _, [started] = await run_tools(
        api,
        scripted,
        [("start_workspace", {"parameters": {"project": "apollo"}})],
        chat_id=chat_id,
        headers=BOB,
        timeout=BUILD_TIMEOUT,
    )
    assert payload(started)["started"] is True
    workspace = await api.ok("GET", f"workspaces/{chat['workspace_id']}", headers=BOB)
    assert workspace["latest_build"]["parameters"] == {"project": "apollo"}
    template = await api.ok("GET", f"templates/{template_id('evolving')}", headers=BOB)
    assert workspace["latest_build"]["template_version_id"] == template["active_version_id"]
    _, [again] = await run_tools(
        api, scripted, [("start_workspace", {})], chat_id=chat_id, headers=BOB
    )
    assert payload(again)["build_id"] == workspace["latest_build"]["id"]
    await build(api, workspace["id"], "delete")


async def test_build_logs_stream_live_over_the_follow_websocket(api: Any, jp_ws_fetch: Any) -> None:
    workspace = await api.ok(
        "POST",
        "workspaces",
        {"template_id": template_id("data-analysis"), "preset_id": "bare"},
        headers=BOB,
    )
    job_id = workspace["latest_build"]["job"]["id"]
    socket = await jp_ws_fetch(
        "api", "coderchat", "jobs", job_id, "logs", params={"follow": "1"}, headers=BOB
    )
    frames = []
    while (message := await asyncio.wait_for(socket.read_message(), BUILD_TIMEOUT)) is not None:
        frames.append(json.loads(message))
    assert socket.close_code == 1000
    ids = [f["id"] for f in frames]
    assert ids == sorted(set(ids))
    rest = await api.ok("GET", f"jobs/{job_id}/logs", headers=BOB)
    assert frames == rest
    assert "Packages ready: none requested" in [f["output"] for f in frames]
    after = await api.ok("GET", f"jobs/{job_id}/logs", params={"after": ids[2]}, headers=BOB)
    assert after == rest[3:]
    await wait_build(api, workspace["id"], headers=BOB)
    await build(api, workspace["id"], "delete")


async def test_an_attached_external_kernel_runs_tools_and_is_left_running_on_stop(
    api: Any, jp_fetch: Any, app: Any
) -> None:
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({}))
    kernel_id = json.loads(response.body)["id"]
    try:
        workspace = await create(api, {"template_id": template_id("offline")})
        chat = await api.ok(
            "POST", "chats", {"content": "hi", "workspace_id": workspace["id"]}, headers=BOB
        )
        await wait_chat(api, chat["id"], headers=BOB)
        agent = await api.ok(
            "POST",
            f"workspaces/{workspace['id']}/attach",
            {"kernel_id": kernel_id},
            headers=BOB,
        )
        assert (agent["status"], agent["kernel_id"], agent["external"]) == (
            "connected",
            kernel_id,
            True,
        )
        handle = await app.services.workspaces.agent_for_chat(
            await app.services.chats.get_chat(_Bob(), chat["id"])
        )
        result = await handle.call("execute", {"command": "echo attached"})
        assert result["output"].strip() == "attached"
        await build(api, workspace["id"], "stop")
        assert kernel_id in await kernel_ids(jp_fetch)
        await build(api, workspace["id"], "delete")
    finally:
        await jp_fetch("api", "kernels", kernel_id, method="DELETE")


async def test_a_dead_kernel_makes_the_agent_disconnected_until_start_workspace(
    api: Any, scripted: Any, jp_fetch: Any, app: Any
) -> None:
    chat_id, [created] = await run_tools(
        api,
        scripted,
        [("create_workspace", {"template_id": template_id("python")})],
        headers=BOB,
        timeout=BUILD_TIMEOUT,
    )
    assert payload(created)["created"] is True
    chat = await api.ok("GET", f"chats/{chat_id}", headers=BOB)
    workspace = await api.ok("GET", f"workspaces/{chat['workspace_id']}", headers=BOB)
    [agent] = workspace["latest_build"]["agents"]
    await jp_fetch("api", "kernels", agent["kernel_id"], method="DELETE")
    model = await app.services.chats.get_chat(_Bob(), chat_id)
    deadline = time.monotonic() + 30
    while app.services.workspaces.agents.status(agent["id"]) != "disconnected":
        assert time.monotonic() < deadline, "the agent never became disconnected"
        await asyncio.sleep(0.05)
    with pytest.raises(AgentUnavailable) as refused:
        await app.services.workspaces.agent_for_chat(model)
    assert str(refused.value) == (
        "workspace agent is disconnected and cannot execute tools. The workspace may need to "
        "be restarted with the start_workspace tool"
    )
    recorded = await api.ok("GET", f"workspaces/{workspace['id']}", headers=BOB)
    assert recorded["latest_build"]["agents"][0]["status"] == "disconnected"

    _, [started] = await run_tools(
        api, scripted, [("start_workspace", {})], chat_id=chat_id, headers=BOB, timeout=120
    )
    result = payload(started)
    assert result["started"] is True
    assert "agent_status" not in result
    handle = await app.services.workspaces.agent_for_chat(model)
    assert (await handle.call("execute", {"command": "echo back"}))["output"].strip() == "back"
    await build(api, workspace["id"], "delete")


async def test_create_workspace_waits_for_the_chats_workspace_that_is_still_building(
    api: Any, scripted: Any, jp_ws_fetch: Any, jp_fetch: Any, template_dir: Path, app: Any
) -> None:
    # init holds the build until the test creates the file "go" in the workspace.
    write_template(
        template_dir / "gated",
        'name = "gated"\ninit = "for i in $(seq 600); do [ -e go ] && break; sleep 0.1; done"\n',
    )
    await app.services.workspaces.catalog.refresh(force=True)
    workspace = await api.ok(
        "POST", "workspaces", {"template_id": template_id("gated")}, headers=BOB
    )
    chat = await api.ok(
        "POST", "chats", {"content": "hi", "workspace_id": workspace["id"]}, headers=BOB
    )
    await wait_chat(api, chat["id"], headers=BOB)
    stream = await jp_ws_fetch("api", "coderchat", "chats", chat["id"], "stream", headers=BOB)
    try:
        turn = asyncio.ensure_future(
            run_tools(
                api,
                scripted,
                [("create_workspace", {"template_id": template_id("data-analysis")})],
                chat_id=chat["id"],
                headers=BOB,
                timeout=BUILD_TIMEOUT,
            )
        )
        # The tool is following the build's logs: only now may the build finish.
        await stream_until(stream, "==> ")
        await jp_fetch(
            "api",
            "contents",
            *workspace["directory"].split("/"),
            "go",
            method="PUT",
            body=json.dumps({"type": "file", "format": "text", "content": ""}),
        )
        _, [part] = await turn
    finally:
        stream.close()
    assert payload(part) == {
        "created": False,
        "status": "already_exists",
        "message": "workspace build completed",
        "workspace_name": workspace["name"],
        "build_id": workspace["latest_build"]["id"],
    }
    assert len(await api.ok("GET", "workspaces", headers=BOB)) == 1
    await build(api, workspace["id"], "delete")


async def test_closing_the_provisioner_cancels_a_running_build_and_stops_its_kernels(
    api: Any, jp_fetch: Any, template_dir: Path, app: Any
) -> None:
    write_template(
        template_dir / "gated",
        'name = "gated"\ninit = "for i in $(seq 600); do [ -e go ] && break; sleep 0.1; done"\n',
    )
    await app.services.workspaces.catalog.refresh(force=True)
    workspace = await api.ok(
        "POST", "workspaces", {"template_id": template_id("gated")}, headers=BOB
    )
    deadline = time.monotonic() + BUILD_TIMEOUT
    while True:
        current = await api.ok("GET", f"workspaces/{workspace['id']}", headers=BOB)
        agents = current["latest_build"]["agents"]
        if agents and agents[0]["lifecycle_state"] == "starting":
            break
        assert time.monotonic() < deadline, current
        await asyncio.sleep(0.05)
    kernel_id = agents[0]["kernel_id"]
    assert kernel_id in await kernel_ids(jp_fetch)

    await app.services.workspaces.provisioner.close()
    done = await api.ok("GET", f"workspaces/{workspace['id']}", headers=BOB)
    job = done["latest_build"]["job"]
    assert (done["status"], job["status"], job["error"]) == (
        "canceled",
        "canceled",
        "build was canceled",
    )
    assert done["latest_build"]["agents"][0]["status"] == "disconnected"
    assert kernel_id not in await kernel_ids(jp_fetch)


async def test_after_a_restart_active_jobs_fail_and_agents_are_disconnected(
    api: Any, app: Any
) -> None:
    workspace = await create(api, {"template_id": template_id("python")})
    job_id = workspace["latest_build"]["job"]["id"]
    async with app.services.db.tx() as conn:
        await conn.execute("UPDATE provisioner_jobs SET status = 'running' WHERE id = ?", (job_id,))
    await app.services.workspaces.provisioner.recover()
    recovered = await api.ok("GET", f"workspaces/{workspace['id']}", headers=BOB)
    job = recovered["latest_build"]["job"]
    assert (job["status"], job["error"]) == ("failed", "the server stopped during the build")
    assert recovered["latest_build"]["agents"][0]["status"] == "disconnected"
    await build(api, workspace["id"], "delete")


async def test_a_chat_creates_a_workspace_then_works_in_it_with_the_agent_tools(
    api: Any, scripted: Any, jp_root_dir: Path
) -> None:
    chat_id, [created] = await run_tools(
        api,
        scripted,
        [("create_workspace", {"template_id": template_id("python"), "name": "work"})],
        headers=BOB,
        timeout=BUILD_TIMEOUT,
    )
    assert payload(created)["created"] is True
    _, [written] = await run_tools(
        api,
        scripted,
        [("write_file", {"path": "notes/hello.txt", "content": "hello from the agent\n"})],
        chat_id=chat_id,
        headers=BOB,
    )
    _, [ran] = await run_tools(
        api,
        scripted,
        [("execute", {"command": "pwd; cat notes/hello.txt"})],
        chat_id=chat_id,
        headers=BOB,
    )
    assert payload(written) == {"ok": True}
    output = payload(ran)["output"].splitlines()
    assert output == [str((jp_root_dir / "workspaces" / "work").resolve()), "hello from the agent"]
    assert (jp_root_dir / "workspaces" / "work" / "notes" / "hello.txt").exists()
    chat = await api.ok("GET", f"chats/{chat_id}", headers=BOB)
    await build(api, chat["workspace_id"], "delete")
