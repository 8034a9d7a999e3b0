"""``%chat`` and ``%%chat`` (docs/client.md): load with ``%load_ext coderchat_ext``.

Line magic subcommands::

    %chat new [--model M] [--workspace W]     a new current chat (created by its first message)
    %chat use ID | list | show | models | interrupt
    %chat workspace create TEMPLATE [name=N] [preset=P] [param=value ...] | list | stop [ID]
    %chat attach [TEMPLATE]                   this kernel becomes the current chat's workspace agent
    %chat tool NAME key=value ...             run a workspace tool of the current chat now

Cell magic: ``%%chat [--new] [--model M]`` sends the cell (``{var}`` is replaced by the
value of ``var`` in the user namespace, ``{{`` is a literal brace) to the current chat, shows
the live widget, blocks until the turn ends, prints a plain-text transcript and returns the
:class:`~coderchat_ext.chat.Turn`. Failures print one clear line (a :class:`ChatRequestError`) and
return ``None``.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import shlex
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

from .chat import Chat, ChatRequestError, Turn, api_errors, default_client, resolve_model
from .client import BuildTimeout, DirectToolResult
from .models import Template, Workspace, WorkspaceAgent, WorkspaceBuild

USAGE = __doc__.split("Cell magic:")[0].split("::", 1)[1].rstrip() if __doc__ else ""
BUILD_TIMEOUT = 300.0
"""Seconds ``%chat workspace create`` waits for the start build."""


def parse_assignments(tokens: list[str]) -> dict[str, Any]:
    """``key=value`` tokens -> a dict; a value that parses as JSON (numbers, ``true``,
    ``[..]``, ``"quoted"``) is that value, else the string. Raises :class:`ChatRequestError`."""
    out: dict[str, Any] = {}
    for token in tokens:
        key, sep, raw = token.partition("=")
        if not sep or not key:
            raise ChatRequestError(f"expected key=value, got {token!r}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def interpolate(text: str, namespace: dict[str, Any]) -> str:
    """Replace ``{name}`` (and ``{name.attr}``/``{name[0]}``/``{name!r}``/``{name:fmt}``) by
    values from ``namespace``; ``{{``/``}}`` are literal braces. Raises :class:`ChatRequestError`
    for an unknown name."""
    try:
        return string.Formatter().vformat(text, (), namespace)
    except KeyError as exc:
        raise ChatRequestError(f"{{{exc.args[0]}}} is not defined in the notebook") from None
    except (IndexError, ValueError, AttributeError) as exc:
        raise ChatRequestError(f"cannot interpolate the cell: {exc}") from None


def kernel_id() -> str:
    """This kernel's id, from its connection file ``kernel-<id>.json``. Raises
    :class:`ChatRequestError` outside a Jupyter kernel."""
    try:
        from ipykernel import get_connection_file

        path = Path(get_connection_file())
    except Exception:
        raise ChatRequestError("%chat attach needs a Jupyter kernel (ipykernel)") from None
    match = re.fullmatch(r"kernel-(.+)\.json", path.name)
    if match is None:
        raise ChatRequestError(f"cannot read the kernel id from the connection file {path.name}")
    return match.group(1)


def _workspace_line(ws: Workspace) -> str:
    build = ws.latest_build
    agents = ", ".join(f"{a.name}={a.status}" for a in build.agents)
    return (
        f"{ws.id}  {ws.name:<20} {ws.template_name:<14} "
        f"{build.transition}/{build.job.status}  {agents}"
    )


@magics_class
class ChatMagics(Magics):
    """The ``%chat`` magics; ``current`` is the chat the magics talk to."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.current: Chat | None = None

    # --- entry ----------------------------------------------------------------------------

    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> Any:
        try:
            if cell is not None:
                return self._cell(line, cell)
            return self._line(line)
        except ChatRequestError as exc:
            print(f"%chat: {exc}")
            return None

    def _line(self, line: str) -> Any:
        try:
            args = shlex.split(line)
        except ValueError as exc:
            raise ChatRequestError(str(exc)) from None
        if not args:
            print(USAGE)
            return None
        command, rest = args[0], args[1:]
        handlers: dict[str, Callable[[list[str]], Any]] = {
            "new": self._new,
            "use": self._use,
            "list": self._list,
            "show": self._show,
            "models": self._models,
            "interrupt": self._interrupt,
            "workspace": self._workspace,
            "attach": self._attach,
            "tool": self._tool,
        }
        handler = handlers.get(command)
        if handler is None:
            raise ChatRequestError(f"unknown subcommand {command!r}\n{USAGE}")
        return handler(rest)

    def _chat(self) -> Chat:
        if self.current is None:
            self.current = Chat.new()
        return self.current

    @staticmethod
    def _options(args: list[str], names: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
        options: dict[str, str] = {}
        rest: list[str] = []
        it = iter(args)
        for arg in it:
            name = arg[2:] if arg.startswith("--") else None
            if name is not None and "=" in name:
                name, value = name.split("=", 1)
            elif name is not None:
                value = next(it, "")
            if name is None:
                rest.append(arg)
            elif name not in names or not value:
                raise ChatRequestError(f"unknown or empty option --{name}")
            else:
                options[name] = value
        return options, rest

    # --- chats ----------------------------------------------------------------------------

    def _new(self, args: list[str]) -> Chat:
        options, rest = self._options(args, ("model", "workspace"))
        if rest:
            raise ChatRequestError("usage: %chat new [--model M] [--workspace W]")
        self.current = Chat.new(model=options.get("model"), workspace=options.get("workspace"))
        print("new chat: it is created by the first message (%%chat or Chat.send)")
        return self.current

    def _use(self, args: list[str]) -> Chat:
        if len(args) != 1:
            raise ChatRequestError("usage: %chat use CHAT_ID")
        self.current = Chat.use(args[0], client=default_client())
        print(f"using chat {self.current.chat_id}: {self.current.title!r}")
        return self.current

    def _list(self, args: list[str]) -> None:
        client = default_client()
        with api_errors(client):
            chats = client.list_chats(limit=50)
        if not chats:
            print("no chats yet")
        for chat in chats:
            mark = "*" if self.current is not None and chat.id == self.current.chat_id else " "
            print(f"{mark} {chat.id}  {chat.status:<15} {chat.title}")

    def _show(self, args: list[str]) -> None:
        chat = self._chat()
        if chat.chat_id is not None:
            print(chat.transcript())
        display(chat.widget())

    def _models(self, args: list[str]) -> None:
        client = default_client()
        with api_errors(client):
            providers = client.list_models().providers
        for provider in providers:
            state = "" if provider.available else f" ({provider.unavailable_reason})"
            print(f"{provider.display_name or provider.provider}{state}")
            for model in provider.models:
                default = "  [default]" if model.is_default else ""
                name = f"{model.provider}/{model.model}"
                print(f"  {name:<40} {model.display_name}{default}")
        if not any(p.available and p.provider != "demo" for p in providers):
            print(
                "no real provider is configured: chats use the offline demo model; set "
                "ANTHROPIC_API_KEY or OPENAI_API_KEY before starting JupyterLab"
            )

    def _interrupt(self, args: list[str]) -> None:
        self._chat().interrupt()
        print("interrupted")

    # --- workspaces -----------------------------------------------------------------------

    def _workspace(self, args: list[str]) -> Any:
        if not args or args[0] not in ("create", "list", "stop"):
            raise ChatRequestError(
                "usage: %chat workspace create TEMPLATE [k=v ...] | list | stop [ID]"
            )
        if args[0] == "list":
            client = default_client()
            with api_errors(client):
                listed = client.list_workspaces()
            for ws in listed:
                print(_workspace_line(ws))
            if not listed:
                print("no workspaces")
            return None
        if args[0] == "stop":
            return self._workspace_stop(args[1:])
        if len(args) < 2:
            raise ChatRequestError(
                "usage: %chat workspace create TEMPLATE [name=N] [param=value ...]"
            )
        values = parse_assignments(args[2:])
        workspace = self._create_workspace(args[1], values)
        self._bind(workspace.id)
        return workspace

    def _template(self, wanted: str | None, *, external: bool | None = None) -> Template:
        client = default_client()
        with api_errors(client):
            templates = client.list_templates()
        for template in templates:
            if wanted in (template.id, template.name) or (wanted is None and template.external):
                if external is not None and template.external != external:
                    kind = "an external" if external else "a kernel-starting"
                    raise ChatRequestError(f"template {template.name!r} is not {kind} template")
                return template
        names = ", ".join(t.name for t in templates if external is None or t.external == external)
        if wanted is None:
            raise ChatRequestError(
                "no external template (external = true) is available to attach a kernel to; "
                f"templates: {names or 'none'}"
            )
        raise ChatRequestError(f"unknown template {wanted!r}; available: {names or 'none'}")

    def _create_workspace(self, template_name: str | None, values: dict[str, Any]) -> Workspace:
        client = default_client()
        template = self._template(template_name, external=None if template_name else True)
        name = str(values.pop("name")) if "name" in values else None
        preset = str(values.pop("preset")) if "preset" in values else None
        # JSON-looking values go as their text, so any value the notebook wrote is accepted.
        parameters = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
        with api_errors(client):
            created = client.create_workspace(
                template.id, name=name, parameters=parameters or None, preset_id=preset
            )
        print(f"workspace {created.name} ({created.id}): building…")
        try:
            with api_errors(client):
                workspace = client.wait_for_build(created.id, timeout=BUILD_TIMEOUT)
        except BuildTimeout:
            raise ChatRequestError(
                f"the workspace build did not finish within {BUILD_TIMEOUT:g} s"
            ) from None
        job = workspace.latest_build.job
        if job.status != "succeeded":
            raise ChatRequestError(f"the workspace build {job.status}: {job.error or ''}".strip())
        print(_workspace_line(workspace))
        return workspace

    def _bind(self, workspace_id: str) -> None:
        """Make ``workspace_id`` the current chat's workspace (at creation when the chat has
        no message yet)."""
        chat = self._chat()
        chat.workspace_id = workspace_id
        if chat.chat_id is not None:
            with api_errors(chat.client):
                chat.client.update_chat(chat.chat_id, workspace_id=workspace_id)
        print(f"the current chat uses workspace {workspace_id}")

    def _workspace_stop(self, args: list[str]) -> WorkspaceBuild:
        client = default_client()
        workspace_id: str | None = args[0] if args else None
        if workspace_id is None:
            chat = self._chat()
            workspace_id = chat.workspace_id or (chat.info().workspace_id if chat.chat_id else None)
            if not workspace_id:
                raise ChatRequestError("the current chat has no workspace: give a workspace ID")
        with api_errors(client):
            build = client.create_build(workspace_id, "stop")
        print(f"stopping workspace {workspace_id} (build {build.build_number})")
        return build

    def _attach(self, args: list[str]) -> concurrent.futures.Future[WorkspaceAgent]:
        """Bind this kernel as the external agent of the current chat's workspace (or of a
        new workspace of an external template). The server reaches the kernel on its control
        channel and a subshell while this cell runs; the attach completes in the background and
        its display updates."""
        if len(args) > 1:
            raise ChatRequestError("usage: %chat attach [TEMPLATE]")
        client = default_client()
        kid = kernel_id()
        chat = self._chat()
        workspace_id = chat.workspace_id or (chat.info().workspace_id if chat.chat_id else None)
        workspace: Workspace | None = None
        if workspace_id and not args:
            with api_errors(client):
                workspace = client.get_workspace(workspace_id)
            if not any(a.external for a in workspace.latest_build.agents):
                workspace = None
        if workspace is None:
            workspace = self._create_workspace(args[0] if args else None, {})
            self._bind(workspace.id)
        name = workspace.name
        handle = display(f"attaching kernel {kid} to workspace {name}…", display_id=True)
        # Not waited for: the server reaches this kernel while the cell is still running.
        future = client.submit(client.aio.attach_kernel(workspace.id, kid))

        def done(f: concurrent.futures.Future[WorkspaceAgent]) -> None:
            if f.cancelled() or f.exception() is not None:
                text = f"attaching failed: {f.exception()}"
            else:
                agent = f.result()
                text = f"kernel {kid} is agent {agent.name} ({agent.status}) of workspace {name}"
            if handle is not None:
                handle.update(text)

        future.add_done_callback(done)
        return future

    def _tool(self, args: list[str]) -> DirectToolResult:
        if not args:
            raise ChatRequestError("usage: %chat tool NAME key=value ...")
        chat = self._chat()
        if chat.chat_id is None:
            raise ChatRequestError("the current chat has no messages yet: send one first (%%chat)")
        with api_errors(chat.client):
            result = chat.client.run_tool(chat.chat_id, args[0], parse_assignments(args[1:]))
        display(ToolCard(result))
        return result

    # --- cell -----------------------------------------------------------------------------

    def _cell(self, line: str, cell: str) -> Turn | None:
        options, rest = self._options(shlex.split(line), ("model",))
        new = "--new" in rest
        rest = [a for a in rest if a != "--new"]
        if rest:
            raise ChatRequestError("usage: %%chat [--new] [--model M]")
        text = interpolate(cell, dict(self.shell.user_ns) if self.shell else {}).strip()
        if not text:
            raise ChatRequestError("the cell is empty: an empty message is not sent")
        if new or self.current is None:
            self.current = Chat.new(model=options.get("model"))
        elif "model" in options:
            self.current.model_config_id = resolve_model(self.current.client, options["model"])
        chat = self.current
        pending = chat.send(text, wait=False)
        display(chat.widget())
        try:
            turn: Turn = pending.result()
        except KeyboardInterrupt:
            pending.cancel()
            raise
        print(turn.transcript())
        if turn.error is not None:
            print(f"error: {turn.error.message}")
        return turn


class ToolCard:
    """A tool result shown as a card: HTML in JupyterLab, plain text elsewhere."""

    def __init__(self, result: DirectToolResult) -> None:
        self.result = result

    def _body(self) -> str:
        value = self.result.result
        if isinstance(value, dict) and "output" in value:
            return str(value["output"])
        return value if isinstance(value, str) else json.dumps(value, indent=2)

    def __repr__(self) -> str:
        flag = " (error)" if self.result.is_error else ""
        return f"{self.result.tool_name}{flag} {json.dumps(self.result.args)}\n{self._body()}"

    def _repr_html_(self) -> str:
        import html

        flag = " cc-tool-error" if self.result.is_error else ""
        return (
            f'<div class="cc-tool-card{flag}"><div class="cc-tool-name"><b>'
            f"{html.escape(self.result.tool_name)}</b> "
            f"<code>{html.escape(json.dumps(self.result.args))}</code></div>"
            f"<pre>{html.escape(self._body())}</pre></div>"
        )


def load(ipython: Any) -> None:
    """Register the magics (``load_ipython_extension``)."""
    ipython.register_magics(ChatMagics)
