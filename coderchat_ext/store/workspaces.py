"""The ``workspaces``, ``workspace_builds``, ``provisioner_jobs``, ``provisioner_job_logs`` and
``workspace_agents`` tables (docs/data-model.md#workspace-tables).

A workspace's state is its latest build (highest ``build_number``): the transition it asked for
and the status of its provisioner job. Agents belong to the start build that created them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite

from ..models import (
    AgentStatus,
    BuildTransition,
    JobStatus,
    LogLevel,
    ProvisionerJob,
    ProvisionerJobLog,
    Workspace,
    WorkspaceAgent,
    WorkspaceBuild,
    WorkspaceStatus,
    new_id,
    utcnow,
)
from .db import Conn, StoreRow, row_data

ACTIVE_JOB_STATUSES = ("pending", "running", "canceling")

_AGENT_UPDATABLE = {
    "kernel_id",
    "status",
    "lifecycle_state",
    "first_connected_at",
    "last_connected_at",
}


class WorkspaceRow(StoreRow):
    """The ``workspaces`` row itself (without its build)."""

    id: str
    organization_id: str
    owner: str
    template_id: str
    name: str
    directory: str
    files_version_id: str | None
    deleted: bool
    created_at: str
    updated_at: str


def _workspace_row(row: aiosqlite.Row) -> WorkspaceRow:
    return WorkspaceRow.model_validate(row_data(row))


def _job(row: aiosqlite.Row) -> ProvisionerJob:
    return ProvisionerJob.model_validate(row_data(row))


def _agent(row: aiosqlite.Row) -> WorkspaceAgent:
    return WorkspaceAgent.model_validate(row_data(row))


_RUNNING: dict[str, WorkspaceStatus] = {
    "start": "starting",
    "stop": "stopping",
    "delete": "deleting",
}
_SUCCEEDED: dict[str, WorkspaceStatus] = {
    "start": "running",
    "stop": "stopped",
    "delete": "deleted",
}


def workspace_status(transition: BuildTransition, job: JobStatus) -> WorkspaceStatus:
    """The workspace status of a latest build (Coder's ``WorkspaceStatus``)."""
    if job == "pending":
        return "pending"
    if job == "running":
        return _RUNNING[transition]
    if job == "succeeded":
        return _SUCCEEDED[transition]
    if job == "failed":
        return "failed"
    if job == "canceling":
        return "canceling"
    return "canceled"


# --- workspaces -------------------------------------------------------------------------------


async def insert_workspace(
    conn: Conn,
    *,
    organization_id: str,
    owner: str,
    template_id: str,
    name: str,
    directory: str,
) -> str:
    workspace_id = new_id()
    now = utcnow()
    await conn.execute(
        "INSERT INTO workspaces (id, organization_id, owner, template_id, name, directory,"
        " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
        (workspace_id, organization_id, owner, template_id, name, directory, now, now),
    )
    return workspace_id


async def get_workspace_row(conn: Conn, workspace_id: str) -> WorkspaceRow | None:
    row = await conn.fetchone("SELECT * FROM workspaces WHERE id = ?", (workspace_id,))
    return None if row is None else _workspace_row(row)


async def name_taken(conn: Conn, name: str) -> bool:
    """Whether a workspace that is not deleted already uses ``name`` (names share one folder
    namespace under the workspace root, so they are unique on the server)."""
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM workspaces WHERE name = ? COLLATE NOCASE AND deleted = 0", (name,)
        )
    )


async def mark_deleted(conn: Conn, workspace_id: str) -> None:
    await conn.execute(
        "UPDATE workspaces SET deleted = 1, updated_at = ? WHERE id = ?", (utcnow(), workspace_id)
    )


async def set_files_version(conn: Conn, workspace_id: str, version_id: str) -> None:
    await conn.execute(
        "UPDATE workspaces SET files_version_id = ?, updated_at = ? WHERE id = ?",
        (version_id, utcnow(), workspace_id),
    )


async def touch_workspace(conn: Conn, workspace_id: str) -> None:
    await conn.execute(
        "UPDATE workspaces SET updated_at = ? WHERE id = ?", (utcnow(), workspace_id)
    )


async def get_workspace(conn: Conn, workspace_id: str) -> Workspace | None:
    """The workspace with its latest build, that build's job and agents, and its template's
    names."""
    row = await get_workspace_row(conn, workspace_id)
    if row is None:
        return None
    [workspace] = await _assemble(conn, [row])
    return workspace


async def list_workspaces(
    conn: Conn, *, owner: str, include_deleted: bool = False
) -> list[Workspace]:
    """The owner's workspaces, most recently updated first."""
    rows = await conn.fetchall(
        "SELECT * FROM workspaces WHERE owner = ?"
        + ("" if include_deleted else " AND deleted = 0")
        + " ORDER BY updated_at DESC, id",
        (owner,),
    )
    return await _assemble(conn, [_workspace_row(r) for r in rows])


async def _assemble(conn: Conn, rows: Sequence[WorkspaceRow]) -> list[Workspace]:
    out = []
    for row in rows:
        build = await latest_build(conn, row.id)
        assert build is not None, f"workspace {row.id} has no build"
        template = await conn.fetchone(
            "SELECT name, display_name, icon FROM templates WHERE id = ?", (row.template_id,)
        )
        out.append(
            Workspace(
                id=row.id,
                organization_id=row.organization_id,
                owner=row.owner,
                name=row.name,
                template_id=row.template_id,
                template_name=template["name"] if template else "",
                template_display_name=template["display_name"] if template else "",
                template_icon=template["icon"] if template else "",
                directory=row.directory,
                status=workspace_status(build.transition, build.job.status),
                deleted=row.deleted,
                created_at=row.created_at,
                updated_at=row.updated_at,
                latest_build=build,
            )
        )
    return out


# --- builds and jobs --------------------------------------------------------------------------


async def insert_build(
    conn: Conn,
    *,
    workspace_id: str,
    transition: BuildTransition,
    template_version_id: str,
    preset_id: str | None,
    parameters: Mapping[str, str],
    initiator: str,
) -> WorkspaceBuild:
    """A new build with the next build number and a ``pending`` provisioner job."""
    job_id = new_id()
    build_id = new_id()
    now = utcnow()
    number = (
        await conn.fetchval(
            "SELECT MAX(build_number) FROM workspace_builds WHERE workspace_id = ?",
            (workspace_id,),
        )
        or 0
    ) + 1
    await conn.execute(
        "INSERT INTO provisioner_jobs (id, status, created_at) VALUES (?, 'pending', ?)",
        (job_id, now),
    )
    await conn.execute(
        "INSERT INTO workspace_builds (id, workspace_id, build_number, transition,"
        " template_version_id, preset_id, parameters, job_id, initiator, created_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            build_id,
            workspace_id,
            number,
            transition,
            template_version_id,
            preset_id,
            json.dumps(dict(parameters), sort_keys=True),
            job_id,
            initiator,
            now,
        ),
    )
    await touch_workspace(conn, workspace_id)
    build = await get_build(conn, build_id)
    assert build is not None
    return build


async def _build_from_row(conn: Conn, row: aiosqlite.Row) -> WorkspaceBuild:
    data = row_data(row, "parameters")
    data["job"] = await get_job(conn, row["job_id"])
    assert data["job"] is not None
    data["agents"] = await build_agents(conn, row["id"])
    return WorkspaceBuild.model_validate(data)


async def get_build(conn: Conn, build_id: str) -> WorkspaceBuild | None:
    row = await conn.fetchone("SELECT * FROM workspace_builds WHERE id = ?", (build_id,))
    return None if row is None else await _build_from_row(conn, row)


async def latest_build(conn: Conn, workspace_id: str) -> WorkspaceBuild | None:
    row = await conn.fetchone(
        "SELECT * FROM workspace_builds WHERE workspace_id = ? ORDER BY build_number DESC LIMIT 1",
        (workspace_id,),
    )
    return None if row is None else await _build_from_row(conn, row)


async def latest_start_parameters(conn: Conn, workspace_id: str) -> dict[str, str]:
    """The parameter values of the workspace's newest build (what a new build starts from)."""
    raw = await conn.fetchval(
        "SELECT parameters FROM workspace_builds WHERE workspace_id = ?"
        " ORDER BY build_number DESC LIMIT 1",
        (workspace_id,),
    )
    return dict(json.loads(raw)) if raw else {}


async def build_for_job(conn: Conn, job_id: str) -> WorkspaceBuild | None:
    row = await conn.fetchone("SELECT * FROM workspace_builds WHERE job_id = ?", (job_id,))
    return None if row is None else await _build_from_row(conn, row)


async def job_owner(conn: Conn, job_id: str) -> tuple[str, str] | None:
    """``(owner, workspace_id)`` of the workspace whose build ran ``job_id``."""
    row = await conn.fetchone(
        "SELECT w.owner, w.id FROM workspace_builds b JOIN workspaces w ON w.id = b.workspace_id"
        " WHERE b.job_id = ?",
        (job_id,),
    )
    return None if row is None else (row[0], row[1])


async def set_build_cost(conn: Conn, build_id: str, daily_cost: int) -> None:
    await conn.execute(
        "UPDATE workspace_builds SET daily_cost = ? WHERE id = ?", (daily_cost, build_id)
    )


async def quota_consumed(conn: Conn, owner: str, *, exclude_workspace: str | None = None) -> int:
    """The credits the owner's workspaces hold: the ``daily_cost`` committed by the latest
    build of each workspace that is not deleted (Coder's ``GetQuotaConsumedForUser``)."""
    value = await conn.fetchval(
        "SELECT COALESCE(SUM(b.daily_cost), 0) FROM workspace_builds b"
        " JOIN workspaces w ON w.id = b.workspace_id"
        " WHERE w.owner = ? AND w.deleted = 0 AND w.id IS NOT ?"
        " AND b.build_number = (SELECT MAX(build_number) FROM workspace_builds"
        " WHERE workspace_id = w.id)",
        (owner, exclude_workspace),
    )
    return int(value or 0)


async def get_job(conn: Conn, job_id: str) -> ProvisionerJob | None:
    row = await conn.fetchone("SELECT * FROM provisioner_jobs WHERE id = ?", (job_id,))
    return None if row is None else _job(row)


async def set_job_status(
    conn: Conn,
    job_id: str,
    status: JobStatus,
    *,
    error: str | None = None,
    error_code: str | None = None,
) -> None:
    """Move a job to ``status``; ``running`` stamps ``started_at``, a final status stamps
    ``completed_at``."""
    now = utcnow()
    if status == "running":
        await conn.execute(
            "UPDATE provisioner_jobs SET status = ?, started_at = ? WHERE id = ?",
            (status, now, job_id),
        )
    elif status in ("succeeded", "failed", "canceled"):
        await conn.execute(
            "UPDATE provisioner_jobs SET status = ?, error = ?, error_code = ?, completed_at = ?"
            " WHERE id = ?",
            (status, error, error_code, now, job_id),
        )
    else:
        await conn.execute("UPDATE provisioner_jobs SET status = ? WHERE id = ?", (status, job_id))


async def active_jobs(conn: Conn) -> list[str]:
    rows = await conn.fetchall(
        "SELECT id FROM provisioner_jobs WHERE status IN ('pending', 'running', 'canceling')"
    )
    return [r[0] for r in rows]


async def append_log(
    conn: Conn, job_id: str, output: str, *, level: LogLevel = "info", stage: str = ""
) -> ProvisionerJobLog:
    now = utcnow()
    log_id = await conn.execute(
        "INSERT INTO provisioner_job_logs (job_id, created_at, log_level, stage, output)"
        " VALUES (?,?,?,?,?)",
        (job_id, now, level, stage, output),
    )
    return ProvisionerJobLog(id=log_id, created_at=now, log_level=level, stage=stage, output=output)


async def list_logs(
    conn: Conn, job_id: str, *, after: int = 0, limit: int | None = None
) -> list[ProvisionerJobLog]:
    rows = await conn.fetchall(
        "SELECT * FROM provisioner_job_logs WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?",
        (job_id, after, -1 if limit is None else limit),
    )
    return [
        ProvisionerJobLog(
            id=r["id"],
            created_at=r["created_at"],
            log_level=r["log_level"],
            stage=r["stage"],
            output=r["output"],
        )
        for r in rows
    ]


async def bind_chat_agent(
    conn: Conn, chat_id: str, workspace_id: str, build_id: str | None, agent_id: str | None
) -> bool:
    """Set a chat's ``build_id``/``agent_id`` if it is still bound to ``workspace_id``
    (docs/workspaces.md#agent-selection); False when its workspace changed meanwhile."""
    changed = await conn.execute_rowcount(
        "UPDATE chats SET build_id = ?, agent_id = ?, updated_at = ? WHERE id = ?"
        " AND workspace_id = ?",
        (build_id, agent_id, utcnow(), chat_id, workspace_id),
    )
    return changed > 0


# --- agents -----------------------------------------------------------------------------------


async def insert_agent(
    conn: Conn,
    *,
    workspace_id: str,
    build_id: str,
    name: str,
    display_order: int,
    kernel_name: str,
    external: bool,
    status: AgentStatus,
) -> WorkspaceAgent:
    agent_id = new_id()
    now = utcnow()
    await conn.execute(
        "INSERT INTO workspace_agents (id, workspace_id, build_id, name, display_order,"
        " kernel_name, external, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            agent_id,
            workspace_id,
            build_id,
            name,
            display_order,
            kernel_name,
            int(external),
            status,
            now,
            now,
        ),
    )
    agent = await get_agent(conn, agent_id)
    assert agent is not None
    return agent


async def get_agent(conn: Conn, agent_id: str) -> WorkspaceAgent | None:
    row = await conn.fetchone("SELECT * FROM workspace_agents WHERE id = ?", (agent_id,))
    return None if row is None else _agent(row)


async def agent_location(conn: Conn, agent_id: str) -> tuple[str, str] | None:
    """``(workspace_id, build_id)`` of an agent."""
    row = await conn.fetchone(
        "SELECT workspace_id, build_id FROM workspace_agents WHERE id = ?", (agent_id,)
    )
    return None if row is None else (row[0], row[1])


async def build_agents(conn: Conn, build_id: str) -> list[WorkspaceAgent]:
    rows = await conn.fetchall(
        "SELECT * FROM workspace_agents WHERE build_id = ? ORDER BY display_order, name, id",
        (build_id,),
    )
    return [_agent(r) for r in rows]


async def update_agent(conn: Conn, agent_id: str, **fields: Any) -> None:
    unknown = set(fields) - _AGENT_UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    sets = [f"{k} = ?" for k in fields] + ["updated_at = ?"]
    await conn.execute(
        f"UPDATE workspace_agents SET {', '.join(sets)} WHERE id = ?",
        [*fields.values(), utcnow(), agent_id],
    )


async def record_agent_status(conn: Conn, agent_id: str, status: AgentStatus) -> None:
    """Persist a liveness change; ``connected`` stamps first/last connected times."""
    now = utcnow()
    if status == "connected":
        await conn.execute(
            "UPDATE workspace_agents SET status = ?, first_connected_at ="
            " COALESCE(first_connected_at, ?), last_connected_at = ?, updated_at = ?"
            " WHERE id = ?",
            (status, now, now, now, agent_id),
        )
    else:
        await conn.execute(
            "UPDATE workspace_agents SET status = ?, updated_at = ? WHERE id = ?",
            (status, now, agent_id),
        )


async def running_agents(conn: Conn, workspace_id: str) -> list[tuple[str, WorkspaceAgent]]:
    """``(build_id, agent)`` of the workspace's agents that may still hold a kernel."""
    rows = await conn.fetchall(
        "SELECT * FROM workspace_agents WHERE workspace_id = ?"
        " AND (status != 'disconnected' OR kernel_id IS NOT NULL) ORDER BY created_at, id",
        (workspace_id,),
    )
    return [(r["build_id"], _agent(r)) for r in rows]


async def live_agent_ids(conn: Conn) -> list[str]:
    """Agents recorded as not disconnected (after a restart their kernels are gone)."""
    rows = await conn.fetchall("SELECT id FROM workspace_agents WHERE status != 'disconnected'")
    return [r[0] for r in rows]
