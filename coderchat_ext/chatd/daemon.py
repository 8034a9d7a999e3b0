"""The chat daemon: acquires pending chats, runs their turns, heartbeats and recovers stale
chats (docs/status-machine.md).

Ownership: a worker acquires chats in a ``BEGIN IMMEDIATE`` transaction (status ``pending`` ->
``running`` with its ``worker_id``), bumps their heartbeats every ``heartbeat_interval``, and
finishes each turn in one transaction that first re-reads the row, so two daemons on one database
file never run or finish the same chat.

Crash recovery: the ``worker_id`` is the server's instance id (:mod:`..store.instance`). At start
the daemon makes ``pending`` every chat still ``running`` under its own id (left by a crash of
this server) or under the id of a server that is gone, at once; chats of live servers are theirs.

A full disk: a write that fails during a turn ends the chat in ``error`` with kind ``storage``.
When the status write itself fails, the error is published on the stream at once and the write
is retried with backoff until space returns (:data:`STATUS_RETRY_INITIAL`, doubling up to
:data:`STATUS_RETRY_MAX`); steps committed before are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..models import (
    Chat,
    ChatError,
    ChatMessage,
    ChatMessagePart,
    ChatModelConfig,
    ChatQueuedMessage,
    ChatStatus,
    ChatStreamRetry,
    ChatWatchEvent,
    WatchEventKind,
    WatchToolCall,
    new_id,
)
from ..providers.registry import NoAdapter, ProviderCatalog
from ..store import Database, StorageFull, is_storage_full
from ..store import chats as store_chats
from ..store import configs as store_configs
from ..store import messages as store_messages
from ..store import models_config as store_models
from ..store.db import Conn
from ..store.instance import InstanceSlots
from ..store.messages import NewMessage, dump_parts
from ..tools.base import Emit, ToolContext, ToolRegistry, WorkspaceTools
from ..workspaces.agents import AgentResolver
from . import prompt
from .context import ContextUnavailable, read_context
from .errors import Classification, ClassifiedError, retry_message
from .loop import (
    MAX_STEPS,
    STARTUP_TIMEOUT,
    CancelReason,
    NotOwner,
    Outcome,
    StepRecord,
    TurnEnv,
    TurnRunner,
    classify_failure,
)
from .secrets import SecretValues
from .stream import StreamHub
from .title import TITLE_TIMEOUT, generate_title

log = logging.getLogger(__name__)

DYNAMIC_TIMEOUT_RESULT = "Dynamic tool execution timed out"
"""The synthetic result and ``last_error`` of a stale ``requires_action`` chat
(docs/status-machine.md#stale-recovery)."""

STATUS_RETRY_INITIAL = 0.5
"""Seconds before the first retry of a final status write refused by a full disk."""
STATUS_RETRY_MAX = 10.0
"""Upper bound of that backoff, in seconds: how late the status lands after space returns."""


@dataclass
class DaemonConfig:
    """Timing and limits, in seconds where a duration (defaults: upstream's,
    docs/status-machine.md#constants)."""

    heartbeat_interval: float = 30.0
    stale_after: float = 300.0
    acquire_interval: float = 1.0
    max_chats_per_acquire: int = 10
    max_steps: int = MAX_STEPS
    startup_timeout: float = STARTUP_TIMEOUT
    retry_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    """How retries wait (tests shorten it; the delays reported in ``retry`` events stay)."""


class _Run:
    def __init__(self, chat_id: str) -> None:
        self.chat_id = chat_id
        self.task: asyncio.Task[None] | None = None
        self.env: TurnEnv | None = None
        self.cancel_reason: CancelReason | None = None
        self.finishing = False
        """The turn is over and its status is being written: cancelling would lose it."""

    def cancel(self, reason: CancelReason) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
        if self.env is not None:
            self.env.cancel_reason = self.cancel_reason
        if self.task is not None and not self.task.done() and not self.finishing:
            self.task.cancel()


def _iso_before(seconds: float) -> str:
    moment = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ChatDaemon:
    """Owns the background tasks that run chats; :meth:`stop` cancels them all.

    ``agents`` (the chat's workspace agent: agent tools, workspace context) and ``workspaces``
    (the workspace tools) reach every tool through :meth:`tool_context`; None: the server has
    none (tools answer "no workspace", the prompt has no workspace context).
    ``secrets`` redacts tool results, their streamed ``result_delta`` s and the workspace
    context (default: the catalog's keys and the environment's secrets).
    ``slots`` gives the server's instance id: :meth:`start` claims it as ``worker_id`` and
    :meth:`stop` releases it (without slots the worker id is random and only stale heartbeats
    reveal orphaned chats).
    """

    def __init__(
        self,
        db: Database,
        hub: StreamHub,
        catalog: ProviderCatalog,
        tools: ToolRegistry,
        config: DaemonConfig | None = None,
        *,
        agents: AgentResolver | None = None,
        workspaces: WorkspaceTools | None = None,
        secrets: SecretValues | None = None,
        slots: InstanceSlots | None = None,
    ) -> None:
        self.db = db
        self.hub = hub
        self.catalog = catalog
        self.tools = tools
        self.config = config or DaemonConfig()
        self.agents = agents
        self.workspaces = workspaces
        self.secrets = secrets if secrets is not None else SecretValues(catalog)
        self.slots = slots
        self.worker_id = new_id()
        self._runs: dict[str, _Run] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self.turns_completed = 0

    def tool_context(self, chat: Chat, tool_call_id: str, emit: Emit) -> ToolContext:
        """What a tool call ``tool_call_id`` of ``chat`` runs with; ``emit`` streams its
        ``result_delta`` s."""
        return ToolContext(
            chat=chat,
            tool_call_id=tool_call_id,
            emit=emit,
            agents=self.agents,
            workspaces=self.workspaces,
        )

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover this server's orphans and stale chats once, then start acquiring,
        heartbeating and recovering."""
        if self.slots is not None:
            self.worker_id = self.slots.claim()
        await self.recover_stale(own_orphans=True)
        self._spawn(self._acquire_loop())
        self._spawn(self._heartbeat_loop())
        self._spawn(self._stale_loop())
        self.wake()

    async def stop(self) -> None:
        """Stop acquiring, end running turns as ``pending`` (resumed by the next start),
        cancel every background task."""
        self._stopping = True
        self._stopped.set()
        runs = list(self._runs.values())
        for run in runs:
            run.cancel("shutdown")
        tasks = [r.task for r in runs if r.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        try:
            async with self.db.tx() as conn:
                await store_chats.release_worker(conn, self.worker_id, "pending")
        except StorageFull:
            # They stay `running` under this instance id: the next start resumes them.
            log.warning("disk full: running chats are resumed at the next start")
        if self.slots is not None:
            self.slots.release()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def wake(self) -> None:
        """Make the acquire loop poll now (a write made a chat pending)."""
        self._wake.set()

    def is_running(self, chat_id: str) -> bool:
        return chat_id in self._runs

    def cancel_run(self, chat_id: str, reason: CancelReason = "interrupt") -> None:
        run = self._runs.get(chat_id)
        if run is not None:
            run.cancel(reason)

    async def wait_idle(self, chat_id: str) -> None:
        """Wait until this worker no longer runs ``chat_id``."""
        run = self._runs.get(chat_id)
        if run is not None and run.task is not None:
            await asyncio.gather(run.task, return_exceptions=True)

    # --- loops ----------------------------------------------------------------------------

    async def _acquire_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.acquire_interval)
            self._wake.clear()
            try:
                while not self._stopping:
                    acquired = await self._acquire()
                    if len(acquired) < self.config.max_chats_per_acquire:
                        break
            except StorageFull:
                log.warning("pending chats not acquired: the disk is full")
            except Exception:
                log.exception("acquiring chats failed")

    async def _acquire(self) -> list[Chat]:
        async with self.db.tx() as conn:
            chats = await store_chats.acquire_pending(
                conn, self.worker_id, self.config.max_chats_per_acquire
            )
        for chat in chats:
            if self._stopping:
                async with self.db.tx() as conn:
                    await store_chats.set_status(conn, chat.id, "pending")
                continue
            previous = self._runs.get(chat.id)
            run = _Run(chat.id)
            self._runs[chat.id] = run
            run.task = asyncio.ensure_future(self._process(chat, run, previous))
        return chats

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.config.heartbeat_interval)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        """Bump heartbeats; interrupt local runs this worker no longer owns
        (docs/status-machine.md#heartbeats)."""
        ids = list(self._runs)
        if not ids:
            return
        try:
            async with self.db.tx() as conn:
                owned = await store_chats.heartbeat(conn, self.worker_id, ids)
        except StorageFull:
            log.warning("heartbeat not written: the disk is full")
            return
        except Exception:
            log.exception("heartbeat failed")
            return
        for chat_id in ids:
            if chat_id not in owned:
                self.cancel_run(chat_id, "interrupt")

    async def _stale_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.config.stale_after / 5)
            try:
                await self.recover_stale()
            except Exception:
                log.exception("stale recovery failed")

    async def recover_stale(self, *, own_orphans: bool = False) -> None:
        """``running`` chats without a heartbeat for ``stale_after``, or whose server is gone
        (its instance slot is free), -> ``pending``; with ``own_orphans`` (at start, before this
        daemon runs anything) also those under this server's own id. ``requires_action`` chats
        idle for ``stale_after`` -> ``error`` with synthetic results
        (docs/status-machine.md#stale-recovery)."""
        before = _iso_before(self.config.stale_after)
        changed: list[str] = []
        async with self.db.tx() as conn:
            orphaned = [w for w in await store_chats.running_workers(conn) if self.worker_gone(w)]
            if own_orphans:
                orphaned.append(self.worker_id)
            for chat_id in await store_chats.stale_running(conn, before, orphaned):
                if chat_id in self._runs:
                    continue
                await store_chats.set_status(conn, chat_id, "pending")
                changed.append(chat_id)
            for chat_id in await store_chats.stale_requires_action(conn, before):
                inserted = await self.answer_dynamic_calls(conn, chat_id, DYNAMIC_TIMEOUT_RESULT)
                error = ChatError(message=DYNAMIC_TIMEOUT_RESULT, kind="generic")
                await store_chats.set_status(conn, chat_id, "error", last_error=error)
                self.hub.publish(chat_id, _event(chat_id, "error", error=error.dump()))
                for message in inserted:
                    self.hub.publish(chat_id, _message_event(message))
                changed.append(chat_id)
        for chat_id in changed:
            await self.publish_status(chat_id)
        if changed:
            self.wake()

    async def answer_dynamic_calls(
        self, conn: Conn, chat_id: str, text: str, created_by: str | None = None
    ) -> list[ChatMessage]:
        """Insert an error result for every unanswered dynamic call of the last assistant
        message."""
        pending = await pending_dynamic_calls(conn, chat_id)
        chat = await store_chats.get_chat(conn, chat_id)
        return await store_messages.insert_messages(
            conn,
            chat_id,
            [
                NewMessage(
                    role="tool",
                    content=[
                        ChatMessagePart.tool_result(
                            c.tool_call_id, c.tool_name, text, is_error=True
                        )
                    ],
                    created_by=created_by,
                    model_config_id=chat.last_model_config_id if chat else None,
                )
                for c in pending
            ],
        )

    def worker_gone(self, worker_id: str | None) -> bool:
        """Whether ``worker_id`` (another server's) belongs to a server that is no longer
        running on this machine (see :class:`~coderchat_ext.store.instance.InstanceSlots`)."""
        if not worker_id or self.slots is None:
            return False
        return self.slots.is_gone(worker_id)

    async def finish_orphan(self, chat: Chat) -> None:
        """After an interrupt set ``chat`` ``waiting`` (``chat`` is the row as it was before),
        finish its turn as its worker would have when that worker is gone: promote the next
        queued message, which makes the chat ``pending`` (docs/status-machine.md#finishing).
        Nothing to do for a chat that runs here or on a live server: that worker finishes it."""
        if chat.status != "running" or chat.id in self._runs:
            return
        if not self.worker_gone(chat.worker_id):
            return
        async with self.db.tx() as conn:
            row = await store_chats.get_chat(conn, chat.id)
            if row is None or row.status != "waiting" or row.archived:
                return
            promoted = await promote_next(conn, row)
            if not promoted:
                return
            await store_chats.set_status(conn, chat.id, "pending")
            queue = await store_messages.list_queue(conn, chat.id)
        self._publish_promoted(chat.id, promoted, queue)
        await self.publish_status(chat.id)
        self.wake()

    # --- publishing -----------------------------------------------------------------------

    async def publish_status(self, chat_id: str, kind: WatchEventKind = "status_change") -> None:
        """Publish the chat's current status on its stream and a watch event to its owner."""
        async with self.db.read() as conn:
            chat = await store_chats.get_chat(conn, chat_id)
        if chat is None:
            return
        self.hub.publish(chat_id, _event(chat_id, "status", status=chat.status))
        self.publish_watch(chat, kind)

    def publish_watch(
        self,
        chat: Chat,
        kind: WatchEventKind,
        tool_calls: list[WatchToolCall] | None = None,
    ) -> None:
        self.hub.publish_watch(
            chat.owner, ChatWatchEvent(kind=kind, chat=chat, tool_calls=tool_calls)
        )

    def publish_messages(self, chat_id: str, messages: list[ChatMessage]) -> None:
        for message in messages:
            if message.visibility != "model":
                self.hub.publish(chat_id, _message_event(message))

    def _publish_promoted(
        self, chat_id: str, promoted: list[ChatMessage], queue: list[ChatQueuedMessage] | None
    ) -> None:
        self.publish_messages(chat_id, promoted)
        if queue is not None:
            self.hub.publish(
                chat_id,
                _event(chat_id, "queue_update", queued_messages=[q.dump() for q in queue]),
            )

    # --- one turn -------------------------------------------------------------------------

    async def _process(self, chat: Chat, run: _Run, previous: _Run | None = None) -> None:
        if previous is not None and previous.task is not None:
            # The previous run of this chat is still winding down (interrupted, then the chat
            # was made pending again): let it finish first.
            await asyncio.gather(previous.task, return_exceptions=True)
        self.hub.start_buffering(chat.id)
        outcome: Outcome | None = None
        error: ChatError | None = None
        try:
            self.hub.publish(chat.id, _event(chat.id, "status", status="running"))
            self.publish_watch(chat, "status_change")
            try:
                env = await self._turn_env(chat, run)
                run.env = env
                env.cancel_reason = run.cancel_reason
                if run.cancel_reason is not None:
                    raise asyncio.CancelledError
                self._maybe_title(chat, env)
                outcome = await TurnRunner(env).run()
            except asyncio.CancelledError:
                if run.cancel_reason is None:
                    raise
                outcome = "shutdown" if run.cancel_reason == "shutdown" else "interrupted"
            except ClassifiedError as exc:
                error = exc.error
            except Exception as exc:
                if is_storage_full(exc):
                    log.warning("chat %s: turn failed, the disk is full: %s", chat.id, exc)
                    error = storage_error()
                else:
                    log.exception("chat %s: turn failed", chat.id)
                    provider = run.env.provider_name if run.env else None
                    error = classify_failure(exc, provider or "")
            log.debug("chat %s: outcome %s error %s", chat.id, outcome, error)
            run.finishing = True
            await self._finish_stored(chat, outcome, error)
        finally:
            if self._runs.get(chat.id) is run:
                self.hub.stop_buffering(chat.id)
                del self._runs[chat.id]
            self.turns_completed += 1

    async def resolve_model_config(self, conn: Conn, chat: Chat) -> ChatModelConfig:
        """The chat's model config, else the default (docs/loop.md#prompt-assembly). Raises
        :class:`ClassifiedError` (kind ``config``) when there is neither."""
        config = None
        if chat.last_model_config_id:
            config = await store_models.get_model_config(conn, chat.last_model_config_id)
        if config is None:
            config = await store_models.get_default_model_config(conn)
        if config is None:
            raise ClassifiedError(
                "no default chat model config is available",
                ChatError(message="No default chat model config is available.", kind="config"),
            )
        return config

    async def _turn_env(self, chat: Chat, run: _Run) -> TurnEnv:
        async with self.db.read() as conn:
            config = await self.resolve_model_config(conn, chat)
            history = await store_messages.list_for_prompt(conn, chat.id)
            custom = await store_configs.get_user(conn, chat.owner, store_configs.USER_PROMPT)
        try:
            model, resolved = await self.catalog.model_for(config)
        except (NoAdapter, LookupError):
            raise ClassifiedError(
                f"no adapter for provider {config.provider}",
                ChatError(
                    message=f'No model adapter is available for provider "{config.provider}".',
                    kind="config",
                    provider=config.provider,
                ),
            ) from None
        if not resolved.enabled:
            raise ClassifiedError(
                "provider disabled",
                ChatError(message="", kind="provider_disabled", provider=config.provider),
            )
        # The provider keys may have changed since the last turn (the catalog's cache is
        # dropped on every provider write).
        await self.secrets.refresh()
        system = []
        if chat.parent_chat_id:
            system.append(prompt.SUBAGENT_INSTRUCTION)
        system += prompt.context_blocks(await self._workspace_context(chat))
        if custom and custom.strip():
            system.append(prompt.user_instructions(custom.strip()))
        active = {t.name: t for t in self.tools.active(chat)}
        dynamic = {d.name: d for d in chat.dynamic_tools or [] if d.name not in active}
        chat_id = chat.id

        def tool_context(call_id: str) -> ToolContext:
            redactor = self.secrets.stream()

            async def emit(delta: str) -> None:
                delta = redactor.feed(delta)
                if not delta:
                    return
                self.hub.publish(
                    chat_id,
                    {
                        "type": "message_part",
                        "chat_id": chat_id,
                        "message_part": {
                            "role": "tool",
                            "part": {
                                "type": "tool-result",
                                "tool_call_id": call_id,
                                "result_delta": delta,
                            },
                        },
                    },
                )

            return self.tool_context(chat, call_id, emit)

        async def on_retry(
            attempt: int, err: BaseException, classified: Classification, delay: float
        ) -> None:
            retrying_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delay)
            payload = ChatStreamRetry(
                attempt=attempt,
                delay_ms=int(delay * 1000),
                error=retry_message(classified),
                kind=classified.error.kind,
                provider=classified.error.provider,
                status_code=classified.error.status_code,
                retrying_at=retrying_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            )
            log.info("chat %s: retry %d in %.0fs: %s", chat_id, attempt, delay, err)
            self.hub.publish(chat_id, _event(chat_id, "retry", retry=payload.dump()))

        async def persist(record: StepRecord, interrupted: bool) -> list[ChatMessage]:
            return await self._persist_step(chat, config, record, interrupted)

        return TurnEnv(
            chat_id=chat.id,
            model=model,
            model_config=config,
            provider_name=config.provider,
            system=system,
            history=history,
            tools=active,
            known_tools={t.name for t in self.tools.all()},
            dynamic_tools=dynamic,
            tool_context=tool_context,
            publish=lambda event: self.hub.publish(chat_id, event),
            persist=persist,
            on_retry=on_retry,
            clear_parts=lambda: self.hub.clear_parts(chat_id),
            max_steps=self.config.max_steps,
            startup_timeout=self.config.startup_timeout,
            sleep=self.config.retry_sleep,
            redact=self.secrets.redact_part,
        )

    async def _workspace_context(self, chat: Chat) -> list[ChatMessagePart]:
        """This turn's workspace context (docs/workspaces.md#context-files-and-skills): read from
        the chat's agent and, when it changed, stored as a user-visible message (the prompt gets it
        as system blocks, not from history) and as the chat's ``last_injected_context``; the last
        stored one when the agent cannot be read; nothing without a workspace."""
        if self.agents is None:
            return []
        try:
            parts = await read_context(self.agents, chat)
        except ContextUnavailable as exc:
            log.info("chat %s: workspace context from the last turn (%s)", chat.id, exc)
            async with self.db.read() as conn:
                return await store_messages.latest_context(conn, chat.id) or []
        if parts is None:
            return []
        # Files read from the agent (AGENTS.md, skills) go to the provider and the transcript.
        parts = [self.secrets.redact_part(p) for p in parts]
        async with self.db.tx() as conn:
            previous = await store_messages.latest_context(conn, chat.id)
            if previous is not None and dump_parts(previous) == dump_parts(parts):
                return parts
            messages = await store_messages.insert_messages(
                conn, chat.id, [NewMessage(role="user", content=parts, visibility="user")]
            )
            stripped = [p.strip_internal() for p in parts]
            await store_chats.update_chat(
                conn, chat.id, last_injected_context=[p.dump() for p in stripped]
            )
        # This turn's tools see it too (the skill tools are offered only when there are skills).
        chat.last_injected_context = stripped
        self.publish_messages(chat.id, messages)
        return parts

    async def _persist_step(
        self, chat: Chat, config: ChatModelConfig, record: StepRecord, interrupted: bool
    ) -> list[ChatMessage]:
        """Write a step: one assistant message, then one tool message per local result.

        Allowed while this worker owns the chat, or (``interrupted``) when a user interrupt set
        it ``waiting``; otherwise raises :class:`NotOwner` (docs/status-machine.md#finishing).
        """
        rows = []
        if record.assistant:
            rows.append(
                NewMessage(
                    role="assistant",
                    content=record.assistant,
                    model_config_id=config.id,
                    usage=record.usage,
                    total_cost_micros=record.cost_micros,
                    runtime_ms=record.runtime_ms,
                    provider_response_id=record.provider_response_id,
                )
            )
        rows += [
            NewMessage(role="tool", content=[part], model_config_id=config.id)
            for part in record.tool_results
        ]
        async with self.db.tx() as conn:
            row = await store_chats.get_chat(conn, chat.id)
            owner_ok = (
                row is not None
                and row.status == "running"
                and (row.worker_id == self.worker_id and row.started_at == chat.started_at)
            )
            if not owner_ok and not (interrupted and row is not None and row.status == "waiting"):
                raise NotOwner(chat.id)
            messages = await store_messages.insert_messages(conn, chat.id, rows)
        self.hub.clear_parts(chat.id)
        self.publish_messages(chat.id, messages)
        return messages

    async def _finish_stored(
        self, chat: Chat, outcome: Outcome | None, error: ChatError | None
    ) -> None:
        """:meth:`_finish`, retried while the disk is full. The first refusal turns the outcome
        into the ``storage`` error, published at once so clients see it while the write waits
        for space; the retries back off from :data:`STATUS_RETRY_INITIAL` to
        :data:`STATUS_RETRY_MAX` seconds. Stopping gives up: the chat stays ``running`` under
        this instance id and the next start resumes it."""
        delay = STATUS_RETRY_INITIAL
        published = False
        while True:
            try:
                await asyncio.shield(self._finish(chat, outcome, error, published))
                return
            except StorageFull:
                if not published:
                    outcome, error, published = None, storage_error(), True
                    self.hub.publish(chat.id, _event(chat.id, "error", error=error.dump()))
            if self._stopping:
                log.warning("chat %s: disk full, status left to the next start", chat.id)
                return
            log.warning("chat %s: disk full, status write retried in %.1f s", chat.id, delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), delay)
            delay = min(delay * 2, STATUS_RETRY_MAX)

    async def _finish(
        self,
        chat: Chat,
        outcome: Outcome | None,
        error: ChatError | None,
        error_published: bool = False,
    ) -> None:
        """End a turn in one transaction (docs/status-machine.md#finishing). A row that another run
        owns now (another worker, or a later acquisition here) is left alone. Raises
        :class:`StorageFull` (nothing written) when the disk is full."""
        chat_id = chat.id
        promoted: list[ChatMessage] = []
        action: list[WatchToolCall] = []
        async with self.db.tx() as conn:
            row = await store_chats.get_chat(conn, chat_id)
            if row is None:
                return
            if row.status == "running" and (
                row.worker_id != self.worker_id or row.started_at != chat.started_at
            ):
                return
            status: ChatStatus
            if row.status == "pending":
                status = "pending"
            elif outcome == "shutdown":
                status = "pending" if row.status == "running" else row.status
            elif error is not None:
                status = "error"
            elif outcome == "requires_action" and row.status == "running":
                status = "requires_action"
                action = [
                    WatchToolCall(
                        tool_call_id=c.tool_call_id or "",
                        tool_name=c.tool_name or "",
                        args=json.dumps(c.args),
                    )
                    for c in await pending_dynamic_calls(conn, chat_id)
                ]
            elif row.status in ("running", "waiting"):
                status = "waiting"
                if not row.archived:
                    promoted = await promote_next(conn, row)
                    if promoted:
                        status = "pending"
            else:
                status = row.status
            await store_chats.set_status(conn, chat_id, status, last_error=error)
            queue = await store_messages.list_queue(conn, chat_id) if promoted else None
        if error is not None and not error_published:
            self.hub.publish(chat_id, _event(chat_id, "error", error=error.dump()))
        self._publish_promoted(chat_id, promoted, queue)
        if action:
            self.hub.publish(
                chat_id,
                _event(
                    chat_id,
                    "action_required",
                    action_required={"tool_calls": [a.dump() for a in action]},
                ),
            )
        await self.publish_status(chat_id)
        if action:
            async with self.db.read() as conn:
                current = await store_chats.get_chat(conn, chat_id)
            if current is not None:
                self.publish_watch(current, "action_required", action)
        if status == "pending":
            self.wake()

    # --- titles ---------------------------------------------------------------------------

    def _maybe_title(self, chat: Chat, env: TurnEnv) -> None:
        visible = [m for m in env.history if m.visibility in ("user", "both")]
        users = [m for m in visible if m.role == "user"]
        if len(users) != 1 or any(m.role in ("assistant", "tool") for m in visible):
            return
        if chat.title != prompt.initial_title(users[0].content):
            return
        text = "".join(p.text or "" for p in users[0].content if p.type == "text")
        self._spawn(self._title(chat, env.model_config, text, chat.title))

    async def _title(
        self, chat: Chat, config: ChatModelConfig, text: str, placeholder: str
    ) -> None:
        try:
            model, _ = await self.catalog.model_for(config, purpose="title")
            title = await asyncio.wait_for(generate_title(model, text), TITLE_TIMEOUT)
        except Exception as exc:
            log.info("chat %s: title generation failed: %s", chat.id, exc)
            return
        if not title or title == placeholder:
            return
        try:
            async with self.db.tx() as conn:
                row = await store_chats.get_chat(conn, chat.id)
                if row is None or row.title != placeholder:
                    return
                await store_chats.update_chat(conn, chat.id, title=title)
                updated = await store_chats.get_chat(conn, chat.id)
        except StorageFull:
            log.info("chat %s: title not stored, the disk is full", chat.id)
            return
        if updated is not None:
            self.publish_watch(updated, "title_change")


async def pending_dynamic_calls(conn: Conn, chat_id: str) -> list[ChatMessagePart]:
    """Dynamic tool calls of the last assistant message that have no result yet
    (docs/status-machine.md#requires_action)."""
    chat = await store_chats.get_chat(conn, chat_id)
    last = await store_messages.last_assistant(conn, chat_id)
    if chat is None or last is None:
        return []
    names = {d.name for d in chat.dynamic_tools or []}
    calls = [
        p
        for p in last.content
        if p.type == "tool-call" and p.tool_name in names and not p.provider_executed
    ]
    answered = {
        p.tool_call_id
        for m in await store_messages.messages_after(conn, chat_id, last.id)
        for p in m.content
        if p.type == "tool-result"
    }
    return [c for c in calls if c.tool_call_id not in answered]


async def promote_next(conn: Conn, chat: Chat, queued_id: int | None = None) -> list[ChatMessage]:
    """Pop a queued message (the oldest, or ``queued_id``) and insert it as a user message."""
    queued = await store_messages.take_queued(conn, chat.id, queued_id)
    if queued is None:
        return []
    return [
        await store_messages.insert_user_message(
            conn,
            chat.id,
            queued.content,
            created_by=chat.owner,
            model_config_id=queued.model_config_id,
        )
    ]


def storage_error() -> ChatError:
    """The error of a turn that a full disk stopped: kind ``storage``, retryable (sending the
    message again works once space is freed); the message is the kind's (``chatd.errors``)."""
    return ClassifiedError("disk full", ChatError(message="", kind="storage", retryable=True)).error


def _event(chat_id: str, type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "chat_id": chat_id, **fields}


def _message_event(message: ChatMessage) -> dict[str, Any]:
    return {"type": "message", "chat_id": message.chat_id, "message": message.public().dump()}
