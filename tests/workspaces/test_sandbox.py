"""The bubblewrap sandbox of a template's agents, through real builds and kernels: commands
(init, ``execute``, background processes) write only in the workspace, see none of the
server's files (database, root folder, home) nor its processes, and have no network when the
template says so; a missing ``bwrap`` fails the build naming the package.

Needs ``bwrap`` on the machine (Debian package ``bubblewrap``)."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.workspaces.helpers import (
    BOB,
    coderchat_config,
    jp_server_config,
    template_dir,
    template_id,
    wait_build,
    write_template,
)
from tests.workspaces.test_agents import Agents, kernel_pid, make_agents, wait_for

__all__ = ["coderchat_config", "jp_server_config", "make_agents", "template_dir"]

BUILD_TIMEOUT = 120
SANDBOXED = """
    name = "sandboxed"
    description = "Commands run under bubblewrap, without network."
    init = "echo init ran > init.txt"

    [sandbox]
    mode = "bubblewrap"
    network = false
"""


@pytest.fixture(autouse=True)
def sandboxed_template(template_dir: Path) -> None:
    write_template(template_dir / "sandboxed", SANDBOXED)


def is_sqlite(path: Path) -> bool:
    return path.read_bytes().startswith(b"SQLite format 3")


async def create(api: Any, name: str) -> dict[str, Any]:
    body = {"template_id": template_id("sandboxed"), "name": name}
    workspace = await api.ok("POST", "workspaces", body, headers=BOB)
    return await wait_build(api, workspace["id"], headers=BOB, timeout=BUILD_TIMEOUT)


async def delete(api: Any, workspace: dict[str, Any]) -> None:
    await api.ok(
        "POST", f"workspaces/{workspace['id']}/builds", {"transition": "delete"}, headers=BOB
    )
    await wait_build(api, workspace["id"], headers=BOB, timeout=BUILD_TIMEOUT)


async def test_sandboxed_commands_write_only_in_the_workspace_and_see_none_of_the_server(
    api: Any, app: Any, jp_root_dir: Path, jp_http_port: int
) -> None:
    workspace = await create(api, "boxed")
    assert workspace["status"] == "running", workspace["latest_build"]["job"]
    folder = jp_root_dir / "workspaces" / "boxed"
    assert (folder / "init.txt").read_text() == "init ran\n"
    [agent] = workspace["latest_build"]["agents"]

    async def run(command: str) -> dict[str, Any]:
        result = await app.services.workspaces.agents.call(
            agent["id"], "execute", {"command": command, "timeout": "30s"}
        )
        return dict(result)

    database = Path(app.db_path)
    secret = jp_root_dir / "secret.txt"
    secret.write_text("s3cret\n")
    assert is_sqlite(database)
    for path in (database, secret, Path.home() / ".bashrc", Path(f"/proc/{os.getpid()}/environ")):
        result = await run(f"cat {path}")
        assert (result["exit_code"], "No such file or directory" in result["output"]) == (
            1,
            True,
        ), (path, result)
    processes = (await run("ls /proc"))["output"].split()
    assert str(os.getpid()) not in processes

    marker = uuid.uuid4().hex
    outside = [jp_root_dir / f"{marker}.txt", database.parent / marker, Path.home() / marker]
    result = await run("; ".join(f"echo x > {p}" for p in outside))
    # Nothing lands on the host: the database's folder is not there at all, the home folder
    # and the workspace's parent folders are private, empty and gone with the command.
    assert f"cannot create {database.parent / marker}: Directory nonexistent" in result["output"]
    assert [p for p in outside if p.exists()] == []

    result = await run(
        f"{Path(sys.executable).name} -c \"open('made.txt', 'w').write('by python')\""
    )
    assert result["exit_code"] == 0, result
    assert (folder / "made.txt").read_text() == "by python"

    started = await app.services.workspaces.agents.call(
        agent["id"], "execute", {"command": "echo bg > bg.txt", "run_in_background": True}
    )
    done = await app.services.workspaces.agents.call(
        agent["id"],
        "process_output",
        {"process_id": started["background_process_id"], "wait_timeout": "20s"},
    )
    assert done["exit_code"] == 0, done
    assert (folder / "bg.txt").read_text() == "bg\n"

    result = await run(
        f"python -c \"import socket; socket.create_connection(('127.0.0.1', {jp_http_port}), 5)\""
    )
    assert result["exit_code"] != 0, result
    await delete(api, workspace)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="PYTHONSAFEPATH is Python 3.11+")
async def test_a_module_planted_in_the_workspace_does_not_run_at_the_next_kernel_start(
    api: Any, app: Any, jp_root_dir: Path
) -> None:
    workspace = await create(api, "planted")
    [agent] = workspace["latest_build"]["agents"]
    marker = jp_root_dir / "escaped.txt"
    plant = f"echo 'open({str(marker)!r}, \"w\")' > ipykernel_launcher.py"
    assert (await app.services.workspaces.agents.call(agent["id"], "execute", {"command": plant}))[
        "exit_code"
    ] == 0
    for transition in ("stop", "start"):
        await api.ok(
            "POST", f"workspaces/{workspace['id']}/builds", {"transition": transition}, headers=BOB
        )
        restarted = await wait_build(api, workspace["id"], headers=BOB, timeout=BUILD_TIMEOUT)
    assert restarted["status"] == "running", restarted["latest_build"]["job"]
    assert not marker.exists()
    [agent] = restarted["latest_build"]["agents"]
    result = await app.services.workspaces.agents.call(
        agent["id"], "execute", {"command": "python -c 'import sys; print(sys.flags.safe_path)'"}
    )
    assert result["output"] == "False\n"
    await delete(api, restarted)


async def test_a_sandboxed_template_without_bwrap_fails_the_build_naming_the_package(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernels inherit the server's PATH: only the Python interpreter's folder, no bwrap.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    workspace = await create(api, "nobwrap")
    job = workspace["latest_build"]["job"]
    assert (workspace["status"], job["status"]) == ("failed", "failed")
    assert (
        'the template runs commands in a sandbox ([sandbox] mode = "bubblewrap") but bwrap is '
        "not on the kernel's PATH: install the bubblewrap package (Debian or Ubuntu: apt-get "
        "install bubblewrap) where the kernel runs"
    ) in job["error"]
    [agent] = workspace["latest_build"]["agents"]
    assert agent["status"] == "disconnected"
    await delete(api, workspace)


async def test_a_restarted_kernel_keeps_its_sandbox(make_agents: Any, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("s3cret\n")
    agents: Agents = make_agents()
    agents.started.append("boxed")
    sandbox = {"mode": "bubblewrap", "network": False, "read_only": []}
    await agents.manager.start("boxed", kernel_name="python3", path="", sandbox=sandbox)
    read = {"command": f"cat {outside}"}
    assert (await agents.manager.call("boxed", "execute", read))["exit_code"] == 1
    os.kill(kernel_pid(agents, "boxed"), signal.SIGKILL)
    await wait_for(lambda: "disconnected" in agents.statuses["boxed"])
    await wait_for(lambda: agents.manager.status("boxed") == "connected", timeout=30)
    assert (await agents.manager.call("boxed", "execute", read))["exit_code"] == 1
