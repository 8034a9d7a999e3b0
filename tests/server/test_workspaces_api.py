"""The template, workspace, build, job-log and attach endpoints (docs/api.md#workspaces): who sees
which template (organizations, the allowlist), validation errors with one entry per field, the quota
failure of a build, build logs over REST and the follow WebSocket, attaching a kernel, and
that every answer matches the OpenAPI document."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.server.test_openapi import Contract, served_document
from tests.workspaces.helpers import (
    ALICE,
    BOB,
    BUDGET,
    coderchat_config,
    jp_server_config,
    template_dir,
    template_id,
    wait_build,
)

__all__ = ["coderchat_config", "jp_server_config", "template_dir"]

PYTHON = template_id("python")
DATA = template_id("data-analysis")
LAB = template_id("lab", "research")


async def names(api: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {t["name"]: t for t in await api.ok("GET", "templates", headers=headers)}


async def test_users_see_the_builtin_and_configured_templates_of_their_organizations(
    api: Any,
) -> None:
    alice = await names(api, ALICE)
    bob = await names(api, BOB)
    assert set(alice) == {
        "python",
        "data-analysis",
        "needs-region",
        "offline",
        "costly",
        "broken-init",
        "lab",
    }
    assert set(bob) == set(alice) - {"lab"}
    assert alice["python"]["id"] == PYTHON
    assert alice["offline"]["external"] is True
    assert "allowlisted" not in alice["python"]
    status, body = await api("GET", f"templates/{LAB}", headers=BOB)
    assert (status, body["message"]) == (404, "Template not found.")
    lab = await api.ok("GET", f"templates/{LAB}", headers=ALICE)
    assert lab["name"] == "lab"


async def test_a_template_shows_its_parameters_presets_and_agents(api: Any) -> None:
    detail = await api.ok("GET", f"templates/{template_id('needs-region')}", headers=ALICE)
    assert [(p["name"], p["type"], p["required"]) for p in detail["parameters"]] == [
        ("region", "string", True),
        ("cpus", "number", False),
        ("image", "string", False),
    ]
    assert detail["parameters"][1]["validation_min"] == 1
    assert detail["parameters"][2]["mutable"] is False
    [preset] = detail["presets"]
    assert preset["name"] == "europe"
    assert preset["parameters"] == {"region": "eu", "cpus": "4"}
    assert detail["agents"] == [{"name": "main", "display_order": 0, "kernel": "python3"}]
    data = await api.ok("GET", f"templates/{DATA}", headers=ALICE)
    assert [p["name"] for p in data["presets"] if p["default"]] == ["pandas"]


async def test_the_allowlist_limits_what_users_see_and_what_workspaces_may_use(
    api: Any,
) -> None:
    await api.ok("PUT", "config/template-allowlist", {"template_ids": [PYTHON]})
    assert set(await names(api, ALICE)) == {"python"}
    admin = await names(api)
    assert admin["python"]["allowlisted"] is True
    assert admin["data-analysis"]["allowlisted"] is False
    status, body = await api("GET", f"templates/{DATA}", headers=ALICE)
    assert (status, body["message"]) == (404, "Template not found.")
    status, body = await api("POST", "workspaces", {"template_id": DATA}, headers=ALICE)
    assert (status, body["message"]) == (404, "Template not found.")
    status, body = await api("POST", "workspaces", {"template_id": DATA})
    assert (status, body["message"]) == (400, "Template is not on the chat template allowlist.")
    # The allowlist only takes ids of templates that exist.
    status, body = await api(
        "PUT", "config/template-allowlist", {"template_ids": [str(uuid.uuid4())]}
    )
    assert (status, body["message"]) == (400, "One or more templates not found or deprecated.")


CREATE_REFUSALS = [
    pytest.param(
        {"template_id": template_id("needs-region"), "parameters": {"cpus": 99, "colour": "red"}},
        400,
        "Invalid parameters.",
        [
            {
                "field": "colour",
                "detail": "unknown parameter; the template's parameters: cpus, image, region",
            },
            {"field": "region", "detail": "required parameter is missing"},
            {"field": "cpus", "detail": "must be at most 8, got 99"},
        ],
        id="parameters",
    ),
    pytest.param(
        {"template_id": template_id("needs-region"), "parameters": {"region": {"x": 1}}},
        400,
        "Invalid parameters.",
        [{"field": "region", "detail": "must be a string, number, boolean or list of strings"}],
        id="parameter-value-type",
    ),
    pytest.param(
        {"template_id": template_id("needs-region"), "preset_id": "asia"},
        400,
        "Invalid parameters.",
        [{"field": "preset_id", "detail": "no preset 'asia' in this template; presets: "}],
        id="preset",
    ),
    pytest.param(
        {"template_id": PYTHON, "name": "no spaces allowed"},
        400,
        'invalid workspace name "no spaces allowed": use 1-32 letters, digits and inner hyphens',
        None,
        id="name",
    ),
    pytest.param({"template_id": "not-a-uuid"}, 404, "Template not found.", None, id="template-id"),
    pytest.param({"template_id": LAB}, 404, "Template not found.", None, id="other-org"),
]


@pytest.mark.parametrize(("body", "status", "message", "validations"), CREATE_REFUSALS)
async def test_a_refused_workspace_creation_says_why_and_creates_nothing(
    api: Any, body: dict[str, Any], status: int, message: str, validations: Any, app: Any
) -> None:
    code, answer = await api("POST", "workspaces", body, headers=BOB)
    assert (code, answer["message"]) == (status, message)
    if validations is not None:
        got = answer["validations"]
        if body.get("preset_id"):
            assert got[0]["detail"].startswith(validations[0]["detail"])
            assert "(europe)" in got[0]["detail"]
        else:
            assert got == validations
    async with app.services.db.read() as conn:
        assert await conn.fetchval("SELECT COUNT(*) FROM workspaces") == 0


async def test_a_build_over_quota_fails_with_insufficient_quota_and_logs_why(api: Any) -> None:
    workspace = await api.ok(
        "POST", "workspaces", {"template_id": template_id("costly")}, headers=BOB
    )
    assert workspace["status"] == "pending"
    assert workspace["latest_build"]["build_number"] == 1
    assert workspace["name"].startswith("costly-")
    done = await wait_build(api, workspace["id"], headers=BOB)
    job = done["latest_build"]["job"]
    assert done["status"] == "failed"
    assert job["error_code"] == "INSUFFICIENT_QUOTA"
    assert job["error"] == (
        f"insufficient quota: this workspace costs 5 credits per day and 0 of your {BUDGET} "
        "credits are in use"
    )
    assert done["latest_build"]["daily_cost"] == 0
    logs = await api.ok("GET", f"jobs/{job['id']}/logs", headers=BOB)
    assert [(entry["log_level"], entry["output"]) for entry in logs] == [("error", job["error"])]
    assert (
        await api.ok("GET", f"jobs/{job['id']}/logs", params={"after": logs[-1]["id"]}, headers=BOB)
        == []
    )
    status, body = await api("GET", f"jobs/{job['id']}/logs", headers=ALICE)
    assert (status, body["message"]) == (404, "Provisioner job not found.")
    status, body = await api("GET", f"jobs/{job['id']}/logs", params={"after": "x"}, headers=BOB)
    assert (status, body["message"]) == (400, "Invalid after parameter.")


async def test_following_the_logs_of_a_finished_job_replays_them_and_closes(
    api: Any, jp_ws_fetch: Any
) -> None:
    workspace = await api.ok(
        "POST", "workspaces", {"template_id": template_id("costly")}, headers=BOB
    )
    done = await wait_build(api, workspace["id"], headers=BOB)
    job_id = done["latest_build"]["job"]["id"]
    socket = await jp_ws_fetch(
        "api", "coderchat", "jobs", job_id, "logs", params={"follow": "1"}, headers=BOB
    )
    frames = []
    while (message := await socket.read_message()) is not None:
        frames.append(json.loads(message))
    assert [f["log_level"] for f in frames] == ["error"]
    assert socket.close_code == 1000
    with pytest.raises(HTTPClientError) as refused:
        await jp_ws_fetch(
            "api", "coderchat", "jobs", job_id, "logs", params={"follow": "1"}, headers=ALICE
        )
    assert refused.value.code == 404


async def test_the_job_logs_endpoint_refuses_callers_without_credentials(
    jp_fetch: Any, app: Any
) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch(
            "api", "coderchat", "jobs", str(uuid.uuid4()), "logs", headers={"Authorization": ""}
        )
    assert refused.value.code in (401, 403)


async def test_builds_refuse_bad_transitions_and_other_owners(api: Any) -> None:
    workspace = await api.ok(
        "POST", "workspaces", {"template_id": template_id("costly")}, headers=BOB
    )
    await wait_build(api, workspace["id"], headers=BOB)
    path = f"workspaces/{workspace['id']}/builds"
    status, body = await api("POST", path, {"transition": "explode"}, headers=BOB)
    assert (status, body["message"]) == (400, "Invalid transition.")
    assert body["validations"] == [
        {"field": "transition", "detail": 'must be "start", "stop" or "delete"'}
    ]
    status, body = await api("POST", path, {"transition": "stop"}, headers=ALICE)
    assert (status, body["message"]) == (404, "Workspace not found.")
    assert await api.ok("GET", "workspaces", headers=ALICE) == []
    [listed] = await api.ok("GET", "workspaces", headers=BOB)
    assert listed["id"] == workspace["id"]


async def test_a_workspace_name_is_unique(api: Any) -> None:
    body = {"template_id": template_id("costly"), "name": "shared-name"}
    first = await api.ok("POST", "workspaces", body, headers=BOB)
    status, answer = await api("POST", "workspaces", body, headers=ALICE)
    assert (status, answer["message"]) == (
        409,
        'workspace name "shared-name" is already in use; pick another name or omit it',
    )
    await wait_build(api, first["id"], headers=BOB)


async def test_an_external_workspace_waits_for_a_kernel_and_attach_checks_it(
    api: Any,
) -> None:
    workspace = await api.ok(
        "POST", "workspaces", {"template_id": template_id("offline")}, headers=BOB
    )
    done = await wait_build(api, workspace["id"], headers=BOB)
    assert done["status"] == "running"
    [agent] = done["latest_build"]["agents"]
    assert (agent["external"], agent["status"], agent.get("kernel_id")) == (
        True,
        "disconnected",
        None,
    )
    path = f"workspaces/{workspace['id']}/attach"
    status, body = await api("POST", path, {}, headers=BOB)
    assert (status, body["message"]) == (400, "kernel_id is required.")
    status, body = await api("POST", path, {"kernel_id": "no-such-kernel"}, headers=BOB)
    assert (status, body["message"]) == (400, "Cannot attach the kernel.")
    status, body = await api("POST", path, {"kernel_id": "k"}, headers=ALICE)
    assert status == 404


async def test_a_chat_cannot_bind_another_users_workspace(api: Any) -> None:
    workspace = await api.ok(
        "POST", "workspaces", {"template_id": template_id("offline")}, headers=BOB
    )
    await wait_build(api, workspace["id"], headers=BOB)
    status, body = await api(
        "POST", "chats", {"content": "hi", "workspace_id": workspace["id"]}, headers=ALICE
    )
    assert (status, body["message"]) == (
        400,
        "Workspace not found or you do not have access to this resource",
    )
    chat = await api.ok(
        "POST", "chats", {"content": "hi", "workspace_id": workspace["id"]}, headers=BOB
    )
    assert chat["workspace_id"] == workspace["id"]


async def test_workspace_statuses_and_bodies_match_the_document(api: Any) -> None:
    contract = Contract(api, await served_document(api))
    await contract.call("GET", "/templates", 200)
    await contract.call("GET", "/templates/{template_id}", 200, template_id=DATA)
    await contract.call("GET", "/templates/{template_id}", 404, template_id=uuid.uuid4())
    workspace = await contract.call(
        "POST", "/workspaces", 201, {"template_id": template_id("offline")}
    )
    await contract.call("POST", "/workspaces", 400, {"template_id": PYTHON, "name": "a b"})
    await contract.call("POST", "/workspaces", 404, {"template_id": str(uuid.uuid4())})
    await contract.call("GET", "/workspaces", 200)
    done = await wait_build(api, workspace["id"])
    await contract.call("GET", "/workspaces/{workspace_id}", 200, workspace_id=workspace["id"])
    await contract.call("GET", "/workspaces/{workspace_id}", 404, workspace_id=uuid.uuid4())
    job_id = done["latest_build"]["job"]["id"]
    await contract.call("GET", "/jobs/{job_id}/logs", 200, job_id=job_id)
    await contract.call("GET", "/jobs/{job_id}/logs", 404, job_id=uuid.uuid4())
    await contract.call(
        "POST",
        "/workspaces/{workspace_id}/attach",
        400,
        {"kernel_id": "nope"},
        workspace_id=workspace["id"],
    )
    path = "/workspaces/{workspace_id}/builds"
    await contract.call("POST", path, 400, {"transition": "x"}, workspace_id=workspace["id"])
    stop = await contract.call(
        "POST", path, 201, {"transition": "stop"}, workspace_id=workspace["id"]
    )
    assert stop["build_number"] == 2
    await contract.call("POST", path, 409, {"transition": "stop"}, workspace_id=workspace["id"])
    await wait_build(api, workspace["id"])
    await contract.call("POST", path, 409, {"transition": "stop"}, workspace_id=workspace["id"])
    await contract.call("POST", path, 201, {"transition": "delete"}, workspace_id=workspace["id"])
    deleted = await wait_build(api, workspace["id"])
    assert (deleted["status"], deleted["deleted"]) == ("deleted", True)
    await contract.call("POST", path, 409, {"transition": "start"}, workspace_id=workspace["id"])
