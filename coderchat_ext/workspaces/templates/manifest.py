"""Template manifests: ``template.toml`` parsed and checked (docs/workspaces.md#templates).

Owns the manifest's schema (name, display fields, ``daily_cost``, ``organization``,
``external``, ``init``, ``env_passthrough``, ``[sandbox]``, ``[[parameters]]``, ``[[presets]]``,
``[[agents]]``), :func:`parse_manifest`, which raises :class:`TemplateError` with what is wrong
and where, the checked :class:`TemplateManifest` stored with each template version, and the
stable ids of templates and presets.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
)

from ...models import (
    TemplateAgent,
    TemplateParameter,
    TemplateParameterOption,
    TemplatePreset,
)
from ..environment import never_passed
from .parameters import RawValue, Scalar, check_value, value_string

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MANIFEST_NAME = "template.toml"
NAME_MAX = 32
DEFAULT_KERNEL = "python3"
DEFAULT_AGENT = "main"
TEMPLATE_NAMESPACE = uuid.UUID("5f0c7a52-8a0e-4d5e-9b7e-3c1f0e6a2b41")
"""uuid5 namespace of template and preset ids (stable across restarts and databases)."""

_SLUG = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$")
_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PASSTHROUGH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\*?$")


class TemplateError(ValueError):
    """A template folder that cannot be used; the message says what is wrong."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ValidationSpec(_Spec):
    regex: str | None = None
    min: float | None = None
    max: float | None = None
    error: str | None = None


class _OptionSpec(_Spec):
    value: Scalar
    name: str | None = None
    description: str | None = None


class _ParameterSpec(_Spec):
    name: str
    type: Literal["string", "number", "bool", "list(string)"] = "string"
    display_name: str | None = None
    description: str | None = None
    default: RawValue | None = None
    required: bool | None = None
    options: list[Scalar | _OptionSpec] | None = None
    validation: _ValidationSpec | None = None
    mutable: bool = True


class _PresetSpec(_Spec):
    name: str
    description: str | None = None
    default: bool = False
    parameters: dict[str, RawValue] = Field(default_factory=dict)


class _AgentSpec(_Spec):
    name: str
    display_order: int = 0
    kernel: str = DEFAULT_KERNEL


class _SandboxSpec(_Spec):
    mode: Literal["none", "bubblewrap"] = "none"
    network: StrictBool = True
    """A security setting: "off" or "no" is an error rather than read as false."""
    read_only: list[str] = Field(default_factory=list)

    @field_validator("read_only")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"must be absolute paths, got {path!r}")
        return paths


class _ManifestSpec(_Spec):
    name: str
    display_name: str = ""
    description: str = ""
    icon: str = ""
    daily_cost: int = Field(default=0, ge=0)
    organization: str = "default"
    external: bool = False
    init: str | None = None
    env_passthrough: list[str] = Field(default_factory=list)
    sandbox: _SandboxSpec = Field(default_factory=_SandboxSpec)
    parameters: list[_ParameterSpec] = Field(default_factory=list)
    presets: list[_PresetSpec] = Field(default_factory=list)
    agents: list[_AgentSpec] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > NAME_MAX or not _SLUG.match(value):
            raise ValueError(
                f"must be 1-{NAME_MAX} letters, digits and inner hyphens, got {value!r}"
            )
        return value


class PresetManifest(BaseModel):
    name: str
    description: str | None = None
    default: bool = False
    parameters: dict[str, str] = Field(default_factory=dict)


class SandboxManifest(BaseModel):
    """``[sandbox]``: the template's agents run ``execute`` and background processes under
    bubblewrap (see ``agent_runtime.configure``)."""

    mode: Literal["bubblewrap"] = "bubblewrap"
    network: bool = True
    """False: commands have no network at all (not even the server on localhost)."""
    read_only: list[str] = Field(default_factory=list)
    """Absolute paths mounted read-only besides the system folders and Python."""

    def runtime(self) -> dict[str, Any]:
        """The setting as the agent runtime's ``configure`` takes it."""
        return self.model_dump(mode="json")


class TemplateManifest(BaseModel):
    """A checked ``template.toml``, as stored with its template version (JSON)."""

    name: str
    display_name: str = ""
    description: str = ""
    icon: str = ""
    daily_cost: int = 0
    organization: str = "default"
    external: bool = False
    init: str | None = None
    env_passthrough: list[str] = Field(default_factory=list)
    """Variables of the server's environment the agents' kernels get besides the base ones
    (names, or a name prefix ending in ``*``); see ``workspaces/environment.py``."""
    sandbox: SandboxManifest | None = None
    """None: commands run unconfined (``mode = "none"``)."""
    parameters: list[TemplateParameter] = Field(default_factory=list)
    presets: list[PresetManifest] = Field(default_factory=list)
    agents: list[TemplateAgent] = Field(default_factory=list)

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def presets_for(self, template_id: str) -> list[TemplatePreset]:
        """The presets with their stable ids (derived from the template id and preset name)."""
        return [
            TemplatePreset(
                id=preset_id(template_id, p.name),
                name=p.name,
                description=p.description,
                default=p.default,
                parameters=dict(p.parameters),
            )
            for p in self.presets
        ]


def preset_id(template_id: str, name: str) -> str:
    return str(uuid.uuid5(TEMPLATE_NAMESPACE, f"{template_id}/preset/{name}"))


def template_id_for(organization: str, name: str) -> str:
    """The id of template ``name`` in the organization named ``organization``."""
    return str(uuid.uuid5(TEMPLATE_NAMESPACE, f"{organization}/{name}"))


def _format_validation_error(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'template'}: {e['msg']}" for e in exc.errors()
    )


def _parameter(spec: _ParameterSpec) -> TemplateParameter:
    where = f"parameters.{spec.name}"
    if not _PARAMETER_NAME.match(spec.name):
        raise TemplateError(
            f"{where}: a parameter name must be letters, digits and underscores, not starting "
            "with a digit (it becomes an environment variable of init)"
        )
    validation = spec.validation or _ValidationSpec()
    if validation.regex is not None:
        if spec.type != "string":
            raise TemplateError(f"{where}: validation.regex applies to string parameters only")
        try:
            re.compile(validation.regex)
        except re.error as exc:
            raise TemplateError(f"{where}: invalid validation.regex: {exc}") from None
    if (validation.min is not None or validation.max is not None) and spec.type != "number":
        raise TemplateError(f"{where}: validation.min/max apply to number parameters only")
    if (
        validation.min is not None
        and validation.max is not None
        and validation.min > validation.max
    ):
        raise TemplateError(f"{where}: validation.min is greater than validation.max")
    options = None
    if spec.options is not None:
        options = []
        for option in spec.options:
            if isinstance(option, _OptionSpec):
                value = value_string(option.value)
                options.append(
                    TemplateParameterOption(
                        name=option.name or value, value=value, description=option.description
                    )
                )
            else:
                value = value_string(option)
                options.append(TemplateParameterOption(name=value, value=value))
        if not options:
            raise TemplateError(f"{where}: options must not be empty")
    default = None if spec.default is None else value_string(spec.default)
    required = spec.required if spec.required is not None else default is None
    if required and default is not None:
        raise TemplateError(f"{where}: a required parameter cannot have a default")
    if not required and default is None:
        if spec.type == "string":
            default = ""
        elif spec.type == "list(string)":
            default = "[]"
        else:
            raise TemplateError(f"{where}: an optional {spec.type} parameter needs a default")
    parameter = TemplateParameter(
        name=spec.name,
        type=spec.type,
        required=required,
        display_name=spec.display_name,
        description=spec.description,
        default=default,
        mutable=spec.mutable,
        options=options,
        validation_regex=validation.regex,
        validation_min=validation.min,
        validation_max=validation.max,
        validation_error=validation.error,
    )
    if default is not None and not (default == "" and spec.type == "string" and not options):
        problem = check_value(parameter, default)
        if problem:
            raise TemplateError(f"{where}: the default is invalid: {problem}")
    return parameter


def parse_manifest(text: str, *, has_files: bool = False) -> TemplateManifest:
    """Parse and check ``template.toml`` text. Raises :class:`TemplateError`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{MANIFEST_NAME} is not valid TOML: {exc}") from None
    try:
        spec = _ManifestSpec.model_validate(raw)
    except ValidationError as exc:
        raise TemplateError(_format_validation_error(exc)) from None
    parameters = [_parameter(p) for p in spec.parameters]
    by_name = {p.name: p for p in parameters}
    if len(by_name) != len(parameters):
        raise TemplateError("parameters: two parameters have the same name")
    presets = []
    for preset in spec.presets:
        values = {k: value_string(v) for k, v in preset.parameters.items()}
        for key, value in values.items():
            if key not in by_name:
                raise TemplateError(f"presets.{preset.name}: unknown parameter {key!r}")
            problem = check_value(by_name[key], value)
            if problem:
                raise TemplateError(f"presets.{preset.name}.{key}: {problem}")
        presets.append(
            PresetManifest(
                name=preset.name,
                description=preset.description,
                default=preset.default,
                parameters=values,
            )
        )
    if len({p.name for p in presets}) != len(presets):
        raise TemplateError("presets: two presets have the same name")
    if sum(p.default for p in presets) > 1:
        raise TemplateError("presets: at most one preset can be the default")
    agents = [
        TemplateAgent(name=a.name, display_order=a.display_order, kernel=a.kernel)
        for a in spec.agents
    ] or [TemplateAgent(name=DEFAULT_AGENT, display_order=0, kernel=DEFAULT_KERNEL)]
    for agent in agents:
        if len(agent.name) > 64 or not _SLUG.match(agent.name):
            raise TemplateError(
                f"agents.{agent.name}: an agent name is letters, digits and inner hyphens"
            )
    if len({a.name.lower() for a in agents}) != len(agents):
        raise TemplateError("agents: two agents have the same name")
    for name in spec.env_passthrough:
        if not _PASSTHROUGH.match(name):
            raise TemplateError(
                f"env_passthrough: {name!r} is not a variable name (or a prefix ending in *)"
            )
        if never_passed(name.rstrip("*")):
            raise TemplateError(
                f"env_passthrough: {name} may hold a secret and never reaches a workspace"
            )
    if spec.external and (spec.init or has_files):
        raise TemplateError(
            "an external template cannot have init or files/: its agent is a kernel the user "
            "attaches, which may not see the workspace folder"
        )
    sandbox = None
    if spec.sandbox.mode == "bubblewrap":
        if spec.external:
            raise TemplateError(
                "sandbox: an external template cannot have a sandbox: its agent is a kernel "
                "the user attaches and runs as they see fit"
            )
        sandbox = SandboxManifest(network=spec.sandbox.network, read_only=spec.sandbox.read_only)
    return TemplateManifest(
        name=spec.name,
        display_name=spec.display_name,
        description=spec.description,
        icon=spec.icon,
        daily_cost=spec.daily_cost,
        organization=spec.organization,
        external=spec.external,
        init=spec.init if spec.init and spec.init.strip() else None,
        env_passthrough=spec.env_passthrough,
        sandbox=sandbox,
        parameters=parameters,
        presets=presets,
        agents=agents,
    )


def manifest_of(stored: Mapping[str, Any]) -> TemplateManifest:
    """The :class:`TemplateManifest` of a stored template version."""
    return TemplateManifest.model_validate(stored)
