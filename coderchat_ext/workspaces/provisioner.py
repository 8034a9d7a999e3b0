"""The provisioner: runs workspace builds (``start|stop|delete``) as provisioner jobs
(docs/workspaces.md#builds).

Each job runs as an asyncio task owned by :class:`Provisioner`; :meth:`Provisioner.close`
cancels them (their jobs end ``canceled``). Every step writes build logs to
``provisioner_job_logs`` and publishes them on channel ``job:<job_id>`` as ``{"log": log}``;
the end of a job is published as ``{"job": job}``.

A start build: commit quota → create the workspace folder through the server's contents manager
(so it shows in the file browser, whatever backs the contents) → start one kernel per template
agent through the :class:`~coderchat_ext.workspaces.agents.AgentManager`, with the folder as
its working directory and a scrubbed environment (``environment.py``: no secret of the server
reaches a kernel, and so none reaches ``init``) → on the first start, write the template's
``files/`` through the primary agent → run ``init`` through the primary agent with the
parameters as environment variables, its output as build logs. Nothing reads or writes the
workspace folder from this process, so kernels on a gateway work the same. A stop build shuts
the kernels down (an attached external kernel is only detached); a delete build also removes
the folder.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import shlex
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from jupyter_core.utils import ensure_async
from tornado import web

from ..models import (
    INSUFFICIENT_QUOTA,
    AgentLifecycleState,
    JobStatus,
    LogLevel,
    ProvisionerJob,
    TemplateAgent,
    WorkspaceBuild,
)
from ..store import Database
from ..store import templates as store_templates
from ..store import workspaces as store_workspaces
from ..store.workspaces import WorkspaceRow
from .agents import AgentManager
from .quota import Quota, QuotaExceeded
from .templates import SandboxManifest, TemplateManifest, env_name, manifest_of

log = logging.getLogger(__name__)

INIT_TIMEOUT = 600.0
"""Seconds ``init`` may run before the agent's lifecycle becomes ``start_timeout`` (the
upstream's 10-minute startup-script wait, docs/workspaces.md#builds)."""
BUILD_CANCELED = "build was canceled"
"""The job error of a canceled build (docs/workspaces.md#provisioner-jobs)."""

STAGE_QUOTA = "Committing quota"
STAGE_DIRECTORY = "Creating workspace folder"
STAGE_AGENTS = "Starting agents"
STAGE_FILES = "Writing template files"
STAGE_INIT = "Running init script"
STAGE_STOP = "Stopping agents"
STAGE_DELETE = "Removing workspace folder"


class Publisher(Protocol):
    """The part of :class:`~coderchat_ext.chatd.pubsub.PubSub` the provisioner uses."""

    def publish(self, channel: str, message: Any) -> None: ...

    def subscribe(self, channel: str, listener: Callable[[Any], None]) -> Callable[[], None]: ...


def job_channel(job_id: str) -> str:
    return f"job:{job_id}"


class BuildFailed(Exception):
    """A build step failed; the message becomes the job's ``error``."""


class _Logs:
    """Writes a job's build logs and publishes each one."""

    def __init__(self, db: Database, pubsub: Publisher, job_id: str) -> None:
        self.db = db
        self.pubsub = pubsub
        self.job_id = job_id

    async def write(self, stage: str, lines: list[str], level: LogLevel = "info") -> None:
        if not lines:
            return
        async with self.db.tx() as conn:
            logs = [
                await store_workspaces.append_log(conn, self.job_id, line, level=level, stage=stage)
                for line in lines
            ]
        for entry in logs:
            self.pubsub.publish(job_channel(self.job_id), {"log": entry.dump()})

    async def info(self, stage: str, text: str) -> None:
        await self.write(stage, text.splitlines() or [""])

    async def warn(self, stage: str, text: str) -> None:
        await self.write(stage, text.splitlines() or [""], "warn")

    async def error(self, stage: str, text: str) -> None:
        await self.write(stage, text.splitlines() or [""], "error")


class _LineBuffer:
    """Turns streamed output chunks into whole lines of build log."""

    def __init__(self, logs: _Logs, stage: str) -> None:
        self.logs = logs
        self.stage = stage
        self._partial = ""

    async def feed(self, chunk: str) -> None:
        text = self._partial + chunk.replace("\r\n", "\n")
        *lines, self._partial = text.split("\n")
        await self.logs.write(self.stage, lines)

    async def flush(self) -> None:
        if self._partial:
            line, self._partial = self._partial, ""
            await self.logs.write(self.stage, [line])


def _init_command(script: str, parameters: dict[str, str]) -> str:
    """``init`` preceded by one ``export`` per parameter (``NAME='value'``)."""
    exports = "".join(
        f"export {env_name(name)}={shlex.quote(value)}\n" for name, value in parameters.items()
    )
    return exports + script


class Provisioner:
    """Runs provisioner jobs as tasks it owns.

    ``contents`` is the Jupyter server's contents manager; ``agents`` starts and calls the
    workspace kernels. ``init_timeout`` bounds ``init`` (seconds). ``force_sandbox`` runs
    every agent in the bubblewrap sandbox, whatever its template says, and fails the builds of
    external templates.
    """

    def __init__(
        self,
        db: Database,
        *,
        agents: AgentManager,
        contents: Any,
        quota: Quota,
        pubsub: Publisher,
        init_timeout: float = INIT_TIMEOUT,
        on_job_done: Callable[[WorkspaceBuild], Awaitable[None]] | None = None,
        force_sandbox: bool = False,
    ) -> None:
        self.db = db
        self.force_sandbox = force_sandbox
        self.agents = agents
        self.contents = contents
        self.quota = quota
        self.pubsub = pubsub
        self.init_timeout = init_timeout
        self.on_job_done = on_job_done
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    # --- lifecycle ------------------------------------------------------------------------

    async def recover(self) -> None:
        """After a restart: jobs that were active fail (their task died with the old
        process), and every agent is ``disconnected`` (the server stopped its kernels)."""
        async with self.db.tx() as conn:
            for job_id in await store_workspaces.active_jobs(conn):
                await store_workspaces.set_job_status(
                    conn, job_id, "failed", error="the server stopped during the build"
                )
                build = await store_workspaces.build_for_job(conn, job_id)
                if build is not None and build.transition == "start":
                    await store_workspaces.set_build_cost(conn, build.id, 0)
            for agent_id in await store_workspaces.live_agent_ids(conn):
                await store_workspaces.record_agent_status(conn, agent_id, "disconnected")

    def submit(self, job_id: str) -> None:
        """Run the (pending) job of a build in the background."""
        if self._closing:
            raise RuntimeError("the provisioner is closed")
        task = asyncio.ensure_future(self._run(job_id))
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    def is_active(self, job_id: str) -> bool:
        return job_id in self._tasks

    async def close(self) -> None:
        """Cancel every running job (each ends ``canceled``) and wait for them."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def wait(self, job_id: str, timeout: float | None = None) -> ProvisionerJob:
        """Wait until the job has a final status; returns it. Raises
        ``asyncio.TimeoutError`` after ``timeout`` seconds."""
        done = asyncio.get_running_loop().create_future()

        def listener(message: Any) -> None:
            if "job" in message and not done.done():
                done.set_result(None)

        unsubscribe = self.pubsub.subscribe(job_channel(job_id), listener)
        try:
            async with self.db.read() as conn:
                job = await store_workspaces.get_job(conn, job_id)
            if job is None:
                raise LookupError(f"no provisioner job {job_id}")
            if job.status in ("pending", "running", "canceling"):
                await asyncio.wait_for(asyncio.shield(done), timeout)
                async with self.db.read() as conn:
                    job = await store_workspaces.get_job(conn, job_id)
            assert job is not None
            return job
        finally:
            unsubscribe()

    # --- one job --------------------------------------------------------------------------

    async def _run(self, job_id: str) -> None:
        logs = _Logs(self.db, self.pubsub, job_id)
        async with self.db.tx() as conn:
            build = await store_workspaces.build_for_job(conn, job_id)
            assert build is not None, f"job {job_id} has no build"
            workspace = await store_workspaces.get_workspace_row(conn, build.workspace_id)
            version = await store_templates.get_version(conn, build.template_version_id)
            assert workspace is not None
            assert version is not None
            await store_workspaces.set_job_status(conn, job_id, "running")
        manifest = manifest_of(version.manifest)
        status: JobStatus = "succeeded"
        error: str | None = None
        error_code: str | None = None
        try:
            if build.transition == "start":
                await self._start(build, workspace, manifest, logs)
            elif build.transition == "stop":
                await self._stop_agents(workspace, logs)
            else:
                await self._stop_agents(workspace, logs)
                await self._remove_directory(workspace, logs)
        except asyncio.CancelledError:
            status, error = "canceled", BUILD_CANCELED
            await asyncio.shield(self._after_failed_start(build, workspace, logs, error))
        except QuotaExceeded as exc:
            status, error, error_code = "failed", str(exc), INSUFFICIENT_QUOTA
            await logs.error(STAGE_QUOTA, error)
        except BuildFailed as exc:
            status, error = "failed", str(exc)
            await self._after_failed_start(build, workspace, logs, error)
        except Exception as exc:
            log.exception("build %s of workspace %s failed", build.id, workspace.id)
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            await self._after_failed_start(build, workspace, logs, error)
        await asyncio.shield(self._finish(build, workspace, status, error, error_code))

    async def _finish(
        self,
        build: WorkspaceBuild,
        workspace: WorkspaceRow,
        status: JobStatus,
        error: str | None,
        error_code: str | None,
    ) -> None:
        async with self.db.tx() as conn:
            await store_workspaces.set_job_status(
                conn,
                build.job.id,
                status,
                error=error,
                error_code=error_code,
            )
            if status != "succeeded" and build.transition == "start":
                await store_workspaces.set_build_cost(conn, build.id, 0)
            if status == "succeeded" and build.transition == "delete":
                await store_workspaces.mark_deleted(conn, workspace.id)
            await store_workspaces.touch_workspace(conn, workspace.id)
            finished = await store_workspaces.get_build(conn, build.id)
        assert finished is not None
        self.pubsub.publish(job_channel(build.job.id), {"job": finished.job.dump()})
        if self.on_job_done is not None:
            try:
                await self.on_job_done(finished)
            except Exception:
                log.exception("job %s: completion hook failed", build.job.id)

    async def _after_failed_start(
        self, build: WorkspaceBuild, workspace: WorkspaceRow, logs: _Logs, error: str
    ) -> None:
        """Log the failure and stop the kernels a failed start already started."""
        with contextlib.suppress(Exception):
            await logs.error("Failed", error)
        if build.transition == "start":
            await self._stop_agents(workspace, logs, build_id=build.id, quiet=True)

    # --- start ----------------------------------------------------------------------------

    async def _start(
        self,
        build: WorkspaceBuild,
        workspace: WorkspaceRow,
        manifest: TemplateManifest,
        logs: _Logs,
    ) -> None:
        if manifest.external and self.force_sandbox:
            raise BuildFailed(
                "this server runs every agent in a bubblewrap sandbox (CoderChatApp.sandbox) "
                "and the kernel of an external template cannot be sandboxed"
            )
        sandbox = manifest.sandbox or (SandboxManifest() if self.force_sandbox else None)
        async with self.db.tx() as conn:
            await self.quota.commit(
                conn,
                owner=workspace.owner,
                workspace_id=workspace.id,
                build_id=build.id,
                daily_cost=manifest.daily_cost,
            )
        if manifest.daily_cost:
            await logs.info(STAGE_QUOTA, f"Charged {manifest.daily_cost} credits per day.")
        # A start of a running workspace replaces its agents (a restart).
        await self._stop_agents(workspace, logs, quiet=True, keep_build=build.id)
        await self._ensure_directory(workspace.directory, logs)
        agents = await self._create_agents(
            build, workspace, manifest.agents, external=manifest.external
        )
        if manifest.external:
            await logs.info(
                STAGE_AGENTS,
                "This template's agent is external: attach a running kernel to the workspace "
                "(%chat attach in a notebook, or POST workspaces/{id}/attach).",
            )
            return
        for agent_id, spec in agents:
            await logs.info(STAGE_AGENTS, f"Starting agent {spec.name} (kernel {spec.kernel})...")
            env = {env_name(name): value for name, value in build.parameters.items()}
            env.update(
                CODERCHAT_WORKSPACE_ID=workspace.id,
                CODERCHAT_WORKSPACE_NAME=workspace.name,
                CODERCHAT_AGENT_NAME=spec.name,
            )
            if sandbox:
                # The kernel then imports nothing from its folder at start (Python >= 3.11),
                # where a sandboxed command could plant an ipykernel_launcher.py.
                env["PYTHONSAFEPATH"] = "1"
            try:
                kernel_id = await self.agents.start(
                    agent_id,
                    kernel_name=spec.kernel,
                    path=workspace.directory,
                    env=env,
                    env_passthrough=manifest.env_passthrough,
                    sandbox=sandbox.runtime() if sandbox else None,
                )
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await self.agents.shutdown(agent_id)
                raise BuildFailed(
                    f"agent {spec.name}: kernel {spec.kernel} did not start: {exc}"
                ) from exc
            async with self.db.tx() as conn:
                await store_workspaces.update_agent(conn, agent_id, kernel_id=kernel_id)
            await logs.info(STAGE_AGENTS, f"Agent {spec.name} connected (kernel {kernel_id}).")
        primary = agents[0][0]
        if workspace.files_version_id is None:
            await self._write_files(primary, workspace, build.template_version_id, logs)
        await self._run_init(primary, [a for a, _ in agents], manifest, build.parameters, logs)

    async def _create_agents(
        self,
        build: WorkspaceBuild,
        workspace: WorkspaceRow,
        specs: list[TemplateAgent],
        *,
        external: bool,
    ) -> list[tuple[str, TemplateAgent]]:
        ordered = sorted(specs, key=lambda a: (a.display_order, a.name.lower(), a.name))
        created = []
        async with self.db.tx() as conn:
            for spec in ordered:
                agent = await store_workspaces.insert_agent(
                    conn,
                    workspace_id=workspace.id,
                    build_id=build.id,
                    name=spec.name,
                    display_order=spec.display_order,
                    kernel_name="" if external else spec.kernel,
                    external=external,
                    status="disconnected" if external else "connecting",
                )
                created.append((agent.id, spec))
        return created

    async def _ensure_directory(self, path: str, logs: _Logs) -> None:
        """Create ``path`` and its parents through the contents manager."""
        cm = self.contents
        parts = [p for p in path.strip("/").split("/") if p]
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if await ensure_async(cm.dir_exists(prefix)):
                continue
            if await ensure_async(cm.file_exists(prefix)):
                raise BuildFailed(f"cannot create the workspace folder: {prefix} is a file")
            try:
                await ensure_async(cm.save({"type": "directory"}, prefix))
            except web.HTTPError as exc:
                raise BuildFailed(
                    f"cannot create the workspace folder {prefix}: {exc.log_message or exc}"
                ) from None
            if depth == len(parts):
                await logs.info(STAGE_DIRECTORY, f"Created {prefix}/")

    async def _write_files(
        self, agent_id: str, workspace: WorkspaceRow, version_id: str, logs: _Logs
    ) -> None:
        async with self.db.read() as conn:
            files = await store_templates.version_files(conn, version_id)
        if files:
            await logs.info(STAGE_FILES, f"Writing {len(files)} template files...")
        for f in files:
            try:
                args: dict[str, Any] = {"path": f.path}
                try:
                    args["content"] = f.content.decode("utf-8")
                except UnicodeDecodeError:
                    args["content"] = base64.b64encode(f.content).decode()
                    args["encoding"] = "base64"
                await self.agents.call(agent_id, "write_file", args)
            except Exception as exc:
                raise BuildFailed(f"writing {f.path}: {exc}") from exc
            await logs.info(STAGE_FILES, f"  {f.path}")
        executables = [f.path for f in files if f.executable]
        if executables:
            command = "chmod +x " + " ".join(shlex.quote(p) for p in executables)
            result = await self.agents.call(agent_id, "execute", {"command": command})
            if isinstance(result, dict) and result.get("exit_code") not in (0, None):
                raise BuildFailed(f"chmod of template files failed: {result.get('output', '')}")
        async with self.db.tx() as conn:
            await store_workspaces.set_files_version(conn, workspace.id, version_id)

    async def _set_lifecycle(self, agent_ids: list[str], state: AgentLifecycleState) -> None:
        async with self.db.tx() as conn:
            for agent_id in agent_ids:
                await store_workspaces.update_agent(conn, agent_id, lifecycle_state=state)

    async def _run_init(
        self,
        primary: str,
        agent_ids: list[str],
        manifest: TemplateManifest,
        parameters: dict[str, str],
        logs: _Logs,
    ) -> None:
        """Run ``init`` on the primary agent. Its failure does not fail the build: the
        workspace stays usable and the agent's lifecycle says ``start_error`` or
        ``start_timeout`` (Coder's startup scripts)."""
        if not manifest.init:
            await self._set_lifecycle(agent_ids, "ready")
            return
        await self._set_lifecycle([primary], "starting")
        await logs.info(STAGE_INIT, "$ init")
        lines = _LineBuffer(logs, STAGE_INIT)
        streamed = False

        async def on_output(chunk: str) -> None:
            nonlocal streamed
            streamed = True
            await lines.feed(chunk)

        seconds = int(self.init_timeout)
        try:
            result = await self.agents.call(
                primary,
                "execute",
                {"command": _init_command(manifest.init, parameters), "timeout": f"{seconds}s"},
                on_output=on_output,
                timeout=self.init_timeout + 30,
            )
        except Exception as exc:
            await lines.flush()
            raise BuildFailed(f"init could not run: {exc}") from exc
        await lines.flush()
        result = result if isinstance(result, dict) else {}
        if not streamed and result.get("output"):
            await logs.write(STAGE_INIT, str(result["output"]).splitlines())
        others = [a for a in agent_ids if a != primary]
        if result.get("background_process_id"):
            with contextlib.suppress(Exception):
                await self.agents.call(
                    primary,
                    "process_signal",
                    {"process_id": result["background_process_id"], "signal": "kill"},
                )
            await logs.warn(STAGE_INIT, f"init timed out after {seconds}s and was stopped.")
            await self._set_lifecycle([primary], "start_timeout")
        elif result.get("exit_code", 0) != 0:
            await logs.warn(STAGE_INIT, f"init exited with code {result.get('exit_code')}.")
            await self._set_lifecycle([primary], "start_error")
        else:
            await logs.info(STAGE_INIT, "init finished.")
            await self._set_lifecycle([primary], "ready")
        await self._set_lifecycle(others, "ready")

    # --- stop and delete ------------------------------------------------------------------

    async def _stop_agents(
        self,
        workspace: WorkspaceRow,
        logs: _Logs,
        *,
        build_id: str | None = None,
        keep_build: str | None = None,
        quiet: bool = False,
    ) -> None:
        """Shut down the workspace's kernels (only ``build_id``'s when given, all but
        ``keep_build``'s otherwise); an external agent's kernel is detached, not stopped."""
        async with self.db.read() as conn:
            running = await store_workspaces.running_agents(conn, workspace.id)
        stopped: list[str] = []
        for agent_build, agent in running:
            if build_id is not None and agent_build != build_id:
                continue
            if keep_build is not None and agent_build == keep_build:
                continue
            if self.agents.kernel_id(agent.id) is not None and not quiet:
                await logs.info(STAGE_STOP, f"Stopping agent {agent.name}...")
            try:
                # Both forget an agent the manager does not know (e.g. after a restart).
                if agent.external:
                    await self.agents.detach(agent.id)
                else:
                    await self.agents.shutdown(agent.id)
            except Exception as exc:
                await logs.warn(STAGE_STOP, f"agent {agent.name}: {exc}")
            stopped.append(agent.id)
        if stopped:
            async with self.db.tx() as conn:
                for agent_id in stopped:
                    await store_workspaces.record_agent_status(conn, agent_id, "disconnected")
                    await store_workspaces.update_agent(
                        conn, agent_id, lifecycle_state="off", kernel_id=None
                    )
        if not quiet:
            await logs.info(STAGE_STOP, "Agents stopped." if stopped else "No running agents.")

    async def _remove_directory(self, workspace: WorkspaceRow, logs: _Logs) -> None:
        """Remove the folder through the contents manager; a folder it will not remove whole
        (trash disabled, non-empty) is emptied entry by entry first."""
        cm = self.contents
        path = workspace.directory.strip("/")
        if not await ensure_async(cm.dir_exists(path)):
            await logs.info(STAGE_DELETE, f"{path}/ is already gone.")
            return
        try:
            await self._delete_tree(path)
        except web.HTTPError as exc:
            await logs.warn(STAGE_DELETE, f"{path}/ could not be removed: {exc.log_message or exc}")
            return
        await logs.info(STAGE_DELETE, f"Removed {path}/")

    async def _delete_tree(self, path: str) -> None:
        cm = self.contents
        try:
            await ensure_async(cm.delete(path))
            return
        except web.HTTPError as exc:
            if exc.status_code != 400:
                raise
        model = await ensure_async(cm.get(path, content=True))
        for entry in model.get("content") or []:
            if entry["type"] == "directory":
                await self._delete_tree(entry["path"])
            else:
                await ensure_async(cm.delete(entry["path"]))
        await ensure_async(cm.delete(path))
