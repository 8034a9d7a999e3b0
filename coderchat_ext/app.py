"""``CoderChatApp``: the Jupyter server extension hosting the chat daemon
(docs/architecture.md; its traits: docs/architecture.md#configuration).

The app holds the configuration. Its async start hook builds every collaborator through
:func:`~coderchat_ext.wiring.build_services` (the workspaces need the server's kernel and
contents managers, which exist only then) and starts them; ``stop_extension`` stops them
(running chats become ``pending`` and resume at the next start). Nothing here imports a
provider SDK.
"""

from __future__ import annotations

import gc
import getpass
import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider
from jupyter_server.extension.application import ExtensionApp
from traitlets import (
    Bool,
    Dict,
    Enum,
    Float,
    Int,
    List,
    TraitError,
    Unicode,
    default,
    validate,
)

from ._version import __version__
from .chatd.daemon import DaemonConfig
from .wiring import Services, ServicesConfig, build_services
from .workspaces.quota import parse_groups


class CoderChatApp(ExtensionApp):
    """The coderchat_ext server extension. Configure with ``c.CoderChatApp.<trait>``."""

    name = "coderchat_ext"
    load_other_extensions = True

    db_path = Unicode(
        "",
        config=True,
        help="SQLite database file. Default: <jupyter_data_dir>/coderchat/coderchat.db.",
    )
    providers = Dict(
        {},
        config=True,
        help="Providers by kind (anthropic, openai, openai-compat, demo): "
        "{kind: {api_key, base_url, display_name, enabled}}. Keys here are never stored.",
    )
    default_model = Unicode(
        "",
        config=True,
        help="'provider/model' made the default model config at start when it is not already.",
    )
    model_configs: List[dict[str, Any]] = List(
        [],
        config=True,
        help="Model configs created at start when missing: [{provider, model, display_name, "
        "context_limit, model_config, is_default}].",
    )
    template_paths = List(
        Unicode(),
        [],
        config=True,
        help="Extra workspace template folders, searched after the built-in ones: each is a "
        "template folder (with template.toml) or a folder of them. A template with the name "
        "of an earlier one replaces it.",
    )
    workspace_root = Unicode(
        "",
        config=True,
        help="Where workspace folders are made: a path relative to the server's root_dir, or "
        "an absolute path inside it (folders are made through the contents manager). "
        "Default: <root_dir>/workspaces.",
    )
    heartbeat_interval = Float(30.0, config=True, help="Seconds between chat heartbeats.")
    stale_after = Float(
        300.0, config=True, help="Seconds without a heartbeat after which a chat is stale."
    )
    acquire_interval = Float(1.0, config=True, help="Seconds between polls for pending chats.")
    max_chats_per_acquire = Int(10, config=True, help="Chats acquired per poll at most.")
    max_steps = Int(1200, config=True, help="Steps per turn at most.")
    startup_timeout = Float(
        60.0, config=True, help="Seconds a model may take to send its first stream part."
    )
    agent_inactive_timeout = Float(
        120.0, config=True, help="Seconds without an answer after which an agent is 'timeout'."
    )
    sandbox = Enum(
        ["template", "bubblewrap"],
        "template",
        config=True,
        help="How workspace agents run commands. 'template': as each template's [sandbox] "
        "says. 'bubblewrap': always in the bubblewrap sandbox (network as the template says, "
        "on by default), and external templates cannot be started.",
    )
    admin_users = List(
        Unicode(),
        [],
        config=True,
        help="Users who may change deployment settings. Empty: every user the authorizer "
        "grants write on coderchat:admin.",
    )
    organizations = Dict(
        {},
        config=True,
        help="Organizations and their members: {name: [usernames] or null for everyone}. "
        "The 'default' organization always exists and admits everyone.",
    )
    groups = Dict(
        {},
        config=True,
        help="Quota groups: {name: {members: [usernames or '*'], budget: credits}}. A user's "
        "budget is the sum of their groups' budgets; a running workspace holds its template's "
        "daily_cost. Users in no group have no limit.",
    )
    multi_user = Bool(
        None,
        allow_none=True,
        config=True,
        help="Own chats per Jupyter username. None: yes unless the server uses the stock "
        "token/password identity provider (a single-user server, whose token clients get "
        "random anonymous names), where every chat belongs to default_owner.",
    )
    default_owner = Unicode(config=True, help="The owner of every chat on a single-user server.")
    scripted_model = Dict(
        None,
        allow_none=True,
        config=True,
        help="Enable the 'scripted' provider (tests, benchmarks) with this script "
        "(see coderchat_ext.providers.scripted).",
    )
    seed_default_models = Bool(
        True,
        config=True,
        help="Create the known model configs (context limits, prices) of each provider the "
        "first time it becomes available, the offline demo model's included (the default "
        "until a real provider is seeded).",
    )
    test_tools = Bool(
        False, config=True, help="Register the echo/sleep/fail/solo tools (tests, benchmarks)."
    )

    services: Services | None = None
    """The collaborators, once the async start hook has built and started them (the handlers
    answer 503 until then); None again after ``stop_extension``."""

    @validate("groups")
    def _validate_groups(self, proposal: Any) -> Any:
        try:
            parse_groups(proposal["value"])
        except ValueError as exc:
            raise TraitError(str(exc)) from None
        return proposal["value"]

    @default("static_paths")
    def _default_static_paths(self) -> list[str]:
        # The built front end (js/ → static/): the standalone page's script and stylesheet.
        return [str(Path(__file__).parent / "static")]

    @default("default_owner")
    def _default_owner(self) -> str:
        try:
            return getpass.getuser()
        except Exception:
            return "jupyter"

    # --- set up ---------------------------------------------------------------------------

    def initialize_settings(self) -> None:
        self.settings.update({"coderchat": self})

    def initialize_handlers(self) -> None:
        from .server.handlers import rest_handlers
        from .server.page import page_handlers
        from .server.ws import ws_handlers

        self.handlers.extend(ws_handlers())
        self.handlers.extend(rest_handlers())
        self.handlers.extend(page_handlers())

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        services = build_services(
            self._services_config(serverapp),
            kernel_manager=serverapp.kernel_manager,
            contents=serverapp.contents_manager,
        )
        self._export_discovery(serverapp)
        await services.start()
        self.services = services
        # What the server has built by now (modules, schemas, handlers) lives as long as the
        # process: moved out of the collector's sight, a full collection under load scans only
        # what chats allocate, instead of stalling the event loop for the whole heap. Garbage
        # is collected first so that none of it is frozen for good.
        gc.collect()
        gc.freeze()
        self.log.info("coderchat_ext %s: database %s", __version__, services.db.path)

    async def stop_extension(self) -> None:
        services, self.services = self.services, None
        if services is not None:
            await services.stop()

    def _services_config(self, serverapp: Any) -> ServicesConfig:
        """The traits, resolved against the server (paths, its secrets)."""
        return ServicesConfig(
            db_path=self.db_path or os.path.join(jupyter_data_dir(), "coderchat", "coderchat.db"),
            daemon=DaemonConfig(
                heartbeat_interval=self.heartbeat_interval,
                stale_after=self.stale_after,
                acquire_interval=self.acquire_interval,
                max_chats_per_acquire=self.max_chats_per_acquire,
                max_steps=self.max_steps,
                startup_timeout=self.startup_timeout,
            ),
            providers=dict(self.providers),
            scripted_model=self.scripted_model,
            test_tools=self.test_tools,
            template_paths=list(self.template_paths),
            workspace_root=self._workspace_root(serverapp),
            groups=dict(self.groups),
            agent_inactive_timeout=self.agent_inactive_timeout,
            force_sandbox=self.sandbox == "bubblewrap",
            server_secrets=self._server_secrets(serverapp),
            organizations=dict(self.organizations),
            model_configs=list(self.model_configs),
            default_model=self.default_model,
            seed_default_models=self.seed_default_models,
        )

    def _workspace_root(self, serverapp: Any) -> str:
        """``workspace_root`` as a contents-API path (relative to the server's root_dir).
        Raises ``ValueError`` for an absolute path outside root_dir."""
        if not self.workspace_root:
            return "workspaces"
        path = Path(self.workspace_root).expanduser()
        if not path.is_absolute():
            relative_path = path.as_posix().strip("/")
            return "" if relative_path == "." else relative_path
        root = Path(getattr(serverapp.contents_manager, "root_dir", serverapp.root_dir))
        try:
            relative = path.resolve().relative_to(root.expanduser().resolve())
        except ValueError:
            raise ValueError(
                f"CoderChatApp.workspace_root {path} is not inside the server's root_dir "
                f"{root}: workspace folders are made through the contents manager"
            ) from None
        return "" if relative == Path(".") else relative.as_posix()

    def _server_secrets(self, serverapp: Any) -> list[str]:
        """The server's own secrets: its token (what ``CODERCHAT_TOKEN`` carries)."""
        provider = getattr(serverapp, "identity_provider", None)
        return [str(getattr(provider, "token", "") or "")]

    def _export_discovery(self, serverapp: Any) -> None:
        """Export ``CODERCHAT_URL``/``CODERCHAT_TOKEN`` so kernels the server starts can find
        it (docs/client.md#server-discovery)."""
        os.environ["CODERCHAT_URL"] = serverapp.connection_url
        token = getattr(serverapp.identity_provider, "token", "") or ""
        if token:
            os.environ["CODERCHAT_TOKEN"] = token

    # --- identity -------------------------------------------------------------------------

    def owner_for(self, user: Any) -> str:
        """The chat owner for a Jupyter user (see ``multi_user``)."""
        multi = self.multi_user
        if multi is None:
            provider = getattr(self.serverapp, "identity_provider", None)
            multi = type(provider) not in (IdentityProvider, PasswordIdentityProvider)
        return str(user.username) if multi else self.default_owner
