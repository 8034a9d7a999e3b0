"""``CoderChatApp.sandbox = "bubblewrap"``: every agent runs its commands in the sandbox even
when its template has no ``[sandbox]``, and external templates cannot be started.

Needs ``bwrap`` on the machine (Debian package ``bubblewrap``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.workspaces.helpers import template_id, wait_build, write_template

BUILD_TIMEOUT = 120


@pytest.fixture
def coderchat_config(coderchat_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    templates = tmp_path / "templates"
    write_template(templates / "attachable", 'name = "attachable"\nexternal = true\n')
    return {**coderchat_config, "template_paths": [str(templates)], "sandbox": "bubblewrap"}


async def create(api: Any, template: str) -> dict[str, Any]:
    workspace = await api.ok("POST", "workspaces", {"template_id": template_id(template)})
    return await wait_build(api, workspace["id"], timeout=BUILD_TIMEOUT)


async def test_a_template_without_a_sandbox_still_runs_its_commands_in_one(
    api: Any, app: Any, jp_root_dir: Path
) -> None:
    (jp_root_dir / "secret.txt").write_text("s3cret\n")
    workspace = await create(api, "python")
    assert workspace["status"] == "running", workspace["latest_build"]["job"]
    [agent] = workspace["latest_build"]["agents"]
    result = await app.services.workspaces.agents.call(
        agent["id"], "execute", {"command": f"cat {jp_root_dir / 'secret.txt'} {app.db_path}"}
    )
    assert result["exit_code"] == 1
    assert result["output"].count("No such file or directory") == 2, result
    await api.ok("POST", f"workspaces/{workspace['id']}/builds", {"transition": "delete"})
    await wait_build(api, workspace["id"], timeout=BUILD_TIMEOUT)


async def test_an_external_template_cannot_be_started(api: Any) -> None:
    workspace = await create(api, "attachable")
    job = workspace["latest_build"]["job"]
    assert (workspace["status"], job["status"]) == ("failed", "failed")
    assert job["error"] == (
        "this server runs every agent in a bubblewrap sandbox (CoderChatApp.sandbox) and the "
        "kernel of an external template cannot be sandboxed"
    )
