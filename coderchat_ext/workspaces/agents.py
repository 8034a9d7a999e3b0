"""Workspace agents on Jupyter kernels: the daemon side (docs/workspaces.md#agents).

An agent is a kernel started (or attached) through the Jupyter server's kernel manager, so it
shows in JupyterLab's running-kernels list and may live on a kernel gateway: nothing here
assumes the kernel runs on this host or shares its filesystem. The manager talks to it with
jupyter_client's async client API only (``kernel_manager.get_kernel(id).client()``).

Protocol. The stdlib-only runtime (``agent_runtime.py``) is executed into a private module of
the kernel with one ``execute_request`` (``silent``, ``store_history=False``); each call is an
``execute_request`` running ``<module>.call(call_id, op, args_json)``. The runtime answers with
exactly one ``display_data`` of MIME type :data:`RESULT_MIME` holding ``{"ok": true, "result":
...}`` or ``{"ok": false, "error": "..."}``; long output arrives before it as ``stream``
messages, forwarded to the caller's ``on_output``. When the kernel advertises ``kernel
subshells`` (ipykernel >= 7) every call runs on a subshell of a small pool, so parallel calls
run in parallel; otherwise calls are serialized.

Liveness (docs/workspaces.md#liveness): ``connecting`` while the kernel starts and the runtime is
injected, ``connected`` once the runtime answered, ``disconnected`` when the kernel died or is gone
from the kernel manager (calls in flight fail at once), ``timeout`` when its heartbeat stopped
answering for ``inactive_timeout`` seconds while the process is alive. Calls to a ``disconnected``
or ``timeout`` agent fail immediately with upstream's messages; calls to a ``connecting`` agent wait
for it. A kernel that comes back (the server's auto-restarter, or a user restart) gets the runtime
injected again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import os
import queue
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from jupyter_core.utils import ensure_async

from ..models import Chat
from .environment import SecretSource, kernel_environment

RESULT_MIME = "application/vnd.coderchat.agent-result+json"
"""The MIME type of the one ``display_data`` each runtime call publishes
(docs/workspaces.md#agents)."""
RUNTIME_MODULE = "_coderchat_agent_runtime"
"""The private ``sys.modules`` entry the runtime lives in; nothing enters the user namespace."""

AgentStatus = Literal["connecting", "connected", "disconnected", "timeout"]

# Connection errors: upstream's text errors (docs/workspaces.md#connection-errors), with a restart
# through the start_workspace tool where upstream points at its dashboard.
NO_WORKSPACE = (
    "no workspace is associated with this chat. Use the create_workspace tool to create one"
)
NO_RUNNING_AGENT = (
    "workspace has no running agent: the workspace is likely stopped. Use the start_workspace "
    "tool to start it"
)
AGENT_DISCONNECTED = (
    "workspace agent is disconnected and cannot execute tools. The workspace may need to be "
    "restarted with the start_workspace tool"
)
AGENT_TIMEOUT = (
    "connection to the workspace agent timed out. The workspace may need to be restarted with "
    "the start_workspace tool"
)

DEFAULT_CALL_TIMEOUT = 60.0
"""Seconds a call may take when the caller gives no timeout."""
CONNECT_TIMEOUT = 60.0
"""Seconds for a kernel to answer its first ``kernel_info_request`` (and for a call to wait
for a ``connecting`` agent)."""
POLL_INTERVAL = 0.5
"""Seconds between liveness checks of each agent."""
MAX_SUBSHELLS = 16
"""Subshells per kernel at most; more parallel calls wait for a free one."""

_UNREACHABLE: dict[str, str] = {"disconnected": AGENT_DISCONNECTED, "timeout": AGENT_TIMEOUT}


class AgentUnavailable(Exception):
    """The agent cannot be reached; ``message`` is the text error for the model
    (docs/workspaces.md#connection-errors)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AgentError(Exception):
    """An operation failed inside the agent; ``message`` is meant for the model."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


OutputCallback = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class AgentHandle:
    """One agent of an :class:`AgentManager`, as the tools see it."""

    manager: AgentManager
    agent_id: str

    async def call(
        self,
        op: str,
        args: dict[str, Any],
        *,
        on_output: OutputCallback | None = None,
        timeout: float | None = None,
    ) -> Any:
        """:meth:`AgentManager.call` on this agent."""
        return await self.manager.call(
            self.agent_id, op, args, on_output=on_output, timeout=timeout
        )

    @property
    def status(self) -> AgentStatus | None:
        return self.manager.status(self.agent_id)


class AgentResolver(Protocol):
    """Finds the agent a chat's tools run on (docs/workspaces.md#agent-selection); the workspace
    service implements it; the daemon hands it to the tools as ``ToolContext.agents``."""

    async def agent_for_chat(self, chat: Chat) -> AgentHandle:
        """The chat's agent; raises :class:`AgentUnavailable` with upstream's texts
        (docs/workspaces.md#connection-errors)."""
        ...


_ITEM_STREAM = "stream"
_ITEM_DONE = "done"
_ITEM_FAIL = "fail"


class _Exec:
    """One ``execute_request`` in flight: collects its outputs in order on a queue."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.result: Any = None
        self.has_result = False
        self.error: tuple[str, str] | None = None
        self.reply: dict[str, Any] | None = None
        self.idle = False

    def feed(self, channel: str, msg: dict[str, Any]) -> None:
        kind = msg["header"]["msg_type"]
        content = msg.get("content") or {}
        if channel == "shell" and kind == "execute_reply":
            self.reply = content
            if content.get("status") == "error" and self.error is None:
                self.error = (content.get("ename", ""), content.get("evalue", ""))
        elif channel == "iopub":
            if kind == "stream":
                self.items.put_nowait((_ITEM_STREAM, content.get("text", "")))
            elif kind in ("display_data", "execute_result"):
                data = content.get("data") or {}
                if RESULT_MIME in data:
                    self.result = data[RESULT_MIME]
                    self.has_result = True
            elif kind == "error":
                self.error = (content.get("ename", ""), content.get("evalue", ""))
            elif kind == "status" and content.get("execution_state") == "idle":
                self.idle = True
        if self.idle and self.reply is not None:
            self.items.put_nowait((_ITEM_DONE, None))

    def fail(self, exc: BaseException) -> None:
        self.items.put_nowait((_ITEM_FAIL, exc))


class _Request:
    """A request answered by one reply on ``channel``; ``iopub_seen`` is set by any IOPub
    message it causes (proof that the IOPub connection works)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.iopub_seen = asyncio.Event()

    def feed(self, channel: str, msg: dict[str, Any]) -> None:
        if channel == "iopub":
            self.iopub_seen.set()
        elif channel == self.channel and not self.reply.done():
            self.reply.set_result(msg.get("content") or {})

    def fail(self, exc: BaseException) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


@dataclass
class _Agent:
    agent_id: str
    external: bool
    kernel_id: str | None = None
    status: AgentStatus = "connecting"
    client: Any = None
    subshells: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    free_subshells: list[str] = field(default_factory=list)
    subshell_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(MAX_SUBSHELLS)
    )
    serial: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiters: dict[str, _Exec | _Request] = field(default_factory=dict)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    watcher: asyncio.Task[None] | None = None
    reconnecting: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    sandbox: dict[str, Any] | None = None
    """The runtime's ``configure`` setting, applied again at every injection."""


_runtime_source: str | None = None


def runtime_source() -> str:
    """The agent runtime's source text (``agent_runtime.py``), read once."""
    global _runtime_source
    if _runtime_source is None:
        _runtime_source = Path(__file__).with_name("agent_runtime.py").read_text("utf-8")
    return _runtime_source


_BOOTSTRAP = """\
import sys, types
mod = sys.modules.get(NAME)
if mod is None or getattr(mod, "RUNTIME_VERSION", None) != VERSION:
    mod = types.ModuleType(NAME)
    mod.__dict__["RUNTIME_VERSION"] = VERSION
    exec(compile(SOURCE, "<coderchat-agent-runtime>", "exec"), mod.__dict__)
    sys.modules[NAME] = mod
mod.hello(SANDBOX)
"""


def _inject_code(sandbox: dict[str, Any] | None) -> str:
    source = runtime_source()
    version = hashlib.sha256(source.encode()).hexdigest()[:16]
    # exec() with a fresh globals dict: nothing is bound in the user's namespace.
    scope = (
        f"{{'SOURCE': {source!r}, 'NAME': {RUNTIME_MODULE!r}, 'VERSION': {version!r}, "
        f"'SANDBOX': {sandbox!r}}}"
    )
    return f"exec(compile({_BOOTSTRAP!r}, '<coderchat-agent-bootstrap>', 'exec'), {scope})"


def _call_code(call_id: str, op: str, args: dict[str, Any]) -> str:
    payload = json.dumps(args)
    return f"__import__('sys').modules[{RUNTIME_MODULE!r}].call({call_id!r}, {op!r}, {payload!r})"


class _RuntimeMissing(Exception):
    """The kernel no longer has the runtime (it was restarted): inject again and retry."""


class AgentManager:
    """Starts, attaches, calls and watches kernel agents (module docstring).

    ``kernel_manager`` is the server's ``MappingKernelManager`` (or the gateway one).
    ``secrets`` are the values a kernel's inherited environment must not hold (see
    :func:`~.environment.kernel_environment`). ``on_status(agent_id, status)`` is awaited on
    every liveness change. ``use_subshells`` False forces the serial mode even on kernels with
    subshells (tests, benchmarks).
    """

    def __init__(
        self,
        kernel_manager: Any,
        *,
        inactive_timeout: float = 120.0,
        on_status: Callable[[str, AgentStatus], Awaitable[None]] | None = None,
        log: logging.Logger | None = None,
        use_subshells: bool = True,
        poll_interval: float = POLL_INTERVAL,
        connect_timeout: float = CONNECT_TIMEOUT,
        secrets: SecretSource | None = None,
    ) -> None:
        self.kernel_manager = kernel_manager
        self.secrets = secrets
        self.inactive_timeout = inactive_timeout
        self.on_status = on_status
        self.log = log or logging.getLogger(__name__)
        self.use_subshells = use_subshells
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        self._agents: dict[str, _Agent] = {}
        self._call_ids = itertools.count(1)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(
        self,
        agent_id: str,
        *,
        kernel_name: str,
        path: str,
        env: dict[str, str] | None = None,
        env_passthrough: list[str] | None = None,
        sandbox: dict[str, Any] | None = None,
    ) -> str:
        """Start a kernel for ``agent_id`` with ``path`` (the server-relative API path of the
        workspace folder) as its cwd, inject the runtime, and return the kernel id. Status goes
        ``connecting`` → ``connected``. ``sandbox`` is the runtime's ``configure`` setting
        (``SandboxManifest.runtime()``). Raises :class:`AgentError` when the kernel does not
        start or answer, or its sandbox cannot run (the agent is then ``disconnected``;
        :meth:`shutdown` cleans up).

        The kernel's environment is ``env`` over the allowlisted part of the server's
        (``env_passthrough``: the template's extra names or patterns), never a secret
        (:func:`~.environment.kernel_environment`)."""
        if agent_id in self._agents:
            raise ValueError(f"agent {agent_id} is already managed")
        agent = _Agent(agent_id, external=False, sandbox=sandbox)
        self._agents[agent_id] = agent
        await self._set_status(agent, "connecting", force=True)
        # Passed explicitly: without ``env`` the provisioner would copy the server's whole
        # environment (jupyter_client's ``pre_launch`` defaults to ``os.environ``).
        secrets = await self.secrets.current() if self.secrets is not None else frozenset()
        kernel_env = kernel_environment(
            os.environ, passthrough=env_passthrough or (), own=env, secret_values=secrets
        )
        try:
            kernel_id = str(
                await ensure_async(
                    self.kernel_manager.start_kernel(
                        kernel_name=kernel_name, path=path, env=kernel_env
                    )
                )
            )
        except Exception as exc:
            await self._set_status(agent, "disconnected")
            raise AgentError(f"kernel {kernel_name} did not start: {exc}") from exc
        agent.kernel_id = kernel_id
        await self._connect(agent)
        return kernel_id

    async def attach(self, agent_id: str, kernel_id: str) -> None:
        """Bind the running kernel ``kernel_id`` (an external agent) and inject the runtime.
        Raises :class:`AgentError` when the server has no such kernel or it does not answer."""
        if kernel_id not in self.kernel_manager:
            raise AgentError(f"no running kernel {kernel_id}")
        old = self._agents.pop(agent_id, None)
        if old is not None:
            await self._release(old)
        agent = _Agent(agent_id, external=True, kernel_id=kernel_id)
        self._agents[agent_id] = agent
        await self._set_status(agent, "connecting", force=True)
        await self._connect(agent)

    async def shutdown(self, agent_id: str) -> None:
        """Shut the agent's kernel down and forget the agent (stop/delete builds)."""
        agent = self._agents.pop(agent_id, None)
        if agent is None:
            return
        await self._release(agent)
        kid = agent.kernel_id
        if kid is not None and kid in self.kernel_manager:
            try:
                await ensure_async(self.kernel_manager.shutdown_kernel(kid))
            except Exception:
                self.log.warning("agent %s: shutting down kernel %s failed", agent_id, kid)

    async def detach(self, agent_id: str) -> None:
        """Forget the agent without touching its kernel (external agents)."""
        agent = self._agents.pop(agent_id, None)
        if agent is not None:
            await self._release(agent)

    async def close(self) -> None:
        """Let go of every agent (extension stop): channels closed, watchers cancelled; the
        kernels stay, they are the server's."""
        agents = list(self._agents.values())
        self._agents.clear()
        for agent in agents:
            await self._release(agent)

    def status(self, agent_id: str) -> AgentStatus | None:
        """The agent's liveness; None for an agent this manager does not know."""
        agent = self._agents.get(agent_id)
        return agent.status if agent is not None else None

    def kernel_id(self, agent_id: str) -> str | None:
        agent = self._agents.get(agent_id)
        return agent.kernel_id if agent is not None else None

    def info(self, agent_id: str) -> dict[str, Any]:
        """What the runtime reported at injection: ``cwd``, ``os``, ``hostname``, ``pid``,
        ``python``, ``subshells``; empty before it answered."""
        agent = self._agents.get(agent_id)
        return dict(agent.info) if agent is not None else {}

    def handle(self, agent_id: str) -> AgentHandle:
        return AgentHandle(self, agent_id)

    # --- calls ----------------------------------------------------------------------------

    async def call(
        self,
        agent_id: str,
        op: str,
        args: dict[str, Any],
        *,
        on_output: OutputCallback | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Run runtime operation ``op`` with ``args`` and return its result (JSON value).

        ``on_output`` receives ``stream`` text while the call runs; ``timeout`` (seconds,
        default :data:`DEFAULT_CALL_TIMEOUT`) bounds the whole call. Raises
        :class:`AgentUnavailable` (unknown, disconnected or timed-out agent, the kernel dying
        during the call, no answer in time) or :class:`AgentError` (the operation failed).
        Cancelling the caller cancels the operation in the kernel.
        """
        agent = self._agents.get(agent_id)
        if agent is None:
            raise AgentUnavailable(NO_RUNNING_AGENT)
        deadline = time.monotonic() + (timeout if timeout is not None else DEFAULT_CALL_TIMEOUT)
        for attempt in range(2):
            await self._wait_usable(agent, deadline)
            try:
                return await self._call_once(agent, op, args, on_output, deadline)
            except _RuntimeMissing:
                if attempt:
                    raise AgentError("the agent runtime is missing from the kernel") from None
                await self._reinject(agent)
        raise AssertionError("unreachable")

    async def interrupt(self, agent_id: str) -> None:
        """Stop what the agent is doing. With subshells the runtime cancels its running calls
        (foreground commands are killed); without, a kernel this manager started is
        interrupted. An external kernel is never interrupted: the user's own cell may be
        running in it."""
        agent = self._agents.get(agent_id)
        if agent is None or agent.status != "connected":
            return
        if agent.subshells:
            with contextlib.suppress(AgentUnavailable, AgentError):
                await self._call_once(agent, "cancel", {}, None, time.monotonic() + 5)
        elif not agent.external and agent.kernel_id is not None:
            with contextlib.suppress(Exception):
                await ensure_async(self.kernel_manager.interrupt_kernel(agent.kernel_id))

    async def _wait_usable(self, agent: _Agent, deadline: float) -> None:
        """Return when the agent is ``connected``; raise at once when it is unreachable."""
        while True:
            if agent.closed:
                raise AgentUnavailable(NO_RUNNING_AGENT)
            if agent.status == "connected":
                return
            if agent.status in _UNREACHABLE:
                raise AgentUnavailable(_UNREACHABLE[agent.status])
            remaining = min(deadline, time.monotonic() + self.connect_timeout) - time.monotonic()
            if remaining <= 0:
                raise AgentUnavailable(AGENT_TIMEOUT)
            agent.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(agent.changed.wait(), remaining)

    async def _call_once(
        self,
        agent: _Agent,
        op: str,
        args: dict[str, Any],
        on_output: OutputCallback | None,
        deadline: float,
    ) -> Any:
        call_id = f"c{next(self._call_ids)}"
        code = _call_code(call_id, op, args)
        if agent.subshells:
            async with agent.subshell_slots:
                subshell = await self._take_subshell(agent, deadline)
                # Raises when the request may still be running: such a subshell is not reused
                # (the kernel drops it with the kernel).
                exec_ = await self._run(agent, code, subshell, on_output, deadline, call_id)
                agent.free_subshells.append(subshell)
        else:
            async with agent.serial:
                exec_ = await self._run(agent, code, None, on_output, deadline, call_id)
        return _result(exec_)

    async def _take_subshell(self, agent: _Agent, deadline: float) -> str:
        if agent.free_subshells:
            return agent.free_subshells.pop()
        reply = await self._request(agent, "control", "create_subshell_request", {}, deadline)
        if reply.get("status") != "ok" or not reply.get("subshell_id"):
            raise AgentError(f"creating a kernel subshell failed: {reply.get('evalue', reply)}")
        return str(reply["subshell_id"])

    async def _run(
        self,
        agent: _Agent,
        code: str,
        subshell: str | None,
        on_output: OutputCallback | None,
        deadline: float,
        call_id: str | None,
    ) -> _Exec:
        """Execute ``code`` and wait until the kernel finished it (its reply and its idle
        status), forwarding ``stream`` text to ``on_output``. Raises
        :class:`AgentUnavailable` when it did not finish by ``deadline`` or the connection
        failed; a cancelled wait cancels call ``call_id`` in the kernel."""
        exec_ = _Exec()
        msg_id = self._send(
            agent,
            "shell",
            "execute_request",
            {
                "code": code,
                "silent": True,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": False,
            },
            subshell,
            exec_,
        )
        finished = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    kind, value = await asyncio.wait_for(exec_.items.get(), max(remaining, 0))
                except asyncio.TimeoutError:
                    raise AgentUnavailable(AGENT_TIMEOUT) from None
                if kind == _ITEM_STREAM:
                    if on_output is not None and value:
                        await on_output(value)
                elif kind == _ITEM_FAIL:
                    raise value
                else:
                    finished = True
                    return exec_
        finally:
            agent.waiters.pop(msg_id, None)
            if not finished and call_id is not None:
                self._cancel_in_kernel(agent, call_id)

    def _cancel_in_kernel(self, agent: _Agent, call_id: str) -> None:
        """Best effort, in the background: stop the cancelled call ``call_id`` in the kernel
        (on another subshell; without subshells only a kernel interrupt can reach it)."""

        async def cancel() -> None:
            if agent.subshells and agent.status == "connected":
                with contextlib.suppress(Exception):
                    await self._call_once(
                        agent, "cancel", {"call_id": call_id}, None, time.monotonic() + 5
                    )
            elif not agent.external and agent.kernel_id is not None:
                with contextlib.suppress(Exception):
                    await ensure_async(self.kernel_manager.interrupt_kernel(agent.kernel_id))

        task = asyncio.ensure_future(cancel())
        _background.add(task)
        task.add_done_callback(_background.discard)

    def _send(
        self,
        agent: _Agent,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        subshell: str | None,
        waiter: _Exec | _Request,
    ) -> str:
        client = agent.client
        if client is None:
            raise AgentUnavailable(_UNREACHABLE.get(agent.status, AGENT_DISCONNECTED))
        msg = client.session.msg(msg_type, content)
        if subshell is not None:
            msg["header"]["subshell_id"] = subshell
        # Through a gateway the channel travels in the message (a websocket multiplexes them).
        msg["channel"] = channel
        msg_id = str(msg["header"]["msg_id"])
        agent.waiters[msg_id] = waiter
        try:
            getattr(client, f"{channel}_channel").send(msg)
        except Exception as exc:
            agent.waiters.pop(msg_id, None)
            raise AgentUnavailable(AGENT_DISCONNECTED) from exc
        return msg_id

    async def _request(
        self,
        agent: _Agent,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        deadline: float,
    ) -> dict[str, Any]:
        request = _Request(channel)
        msg_id = self._send(agent, channel, msg_type, content, None, request)
        try:
            return await asyncio.wait_for(request.reply, max(deadline - time.monotonic(), 0.01))
        except asyncio.TimeoutError:
            raise AgentUnavailable(AGENT_TIMEOUT) from None
        finally:
            agent.waiters.pop(msg_id, None)

    # --- connection -----------------------------------------------------------------------

    async def _connect(self, agent: _Agent) -> None:
        """Open channels, wait for the kernel, inject the runtime; ``connected`` on success.
        On failure the agent is ``disconnected`` and :class:`AgentError` is raised."""
        try:
            await self._open(agent)
        except Exception as exc:
            await self._drop_connection(agent)
            await self._set_status(agent, "disconnected")
            message = exc.message if isinstance(exc, AgentUnavailable | AgentError) else str(exc)
            raise AgentError(f"the kernel did not answer: {message}") from exc
        if agent.watcher is None:
            agent.watcher = asyncio.ensure_future(self._watch(agent))
        await self._set_status(agent, "connected")

    async def _open(self, agent: _Agent) -> None:
        assert agent.kernel_id is not None
        kernel = self.kernel_manager.get_kernel(agent.kernel_id)
        client = kernel.client(session=_own_session(kernel))
        await ensure_async(client.start_channels())
        agent.client = client
        agent.readers = [
            asyncio.ensure_future(self._reader(agent, client, name))
            for name in ("shell", "iopub", "control")
        ]
        info = await self._handshake(agent)
        features = info.get("supported_features") or []
        agent.subshells = self.use_subshells and "kernel subshells" in features
        agent.free_subshells = []
        await self._inject(agent)

    async def _handshake(self, agent: _Agent) -> dict[str, Any]:
        """``kernel_info_request`` until the kernel replies and its IOPub reaches us (a SUB
        socket misses what is published before it connected). Fails fast when the kernel
        process dies meanwhile.

        Asked on the control channel first, which a kernel answers even while its main shell
        runs a cell (an attached notebook kernel is busy running ``%chat attach`` itself), then
        alternately on shell for kernels that only answer there."""
        deadline = time.monotonic() + self.connect_timeout
        kernel = self.kernel_manager.get_kernel(agent.kernel_id)
        attempt = 0
        while True:
            channel = "control" if attempt % 2 == 0 else "shell"
            attempt += 1
            request = _Request(channel)
            msg_id = self._send(agent, channel, "kernel_info_request", {}, None, request)
            try:
                while not request.reply.done():
                    if time.monotonic() > deadline:
                        raise AgentUnavailable(AGENT_TIMEOUT)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(asyncio.shield(request.reply), 1.0)
                    if not request.reply.done() and not await _is_alive(kernel):
                        raise AgentUnavailable(AGENT_DISCONNECTED)
                reply = request.reply.result()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(request.iopub_seen.wait(), 0.5)
                if request.iopub_seen.is_set():
                    return reply
                if time.monotonic() > deadline:
                    raise AgentUnavailable(AGENT_TIMEOUT)
            finally:
                agent.waiters.pop(msg_id, None)

    async def _inject(self, agent: _Agent) -> None:
        """Run the runtime's source in the kernel; on a subshell when the kernel has them, so a
        main shell busy with a cell does not hold the injection up."""
        deadline = time.monotonic() + self.connect_timeout
        subshell = await self._take_subshell(agent, deadline) if agent.subshells else None
        exec_ = await self._run(agent, _inject_code(agent.sandbox), subshell, None, deadline, None)
        if subshell is not None:
            agent.free_subshells.append(subshell)
        agent.info = dict(_result(exec_) or {}, subshells=agent.subshells)

    async def _reinject(self, agent: _Agent) -> None:
        """The kernel lost the runtime (a restart we did not see): inject it again."""
        self.log.info("agent %s: the runtime is missing, injecting it again", agent.agent_id)
        await self._set_status(agent, "connecting")
        try:
            agent.free_subshells = []
            await self._inject(agent)
        except (AgentError, AgentUnavailable) as exc:
            await self._set_status(agent, "disconnected")
            raise AgentUnavailable(AGENT_DISCONNECTED) from exc
        await self._set_status(agent, "connected")

    async def _reader(self, agent: _Agent, client: Any, name: str) -> None:
        channel = getattr(client, f"{name}_channel")
        while True:
            try:
                msg = await channel.get_msg(timeout=1.0)
            except queue.Empty:
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                if agent.client is client and not agent.closed:
                    self.log.debug("agent %s: %s channel closed", agent.agent_id, name)
                return
            parent = (msg.get("parent_header") or {}).get("msg_id")
            waiter = agent.waiters.get(parent) if parent else None
            if waiter is not None:
                waiter.feed(name, msg)
            elif (
                name == "iopub"
                and msg["header"]["msg_type"] == "status"
                and (msg.get("content") or {}).get("execution_state") == "starting"
                and agent.status == "connected"
            ):
                # A new kernel process on the same ports: it was restarted.
                self._spawn_reconnect(agent)

    async def _watch(self, agent: _Agent) -> None:
        """Poll the kernel's liveness and heartbeat; see the module docstring."""
        last_beat = time.monotonic()
        while not agent.closed:
            await asyncio.sleep(self.poll_interval)
            if agent.reconnecting is not None and not agent.reconnecting.done():
                continue
            kid = agent.kernel_id
            if kid is None or kid not in self.kernel_manager:
                await self._lost(agent)
                return
            alive = await _is_alive(self.kernel_manager.get_kernel(kid))
            now = time.monotonic()
            if not alive:
                await self._lost(agent)
                continue
            if agent.status == "disconnected":
                self._spawn_reconnect(agent)
                continue
            hb = getattr(agent.client, "hb_channel", None)
            if hb is None or hb.is_beating():
                last_beat = now
                if agent.status == "timeout":
                    await self._set_status(agent, "connected")
            elif now - last_beat > self.inactive_timeout and agent.status == "connected":
                self.log.warning(
                    "agent %s: no heartbeat for %.0fs", agent.agent_id, now - last_beat
                )
                await self._set_status(agent, "timeout")
                self._fail_waiters(agent, AgentUnavailable(AGENT_TIMEOUT))

    async def _lost(self, agent: _Agent) -> None:
        """The kernel died or is gone: ``disconnected``, calls in flight fail."""
        if agent.status != "disconnected":
            self.log.warning("agent %s: kernel %s is not running", agent.agent_id, agent.kernel_id)
        await self._set_status(agent, "disconnected")
        self._fail_waiters(agent, AgentUnavailable(AGENT_DISCONNECTED))
        agent.free_subshells = []

    def _spawn_reconnect(self, agent: _Agent) -> None:
        if agent.reconnecting is not None and not agent.reconnecting.done():
            return
        agent.reconnecting = asyncio.ensure_future(self._reconnect(agent))

    async def _reconnect(self, agent: _Agent) -> None:
        """The kernel is running again after a restart: fresh channels, runtime injected."""
        self.log.info(
            "agent %s: kernel %s restarted, reconnecting", agent.agent_id, agent.kernel_id
        )
        self._fail_waiters(agent, AgentUnavailable(AGENT_DISCONNECTED))
        await self._set_status(agent, "connecting")
        await self._drop_connection(agent)
        try:
            await self._open(agent)
        except Exception as exc:
            self.log.warning("agent %s: reconnecting failed: %s", agent.agent_id, exc)
            await self._drop_connection(agent)
            await self._set_status(agent, "disconnected")
            return
        await self._set_status(agent, "connected")

    def _fail_waiters(self, agent: _Agent, exc: AgentUnavailable) -> None:
        for waiter in list(agent.waiters.values()):
            waiter.fail(exc)
        agent.waiters.clear()

    async def _drop_connection(self, agent: _Agent) -> None:
        readers, agent.readers = agent.readers, []
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        client, agent.client = agent.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.stop_channels)

    async def _release(self, agent: _Agent) -> None:
        agent.closed = True
        agent.changed.set()
        self._fail_waiters(agent, AgentUnavailable(NO_RUNNING_AGENT))
        tasks = [t for t in (agent.watcher, agent.reconnecting) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._drop_connection(agent)

    async def _set_status(self, agent: _Agent, status: AgentStatus, *, force: bool = False) -> None:
        """Record a liveness change and report it to ``on_status`` (``force``: report even
        an unchanged status, for a new agent's first ``connecting``)."""
        if agent.status == status and not force:
            return
        agent.status = status
        agent.changed.set()
        self.log.debug("agent %s: %s", agent.agent_id, status)
        if self.on_status is not None and not agent.closed:
            try:
                await self.on_status(agent.agent_id, status)
            except Exception:
                self.log.exception("agent %s: on_status failed", agent.agent_id)


_background: set[asyncio.Future[Any]] = set()


def _result(exec_: _Exec) -> Any:
    """The result of a finished call; raises :class:`AgentError` for a failed operation and
    :class:`_RuntimeMissing` when the kernel has no runtime."""
    if exec_.has_result:
        payload = exec_.result
        if isinstance(payload, dict) and payload.get("ok"):
            return payload.get("result")
        error = payload.get("error") if isinstance(payload, dict) else None
        raise AgentError(str(error or "the agent returned an invalid result"))
    ename, evalue = exec_.error or ("", "")
    if ename == "KeyError" and RUNTIME_MODULE in evalue:
        raise _RuntimeMissing()
    if ename == "KeyboardInterrupt":
        raise AgentError("the operation was interrupted")
    if ename:
        raise AgentError(f"{ename}: {evalue}")
    raise AgentError("the agent returned no result")


def _own_session(kernel: Any) -> Any:
    """A copy of the kernel's session (key, signature scheme) with a session id of its own.
    The session id is also the ZMQ identity of the client's sockets: a client sharing it with
    another (every ``kernel.client()`` does) would have its replies routed to the other one."""
    session = kernel.session.clone()
    session.session = str(uuid.uuid4())
    return session


async def _is_alive(kernel: Any) -> bool:
    try:
        return bool(await ensure_async(kernel.is_alive()))
    except Exception:
        return False


@dataclass
class FixedAgentResolver:
    """An :class:`AgentResolver` binding every chat to one agent (tests, benchmarks, a
    single-kernel setup)."""

    handle: AgentHandle

    async def agent_for_chat(self, chat: Chat) -> AgentHandle:
        status = self.handle.status
        if status is None:
            raise AgentUnavailable(NO_RUNNING_AGENT)
        if status in _UNREACHABLE:
            raise AgentUnavailable(_UNREACHABLE[status])
        return self.handle
