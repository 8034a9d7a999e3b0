"""Templates, workspaces, builds, provisioner jobs and agents (docs/workspaces.md; Coder's
templates, workspaces, builds and jobs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .wire import Wire

ParameterType = Literal["string", "number", "bool", "list(string)"]
BuildTransition = Literal["start", "stop", "delete"]
JobStatus = Literal["pending", "running", "succeeded", "failed", "canceling", "canceled"]
AgentStatus = Literal["connecting", "connected", "disconnected", "timeout"]
AgentLifecycleState = Literal["created", "starting", "ready", "start_error", "start_timeout", "off"]
"""Where the agent is in running the template's ``init`` script (Coder's agent lifecycle)."""
WorkspaceStatus = Literal[
    "pending",
    "starting",
    "running",
    "stopping",
    "stopped",
    "failed",
    "canceling",
    "canceled",
    "deleting",
    "deleted",
]
"""A workspace's status, derived from its latest build's transition and job status."""
LogLevel = Literal["trace", "debug", "info", "warn", "error"]

INSUFFICIENT_QUOTA = "INSUFFICIENT_QUOTA"
"""``error_code`` of a start build refused for quota (docs/workspaces.md#quota; the string
is inferred from upstream's ``codersdk.InsufficientQuota``)."""


class TemplateParameterOption(Wire):
    name: str
    value: str
    description: str | None = None


class TemplateParameter(Wire):
    """A rich parameter of a template version (docs/workspaces.md#templates). Values are strings:
    numbers in decimal, booleans ``true``/``false``, ``list(string)`` as a JSON array."""

    name: str
    type: ParameterType = "string"
    required: bool = False
    display_name: str | None = None
    description: str | None = None
    default: str | None = None
    mutable: bool = True
    options: list[TemplateParameterOption] | None = None
    validation_regex: str | None = None
    validation_min: float | None = None
    validation_max: float | None = None
    validation_error: str | None = None


class TemplatePreset(Wire):
    """Named parameter values of a template; ``id`` is stable across template versions."""

    id: str
    name: str
    description: str | None = None
    default: bool = False
    parameters: dict[str, str] = Field(default_factory=dict)


class TemplateAgent(Wire):
    """An agent the template declares: one kernel of ``kernel`` per workspace start."""

    name: str
    display_order: int = 0
    kernel: str = "python3"


class Template(Wire):
    """A template as ``GET templates`` returns it. ``allowlisted`` is set for administrators,
    who also see templates outside the chat template allowlist."""

    id: str
    organization_id: str
    name: str
    display_name: str = ""
    description: str = ""
    icon: str = ""
    daily_cost: int = 0
    active_version_id: str
    external: bool = False
    active_developers: int = 0
    allowlisted: bool | None = None
    created_at: str
    updated_at: str


class TemplateDetail(Template):
    """``GET templates/{id}``: the template with its active version's parameters, presets
    and agents."""

    parameters: list[TemplateParameter] = Field(default_factory=list)
    presets: list[TemplatePreset] = Field(default_factory=list)
    agents: list[TemplateAgent] = Field(default_factory=list)
    init: str | None = None


class ProvisionerJob(Wire):
    id: str
    status: JobStatus
    error: str | None = None
    error_code: str | None = None
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None


class ProvisionerJobLog(Wire):
    """One build log line; ``id`` is the cursor of ``GET jobs/{id}/logs?after=``."""

    id: int
    created_at: str
    log_level: LogLevel = "info"
    stage: str = ""
    output: str


class WorkspaceAgent(Wire):
    id: str
    name: str
    display_order: int = 0
    kernel_name: str = ""
    kernel_id: str | None = None
    external: bool = False
    status: AgentStatus
    lifecycle_state: AgentLifecycleState = "created"
    first_connected_at: str | None = None
    last_connected_at: str | None = None


class WorkspaceBuild(Wire):
    id: str
    workspace_id: str
    build_number: int
    transition: BuildTransition
    template_version_id: str
    preset_id: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    daily_cost: int = 0
    initiator: str
    created_at: str
    job: ProvisionerJob
    agents: list[WorkspaceAgent] = Field(default_factory=list)


class Workspace(Wire):
    """A workspace: a folder under the workspace root and one kernel per template agent."""

    id: str
    organization_id: str
    owner: str
    name: str
    template_id: str
    template_name: str = ""
    template_display_name: str = ""
    template_icon: str = ""
    directory: str
    status: WorkspaceStatus
    deleted: bool = False
    created_at: str
    updated_at: str
    latest_build: WorkspaceBuild
