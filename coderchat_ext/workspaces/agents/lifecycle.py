"""Workspace agents on Jupyter kernels: their lifecycle on the daemon side
(docs/workspaces.md#agents).

An agent is a kernel started (or attached) through the Jupyter server's kernel manager, so it
shows in JupyterLab's running-kernels list and may live on a kernel gateway: nothing here
assumes the kernel runs on this host or shares its filesystem. :class:`AgentManager` starts,
attaches, stops and watches the agents and routes calls to them; what travels over a kernel's
channels (the runtime, calls and their results, the handshake, subshells, the connection
errors' texts) is :mod:`.protocol`'s.

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
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from jupyter_core.utils import ensure_async

from ...models import Chat
from ..environment import SecretSource, kernel_environment
from .protocol import (
    AGENT_DISCONNECTED,
    AGENT_TIMEOUT,
    NO_RUNNING_AGENT,
    UNREACHABLE,
    AgentError,
    AgentStatus,
    AgentUnavailable,
    KernelConnection,
    OutputCallback,
    RuntimeMissing,
    is_alive,
)

DEFAULT_CALL_TIMEOUT = 60.0
"""Seconds a call may take when the caller gives no timeout."""
CONNECT_TIMEOUT = 60.0
"""Seconds for a kernel that answered to finish connecting (IOPub, subshell, runtime), and
for a call to wait for a ``connecting`` agent."""
START_TIMEOUT = 300.0
"""Seconds a kernel whose process is alive may take to answer its first
``kernel_info_request`` (a first start on a cold machine can take minutes)."""
POLL_INTERVAL = 0.5
"""Seconds between liveness checks of each agent."""


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


@dataclass
class _Agent:
    agent_id: str
    external: bool
    conn: KernelConnection
    kernel_id: str | None = None
    status: AgentStatus = "connecting"
    watcher: asyncio.Task[None] | None = None
    reconnecting: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    sandbox: dict[str, Any] | None = None
    """The runtime's ``configure`` setting, applied again at every injection."""


class AgentManager:
    """Starts, attaches, calls and watches kernel agents (module docstring).

    ``kernel_manager`` is the server's ``MappingKernelManager`` (or the gateway one).
    ``secrets`` are the values a kernel's inherited environment must not hold (see
    :func:`~coderchat_ext.workspaces.environment.kernel_environment`).
    ``on_status(agent_id, status)`` is awaited on every liveness change. ``use_subshells``
    False forces the serial mode even on kernels with subshells (tests, benchmarks). Calls and
    the handshake travel over each agent's :class:`~.protocol.KernelConnection`.
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
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.kernel_manager = kernel_manager
        self.secrets = secrets
        self.inactive_timeout = inactive_timeout
        self.on_status = on_status
        self.log = log or logging.getLogger(__name__)
        self.use_subshells = use_subshells
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        self.start_timeout = start_timeout
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
        (:func:`~coderchat_ext.workspaces.environment.kernel_environment`)."""
        if agent_id in self._agents:
            raise ValueError(f"agent {agent_id} is already managed")
        agent = self._new_agent(agent_id, external=False, sandbox=sandbox)
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
        agent = self._new_agent(agent_id, external=True, kernel_id=kernel_id)
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
        return dict(agent.conn.info) if agent is not None else {}

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
            except RuntimeMissing:
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
        if agent.conn.subshells:
            with contextlib.suppress(AgentUnavailable, AgentError):
                await self._call_once(agent, "cancel", {}, None, time.monotonic() + 5)
        elif not agent.external and agent.kernel_id is not None:
            with contextlib.suppress(Exception):
                await ensure_async(self.kernel_manager.interrupt_kernel(agent.kernel_id))

    def _new_agent(self, agent_id: str, **fields: Any) -> _Agent:
        agent: _Agent

        def restarted() -> None:
            # A new kernel process on the same ports: a connected agent reconnects.
            if agent.status == "connected":
                self._spawn_reconnect(agent)

        agent = _Agent(
            agent_id,
            conn=KernelConnection(agent_id, on_restart=restarted, log=self.log),
            **fields,
        )
        return agent

    async def _wait_usable(self, agent: _Agent, deadline: float) -> None:
        """Return when the agent is ``connected``; raise at once when it is unreachable."""
        while True:
            if agent.closed:
                raise AgentUnavailable(NO_RUNNING_AGENT)
            if agent.status == "connected":
                return
            if agent.status in UNREACHABLE:
                raise AgentUnavailable(UNREACHABLE[agent.status])
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
        return await agent.conn.call(
            call_id,
            op,
            args,
            on_output,
            deadline,
            on_abandon=lambda: self._cancel_in_kernel(agent, call_id),
        )

    def _cancel_in_kernel(self, agent: _Agent, call_id: str) -> None:
        """Best effort, in the background: stop the cancelled call ``call_id`` in the kernel
        (on another subshell; without subshells only a kernel interrupt can reach it)."""

        async def cancel() -> None:
            if agent.conn.subshells and agent.status == "connected":
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

    # --- connection -----------------------------------------------------------------------

    async def _connect(self, agent: _Agent) -> None:
        """Open channels, wait for the kernel, inject the runtime; ``connected`` on success.
        On failure the agent is ``disconnected`` and :class:`AgentError` is raised."""
        try:
            await self._open(agent)
        except Exception as exc:
            await agent.conn.close()
            await self._set_status(agent, "disconnected")
            message = exc.message if isinstance(exc, AgentUnavailable | AgentError) else str(exc)
            raise AgentError(f"the kernel did not answer: {message}") from exc
        if agent.watcher is None:
            agent.watcher = asyncio.ensure_future(self._watch(agent))
        await self._set_status(agent, "connected")

    async def _open(self, agent: _Agent) -> None:
        assert agent.kernel_id is not None
        await agent.conn.open(
            self.kernel_manager.get_kernel(agent.kernel_id),
            agent.kernel_id,
            use_subshells=self.use_subshells,
            start_timeout=self.start_timeout,
            connect_timeout=self.connect_timeout,
            sandbox=agent.sandbox,
        )

    async def _reinject(self, agent: _Agent) -> None:
        """The kernel lost the runtime (a restart we did not see): inject it again."""
        self.log.info("agent %s: the runtime is missing, injecting it again", agent.agent_id)
        await self._set_status(agent, "connecting")
        try:
            agent.conn.free_subshells = []
            await agent.conn.inject(agent.sandbox, self.connect_timeout)
        except (AgentError, AgentUnavailable) as exc:
            await self._set_status(agent, "disconnected")
            raise AgentUnavailable(AGENT_DISCONNECTED) from exc
        await self._set_status(agent, "connected")

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
            alive = await is_alive(self.kernel_manager.get_kernel(kid))
            now = time.monotonic()
            if not alive:
                await self._lost(agent)
                continue
            if agent.status == "disconnected":
                self._spawn_reconnect(agent)
                continue
            hb = getattr(agent.conn.client, "hb_channel", None)
            if hb is None or hb.is_beating():
                last_beat = now
                if agent.status == "timeout":
                    await self._set_status(agent, "connected")
            elif now - last_beat > self.inactive_timeout and agent.status == "connected":
                self.log.warning(
                    "agent %s: no heartbeat for %.0fs", agent.agent_id, now - last_beat
                )
                await self._set_status(agent, "timeout")
                agent.conn.fail_waiters(AgentUnavailable(AGENT_TIMEOUT))

    async def _lost(self, agent: _Agent) -> None:
        """The kernel died or is gone: ``disconnected``, calls in flight fail."""
        if agent.status != "disconnected":
            self.log.warning("agent %s: kernel %s is not running", agent.agent_id, agent.kernel_id)
        await self._set_status(agent, "disconnected")
        agent.conn.fail_waiters(AgentUnavailable(AGENT_DISCONNECTED))
        agent.conn.free_subshells = []

    def _spawn_reconnect(self, agent: _Agent) -> None:
        if agent.reconnecting is not None and not agent.reconnecting.done():
            return
        agent.reconnecting = asyncio.ensure_future(self._reconnect(agent))

    async def _reconnect(self, agent: _Agent) -> None:
        """The kernel is running again after a restart: fresh channels, runtime injected."""
        self.log.info(
            "agent %s: kernel %s restarted, reconnecting", agent.agent_id, agent.kernel_id
        )
        agent.conn.fail_waiters(AgentUnavailable(AGENT_DISCONNECTED))
        await self._set_status(agent, "connecting")
        await agent.conn.close()
        try:
            await self._open(agent)
        except Exception as exc:
            self.log.warning("agent %s: reconnecting failed: %s", agent.agent_id, exc)
            await agent.conn.close()
            await self._set_status(agent, "disconnected")
            return
        await self._set_status(agent, "connected")

    async def _release(self, agent: _Agent) -> None:
        agent.closed = True
        agent.changed.set()
        agent.conn.fail_waiters(AgentUnavailable(NO_RUNNING_AGENT))
        tasks = [t for t in (agent.watcher, agent.reconnecting) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await agent.conn.close()

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


@dataclass
class FixedAgentResolver:
    """An :class:`AgentResolver` binding every chat to one agent (tests, benchmarks, a
    single-kernel setup)."""

    handle: AgentHandle

    async def agent_for_chat(self, chat: Chat) -> AgentHandle:
        status = self.handle.status
        if status is None:
            raise AgentUnavailable(NO_RUNNING_AGENT)
        if status in UNREACHABLE:
            raise AgentUnavailable(UNREACHABLE[status])
        return self.handle
