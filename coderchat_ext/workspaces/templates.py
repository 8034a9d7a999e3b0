"""Workspace templates: ``template.toml`` plus a ``files/`` tree (docs/workspaces.md#templates).

A template folder holds::

    template.toml     name, display_name, description, icon, daily_cost, organization,
                      external, init, env_passthrough, [sandbox], [[parameters]],
                      [[presets]], [[agents]]
    files/            copied into the workspace on its first start

:func:`load_template` parses and checks a folder (raising :class:`TemplateError` with what is
wrong and where); :class:`TemplateCatalog` scans the built-in folder and
``CoderChatApp.template_paths`` and keeps the ``templates``/``template_versions`` tables in step:
a folder whose content (manifest and files) hashes differently becomes a new template version,
and the version on disk is the active one. :func:`resolve_parameters` turns the values a build
asks for into the full, validated set of parameter values, or raises :class:`ParameterError`
with one ``(field, detail)`` per problem.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
)

from ..models import (
    TemplateAgent,
    TemplateParameter,
    TemplateParameterOption,
    TemplatePreset,
)
from ..store import Database
from ..store import configs as store_configs
from ..store import templates as store_templates
from ..store.templates import TemplateFile
from .environment import never_passed

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

MANIFEST_NAME = "template.toml"
FILES_DIR = "files"
BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
"""The folder of the templates that ship with coderchat_ext."""
MAX_TEMPLATE_FILES = 1000
MAX_TEMPLATE_BYTES = 16 * 1024 * 1024
"""Limits of a template's ``files/`` tree: it is stored with every version."""
RACY_WINDOW_NS = 2_000_000_000
SKIPPED_NAMES = frozenset({".git", "__pycache__", ".ipynb_checkpoints", ".DS_Store"})
NAME_MAX = 32
DEFAULT_KERNEL = "python3"
DEFAULT_AGENT = "main"
TEMPLATE_NAMESPACE = uuid.UUID("5f0c7a52-8a0e-4d5e-9b7e-3c1f0e6a2b41")
"""uuid5 namespace of template and preset ids (stable across restarts and databases)."""

_SLUG = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$")
_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PASSTHROUGH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\*?$")

Scalar = str | int | float | bool
RawValue = Scalar | list[str]


class TemplateError(ValueError):
    """A template folder that cannot be used; the message says what is wrong."""


class ParameterError(ValueError):
    """Parameter values a build cannot use; ``validations`` holds ``(field, detail)`` pairs
    where the field is the parameter name (or ``preset_id``)."""

    def __init__(self, validations: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {d}" for f, d in validations))
        self.validations = validations


def value_string(value: RawValue) -> str:
    """A parameter value as the string builds store: ``true``/``false``, decimal numbers
    without a needless ``.0``, JSON arrays for lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return json.dumps([str(v) for v in value])
    return value


def env_name(parameter: str) -> str:
    """The environment variable that carries a parameter into ``init`` (its name uppercased)."""
    return parameter.upper()


# --- template.toml --------------------------------------------------------------------------


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


# --- parameter values -----------------------------------------------------------------------


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _fmt(number: float) -> str:
    return value_string(number)


def check_value(parameter: TemplateParameter, value: str) -> str | None:
    """What is wrong with ``value`` for ``parameter`` (type, options, regex, min/max), or
    None. A template's ``validation.error`` replaces the regex and min/max messages; it may use
    ``{value}``, ``{min}`` and ``{max}``."""

    def custom(default: str) -> str:
        template = parameter.validation_error
        if not template:
            return default
        low, high = parameter.validation_min, parameter.validation_max
        return (
            template.replace("{value}", value)
            .replace("{min}", "" if low is None else _fmt(low))
            .replace("{max}", "" if high is None else _fmt(high))
        )

    allowed = [o.value for o in parameter.options] if parameter.options else None
    if parameter.type == "bool":
        if value not in ("true", "false"):
            return f'must be "true" or "false", got "{value}"'
    elif parameter.type == "number":
        number = _number(value)
        if number is None:
            return f'must be a number, got "{value}"'
        low, high = parameter.validation_min, parameter.validation_max
        if low is not None and number < low:
            return custom(f"must be at least {_fmt(low)}, got {value}")
        if high is not None and number > high:
            return custom(f"must be at most {_fmt(high)}, got {value}")
        if allowed is not None and all(_number(a) != number for a in allowed):
            return f"must be one of {', '.join(allowed)}, got {value}"
        return None
    elif parameter.type == "list(string)":
        try:
            items = json.loads(value)
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            return f"must be a JSON array of strings, got {value!r}"
        if allowed is not None:
            bad = [i for i in items if i not in allowed]
            if bad:
                return f"{', '.join(bad)} not among the options {', '.join(allowed)}"
        return None
    elif parameter.validation_regex is not None and not re.search(
        parameter.validation_regex, value
    ):
        return custom(f'"{value}" does not match {parameter.validation_regex}')
    if allowed is not None and value not in allowed:
        return f'must be one of {", ".join(allowed)}, got "{value}"'
    return None


def resolve_parameters(
    parameters: Sequence[TemplateParameter],
    given: Mapping[str, str],
    *,
    preset: Mapping[str, str] | None = None,
    previous: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The values of every parameter for a build: ``given`` first, then the ``preset``, then
    the ``previous`` build's values, then the default. ``previous`` is None for a new
    workspace; when given, changing an immutable parameter is refused.

    Raises :class:`ParameterError` listing each unknown name, missing required value,
    immutable change and invalid value.
    """
    problems: list[tuple[str, str]] = []
    known = {p.name for p in parameters}
    for name in given:
        if name not in known:
            choices = ", ".join(sorted(known)) or "none"
            problems.append((name, f"unknown parameter; the template's parameters: {choices}"))
    values: dict[str, str] = {}
    for parameter in parameters:
        name = parameter.name
        value = given.get(name)
        if value is None and preset is not None:
            value = preset.get(name)
        if value is None and previous is not None:
            value = previous.get(name)
        if value is None:
            value = parameter.default
        if value is None:
            problems.append((name, "required parameter is missing"))
            continue
        if (
            previous is not None
            and not parameter.mutable
            and name in previous
            and previous[name] != value
        ):
            problems.append(
                (name, f'parameter is immutable: it stays "{previous[name]}" for this workspace')
            )
            continue
        problem = check_value(parameter, value)
        if problem:
            problems.append((name, problem))
            continue
        values[name] = value
    if problems:
        raise ParameterError(problems)
    return values


# --- folders --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedTemplate:
    """A template folder as read from disk."""

    source: str
    manifest: TemplateManifest
    files: tuple[TemplateFile, ...]
    content_hash: str


def _read_files(root: Path) -> list[TemplateFile]:
    if not root.is_dir():
        return []
    files: list[TemplateFile] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_NAMES)
        for filename in sorted(filenames):
            if filename in SKIPPED_NAMES:
                continue
            path = Path(dirpath, filename)
            if path.is_symlink() or not path.is_file():
                continue
            content = path.read_bytes()
            total += len(content)
            if len(files) >= MAX_TEMPLATE_FILES or total > MAX_TEMPLATE_BYTES:
                raise TemplateError(
                    f"{FILES_DIR}/ is too large (at most {MAX_TEMPLATE_FILES} files and "
                    f"{MAX_TEMPLATE_BYTES // (1024 * 1024)} MiB)"
                )
            files.append(
                TemplateFile(
                    path=path.relative_to(root).as_posix(),
                    content=content,
                    executable=os.access(path, os.X_OK),
                )
            )
    return files


def content_hash(manifest_text: bytes, files: Sequence[TemplateFile]) -> str:
    """sha256 over the manifest and every file's path, mode and content."""
    digest = hashlib.sha256()
    digest.update(b"template.toml\0")
    digest.update(manifest_text)
    for f in sorted(files, key=lambda f: f.path):
        digest.update(b"\0file\0" + f.path.encode() + b"\0" + (b"x" if f.executable else b"-"))
        digest.update(len(f.content).to_bytes(8, "big"))
        digest.update(f.content)
    return digest.hexdigest()


def load_template(folder: str | Path) -> LoadedTemplate:
    """Read and check one template folder. Raises :class:`TemplateError`."""
    root = Path(folder)
    manifest_path = root / MANIFEST_NAME
    try:
        raw = manifest_path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read {manifest_path}: {exc}") from None
    try:
        files = _read_files(root / FILES_DIR)
    except OSError as exc:
        raise TemplateError(f"cannot read {root / FILES_DIR}: {exc}") from None
    manifest = parse_manifest(text, has_files=bool(files))
    return LoadedTemplate(
        source=str(root),
        manifest=manifest,
        files=tuple(files),
        content_hash=content_hash(raw, files),
    )


def _signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a template folder's content may have changed (paths, sizes, mtimes)."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_NAMES]
        for filename in filenames:
            try:
                stat = os.stat(os.path.join(dirpath, filename))
            except OSError:
                continue
            entries.append((os.path.join(dirpath, filename), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(entries))


@dataclass
class _Cached:
    signature: tuple[tuple[str, int, int], ...]
    loaded: LoadedTemplate | None
    error: str | None


class TemplateCatalog:
    """Keeps the database's templates in step with the template folders.

    ``paths`` are searched in order: each is a template folder (it holds ``template.toml``)
    or a folder of template folders. A template of the same organization and name found later
    replaces an earlier one, so ``template_paths`` can override a built-in. Templates whose
    folder disappeared are deprecated. :meth:`refresh` runs at most every
    ``refresh_interval`` seconds unless forced; folder reads happen in a thread.
    """

    def __init__(
        self,
        db: Database,
        paths: Sequence[str | Path],
        *,
        refresh_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.paths = [Path(p).expanduser() for p in paths]
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._last: float | None = None
        self._lock = asyncio.Lock()
        self._cache: dict[str, _Cached] = {}
        self.problems: dict[str, str] = {}
        """Folder -> why it is not a usable template (after the last refresh)."""

    def _folders(self) -> list[Path]:
        folders: list[Path] = []
        for path in self.paths:
            if (path / MANIFEST_NAME).is_file():
                folders.append(path)
            elif path.is_dir():
                folders.extend(
                    sorted(child for child in path.iterdir() if (child / MANIFEST_NAME).is_file())
                )
            else:
                self.problems[str(path)] = "template path does not exist"
        return folders

    def _scan(self) -> list[LoadedTemplate]:
        self.problems = {}
        loaded: list[LoadedTemplate] = []
        seen: set[str] = set()
        for folder in self._folders():
            key = str(folder)
            seen.add(key)
            signature = _signature(folder)
            cached = self._cache.get(key)
            if cached is None or cached.signature != signature:
                try:
                    cached = _Cached(signature, load_template(folder), None)
                except TemplateError as exc:
                    cached = _Cached(signature, None, str(exc))
                # A file changed within the timestamp granularity could change again without
                # changing its signature ("racy git"): such a read is not reused.
                recent = time.time_ns() - RACY_WINDOW_NS
                if not any(mtime >= recent for _, mtime, _ in signature):
                    self._cache[key] = cached
                else:
                    self._cache.pop(key, None)
            if cached.loaded is not None:
                loaded.append(cached.loaded)
            elif cached.error is not None:
                self.problems[key] = cached.error
        for key in set(self._cache) - seen:
            del self._cache[key]
        return loaded

    async def refresh(self, *, force: bool = False) -> None:
        """Scan the folders and sync the database (at most every ``refresh_interval``)."""
        async with self._lock:
            now = self._clock()
            if not force and self._last is not None and now - self._last < self.refresh_interval:
                return
            loaded = await asyncio.to_thread(self._scan)
            await self._sync(loaded)
            self._last = self._clock()
        for folder, problem in self.problems.items():
            log.warning("template %s is not usable: %s", folder, problem)

    async def _sync(self, loaded: list[LoadedTemplate]) -> None:
        chosen: dict[tuple[str, str], LoadedTemplate] = {}
        for template in loaded:
            key = (template.manifest.organization, template.manifest.name)
            if key in chosen:
                log.info(
                    "template %s in %s replaces the one in %s",
                    template.manifest.name,
                    template.source,
                    chosen[key].source,
                )
            chosen[key] = template
        async with self.db.tx() as conn:
            organizations = await store_configs.organization_ids(conn)
            keep: list[str] = []
            for (organization, name), template in chosen.items():
                org_id = organizations.get(organization)
                if org_id is None:
                    self.problems[template.source] = f"unknown organization {organization!r}"
                    continue
                manifest = template.manifest
                template_id = template_id_for(organization, name)
                await store_templates.upsert_template(
                    conn,
                    template_id=template_id,
                    organization_id=org_id,
                    name=name,
                    display_name=manifest.display_name,
                    description=manifest.description,
                    icon=manifest.icon,
                    daily_cost=manifest.daily_cost,
                    source=template.source,
                )
                version_id = await store_templates.find_version(
                    conn, template_id, template.content_hash
                )
                if version_id is None:
                    version_id = await store_templates.insert_version(
                        conn,
                        template_id=template_id,
                        content_hash=template.content_hash,
                        manifest=manifest.stored(),
                        has_external_agent=manifest.external,
                        files=template.files,
                    )
                await store_templates.set_active_version(conn, template_id, version_id)
                keep.append(template_id)
            await store_templates.deprecate_missing(conn, keep)


def manifest_of(stored: Mapping[str, Any]) -> TemplateManifest:
    """The :class:`TemplateManifest` of a stored template version."""
    return TemplateManifest.model_validate(stored)
