"""The workspace tools through a chat (docs/workspaces.md#tools): their results, their exact
error strings, the allowlist and organization rules, the quota payload, external templates, and
agent selection and resolution for the file and process tools
(docs/workspaces.md#agent-selection)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from coderchat_ext.models import WorkspaceAgent
from coderchat_ext.workspaces.agents import AgentUnavailable
from coderchat_ext.workspaces.service import select_agent
from tests.workspaces.helpers import (
    ALICE,
    BOB,
    BUDGET,
    coderchat_config,
    jp_server_config,
    run_tools,
    template_dir,
    template_id,
    wait_build,
    wait_chat,
)

__all__ = ["coderchat_config", "jp_server_config", "template_dir"]

PYTHON = template_id("python")


def text_error(part: dict[str, Any]) -> str:
    assert part["is_error"] is True, part
    return str(part["result"])


def payload(part: dict[str, Any]) -> dict[str, Any]:
    assert not part.get("is_error"), part
    result = part["result"]
    return json.loads(result) if isinstance(result, str) else result


# --- list_templates and read_template ---------------------------------------------------------


async def test_list_templates_shows_the_chats_organization_filtered_and_paged(
    api: Any, scripted: Any
) -> None:
    _, [everything, searched, beyond] = await run_tools(
        api,
        scripted,
        [
            ("list_templates", {}),
            ("list_templates", {"query": "REGION"}),
            ("list_templates", {"page": 2}),
        ],
        headers=ALICE,
    )
    listed = payload(everything)
    names = [t["name"] for t in listed["templates"]]
    assert set(names) == {
        "python",
        "data-analysis",
        "needs-region",
        "offline",
        "costly",
        "broken-init",
    }
    assert (listed["count"], listed["page"], listed["total_pages"], listed["total_count"]) == (
        6,
        1,
        1,
        6,
    )
    offline = next(t for t in listed["templates"] if t["name"] == "offline")
    assert offline["external"] is True
    assert [t["name"] for t in payload(searched)["templates"]] == ["needs-region"]
    assert payload(beyond)["templates"] == []


async def test_list_templates_and_read_template_follow_the_allowlist(
    api: Any, scripted: Any
) -> None:
    await api.ok("PUT", "config/template-allowlist", {"template_ids": [PYTHON]})
    _, [listed, hidden, shown] = await run_tools(
        api,
        scripted,
        [
            ("list_templates", {}),
            ("read_template", {"template_id": template_id("data-analysis")}),
            ("read_template", {"template_id": PYTHON}),
        ],
        headers=ALICE,
    )
    assert [t["name"] for t in payload(listed)["templates"]] == ["python"]
    assert text_error(hidden) == "template not found"
    assert payload(shown)["template"]["name"] == "python"


async def test_read_template_gives_parameters_and_presets(api: Any, scripted: Any) -> None:
    _, [part] = await run_tools(
        api,
        scripted,
        [("read_template", {"template_id": template_id("needs-region")})],
        headers=ALICE,
    )
    result = payload(part)
    assert result["template"] == {
        "id": template_id("needs-region"),
        "name": "needs-region",
        "active_version_id": result["template"]["active_version_id"],
        "display_name": "Needs a region",
        "description": "A template with required, ranged and immutable parameters.",
    }
    assert result["parameters"] == [
        {
            "name": "region",
            "type": "string",
            "required": True,
            "mutable": True,
            "options": [{"name": "eu", "value": "eu"}, {"name": "us", "value": "us"}],
        },
        {
            "name": "cpus",
            "type": "number",
            "required": False,
            "default": "2",
            "mutable": True,
            "validation_min": 1.0,
            "validation_max": 8.0,
        },
        {"name": "image", "type": "string", "required": False, "default": "base", "mutable": False},
    ]
    [preset] = result["presets"]
    assert (preset["name"], preset["parameters"]) == ("europe", {"region": "eu", "cpus": "4"})


@pytest.mark.parametrize(
    "template",
    [
        pytest.param(str(uuid.uuid4()), id="unknown"),
        pytest.param("not-a-uuid", id="not-a-uuid"),
        pytest.param(template_id("lab", "research"), id="other-organization"),
    ],
)
async def test_read_template_says_template_not_found(
    api: Any, scripted: Any, template: str
) -> None:
    _, [part] = await run_tools(
        api, scripted, [("read_template", {"template_id": template})], headers=ALICE
    )
    assert text_error(part) == "template not found"


# --- create_workspace refusals ----------------------------------------------------------------

CREATE_ERRORS = [
    pytest.param({}, "template_id is required; use list_templates to find one", id="missing"),
    pytest.param(
        {"template_id": "python"},
        "invalid template_id: 'python' is not a UUID",
        id="not-a-uuid",
    ),
    pytest.param(
        {"template_id": str(uuid.uuid4())},
        "template not available for chat workspaces; use list_templates to find allowed templates",
        id="unknown",
    ),
    pytest.param(
        {"template_id": template_id("offline")},
        "template offline uses an external agent, so a chat cannot create a workspace from it: "
        "pick another template with list_templates, or ask the user to create the workspace "
        "themselves and attach a kernel to it (then bind it to this chat)",
        id="external",
    ),
    pytest.param(
        {"template_id": template_id("needs-region"), "preset_id": "asia"},
        "invalid preset_id: no preset 'asia' in this template; presets: ",
        id="preset",
    ),
    pytest.param(
        {"template_id": PYTHON, "name": "Not OK!"},
        'invalid workspace name "Not OK!": use 1-32 letters, digits and inner hyphens',
        id="name",
    ),
]


@pytest.mark.parametrize(("args", "expected"), CREATE_ERRORS)
async def test_create_workspace_refuses_with_the_references_text_errors(
    api: Any, scripted: Any, args: dict[str, Any], expected: str, app: Any
) -> None:
    chat_id, [part] = await run_tools(api, scripted, [("create_workspace", args)], headers=ALICE)
    assert text_error(part).startswith(expected)
    chat = await api.ok("GET", f"chats/{chat_id}", headers=ALICE)
    assert "workspace_id" not in chat
    async with app.services.db.read() as conn:
        assert await conn.fetchval("SELECT COUNT(*) FROM workspaces") == 0


async def test_create_workspace_refuses_a_template_outside_the_allowlist_and_organization(
    api: Any, scripted: Any
) -> None:
    research = await api.ok(
        "POST", "chats", {"content": "hi", "organization_id": "research"}, headers=ALICE
    )
    await wait_chat(api, research["id"], headers=ALICE)
    _, [other_org] = await run_tools(
        api,
        scripted,
        [("create_workspace", {"template_id": PYTHON})],
        chat_id=research["id"],
        headers=ALICE,
    )
    assert text_error(other_org) == (
        "template belongs to a different organization than this chat; use list_templates to "
        "find a template of the chat's organization"
    )
    await api.ok("PUT", "config/template-allowlist", {"template_ids": [PYTHON]})
    _, [refused] = await run_tools(
        api,
        scripted,
        [("create_workspace", {"template_id": template_id("needs-region")})],
        headers=ALICE,
    )
    assert text_error(refused) == (
        "template not available for chat workspaces; use list_templates to find allowed templates"
    )


async def test_create_workspace_answers_bad_parameters_with_the_validations(
    api: Any, scripted: Any
) -> None:
    _, [part] = await run_tools(
        api,
        scripted,
        [
            (
                "create_workspace",
                {"template_id": template_id("needs-region"), "parameters": {"cpus": "0"}},
            )
        ],
        headers=ALICE,
    )
    result = payload(part)
    assert result["template_id"] == template_id("needs-region")
    assert result["validations"] == [
        {"field": "region", "detail": "required parameter is missing"},
        {"field": "cpus", "detail": "must be at least 1, got 0"},
    ]
    assert result["error"].startswith("invalid parameters: region: required parameter")
    assert "read_template" in result["message"]


async def test_create_workspace_over_quota_returns_the_quota_payload_and_binds_the_chat(
    api: Any, scripted: Any
) -> None:
    chat_id, [part] = await run_tools(
        api, scripted, [("create_workspace", {"template_id": template_id("costly")})], headers=BOB
    )
    result = payload(part)
    chat = await api.ok("GET", f"chats/{chat_id}", headers=BOB)
    assert result == {
        "error_code": "INSUFFICIENT_QUOTA",
        "error": "insufficient quota: this workspace costs 5 credits per day and 0 of your "
        f"{BUDGET} credits are in use",
        "title": "Workspace quota reached",
        "message": (
            "The Jupyter server could not create this workspace because your workspace quota "
            "is full."
        ),
        "next_steps": [
            "Delete a workspace you no longer need to free quota.",
            "Ask an administrator to raise your group quota allowance.",
        ],
        "build_id": chat["build_id"],
        "quota": {"credits_consumed": 0, "budget": BUDGET},
    }
    assert chat["workspace_id"]


# --- start_workspace and stop_workspace without a usable workspace ----------------------------


async def test_start_and_stop_need_a_workspace(api: Any, scripted: Any) -> None:
    _, [start, stop] = await run_tools(
        api, scripted, [("start_workspace", {}), ("stop_workspace", {})], headers=ALICE
    )
    assert text_error(start) == "chat has no workspace; use create_workspace first"
    assert text_error(stop) == "chat has no workspace; use create_workspace first"


async def external_chat(api: Any) -> tuple[dict[str, Any], str]:
    """Bob's chat bound to his running external workspace (no kernel attached)."""
    workspace = await api.ok(
        "POST", "workspaces", {"template_id": template_id("offline")}, headers=BOB
    )
    await wait_build(api, workspace["id"], headers=BOB)
    chat = await api.ok(
        "POST", "chats", {"content": "hi", "workspace_id": workspace["id"]}, headers=BOB
    )
    await wait_chat(api, chat["id"], headers=BOB)
    return workspace, chat["id"]


async def test_a_deleted_workspace_is_reported_and_create_makes_a_new_one(
    api: Any, scripted: Any
) -> None:
    workspace, chat_id = await external_chat(api)
    await api.ok(
        "POST", f"workspaces/{workspace['id']}/builds", {"transition": "delete"}, headers=BOB
    )
    await wait_build(api, workspace["id"], headers=BOB)
    _, [start, stop] = await run_tools(
        api,
        scripted,
        [("start_workspace", {}), ("stop_workspace", {})],
        chat_id=chat_id,
        headers=BOB,
    )
    assert text_error(start) == "workspace was deleted; use create_workspace to make a new one"
    assert text_error(stop) == "workspace was deleted; use create_workspace to make a new one"


async def test_stop_and_start_of_an_external_workspace(api: Any, scripted: Any) -> None:
    workspace, chat_id = await external_chat(api)
    _, [stopped] = await run_tools(
        api, scripted, [("stop_workspace", {})], chat_id=chat_id, headers=BOB
    )
    result = payload(stopped)
    assert result["stopped"] is True
    assert result["workspace_name"] == workspace["name"]
    _, [again, created] = await run_tools(
        api,
        scripted,
        [("stop_workspace", {}), ("create_workspace", {"template_id": PYTHON})],
        chat_id=chat_id,
        headers=BOB,
    )
    assert payload(again)["message"] == "workspace is already stopped"
    assert payload(created) == {
        "created": False,
        "status": "stopped",
        "message": "workspace is stopped; use start_workspace to start it",
        "workspace_name": workspace["name"],
    }
    _, [started] = await run_tools(
        api, scripted, [("start_workspace", {})], chat_id=chat_id, headers=BOB
    )
    result = payload(started)
    assert result["started"] is True
    assert result["agent_status"] == "not_ready"
    assert result["agent_error"] == "agent main is disconnected"
    assert (await api.ok("GET", f"workspaces/{workspace['id']}", headers=BOB))["status"] == (
        "running"
    )


# --- agents for the file and process tools (docs/workspaces.md#agent-selection) -----------------


async def test_agent_resolution_fails_fast_with_the_references_messages(api: Any, app: Any) -> None:
    service = app.services.workspaces
    chat = await api.ok("POST", "chats", {"content": "hi"}, headers=BOB)
    await wait_chat(api, chat["id"], headers=BOB)
    model = await app.services.chats.get_chat(_Bob(), chat["id"])
    with pytest.raises(AgentUnavailable) as refused:
        await service.agent_for_chat(model)
    assert str(refused.value) == (
        "no workspace is associated with this chat. Use the create_workspace tool to create one"
    )

    workspace, chat_id = await external_chat(api)
    model = await app.services.chats.get_chat(_Bob(), chat_id)
    with pytest.raises(AgentUnavailable) as refused:
        await service.agent_for_chat(model)
    assert str(refused.value) == (
        "the workspace's agent is external and no kernel is attached to it. Ask the user to "
        "attach a running kernel: `%chat attach` in the notebook whose kernel should run the "
        f"tools, or POST api/coderchat/workspaces/{workspace['id']}/attach with its kernel_id"
    )
    # The binding to the selected agent is persisted.
    bound = await api.ok("GET", f"chats/{chat_id}", headers=BOB)
    [agent] = (await api.ok("GET", f"workspaces/{workspace['id']}", headers=BOB))["latest_build"][
        "agents"
    ]
    assert (bound["build_id"], bound["agent_id"]) == (
        (await api.ok("GET", f"workspaces/{workspace['id']}", headers=BOB))["latest_build"]["id"],
        agent["id"],
    )

    await api.ok(
        "POST", f"workspaces/{workspace['id']}/builds", {"transition": "stop"}, headers=BOB
    )
    await wait_build(api, workspace["id"], headers=BOB)
    with pytest.raises(AgentUnavailable) as refused:
        await service.agent_for_chat(model)
    assert str(refused.value) == (
        "workspace has no running agent: the workspace is likely stopped. Use the "
        "start_workspace tool to start it"
    )


class _Bob:
    username = "bob"
    is_admin = False


def agent(name: str, order: int = 0, agent_id: str | None = None) -> WorkspaceAgent:
    return WorkspaceAgent(
        id=agent_id or str(uuid.uuid4()), name=name, display_order=order, status="connected"
    )


def test_agent_selection_prefers_the_one_chat_suffix_else_the_first_in_order() -> None:
    assert select_agent([agent("b"), agent("a")]).name == "a"
    assert select_agent([agent("a", 2), agent("z", 1)]).name == "z"
    assert select_agent([agent("B"), agent("a")]).name == "a"
    assert select_agent([agent("main"), agent("helper-CHAT", 5)]).name == "helper-CHAT"


def test_agent_selection_refuses_none_or_several_chat_agents() -> None:
    with pytest.raises(AgentUnavailable) as none:
        select_agent([])
    assert str(none.value) == "no eligible workspace agents found"
    with pytest.raises(AgentUnavailable) as several:
        select_agent([agent("x-chat", 1), agent("a-chat", 1), agent("main")])
    assert str(several.value) == (
        'multiple agents match the chat suffix "-chat": a-chat, x-chat; only one agent should '
        "use this suffix"
    )
