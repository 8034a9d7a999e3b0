"""The one place that builds the server's collaborators, in dependency order, each handed the
ones it needs at construction (docs/architecture.md#wiring).

:func:`build_services` turns a :class:`ServicesConfig` (``CoderChatApp``'s traits, resolved) and
the Jupyter server's kernel and contents managers into :class:`Services`;
:meth:`Services.start` opens the database, applies the configured organizations and model
configs, and starts the workspaces and the daemon; :meth:`Services.stop` undoes it. Nothing is
assigned to a built object afterwards, and nothing is found by a string key. Nothing here
imports a provider SDK.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .chatd.daemon import ChatDaemon, DaemonConfig
from .chatd.pubsub import MemoryPubSub
from .chatd.secrets import SecretValues
from .chatd.service import ChatService
from .chatd.settings import SettingsService
from .chatd.stream import StreamHub
from .models import ChatModelCallConfig, ChatWatchEvent
from .providers.demo import DemoProvider
from .providers.registry import ProviderCatalog, register_adapters
from .providers.scripted import ScriptedModel
from .store import Database
from .store import configs as store_configs
from .store import models_config as store_models
from .store.db import Conn
from .store.instance import InstanceSlots
from .store.secrets import SecretBox
from .tools.agent import agent_tools
from .tools.base import Tool, ToolRegistry
from .tools.testing import testing_tools
from .tools.workspaces import workspace_tools
from .workspaces.service import WorkspaceService
from .workspaces.templates import template_id_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServicesConfig:
    """What the services are built from: ``CoderChatApp``'s traits (docs/architecture.md#
    configuration), with paths resolved."""

    db_path: str
    """The SQLite file; the API-key encryption key sits next to it (``.key``)."""
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Providers by kind from the config: ``{kind: {api_key, base_url, ...}}``."""
    scripted_model: Mapping[str, Any] | None = None
    """The scripted provider's script; None: no scripted provider."""
    test_tools: bool = False
    template_paths: Sequence[str] = ()
    workspace_root: str = "workspaces"
    """Where workspace folders are made: a contents-API path."""
    groups: Mapping[str, Any] = field(default_factory=dict)
    agent_inactive_timeout: float = 120.0
    force_sandbox: bool = False
    server_secrets: Sequence[str] = ()
    """The server's own secrets (its token): never shown to the model."""
    organizations: Mapping[str, Any] = field(default_factory=dict)
    model_configs: Sequence[Mapping[str, Any]] = ()
    """Model configs created at start when missing (``CoderChatApp.model_configs``)."""
    default_model: str = ""
    """``provider/model`` made the default at start."""
    seed_default_models: bool = True


@dataclass(frozen=True)
class Services:
    """Every collaborator of the running extension; the handlers reach the three behind the
    API (``chats``, ``settings``, ``workspaces``) through it."""

    config: ServicesConfig
    db: Database
    pubsub: MemoryPubSub
    hub: StreamHub
    catalog: ProviderCatalog
    secret_values: SecretValues
    """What must never reach the model: every provider key, the server's token."""
    demo: DemoProvider
    scripted: ScriptedModel | None
    """The scripted provider's model (``ServicesConfig.scripted_model``), for tests."""
    tools: ToolRegistry
    workspaces: WorkspaceService
    daemon: ChatDaemon
    chats: ChatService
    settings: SettingsService

    async def start(self) -> None:
        """Open (and migrate) the database, apply the configured organizations and model
        configs, seed the known models, sync the templates, recover builds, start the daemon.
        On failure what was started is stopped and the error re-raised."""
        try:
            await self.db.open()
            async with self.db.tx() as conn:
                await store_configs.sync_organizations(conn, dict(self.config.organizations))
                await _sync_model_configs(conn, self.config)
            if self.config.seed_default_models:
                await self.settings.seed_model_configs()
            await self.workspaces.start()
            await self.daemon.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close every stream, stop the daemon (running chats become ``pending`` and resume at
        the next start), let go of the workspaces' builds and agents, close the database. Safe
        to call when :meth:`start` never ran or failed part way."""
        self.hub.close_all()
        self.demo.close()
        if self.db.is_open:
            await self.daemon.stop()
            await self.workspaces.close()
            await self.db.close()


def build_services(config: ServicesConfig, *, kernel_manager: Any, contents: Any) -> Services:
    """The collaborators for ``config``, built in dependency order; ``kernel_manager`` and
    ``contents`` are the Jupyter server's (agents are kernels, workspace folders are made
    through the contents manager). Nothing is started (see :meth:`Services.start`)."""
    db = Database(config.db_path)
    pubsub = MemoryPubSub()
    hub = StreamHub(pubsub)
    configured = {kind: dict(entry) for kind, entry in config.providers.items()}
    if config.scripted_model is not None:
        configured.setdefault("scripted", {})
    catalog = ProviderCatalog(
        db,
        SecretBox(Path(config.db_path).with_suffix(".key")),
        configured=configured,
        extra_providers=("scripted",) if config.scripted_model is not None else (),
    )
    register_adapters(catalog)
    pubsub.subscribe(
        "config", lambda event: catalog.invalidate() if event.get("kind") == "providers" else None
    )
    # The demo's agent session builds from the blank Python template (a built-in).
    demo = DemoProvider(template_id_for(store_configs.DEFAULT_ORGANIZATION, "python"))
    catalog.factories["demo"] = demo.make_model
    scripted = None
    if config.scripted_model is not None:
        scripted = ScriptedModel(dict(config.scripted_model))
        catalog.factories["scripted"] = _scripted_factory(scripted)
    secret_values = SecretValues(catalog, fixed=config.server_secrets)
    workspaces = WorkspaceService(
        db,
        kernel_manager=kernel_manager,
        contents=contents,
        pubsub=pubsub,
        template_paths=list(config.template_paths),
        workspace_root=config.workspace_root,
        groups=dict(config.groups),
        agent_inactive_timeout=config.agent_inactive_timeout,
        secret_values=secret_values,
        force_sandbox=config.force_sandbox,
        on_chat_changed=lambda chat: hub.publish_watch(
            chat.owner, ChatWatchEvent(kind="status_change", chat=chat)
        ),
    )
    tools = ToolRegistry(_tools(config))
    daemon = ChatDaemon(
        db,
        hub,
        catalog,
        tools,
        config.daemon,
        agents=workspaces,
        workspaces=workspaces,
        secrets=secret_values,
        # The instance id next to the database: a restart after a crash resumes its chats.
        slots=InstanceSlots(config.db_path),
    )
    return Services(
        config=config,
        db=db,
        pubsub=pubsub,
        hub=hub,
        catalog=catalog,
        secret_values=secret_values,
        demo=demo,
        scripted=scripted,
        tools=tools,
        workspaces=workspaces,
        daemon=daemon,
        chats=ChatService(db, daemon, workspace_check=workspaces.workspace_check),
        settings=SettingsService(db, catalog, pubsub, template_lookup=workspaces.template_lookup),
    )


def _scripted_factory(scripted: ScriptedModel) -> Any:
    """The scripted provider's model factory: ``scripted`` for turns, an echo for titles."""
    title_model = ScriptedModel({"default": {"echo": True}})
    return lambda config, resolved, purpose: title_model if purpose == "title" else scripted


def _tools(config: ServicesConfig) -> list[Tool]:
    """The tools in upstream's order (docs/workspaces.md#tools): files, execute and processes,
    workspaces, skills; then the test tools when enabled."""
    on_agent = agent_tools()
    skills = [t for t in on_agent if t.name.startswith("read_skill")]
    tools = [*[t for t in on_agent if t not in skills], *workspace_tools(), *skills]
    return [*tools, *testing_tools()] if config.test_tools else tools


async def _sync_model_configs(conn: Conn, config: ServicesConfig) -> None:
    """Create the configured model configs that are missing and make ``default_model`` the
    default (a warning when it has no model config)."""
    for entry in config.model_configs:
        existing = await store_models.find_model_config(conn, entry["provider"], entry["model"])
        if existing is None:
            await store_models.insert_model_config(
                conn,
                provider=entry["provider"],
                model=entry["model"],
                display_name=entry.get("display_name") or entry["model"],
                enabled=True,
                is_default=bool(entry.get("is_default")),
                context_limit=int(entry.get("context_limit", 200_000)),
                compression_threshold=int(entry.get("compression_threshold", 70)),
                options=ChatModelCallConfig.model_validate(entry.get("model_config") or {}),
                created_by=None,
            )
    if config.default_model:
        provider, _, model = config.default_model.partition("/")
        default = await store_models.find_model_config(conn, provider, model)
        if default is None:
            log.warning("default_model %s has no model config", config.default_model)
        elif not default.is_default:
            await store_models.update_model_config(conn, default.id, is_default=True)
