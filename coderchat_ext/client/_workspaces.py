"""Template, workspace, build, build-log and attach endpoints (docs/workspaces.md,
docs/api.md#workspaces; ``server/handlers.py``, ``server/ws.py`` ``JobLogsSocket``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

from ..models import (
    BuildTransition,
    ProvisionerJobLog,
    Template,
    TemplateDetail,
    Workspace,
    WorkspaceAgent,
    WorkspaceBuild,
)
from ._errors import BuildTimeout
from ._transport import Transport, compact, json_frame, parse_list, segment, validate_event
from ._types import StreamMarker

ParameterValue = str | int | float | bool | Sequence[str]
"""A template parameter value; the server stores numbers in decimal, booleans as
``true``/``false`` and string lists as a JSON array."""

JOB_ACTIVE = ("pending", "running", "canceling")
"""Provisioner job statuses of a build that has not ended."""
CLOSE_JOB_DONE = 1000
"""Close code of a job-log feed whose job has ended (``server/ws.py`` ``JobLogsSocket``)."""
BUILD_POLL_INTERVAL = 0.2
"""Seconds between the workspace reads of :meth:`WorkspacesApi.wait_for_build`."""


def _parameters(values: Mapping[str, ParameterValue] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: v if isinstance(v, str | int | float | bool) else list(v) for k, v in values.items()}


class WorkspacesApi(Transport):
    """Templates, workspaces, builds, build logs and external kernels. Each raises
    :class:`ApiError`: 404 for a template, workspace or job the caller cannot see; 400 with
    one ``validations`` entry per refused parameter or field; 409 for a workspace in the
    wrong state."""

    async def list_templates(self) -> list[Template]:
        """``GET templates``: the templates of the caller's organizations that chats may use
        (administrators see every template, with ``allowlisted`` set). 500 when the stored
        allowlist is corrupt."""
        return parse_list(Template, await self.request("GET", "templates"))

    async def get_template(self, template_id: str) -> TemplateDetail:
        """``GET templates/{id}`` -> the template with its active version's parameters,
        presets and agents. 404 "Template not found." (also when not allowlisted or of
        another organization)."""
        data = await self.request("GET", f"templates/{segment(template_id)}")
        return TemplateDetail.model_validate(data)

    async def list_workspaces(self) -> list[Workspace]:
        """``GET workspaces``: the caller's workspaces with their latest build, most recently
        updated first."""
        return parse_list(Workspace, await self.request("GET", "workspaces"))

    async def create_workspace(
        self,
        template_id: str,
        *,
        name: str | None = None,
        parameters: Mapping[str, ParameterValue] | None = None,
        preset_id: str | None = None,
    ) -> Workspace:
        """``POST workspaces`` -> the new :class:`Workspace`; its first start build runs in
        the background (wait with :meth:`wait_for_build`). ``name`` (1-32 letters, digits and
        inner hyphens; default: the template name and 4 hex digits) names the workspace
        folder; ``preset_id`` is a preset id or name (default: the template's default
        preset). 400 "Invalid parameters." with ``validations``, or a template off the
        allowlist; 404 "Template not found."; 409 when the name is taken."""
        body = {
            "template_id": template_id,
            **compact(
                {"name": name, "parameters": _parameters(parameters), "preset_id": preset_id}
            ),
        }
        return Workspace.model_validate(await self.request("POST", "workspaces", body=body))

    async def get_workspace(self, workspace_id: str) -> Workspace:
        """``GET workspaces/{id}`` -> the workspace with its latest build, job and agents
        (deleted ones too). 404 "Workspace not found." (also for another owner's)."""
        data = await self.request("GET", f"workspaces/{segment(workspace_id)}")
        return Workspace.model_validate(data)

    async def create_build(
        self,
        workspace_id: str,
        transition: BuildTransition,
        *,
        parameters: Mapping[str, ParameterValue] | None = None,
        preset_id: str | None = None,
    ) -> WorkspaceBuild:
        """``POST workspaces/{id}/builds``: start, stop or delete a workspace -> the pending
        :class:`WorkspaceBuild` (it runs in the background: :meth:`wait_for_build`). A start
        uses the template's active version and the previous build's values for parameters
        not given; a start over the owner's quota fails its job with ``error_code``
        ``INSUFFICIENT_QUOTA``. 400 for an invalid transition or parameters; 409 while a
        build runs, for a deleted workspace, or starting a running (stopping a stopped)
        one."""
        body = {
            "transition": transition,
            **compact({"parameters": _parameters(parameters), "preset_id": preset_id}),
        }
        data = await self.request("POST", f"workspaces/{segment(workspace_id)}/builds", body=body)
        return WorkspaceBuild.model_validate(data)

    async def wait_for_build(self, workspace_id: str, *, timeout: float = 300.0) -> Workspace:
        """Read the workspace every 0.2 s until its latest build's job has ended
        (``succeeded``, ``failed`` or ``canceled``) -> the workspace then. A failed build is
        not an exception: check ``latest_build.job.status`` and ``error``. Raises
        :class:`BuildTimeout` after ``timeout`` seconds (the build keeps running) and
        :class:`ApiError` as :meth:`get_workspace`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            workspace = await self.get_workspace(workspace_id)
            if workspace.latest_build.job.status not in JOB_ACTIVE:
                return workspace
            if loop.time() >= deadline:
                raise BuildTimeout(workspace_id, timeout)
            await asyncio.sleep(min(BUILD_POLL_INTERVAL, max(0.0, deadline - loop.time())))

    async def get_job_logs(self, job_id: str, *, after: int = 0) -> list[ProvisionerJobLog]:
        """``GET jobs/{id}/logs?after=N``: the build logs of a provisioner job (a build's
        ``job.id``) with ``id > after``, oldest first. 404 "Provisioner job not found."."""
        data = await self.request("GET", f"jobs/{segment(job_id)}/logs", params={"after": after})
        return parse_list(ProvisionerJobLog, data)

    async def follow_job_logs(
        self, job_id: str, *, after: int = 0, reconnect: bool = True
    ) -> AsyncGenerator[ProvisionerJobLog, None]:
        """Follow a job's build logs over the ``GET jobs/{id}/logs?follow=1`` WebSocket:
        ``async for log in client.follow_job_logs(job_id)`` yields the logs with
        ``id > after``, then each new one, and ends when the server closes the socket
        because the job has ended (at once, after the replay, for a finished job).

        A dropped connection is reopened (backoff as :meth:`stream`) after the last log
        seen, so no log is lost or repeated; with ``reconnect=False`` the iteration ends
        instead. Raises :class:`ApiError` when the server refuses the socket (404 for an
        unknown job)."""
        cursor = after

        def query(_: StreamMarker | None) -> dict[str, Any]:
            return {"follow": "1", "after": cursor}

        async for _, frame in self._frames(
            f"jobs/{segment(job_id)}/logs",
            query,
            reconnect=reconnect,
            final_codes=(CLOSE_JOB_DONE,),
        ):
            if isinstance(frame, StreamMarker):
                continue
            entry = validate_event(ProvisionerJobLog, json_frame(frame))
            if entry is not None and entry.id > cursor:
                cursor = entry.id
                yield entry

    async def attach_kernel(
        self, workspace_id: str, kernel_id: str, *, agent: str | None = None
    ) -> WorkspaceAgent:
        """``POST workspaces/{id}/attach``: make the running kernel ``kernel_id`` (of this
        Jupyter server) the external agent ``agent`` (default: the first) of a running
        workspace of an external template -> the agent, ``connected``. The server reaches
        the kernel on its control channel, so this waits until the kernel answers (a kernel
        attaching itself must not block on this call: use ``ChatClient.submit``). 400 "Cannot
        attach the kernel." (no such kernel), or for a workspace without an external agent;
        409 when the workspace is not running or was deleted."""
        body = {"kernel_id": kernel_id, **compact({"agent": agent})}
        data = await self.request("POST", f"workspaces/{segment(workspace_id)}/attach", body=body)
        return WorkspaceAgent.model_validate(data)
