"""The wire between the daemon and an agent's kernel (docs/workspaces.md#agents).

Owns what travels over a kernel's channels and how it is read: the runtime's injection, the
``execute_request`` of each call and the one ``display_data`` of MIME type :data:`RESULT_MIME`
that answers it, the ``kernel_info_request`` handshake, the pool of kernel subshells, and the
texts of the connection errors the model reads (docs/workspaces.md#connection-errors). When the
agent is started, watched and stopped is :mod:`.lifecycle`'s business.

The stdlib-only runtime (``agent_runtime.py``) is executed into a private module of the kernel
with one ``execute_request`` (``silent``, ``store_history=False``); each call is an
``execute_request`` running ``<module>.call(call_id, op, args_json)``. The runtime answers with
exactly one ``display_data`` of MIME type :data:`RESULT_MIME` holding ``{"ok": true, "result":
...}`` or ``{"ok": false, "error": "..."}``; long output arrives before it as ``stream``
messages, forwarded to the caller's ``on_output``. When the kernel advertises ``kernel
subshells`` (ipykernel >= 7) every call runs on a subshell of a small pool, so parallel calls
run in parallel; otherwise calls are serialized.

Only jupyter_client's async client API is used (``kernel.client()``), so the kernel may live on
a kernel gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import queue
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from jupyter_core.utils import ensure_async

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

UNREACHABLE: dict[str, str] = {"disconnected": AGENT_DISCONNECTED, "timeout": AGENT_TIMEOUT}
"""The connection error of an agent in an unreachable status."""

RESEND_MAX = 10.0
"""Seconds between ``kernel_info_request`` repeats to a kernel that has not answered, at most
(the gap doubles from 2 s)."""
SUBSHELL_RETRY = 1.0
"""Seconds before a ``create_subshell_request`` without a reply is sent again (doubling)."""
MAX_SUBSHELLS = 16
"""Subshells per kernel at most; more parallel calls wait for a free one."""


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


class RuntimeMissing(Exception):
    """The kernel no longer has the runtime (it was restarted): inject again and retry."""


OutputCallback = Callable[[str], Awaitable[None]]

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


_runtime_source: str | None = None


def runtime_source() -> str:
    """The agent runtime's source text (``workspaces/agent_runtime.py``), read once."""
    global _runtime_source
    if _runtime_source is None:
        path = Path(__file__).resolve().parent.parent / "agent_runtime.py"
        _runtime_source = path.read_text("utf-8")
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


def _result(exec_: _Exec) -> Any:
    """The result of a finished call; raises :class:`AgentError` for a failed operation and
    :class:`RuntimeMissing` when the kernel has no runtime."""
    if exec_.has_result:
        payload = exec_.result
        if isinstance(payload, dict) and payload.get("ok"):
            return payload.get("result")
        error = payload.get("error") if isinstance(payload, dict) else None
        raise AgentError(str(error or "the agent returned an invalid result"))
    ename, evalue = exec_.error or ("", "")
    if ename == "KeyError" and RUNTIME_MODULE in evalue:
        raise RuntimeMissing()
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


def _not_answering(kernel_id: str | None, seconds: float) -> str:
    """Why a start failed when the kernel process runs but never answered, and what to do."""
    return (
        f"its process ran for {seconds:.0f}s without replying (kernel {kernel_id}); a first "
        "start on a cold machine can be that slow. Check the kernel in JupyterLab's Running "
        "panel and the Jupyter server's log, then start the workspace again"
    )


async def is_alive(kernel: Any) -> bool:
    """Whether the kernel's process is alive; False when asking fails."""
    try:
        return bool(await ensure_async(kernel.is_alive()))
    except Exception:
        return False


class KernelConnection:
    """The channels to one agent's kernel and the messages exchanged over them.

    ``label`` names the agent in logs. ``on_restart`` is called when the kernel announces a new
    process on the same ports (an IOPub ``starting`` status no request caused). The object
    outlives a reconnect: :meth:`close` drops the channels, :meth:`open` makes new ones; the
    subshell slots and the serial lock stay.
    """

    def __init__(self, label: str, *, on_restart: Callable[[], None], log: logging.Logger) -> None:
        self.label = label
        self.on_restart = on_restart
        self.log = log
        self.client: Any = None
        self.subshells = False
        """The kernel runs calls on subshells (else they are serialized)."""
        self.info: dict[str, Any] = {}
        """What the runtime reported at injection, plus ``subshells``."""
        self.free_subshells: list[str] = []
        self.subshell_slots = asyncio.Semaphore(MAX_SUBSHELLS)
        self.serial = asyncio.Lock()
        self.waiters: dict[str, _Exec | _Request] = {}
        self.readers: list[asyncio.Task[None]] = []

    async def open(
        self,
        kernel: Any,
        kernel_id: str | None,
        *,
        use_subshells: bool,
        start_timeout: float,
        connect_timeout: float,
        sandbox: dict[str, Any] | None,
    ) -> None:
        """Open the channels, shake hands (:meth:`handshake`) and inject the runtime with its
        ``sandbox`` setting. Raises :class:`AgentUnavailable` or :class:`AgentError`."""
        client = kernel.client(session=_own_session(kernel))
        await ensure_async(client.start_channels())
        self.client = client
        self.readers = [
            asyncio.ensure_future(self._reader(client, name))
            for name in ("shell", "iopub", "control")
        ]
        info = await self.handshake(
            kernel, kernel_id, start_timeout=start_timeout, connect_timeout=connect_timeout
        )
        features = info.get("supported_features") or []
        self.subshells = use_subshells and "kernel subshells" in features
        self.free_subshells = []
        await self.inject(sandbox, connect_timeout)

    async def close(self) -> None:
        """Stop the readers and close the channels (the kernel is left alone)."""
        readers, self.readers = self.readers, []
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.stop_channels)

    def fail_waiters(self, exc: AgentUnavailable) -> None:
        """Fail every request in flight with ``exc``."""
        for waiter in list(self.waiters.values()):
            waiter.fail(exc)
        self.waiters.clear()

    async def call(
        self,
        call_id: str,
        op: str,
        args: dict[str, Any],
        on_output: OutputCallback | None,
        deadline: float,
        *,
        on_abandon: Callable[[], None],
    ) -> Any:
        """Run runtime operation ``op`` as call ``call_id`` and return its result, by
        ``deadline`` (``time.monotonic()``). ``on_abandon`` is called when the wait ends before
        the kernel finished (a timeout, a cancelled caller). Raises :class:`AgentUnavailable`,
        :class:`AgentError` or :class:`RuntimeMissing`."""
        code = _call_code(call_id, op, args)
        if self.subshells:
            async with self.subshell_slots:
                subshell = await self._take_subshell(deadline)
                # Raises when the request may still be running: such a subshell is not reused
                # (the kernel drops it with the kernel).
                exec_ = await self._run(code, subshell, on_output, deadline, on_abandon)
                self.free_subshells.append(subshell)
        else:
            async with self.serial:
                exec_ = await self._run(code, None, on_output, deadline, on_abandon)
        return _result(exec_)

    async def inject(self, sandbox: dict[str, Any] | None, timeout: float) -> None:
        """Run the runtime's source in the kernel; on a subshell when the kernel has them, so a
        main shell busy with a cell does not hold the injection up. Sets :attr:`info`."""
        deadline = time.monotonic() + timeout
        subshell = await self._take_subshell(deadline) if self.subshells else None
        exec_ = await self._run(_inject_code(sandbox), subshell, None, deadline, None)
        if subshell is not None:
            self.free_subshells.append(subshell)
        self.info = dict(_result(exec_) or {}, subshells=self.subshells)

    async def handshake(
        self,
        kernel: Any,
        kernel_id: str | None,
        *,
        start_timeout: float,
        connect_timeout: float,
    ) -> dict[str, Any]:
        """``kernel_info_request`` until the kernel replies and its IOPub reaches us (a SUB
        socket misses what is published before it connected). Fails fast when the kernel
        process dies meanwhile.

        Asked on the control channel first, which a kernel answers even while its main shell
        runs a cell (an attached notebook kernel is busy running ``%chat attach`` itself), then
        alternately on shell for kernels that only answer there, again every few seconds
        until one is answered. A live kernel that has not answered yet is still starting
        (a first start on a cold machine imports ipykernel and IPython from a cold disk, or
        compiles them): it gets ``start_timeout`` for its first reply; once it replied, the
        IOPub check gets ``connect_timeout``."""
        started = time.monotonic()
        deadline = started + start_timeout
        requests: dict[str, _Request] = {}
        sent = 0
        resend_at = started
        try:
            while True:
                now = time.monotonic()
                answered = next((r for r in requests.values() if r.reply.done()), None)
                if answered is None and now >= resend_at:
                    channel = "control" if sent % 2 == 0 else "shell"
                    sent += 1
                    request = _Request(channel)
                    requests[self._send(channel, "kernel_info_request", {}, None, request)] = (
                        request
                    )
                    resend_at = now + min(2.0 ** len(requests), RESEND_MAX)
                if answered is None:
                    if now > deadline:
                        raise AgentError(_not_answering(kernel_id, now - started))
                    # asyncio.wait leaves the replies pending on timeout (no cancellation).
                    replies = [r.reply for r in requests.values()]
                    await asyncio.wait(replies, timeout=min(1.0, max(resend_at - now, 0.05)))
                    if not any(r.reply.done() for r in requests.values()) and not await is_alive(
                        kernel
                    ):
                        raise AgentUnavailable(AGENT_DISCONNECTED)
                    continue
                reply = answered.reply.result()  # raises when the connection failed
                # The kernel is up: what is left is quick, so the usual connect deadline.
                deadline = min(deadline, now + connect_timeout)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(answered.iopub_seen.wait(), 0.5)
                if any(r.iopub_seen.is_set() for r in requests.values()):
                    return reply
                if time.monotonic() > deadline:
                    raise AgentUnavailable(AGENT_TIMEOUT)
                # Ask again, so the next reply's IOPub status comes after the SUB connected.
                for msg_id in list(requests):
                    self.waiters.pop(msg_id, None)
                requests.clear()
                resend_at = time.monotonic()
        finally:
            for msg_id in requests:
                self.waiters.pop(msg_id, None)

    async def _take_subshell(self, deadline: float) -> str:
        """A free subshell of the kernel, or a new one.

        ipykernel 7 answers on control before its main thread has built the subshell manager,
        and a ``create_subshell_request`` that arrives in between is lost (the control thread
        fails an assertion and never replies), so the request is sent again after
        :data:`SUBSHELL_RETRY` seconds, doubling, until ``deadline``; the first reply wins."""
        if self.free_subshells:
            return self.free_subshells.pop()
        requests: dict[str, _Request] = {}
        wait = SUBSHELL_RETRY
        try:
            while True:
                request = _Request("control")
                requests[self._send("control", "create_subshell_request", {}, None, request)] = (
                    request
                )
                remaining = deadline - time.monotonic()
                done, _ = await asyncio.wait(
                    [r.reply for r in requests.values()],
                    timeout=max(min(wait, remaining), 0.01),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if done:
                    reply = done.pop().result()
                    break
                if time.monotonic() >= deadline:
                    raise AgentUnavailable(AGENT_TIMEOUT)
                wait *= 2
        finally:
            for msg_id in requests:
                self.waiters.pop(msg_id, None)
        if reply.get("status") != "ok" or not reply.get("subshell_id"):
            raise AgentError(f"creating a kernel subshell failed: {reply.get('evalue', reply)}")
        return str(reply["subshell_id"])

    async def _run(
        self,
        code: str,
        subshell: str | None,
        on_output: OutputCallback | None,
        deadline: float,
        on_abandon: Callable[[], None] | None,
    ) -> _Exec:
        """Execute ``code`` and wait until the kernel finished it (its reply and its idle
        status), forwarding ``stream`` text to ``on_output``. Raises
        :class:`AgentUnavailable` when it did not finish by ``deadline`` or the connection
        failed; then, or when the wait is cancelled, ``on_abandon`` is called."""
        exec_ = _Exec()
        msg_id = self._send(
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
            self.waiters.pop(msg_id, None)
            if not finished and on_abandon is not None:
                on_abandon()

    def _send(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        subshell: str | None,
        waiter: _Exec | _Request,
    ) -> str:
        client = self.client
        if client is None:
            # Only while the channels are being replaced (connecting) or after the kernel was
            # lost (disconnected).
            raise AgentUnavailable(AGENT_DISCONNECTED)
        msg = client.session.msg(msg_type, content)
        if subshell is not None:
            msg["header"]["subshell_id"] = subshell
        # Through a gateway the channel travels in the message (a websocket multiplexes them).
        msg["channel"] = channel
        msg_id = str(msg["header"]["msg_id"])
        self.waiters[msg_id] = waiter
        try:
            getattr(client, f"{channel}_channel").send(msg)
        except Exception as exc:
            self.waiters.pop(msg_id, None)
            raise AgentUnavailable(AGENT_DISCONNECTED) from exc
        return msg_id

    async def _request(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        deadline: float,
    ) -> dict[str, Any]:
        request = _Request(channel)
        msg_id = self._send(channel, msg_type, content, None, request)
        try:
            return await asyncio.wait_for(request.reply, max(deadline - time.monotonic(), 0.01))
        except asyncio.TimeoutError:
            raise AgentUnavailable(AGENT_TIMEOUT) from None
        finally:
            self.waiters.pop(msg_id, None)

    async def _reader(self, client: Any, name: str) -> None:
        channel = getattr(client, f"{name}_channel")
        while True:
            try:
                msg = await channel.get_msg(timeout=1.0)
            except queue.Empty:
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                if self.client is client:
                    self.log.debug("agent %s: %s channel closed", self.label, name)
                return
            parent = (msg.get("parent_header") or {}).get("msg_id")
            waiter = self.waiters.get(parent) if parent else None
            if waiter is not None:
                waiter.feed(name, msg)
            elif (
                name == "iopub"
                and msg["header"]["msg_type"] == "status"
                and (msg.get("content") or {}).get("execution_state") == "starting"
            ):
                # A new kernel process on the same ports: it was restarted.
                self.on_restart()
