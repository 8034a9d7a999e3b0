"""Workspace operations behind the API and the workspace tools
(docs/api.md#workspaces, docs/workspaces.md).

:class:`WorkspaceService` owns the template catalog, the quota, the provisioner and the
:class:`~coderchat_ext.workspaces.agents.AgentManager`. Handlers call its API methods with the
caller (anything with ``username`` and ``is_admin``); the workspace tools call its chat
methods, which follow docs/workspaces.md#create_workspace and answer with the tool results of
docs/workspaces.md#tools (text errors raise :class:`ToolFailure`); the file and process tools find
their agent through :meth:`WorkspaceService.agent_for_chat` (docs/workspaces.md#agent-selection).

Rules every path shares: a template is usable when it is not deprecated, the caller belongs to
its organization and it is on the chat template allowlist (``config/template-allowlist``, empty
= all, docs/api.md#configuration); a workspace of another owner is "not found".
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

from jupyter_core.utils import ensure_async

from .. import errors as E
from ..models import (
    INSUFFICIENT_QUOTA,
    AgentStatus,
    AttachKernelRequest,
    Chat,
    CreateWorkspaceBuildRequest,
    CreateWorkspaceRequest,
    ProvisionerJob,
    ProvisionerJobLog,
    Template,
    TemplateDetail,
    TemplateParameter,
    TemplatePreset,
    Workspace,
    WorkspaceAgent,
    WorkspaceBuild,
    parse_uuid,
    workspace_name_problem,
)
from ..store import Database
from ..store import chats as store_chats
from ..store import configs as store_configs
from ..store import templates as store_templates
from ..store import workspaces as store_workspaces
from ..store.db import Conn
from ..store.workspaces import WorkspaceRow
from .agents import (
    AGENT_DISCONNECTED,
    AGENT_TIMEOUT,
    NO_RUNNING_AGENT,
    NO_WORKSPACE,
    AgentHandle,
    AgentManager,
    AgentUnavailable,
)
from .environment import SecretSource
from .provisioner import BUILD_CANCELED, Provisioner, Publisher, job_channel
from .quota import Quota, QuotaUsage, insufficient_quota_payload
from .templates import (
    BUILTIN_TEMPLATES,
    ParameterError,
    TemplateCatalog,
    TemplateManifest,
    manifest_of,
    resolve_parameters,
    value_string,
)

log = logging.getLogger(__name__)

# Upstream's connection errors (docs/workspaces.md#connection-errors) are in .agents; this one
# is for external agents.
EXTERNAL_AGENT_OFFLINE = (
    "the workspace's agent is external and no kernel is attached to it. Ask the user to attach "
    "a running kernel: `%chat attach` in the notebook whose kernel should run the tools, or "
    "POST api/coderchat/workspaces/{workspace_id}/attach with its kernel_id"
)
# Agent selection (docs/workspaces.md#agent-selection, with the suffix "-chat").
CHAT_AGENT_SUFFIX = "-chat"
NO_ELIGIBLE_AGENTS = "no eligible workspace agents found"
WORKSPACE_CHANGED = "chat workspace changed while resolving agent"
# Workspace tools (docs/workspaces.md#tools, docs/workspaces.md#create_workspace).
TEMPLATE_ID_REQUIRED = "template_id is required; use list_templates to find one"
TEMPLATE_NOT_ALLOWED = (
    "template not available for chat workspaces; use list_templates to find allowed templates"
)
TEMPLATE_OTHER_ORG = (
    "template belongs to a different organization than this chat; use list_templates to find "
    "a template of the chat's organization"
)
TEMPLATE_NOT_FOUND = "template not found"
TEMPLATE_EXTERNAL = (
    "template {name} uses an external agent, so a chat cannot create a workspace from it: pick "
    "another template with list_templates, or ask the user to create the workspace themselves "
    "and attach a kernel to it (then bind it to this chat)"
)
CHAT_HAS_NO_WORKSPACE = "chat has no workspace; use create_workspace first"
WORKSPACE_DELETED = "workspace was deleted; use create_workspace to make a new one"
NEEDS_PARAMETERS = (
    "The template's active version needs parameter values this workspace does not have. Call "
    "read_template with template_id to see the parameters, then call start_workspace again "
    "with parameters. Ask the user if you are unsure which values to use."
)

LIST_TEMPLATES_PAGE_SIZE = 10
TEMPLATE_DESCRIPTION_RUNES = 200
PARAMETER_DESCRIPTION_RUNES = 300
BUILD_WAIT_TIMEOUT = 600.0
"""Seconds the tools wait for a build (docs/workspaces.md#create_workspace: 10 minutes)."""
GENERATED_SLUG_MAX = 27

_UNREACHABLE: dict[AgentStatus, str] = {
    "disconnected": AGENT_DISCONNECTED,
    "timeout": AGENT_TIMEOUT,
}


class Caller(Protocol):
    """Who is calling (``chatd.service.Actor`` fits)."""

    @property
    def username(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


class ToolFailure(Exception):
    """A workspace tool's text error (docs/workspaces.md#tools); ``str(exc)`` is what the model
    sees."""


Emit = Callable[[str], Awaitable[None]]
ChatChanged = Callable[[Chat], None]


def select_agent(agents: list[WorkspaceAgent]) -> WorkspaceAgent:
    """The agent a chat uses (docs/workspaces.md#agent-selection): agents sorted by display
    order, lower-case name, name, id; the one whose name ends with ``-chat`` (any case) if exactly
    one does, else the first. Raises :class:`AgentUnavailable` when none or several match."""
    if not agents:
        raise AgentUnavailable(NO_ELIGIBLE_AGENTS)
    ordered = sorted(agents, key=lambda a: (a.display_order, a.name.lower(), a.name, a.id))
    matching = [a for a in ordered if a.name.lower().endswith(CHAT_AGENT_SUFFIX)]
    if len(matching) > 1:
        names = ", ".join(a.name for a in matching)
        raise AgentUnavailable(
            f'multiple agents match the chat suffix "{CHAT_AGENT_SUFFIX}": {names}; only one '
            "agent should use this suffix"
        )
    return matching[0] if matching else ordered[0]


def _truncate(text: str | None, runes: int) -> str | None:
    if not text:
        return None
    return text if len(text) <= runes else text[: runes - 1] + "…"


def _parameter_values(raw: Any, field: str = "parameters") -> dict[str, str]:
    """API/tool parameter values -> strings (numbers, booleans and string lists allowed)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ParameterError([(field, "must be an object of parameter values")])
    out: dict[str, str] = {}
    problems = []
    for key, value in raw.items():
        scalar = isinstance(value, (str, bool, int, float))
        if scalar or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            out[str(key)] = value_string(value)
        else:
            problems.append((str(key), "must be a string, number, boolean or list of strings"))
    if problems:
        raise ParameterError(problems)
    return out


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:GENERATED_SLUG_MAX].strip("-")
    return slug or "workspace"


class WorkspaceService:
    """Templates, workspaces, builds, job logs, agents and the chat binding.

    ``kernel_manager`` and ``contents`` are the Jupyter server's; ``workspace_root`` is the
    contents-API path under which workspace folders are made; ``force_sandbox`` runs every
    agent's commands under bubblewrap (``CoderChatApp.sandbox``); ``on_chat_changed`` publishes a
    ``status_change`` watch event for a chat whose binding changed; ``secret_values`` are kept
    out of the agents' kernel environments.
    """

    def __init__(
        self,
        db: Database,
        *,
        kernel_manager: Any,
        contents: Any,
        pubsub: Publisher,
        template_paths: list[str] | None = None,
        workspace_root: str = "workspaces",
        groups: Mapping[str, Any] | None = None,
        agent_inactive_timeout: float = 120.0,
        force_sandbox: bool = False,
        on_chat_changed: ChatChanged | None = None,
        build_wait_timeout: float = BUILD_WAIT_TIMEOUT,
        secret_values: SecretSource | None = None,
    ) -> None:
        self.db = db
        self.contents = contents
        self.pubsub = pubsub
        self.workspace_root = workspace_root.strip("/")
        self.on_chat_changed = on_chat_changed
        self.build_wait_timeout = build_wait_timeout
        self.catalog = TemplateCatalog(db, [BUILTIN_TEMPLATES, *(template_paths or [])])
        self.quota = Quota(groups or {})
        self.agents = AgentManager(
            kernel_manager,
            inactive_timeout=agent_inactive_timeout,
            on_status=self.on_agent_status,
            log=log,
            secrets=secret_values,
        )
        self.provisioner = Provisioner(
            db,
            agents=self.agents,
            contents=contents,
            quota=self.quota,
            pubsub=pubsub,
            force_sandbox=force_sandbox,
        )
        self._chat_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._create_lock = asyncio.Lock()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Sync the templates and recover from a restart (see ``Provisioner.recover``)."""
        await self.catalog.refresh(force=True)
        await self.provisioner.recover()

    async def close(self) -> None:
        """Cancel running builds and let go of every agent."""
        await self.provisioner.close()
        await self.agents.close()

    async def on_agent_status(self, agent_id: str, status: AgentStatus) -> None:
        """Persist an agent's liveness change (``AgentManager`` ``on_status``)."""
        async with self.db.tx() as conn:
            await store_workspaces.record_agent_status(conn, agent_id, status)

    # --- access rules ---------------------------------------------------------------------

    async def _allowlist(self, conn: Conn) -> set[str] | None:
        """The allowlisted template ids; None when the list is empty (all allowed)."""
        raw = await store_configs.get_site(conn, store_configs.TEMPLATE_ALLOWLIST)
        if not raw:
            return None
        try:
            ids = json.loads(raw)
            if not isinstance(ids, list):
                raise ValueError
        except ValueError:
            raise E.InternalError("Stored template allowlist is corrupt.") from None
        return {str(i) for i in ids} or None

    async def template_lookup(self, template_ids: list[str]) -> set[str]:
        """``SettingsService.template_lookup``: the ids of templates that exist and are not
        deprecated."""
        await self.catalog.refresh()
        async with self.db.read() as conn:
            return await store_templates.existing_ids(conn, template_ids)

    async def workspace_check(
        self, conn: Conn, actor: Caller, workspace_id: str, organization_id: str
    ) -> None:
        """``ChatService.workspace_check``: a chat may be bound to a workspace of its owner in
        its organization that is not deleted. Runs in the caller's transaction."""
        row = await store_workspaces.get_workspace_row(conn, workspace_id)
        if row is None or row.deleted or row.owner != actor.username:
            raise E.BadRequest("Workspace not found or you do not have access to this resource")
        if row.organization_id != organization_id:
            raise E.BadRequest(
                "Workspace belongs to a different organization than this chat.",
                f'Workspace "{row.name}" is in another organization.',
            )

    # --- templates ------------------------------------------------------------------------

    async def list_templates(self, actor: Caller) -> list[Template]:
        """``GET templates``: the templates of the caller's organizations. Administrators see
        every one with ``allowlisted``; others see the allowlisted ones only."""
        await self.catalog.refresh()
        async with self.db.read() as conn:
            orgs = await store_configs.member_organizations(conn, actor.username)
            templates = await store_templates.list_templates(conn, orgs)
            allowlist = await self._allowlist(conn)
        out = []
        for template in templates:
            allowed = allowlist is None or template.id in allowlist
            if actor.is_admin:
                out.append(template.model_copy(update={"allowlisted": allowed}))
            elif allowed:
                out.append(template)
        return out

    async def _template_for(
        self, conn: Conn, actor: Caller, template_id: Any
    ) -> tuple[Template, TemplateManifest]:
        """A template the caller may see (404 otherwise) and its active manifest."""
        tid = parse_uuid(template_id)
        template = await store_templates.get_template(conn, tid) if tid else None
        missing = E.NotFound("Template not found.", f'No template with ID "{template_id}".')
        if template is None or await store_templates.is_deprecated(conn, template.id):
            raise missing
        member_of = await store_configs.member_organizations(conn, actor.username)
        if template.organization_id not in member_of:
            raise missing
        allowlist = await self._allowlist(conn)
        allowed = allowlist is None or template.id in allowlist
        if not allowed and not actor.is_admin:
            raise missing
        version = await store_templates.get_version(conn, template.active_version_id)
        assert version is not None
        if actor.is_admin:
            template = template.model_copy(update={"allowlisted": allowed})
        return template, manifest_of(version.manifest)

    async def get_template(self, actor: Caller, template_id: str) -> TemplateDetail:
        """``GET templates/{id}``: the template with its parameters, presets and agents."""
        await self.catalog.refresh()
        async with self.db.read() as conn:
            template, manifest = await self._template_for(conn, actor, template_id)
        return TemplateDetail(
            **template.model_dump(),
            parameters=manifest.parameters,
            presets=manifest.presets_for(template.id),
            agents=manifest.agents,
            init=manifest.init,
        )

    # --- workspaces (API) -----------------------------------------------------------------

    async def list_workspaces(self, actor: Caller) -> list[Workspace]:
        async with self.db.read() as conn:
            return await store_workspaces.list_workspaces(conn, owner=actor.username)

    async def _owned(self, conn: Conn, actor: Caller, workspace_id: Any) -> WorkspaceRow:
        wid = parse_uuid(workspace_id)
        row = await store_workspaces.get_workspace_row(conn, wid) if wid else None
        if row is None or row.owner != actor.username:
            raise E.NotFound("Workspace not found.", f'No workspace with ID "{workspace_id}".')
        return row

    async def get_workspace(self, actor: Caller, workspace_id: str) -> Workspace:
        """``GET workspaces/{id}`` (deleted ones too: their status is ``deleted``)."""
        async with self.db.read() as conn:
            row = await self._owned(conn, actor, workspace_id)
            workspace = await store_workspaces.get_workspace(conn, row.id)
        assert workspace is not None
        return workspace

    async def create_workspace(self, actor: Caller, request: CreateWorkspaceRequest) -> Workspace:
        """``POST workspaces`` -> 201 with the first (start) build pending. 400 with
        ``validations`` for bad parameters, 404 for a template the caller cannot use, 409 when
        the name is taken."""
        given = _parameter_values(request.parameters)
        name = request.name
        await self.catalog.refresh()
        async with self.db.read() as conn:
            template, manifest = await self._template_for(conn, actor, request.template_id)
            allowlist = await self._allowlist(conn)
        if allowlist is not None and template.id not in allowlist:
            raise E.BadRequest(
                "Template is not on the chat template allowlist.",
                "An administrator can add it with PUT config/template-allowlist.",
            )
        try:
            workspace, _ = await self._create(
                owner=actor.username,
                template=template,
                manifest=manifest,
                name=name or None,
                given=given,
                preset_id=request.preset_id,
            )
        except ParameterError as exc:
            raise E.BadRequest("Invalid parameters.", validations=exc.validations) from None
        except _NameProblem as exc:
            raise (E.Conflict if exc.taken else E.BadRequest)(
                str(exc), validations=[("name", str(exc))]
            ) from None
        return workspace

    async def create_build(
        self, actor: Caller, workspace_id: str, request: CreateWorkspaceBuildRequest
    ) -> WorkspaceBuild:
        """``POST workspaces/{id}/builds`` -> 201 with the pending build. 409 while a build
        runs, for a deleted workspace, for starting a running one or stopping a stopped one."""
        transition = request.transition
        given = _parameter_values(request.parameters)
        async with self.db.read() as conn:
            row = await self._owned(conn, actor, workspace_id)
        try:
            return await self._build(
                row,
                transition,
                initiator=actor.username,
                given=given,
                preset_id=request.preset_id,
                refuse_running=True,
            )
        except ParameterError as exc:
            raise E.BadRequest("Invalid parameters.", validations=exc.validations) from None
        except _StateProblem as exc:
            raise E.Conflict(str(exc)) from None

    async def attach(
        self, actor: Caller, workspace_id: str, request: AttachKernelRequest
    ) -> WorkspaceAgent:
        """``POST workspaces/{id}/attach``: make a running kernel the workspace's external
        agent. 400 when the workspace has no external agent or the kernel does not exist, 409
        when the workspace is not running."""
        kernel_id = request.kernel_id
        async with self.db.read() as conn:
            row = await self._owned(conn, actor, workspace_id)
            build = await store_workspaces.latest_build(conn, row.id)
        assert build is not None
        if row.deleted:
            raise E.Conflict("Workspace was deleted.")
        if build.transition != "start" or build.job.status != "succeeded":
            raise E.Conflict(
                "Workspace is not running; start it first.",
                f"Its latest build is a {build.transition} that is {build.job.status}.",
            )
        external = [a for a in build.agents if a.external]
        if not external:
            raise E.BadRequest(
                "Workspace has no external agent.",
                "Only workspaces of templates with external = true accept a kernel.",
            )
        wanted = request.agent
        agent = next((a for a in external if a.name == wanted), None) if wanted else external[0]
        if agent is None:
            raise E.BadRequest(
                "No such external agent.", validations=[("agent", f"no external agent {wanted!r}")]
            )
        try:
            await self.agents.attach(agent.id, kernel_id)
        except Exception as exc:
            raise E.BadRequest("Cannot attach the kernel.", str(exc)) from None
        async with self.db.tx() as conn:
            await store_workspaces.update_agent(
                conn, agent.id, kernel_id=kernel_id, lifecycle_state="ready"
            )
            await store_workspaces.record_agent_status(conn, agent.id, "connected")
            attached = await store_workspaces.get_agent(conn, agent.id)
        assert attached is not None
        return attached

    # --- job logs -------------------------------------------------------------------------

    async def _owned_job(self, conn: Conn, actor: Caller, job_id: Any) -> ProvisionerJob:
        jid = parse_uuid(job_id)
        owner = await store_workspaces.job_owner(conn, jid) if jid else None
        job = await store_workspaces.get_job(conn, jid) if jid and owner else None
        if job is None or owner is None or owner[0] != actor.username:
            raise E.NotFound("Provisioner job not found.", f'No job with ID "{job_id}".')
        return job

    async def job_logs(self, actor: Caller, job_id: str, after: int) -> list[ProvisionerJobLog]:
        """``GET jobs/{id}/logs?after=N``: the job's logs with ``id > after``."""
        async with self.db.read() as conn:
            job = await self._owned_job(conn, actor, job_id)
            return await store_workspaces.list_logs(conn, job.id, after=after)

    async def follow_job_logs(
        self,
        actor: Caller,
        job_id: str,
        after: int,
        push: Callable[[dict[str, Any]], None],
        done: Callable[[], None],
    ) -> tuple[list[dict[str, Any]], Callable[[], None]]:
        """Follow a job's logs: returns the logs with ``id > after`` and the function that
        stops following; later logs go to ``push`` (each once, in order) and ``done`` is
        called when the job ends (at once when it already has)."""
        buffered: list[dict[str, Any]] = []
        buffering = True
        last = after
        finished = False

        def deliver(message: dict[str, Any]) -> None:
            nonlocal last
            if "log" in message and message["log"]["id"] > last:
                last = message["log"]["id"]
                push(message["log"])
            elif "job" in message:
                done()

        def listener(message: Any) -> None:
            # Until the logs so far are read, live ones wait, so none is sent twice.
            if buffering:
                buffered.append(message)
            else:
                deliver(message)

        unsubscribe = self.pubsub.subscribe(job_channel(job_id), listener)
        try:
            async with self.db.read() as conn:
                job = await self._owned_job(conn, actor, job_id)
                logs = await store_workspaces.list_logs(conn, job.id, after=after)
        except BaseException:
            unsubscribe()
            raise
        initial = [entry.dump() for entry in logs]
        if initial:
            last = initial[-1]["id"]
        buffering = False
        for message in buffered:
            deliver(message)
            finished = finished or "job" in message
        if job.status not in ("pending", "running", "canceling") and not finished:
            done()
        return initial, unsubscribe

    # --- builds ---------------------------------------------------------------------------

    async def _create(
        self,
        *,
        owner: str,
        template: Template,
        manifest: TemplateManifest,
        name: str | None,
        given: dict[str, str],
        preset_id: Any,
    ) -> tuple[Workspace, WorkspaceBuild]:
        """Insert a workspace with its first start build and submit the build."""
        preset = self._preset(template.id, manifest, preset_id, default=True)
        values = resolve_parameters(
            manifest.parameters, given, preset=preset.parameters if preset else None
        )
        async with self._create_lock:
            name = await self._workspace_name(name, template.name)
            async with self.db.tx() as conn:
                workspace_id = await store_workspaces.insert_workspace(
                    conn,
                    organization_id=template.organization_id,
                    owner=owner,
                    template_id=template.id,
                    name=name,
                    directory=f"{self.workspace_root}/{name}" if self.workspace_root else name,
                )
                build = await store_workspaces.insert_build(
                    conn,
                    workspace_id=workspace_id,
                    transition="start",
                    template_version_id=template.active_version_id,
                    preset_id=preset.id if preset else None,
                    parameters=values,
                    initiator=owner,
                )
                workspace = await store_workspaces.get_workspace(conn, workspace_id)
        assert workspace is not None
        self.provisioner.submit(build.job.id)
        return workspace, build

    def _preset(
        self, template_id: str, manifest: TemplateManifest, preset_id: Any, *, default: bool
    ) -> TemplatePreset | None:
        presets = manifest.presets_for(template_id)
        if preset_id is None or preset_id == "":
            return next((p for p in presets if p.default), None) if default else None
        found = next((p for p in presets if preset_id in (p.id, p.name)), None)
        if found is None:
            choices = ", ".join(f"{p.id} ({p.name})" for p in presets) or "none"
            raise ParameterError(
                [("preset_id", f"no preset {preset_id!r} in this template; presets: {choices}")]
            )
        return found

    async def _workspace_name(self, name: str | None, template_name: str) -> str:
        """A free workspace name: ``name`` checked, or ``<template-slug>-<4 hex>``."""
        if name is not None:
            problem = workspace_name_problem(name)
            if problem:
                raise _NameProblem(problem, taken=False)
            if not await self._name_free(name):
                raise _NameProblem(
                    f'workspace name "{name}" is already in use; pick another name or omit it',
                    taken=True,
                )
            return name
        for _ in range(20):
            candidate = f"{_slug(template_name)}-{secrets.token_hex(2)}"
            if await self._name_free(candidate):
                return candidate
        raise _NameProblem("could not find a free workspace name", taken=True)

    async def _name_free(self, name: str) -> bool:
        async with self.db.read() as conn:
            if await store_workspaces.name_taken(conn, name):
                return False
        path = f"{self.workspace_root}/{name}" if self.workspace_root else name
        exists = await ensure_async(self.contents.exists(path))
        return not exists

    async def _build(
        self,
        row: WorkspaceRow,
        transition: Literal["start", "stop", "delete"],
        *,
        initiator: str,
        given: dict[str, str] | None = None,
        preset_id: Any = None,
        refuse_running: bool = False,
    ) -> WorkspaceBuild:
        """Insert and submit a build of an existing workspace. A start uses the template's
        active version and the previous build's parameter values. Raises
        :class:`ParameterError` and :class:`_StateProblem`."""
        if transition == "start":
            await self.catalog.refresh()
        async with self.db.tx() as conn:
            current = await store_workspaces.get_workspace_row(conn, row.id)
            latest = await store_workspaces.latest_build(conn, row.id)
            assert current is not None
            assert latest is not None
            if current.deleted:
                raise _StateProblem("Workspace was deleted.")
            if latest.job.status in store_workspaces.ACTIVE_JOB_STATUSES:
                raise _StateProblem("A build of this workspace is already in progress.")
            ok = latest.job.status == "succeeded"
            if transition == "stop" and ok and latest.transition == "stop":
                raise _StateProblem("Workspace is already stopped.")
            if (
                transition == "start"
                and refuse_running
                and ok
                and latest.transition == "start"
                and latest.agents
                and all(self._live_status(a) == "connected" for a in latest.agents)
            ):
                raise _StateProblem("Workspace is already running.")
            version_id = latest.template_version_id
            values = dict(latest.parameters)
            preset_ref: str | None = latest.preset_id
            if transition == "start":
                template = await store_templates.get_template(conn, current.template_id)
                assert template is not None
                version_id = template.active_version_id
                version = await store_templates.get_version(conn, version_id)
                assert version is not None
                manifest = manifest_of(version.manifest)
                preset = self._preset(template.id, manifest, preset_id, default=False)
                values = resolve_parameters(
                    manifest.parameters,
                    given or {},
                    preset=preset.parameters if preset else None,
                    previous=latest.parameters,
                )
                if preset is not None:
                    preset_ref = preset.id
            build = await store_workspaces.insert_build(
                conn,
                workspace_id=row.id,
                transition=transition,
                template_version_id=version_id,
                preset_id=preset_ref,
                parameters=values,
                initiator=initiator,
            )
        self.provisioner.submit(build.job.id)
        return build

    def _live_status(self, agent: WorkspaceAgent) -> AgentStatus:
        """An agent's liveness now: the agent manager's view; ``disconnected`` when it does
        not know the agent (its kernel is gone, e.g. after a restart)."""
        return self.agents.status(agent.id) or "disconnected"

    # --- agents for chats (docs/workspaces.md#agent-selection) -----------------------------

    async def agent_for_chat(self, chat: Chat) -> AgentHandle:
        """The agent the chat's tools run on; persists the binding (build_id, agent_id) when
        it changes. Raises :class:`AgentUnavailable` with upstream's texts
        (docs/workspaces.md#connection-errors)."""
        for _ in range(2):
            async with self.db.read() as conn:
                current = await store_chats.get_chat(conn, chat.id)
                if current is None or current.workspace_id is None:
                    raise AgentUnavailable(NO_WORKSPACE)
                row = await store_workspaces.get_workspace_row(conn, current.workspace_id)
                if row is None or row.deleted:
                    raise AgentUnavailable(NO_WORKSPACE)
                build = await store_workspaces.latest_build(conn, row.id)
            assert build is not None
            if build.transition == "start" and build.job.status in ("pending", "running"):
                # The build is still creating the agents: wait for it.
                try:
                    await self.provisioner.wait(build.job.id, self.build_wait_timeout)
                except asyncio.TimeoutError:
                    raise AgentUnavailable(NO_RUNNING_AGENT) from None
                continue
            if build.transition != "start" or build.job.status != "succeeded":
                raise AgentUnavailable(NO_RUNNING_AGENT)
            agent = next((a for a in build.agents if a.id == current.agent_id), None)
            if agent is None:
                agent = select_agent(build.agents)
                if not await self._bind(current, row.id, build.id, agent.id):
                    continue
            return self._reachable(agent, row.id)
        raise AgentUnavailable(WORKSPACE_CHANGED)

    def _reachable(self, agent: WorkspaceAgent, workspace_id: str) -> AgentHandle:
        status = self._live_status(agent)
        if agent.external and status != "connected":
            raise AgentUnavailable(EXTERNAL_AGENT_OFFLINE.format(workspace_id=workspace_id))
        if status in _UNREACHABLE:
            raise AgentUnavailable(_UNREACHABLE[status])
        return self.agents.handle(agent.id)

    async def _bind(
        self, chat: Chat, workspace_id: str, build_id: str | None, agent_id: str | None
    ) -> bool:
        """Persist the chat's binding if it is still bound to ``workspace_id``; publishes a
        ``status_change`` watch event. False when the workspace changed meanwhile."""
        async with self.db.tx() as conn:
            changed = await store_workspaces.bind_chat_agent(
                conn, chat.id, workspace_id, build_id, agent_id
            )
            updated = await store_chats.get_chat(conn, chat.id)
        if changed and updated is not None and self.on_chat_changed is not None:
            self.on_chat_changed(updated)
        return changed

    async def _bind_workspace(self, chat: Chat, workspace_id: str, build_id: str) -> None:
        async with self.db.tx() as conn:
            await store_chats.update_chat(
                conn, chat.id, workspace_id=workspace_id, build_id=build_id, agent_id=None
            )
            updated = await store_chats.get_chat(conn, chat.id)
        if updated is not None and self.on_chat_changed is not None:
            self.on_chat_changed(updated)

    # --- chat tools (docs/workspaces.md#tools, docs/workspaces.md#create_workspace) --------

    def _chat_lock(self, chat_id: str) -> asyncio.Lock:
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = asyncio.Lock()
            self._chat_locks[chat_id] = lock
        return lock

    async def _chat_template(
        self, conn: Conn, chat: Chat, template_id: Any, *, not_found: str, other_org: str
    ) -> tuple[Template, TemplateManifest]:
        """A template a chat may use: exists, allowlisted, in the chat's organization; raises
        :class:`ToolFailure` with ``not_found`` or ``other_org``."""
        tid = parse_uuid(template_id)
        template = await store_templates.get_template(conn, tid) if tid else None
        if template is None or await store_templates.is_deprecated(conn, template.id):
            raise ToolFailure(not_found)
        allowlist = await self._allowlist(conn)
        if allowlist is not None and template.id not in allowlist:
            raise ToolFailure(not_found)
        if template.organization_id != chat.organization_id:
            raise ToolFailure(other_org)
        version = await store_templates.get_version(conn, template.active_version_id)
        assert version is not None
        return template, manifest_of(version.manifest)

    async def chat_list_templates(self, chat: Chat, query: str | None, page: int) -> dict[str, Any]:
        """``list_templates``: 10 per page, the chat's organization, allowlisted only, most
        active developers first."""
        await self.catalog.refresh()
        async with self.db.read() as conn:
            templates = await store_templates.list_templates(conn, [chat.organization_id])
            allowlist = await self._allowlist(conn)
        needle = (query or "").strip().lower()
        matching = [
            t
            for t in templates
            if (allowlist is None or t.id in allowlist)
            and (
                not needle
                or needle in t.name.lower()
                or needle in t.display_name.lower()
                or needle in t.description.lower()
            )
        ]
        total = len(matching)
        pages = max(1, -(-total // LIST_TEMPLATES_PAGE_SIZE))
        start = (page - 1) * LIST_TEMPLATES_PAGE_SIZE
        items = []
        for t in matching[start : start + LIST_TEMPLATES_PAGE_SIZE]:
            item: dict[str, Any] = {"id": t.id, "name": t.name}
            if t.display_name:
                item["display_name"] = t.display_name
            description = _truncate(t.description, TEMPLATE_DESCRIPTION_RUNES)
            if description:
                item["description"] = description
            if t.active_developers:
                item["active_developers"] = t.active_developers
            if t.external:
                item["external"] = True
            items.append(item)
        return {
            "templates": items,
            "count": len(items),
            "page": page,
            "total_pages": pages,
            "total_count": total,
        }

    async def chat_read_template(self, chat: Chat, template_id: str) -> dict[str, Any]:
        """``read_template``: the template, its parameters and presets; "template not found"
        for a missing, not allowlisted or other-organization template."""
        await self.catalog.refresh()
        async with self.db.read() as conn:
            template, manifest = await self._chat_template(
                conn, chat, template_id, not_found=TEMPLATE_NOT_FOUND, other_org=TEMPLATE_NOT_FOUND
            )
        head: dict[str, Any] = {
            "id": template.id,
            "name": template.name,
            "active_version_id": template.active_version_id,
        }
        if template.display_name:
            head["display_name"] = template.display_name
        if template.description:
            head["description"] = template.description
        if template.external:
            head["external"] = True
        return {
            "template": head,
            "parameters": [_tool_parameter(p) for p in manifest.parameters],
            "presets": [p.dump() for p in manifest.presets_for(template.id)],
        }

    async def chat_create_workspace(
        self,
        chat: Chat,
        *,
        template_id: str | None,
        name: str | None,
        parameters: Mapping[str, Any] | None,
        preset_id: str | None,
        emit: Emit,
    ) -> dict[str, Any]:
        """``create_workspace`` (docs/workspaces.md#create_workspace): reuse the chat's workspace
        when it is building, stopped, connected or connecting; else create one, bind it at once,
        stream its build logs through ``emit`` and wait for it. Build and quota failures are
        returned (non-error) payloads; other problems raise :class:`ToolFailure`."""
        async with self._chat_lock(chat.id):
            reused = await self._reuse(chat, emit)
            if reused is not None:
                return reused
            if not template_id:
                raise ToolFailure(TEMPLATE_ID_REQUIRED)
            tid = parse_uuid(template_id)
            if tid is None:
                raise ToolFailure(f"invalid template_id: {template_id!r} is not a UUID")
            await self.catalog.refresh()
            async with self.db.read() as conn:
                current = await store_chats.get_chat(conn, chat.id)
                template, manifest = await self._chat_template(
                    conn,
                    current or chat,
                    tid,
                    not_found=TEMPLATE_NOT_ALLOWED,
                    other_org=TEMPLATE_OTHER_ORG,
                )
            if manifest.external:
                raise ToolFailure(TEMPLATE_EXTERNAL.format(name=template.name))
            try:
                given = _parameter_values(parameters)
                workspace, build = await self._create(
                    owner=chat.owner,
                    template=template,
                    manifest=manifest,
                    name=name or None,
                    given=given,
                    preset_id=preset_id,
                )
            except ParameterError as exc:
                preset_problem = [d for f, d in exc.validations if f == "preset_id"]
                if preset_problem:
                    raise ToolFailure(f"invalid preset_id: {preset_problem[0]}") from None
                return _parameter_error(template.id, exc, create=True)
            except _NameProblem as exc:
                raise ToolFailure(str(exc)) from None
            await self._bind_workspace(chat, workspace.id, build.id)
            return await self._await_start(chat, workspace, build, emit, action="create")

    async def _reuse(self, chat: Chat, emit: Emit) -> dict[str, Any] | None:
        """The answer of docs/workspaces.md#create_workspace step 1 for a chat that already has a
        usable workspace, or None (create a new one). A build in progress is waited for first."""
        async with self.db.read() as conn:
            current = await store_chats.get_chat(conn, chat.id)
            row = (
                await store_workspaces.get_workspace_row(conn, current.workspace_id)
                if current is not None and current.workspace_id
                else None
            )
            build = await store_workspaces.latest_build(conn, row.id) if row else None
        if row is None or build is None:
            return None
        if build.job.status in store_workspaces.ACTIVE_JOB_STATUSES:
            job = await self._follow(build.job.id, emit)
            if job is None:
                return self._build_timeout(build)
            if job.status == "succeeded" and build.transition == "start":
                return {
                    "created": False,
                    "status": "already_exists",
                    "message": "workspace build completed",
                    "workspace_name": row.name,
                    "build_id": build.id,
                }
            async with self.db.read() as conn:
                refreshed = await store_workspaces.get_workspace_row(conn, row.id)
                latest = await store_workspaces.latest_build(conn, row.id)
            assert refreshed is not None
            assert latest is not None
            row, build = refreshed, latest
        if row.deleted:
            return None
        if build.job.status == "succeeded" and build.transition == "stop":
            return {
                "created": False,
                "status": "stopped",
                "message": "workspace is stopped; use start_workspace to start it",
                "workspace_name": row.name,
            }
        if build.job.status != "succeeded" or build.transition != "start" or not build.agents:
            return None
        try:
            agent = select_agent(build.agents)
        except AgentUnavailable:
            return None
        status = self._live_status(agent)
        messages = {
            "connected": "workspace is already running and recently connected",
            "connecting": "workspace exists and the agent is still connecting",
        }
        if status not in messages:
            return None
        return {
            "created": False,
            "status": "already_exists",
            "message": messages[status],
            "workspace_name": row.name,
            "build_id": build.id,
        }

    def _build_timeout(self, build: WorkspaceBuild) -> dict[str, Any]:
        return {
            "error": f"timed out waiting for workspace build: build {build.build_number} is "
            f"still running after {int(self.build_wait_timeout)}s",
            "build_id": build.id,
        }

    async def chat_start_workspace(
        self, chat: Chat, *, parameters: Mapping[str, Any] | None, emit: Emit
    ) -> dict[str, Any]:
        """``start_workspace``: idempotent; starts the chat's workspace on the template's
        active version and waits for it. When that version needs new parameter values the
        result carries ``template_id`` and ``validations`` (non-error) so the model can call
        ``read_template`` and retry."""
        async with self._chat_lock(chat.id):
            row, build = await self._chat_workspace(chat)
            if build.job.status in store_workspaces.ACTIVE_JOB_STATUSES:
                await self._follow(build.job.id, emit)
                row, build = await self._chat_workspace(chat)
            if (
                build.transition == "start"
                and build.job.status == "succeeded"
                and build.agents
                and not parameters
            ):
                agent = select_agent(build.agents)
                if self._live_status(agent) in ("connected", "connecting"):
                    return {
                        "started": True,
                        "workspace_name": row.name,
                        "build_id": build.id,
                        **_agent_fields(agent),
                    }
            try:
                given = _parameter_values(parameters)
                new = await self._build(row, "start", initiator=chat.owner, given=given)
            except ParameterError as exc:
                return _parameter_error(row.template_id, exc, create=False)
            except _StateProblem as exc:
                raise ToolFailure(f"start workspace: {exc}") from None
            await self._bind_workspace(chat, row.id, new.id)
            async with self.db.read() as conn:
                workspace = await store_workspaces.get_workspace(conn, row.id)
            assert workspace is not None
            return await self._await_start(chat, workspace, new, emit, action="start")

    async def chat_stop_workspace(self, chat: Chat, *, emit: Emit) -> dict[str, Any]:
        """``stop_workspace``: stop the chat's workspace (its kernels shut down) and wait."""
        async with self._chat_lock(chat.id):
            row, build = await self._chat_workspace(chat)
            if build.job.status in store_workspaces.ACTIVE_JOB_STATUSES:
                await self._follow(build.job.id, emit)
                row, build = await self._chat_workspace(chat)
            if build.transition == "stop" and build.job.status == "succeeded":
                return {
                    "stopped": True,
                    "workspace_name": row.name,
                    "message": "workspace is already stopped",
                }
            try:
                new = await self._build(row, "stop", initiator=chat.owner)
            except _StateProblem as exc:
                raise ToolFailure(f"stop workspace: {exc}") from None
            job = await self._follow(new.job.id, emit)
            if job is None:
                return self._build_timeout(new)
            if job.status != "succeeded":
                return {"error": job.error or f"build {job.status}", "build_id": new.id}
            return {"stopped": True, "workspace_name": row.name, "build_id": new.id}

    async def _chat_workspace(self, chat: Chat) -> tuple[WorkspaceRow, WorkspaceBuild]:
        async with self.db.read() as conn:
            current = await store_chats.get_chat(conn, chat.id)
            if current is None or not current.workspace_id:
                raise ToolFailure(CHAT_HAS_NO_WORKSPACE)
            row = await store_workspaces.get_workspace_row(conn, current.workspace_id)
            if row is None:
                raise ToolFailure(CHAT_HAS_NO_WORKSPACE)
            if row.deleted:
                raise ToolFailure(WORKSPACE_DELETED)
            build = await store_workspaces.latest_build(conn, row.id)
        assert build is not None
        return row, build

    async def _await_start(
        self,
        chat: Chat,
        workspace: Workspace,
        build: WorkspaceBuild,
        emit: Emit,
        *,
        action: Literal["create", "start"],
    ) -> dict[str, Any]:
        """Wait for a start build, then answer as docs/workspaces.md#create_workspace steps
        4-5 say."""
        job = await self._follow(build.job.id, emit)
        if job is None:
            return self._build_timeout(build)
        if job.status == "canceled":
            return {"error": BUILD_CANCELED, "build_id": build.id}
        if job.status != "succeeded":
            if job.error_code == INSUFFICIENT_QUOTA:
                usage: QuotaUsage | None
                try:
                    async with self.db.read() as conn:
                        usage = await self.quota.usage(conn, workspace.owner)
                except Exception:
                    usage = None
                return insufficient_quota_payload(
                    action, error=job.error or "insufficient quota", build_id=build.id, usage=usage
                )
            return {"error": job.error or f"build {job.status}", "build_id": build.id}
        async with self.db.read() as conn:
            finished = await store_workspaces.get_build(conn, build.id)
        assert finished is not None
        result: dict[str, Any] = (
            {"created": True} if action == "create" else {"started": True}
        ) | {"workspace_name": workspace.name, "build_id": build.id}
        if not finished.agents:
            result["agent_status"] = "no_agent"
            return result
        try:
            agent = select_agent(finished.agents)
        except AgentUnavailable as exc:
            result["agent_status"] = "selection_error"
            result["agent_error"] = str(exc)
            return result
        await self._bind(chat, workspace.id, build.id, agent.id)
        result.update(_agent_fields(agent, live=self._live_status(agent)))
        return result

    async def _follow(self, job_id: str, emit: Emit) -> ProvisionerJob | None:
        """Stream a job's logs to ``emit`` until it ends; returns the job, None on timeout."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        unsubscribe = self.pubsub.subscribe(job_channel(job_id), queue.put_nowait)
        stage = ""

        async def show(entry: dict[str, Any]) -> None:
            nonlocal stage
            text = ""
            if entry.get("stage") and entry["stage"] != stage:
                stage = entry["stage"]
                text += f"==> {stage}\n"
            await emit(text + entry["output"] + "\n")

        try:
            async with self.db.read() as conn:
                logs = await store_workspaces.list_logs(conn, job_id)
                job = await store_workspaces.get_job(conn, job_id)
            assert job is not None
            last = 0
            for entry in logs:
                await show(entry.dump())
                last = entry.id
            if job.status not in store_workspaces.ACTIVE_JOB_STATUSES:
                return job
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.build_wait_timeout
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), deadline - loop.time())
                except asyncio.TimeoutError:
                    return None
                if "log" in message and message["log"]["id"] > last:
                    last = message["log"]["id"]
                    await show(message["log"])
                elif "job" in message:
                    return ProvisionerJob.model_validate(message["job"])
        finally:
            unsubscribe()


class _NameProblem(Exception):
    def __init__(self, message: str, *, taken: bool) -> None:
        super().__init__(message)
        self.taken = taken


class _StateProblem(Exception):
    """A build the workspace's state does not allow (the message is the API's)."""


def _tool_parameter(parameter: TemplateParameter) -> dict[str, Any]:
    """A parameter as ``read_template`` shows it (docs/workspaces.md#tools)."""
    out: dict[str, Any] = {
        "name": parameter.name,
        "type": parameter.type,
        "required": parameter.required,
    }
    if parameter.display_name:
        out["display_name"] = parameter.display_name
    description = _truncate(parameter.description, PARAMETER_DESCRIPTION_RUNES)
    if description:
        out["description"] = description
    if parameter.default is not None:
        out["default"] = parameter.default
    out["mutable"] = parameter.mutable
    if parameter.options:
        out["options"] = [o.dump() for o in parameter.options]
    if parameter.validation_regex is not None:
        out["validation_regex"] = parameter.validation_regex
    if parameter.validation_min is not None:
        out["validation_min"] = parameter.validation_min
    if parameter.validation_max is not None:
        out["validation_max"] = parameter.validation_max
    return out


def _parameter_error(template_id: str, exc: ParameterError, *, create: bool) -> dict[str, Any]:
    """The non-error result for parameter values a build cannot use."""
    validations = [{"field": f, "detail": d} for f, d in exc.validations]
    fields = ", ".join(f for f, _ in exc.validations)
    if create:
        return {
            "error": f"invalid parameters: {exc}",
            "template_id": template_id,
            "validations": validations,
            "message": "Call read_template with template_id to see the parameters, then call "
            f"create_workspace again with valid values for: {fields}.",
        }
    return {
        "error": f"start workspace: invalid parameters: {exc}",
        "template_id": template_id,
        "validations": validations,
        "message": NEEDS_PARAMETERS,
    }


def _agent_fields(agent: WorkspaceAgent, *, live: AgentStatus | None = None) -> dict[str, Any]:
    """``agent_status``/``agent_error``/``startup_scripts`` of a build result
    (docs/workspaces.md#create_workspace step 5)."""
    out: dict[str, Any] = {}
    status = live or agent.status
    if status != "connected":
        out["agent_status"] = "not_ready"
        out["agent_error"] = f"agent {agent.name} is {status}"
    if agent.lifecycle_state == "start_error":
        out["startup_scripts"] = "startup_scripts_failed"
        out["lifecycle_state"] = agent.lifecycle_state
    elif agent.lifecycle_state == "start_timeout":
        out["startup_scripts"] = "startup_scripts_timeout"
    elif agent.lifecycle_state not in ("ready", "created"):
        out["startup_scripts"] = "startup_scripts_unknown"
    return out
