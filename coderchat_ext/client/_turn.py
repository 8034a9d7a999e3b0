"""``run_turn``: send a message (or create a chat), follow its stream until the turn ends, and
sum the turn up.

Which stream events belong to the turn is decided by message ids, never by arrival time: the
turn starts at its user message (the id ``send_message`` returns; the first user message of a
new chat; for a queued message, the user message with the queued content that appears later)
and ends at the first terminal status after it. A connection's ``status`` snapshot counts only
when the connection was opened after the user message existed, so a stale ``waiting`` from
before the send never ends a turn early.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

from ..models import (
    MAX_PAGE_LIMIT,
    USAGE_TOKEN_FIELDS,
    ActionRequired,
    Chat,
    ChatError,
    ChatMessage,
    ChatMessagePart,
    ChatMessageUsage,
    ChatStatus,
    ChatStreamEvent,
)
from ._errors import TurnTimeout
from ._types import Content, MessagePage, SendResult, StreamItem, StreamMarker

BUSY_STATUSES = ("pending", "running")
IDLE_POLL_INTERVAL = 3.0
"""Seconds without stream events after which ``run_turn`` asks the REST API whether the turn
ended (a safety net for terminal statuses the stream order cannot attribute to the turn)."""

OnEvent: TypeAlias = Callable[[ChatStreamEvent | StreamMarker], Any]
"""``on_event(item)`` of ``run_turn``: a stream event or marker of the turn; may be async."""


class TurnApi(Protocol):
    """The client calls a turn is made of (``AsyncChatClient`` has them); declared here so
    this module does not depend on the client class that uses it."""

    async def create_chat(
        self, content: Content, *, model_config_id: str | None = None
    ) -> Chat: ...

    async def get_chat(self, chat_id: str) -> Chat: ...

    async def list_messages(
        self, chat_id: str, *, after_id: int | None = None, limit: int = 50
    ) -> MessagePage: ...

    async def send_message(
        self,
        chat_id: str,
        content: Content,
        *,
        model_config_id: str | None = None,
        busy_behavior: Literal["queue", "interrupt"] | None = None,
    ) -> SendResult: ...

    def stream_with_connections(
        self,
        chat_id: str,
        after_id: int = 0,
        *,
        on_connect: Callable[[int], None] | None = None,
    ) -> AsyncIterator[tuple[int, StreamItem]]: ...


@dataclass
class TurnResult:
    """The outcome of one turn.

    ``status`` is the chat's status when the turn ended (``waiting``, ``error`` or
    ``requires_action``); ``messages`` are the visible messages of the turn in id order, its
    user message first; ``text`` joins the text of its assistant messages with blank lines;
    ``tool_calls``/``tool_results`` are the ``tool-call``/``tool-result`` parts in order;
    ``usage`` sums the assistant messages' token counts (``context_limit`` is the last one
    reported) and ``total_cost_micros`` their cost; ``error`` is the chat's error when
    ``status`` is ``error``; ``action_required`` lists the client tool calls awaiting results
    when ``status`` is ``requires_action``; ``superseded`` is true when the turn ended because
    a later user message started the next turn, or an edit rewrote the chat's history (then
    ``status`` is ``waiting``).
    """

    chat_id: str
    status: ChatStatus
    text: str
    messages: list[ChatMessage]
    tool_calls: list[ChatMessagePart] = field(default_factory=list)
    tool_results: list[ChatMessagePart] = field(default_factory=list)
    usage: ChatMessageUsage = field(default_factory=ChatMessageUsage)
    total_cost_micros: int = 0
    error: ChatError | None = None
    action_required: ActionRequired | None = None
    superseded: bool = False

    @property
    def user_message(self) -> ChatMessage | None:
        """The user message that started the turn."""
        return next((m for m in self.messages if m.role == "user"), None)

    @property
    def ok(self) -> bool:
        """Whether the turn ended ``waiting`` (answered, or interrupted)."""
        return self.status == "waiting"


def _same_content(message: ChatMessage, content: list[ChatMessagePart]) -> bool:
    return [p.dump() for p in message.content] == [p.dump() for p in content]


class _Tracker:
    """Folds stream items into the turn's state."""

    def __init__(self, *, first_user: bool, baseline: int = 0) -> None:
        self.first_user = first_user
        self.user_known = first_user
        self.baseline = baseline
        self.user_id: int | None = None
        self.queued_content: list[ChatMessagePart] | None = None
        self.user_seen = False
        self.next_user_id: int | None = None
        self.conn_after_user: dict[int, bool] = {}
        self.messages: dict[int, ChatMessage] = {}
        self.status: ChatStatus | None = None
        self.error: ChatError | None = None
        self.action: ActionRequired | None = None
        self.superseded = False
        self.check_user = False

    @property
    def done(self) -> bool:
        return self.status is not None

    def on_connect(self, connection: int) -> None:
        self.conn_after_user[connection] = self.user_known

    def expect(self, sent: SendResult) -> None:
        if sent.message is not None:
            self.user_id = sent.message.id
            self.user_known = True
        elif sent.queued_message is not None:
            self.queued_content = sent.queued_message.content

    def _active(self, connection: int) -> bool:
        return self.user_seen or self.conn_after_user.get(connection, False)

    def _is_user(self, message: ChatMessage) -> bool:
        if message.role != "user":
            return False
        if self.user_id is not None:
            return message.id == self.user_id
        if self.first_user:
            return True
        if self.queued_content is not None:
            return message.id > self.baseline and _same_content(message, self.queued_content)
        return False

    def add_message(self, message: ChatMessage) -> bool:
        """Record ``message`` if it belongs to the turn; returns whether it does."""
        if not self.user_seen and self._is_user(message):
            self.user_seen = self.user_known = True
            self.user_id = message.id
        if self.user_id is None or message.id < self.user_id or not self.user_seen:
            return False
        if message.id > self.user_id and message.is_workspace_context:
            # Workspace context (AGENTS.md, skills) stored during the turn
            # (docs/workspaces.md#context-files-and-skills).
            return False
        if message.role == "user" and message.id > self.user_id:
            # A later user message: the next turn started, so this one is over.
            if self.next_user_id is None or message.id < self.next_user_id:
                self.next_user_id = message.id
            if self.status is None:
                self.status = "waiting"
                self.superseded = True
            return False
        if self.next_user_id is not None and message.id > self.next_user_id:
            return False
        self.messages[message.id] = message
        return True

    def feed(self, connection: int, item: StreamItem) -> list[ChatStreamEvent | StreamMarker]:
        """Fold one stream item in; returns what to hand to ``on_event``."""
        if isinstance(item, StreamMarker):
            if item.kind == "reset":
                self.check_user = True
            return [] if self.done else [item]
        out: list[ChatStreamEvent | StreamMarker] = []
        for event in item:
            if event.type == "message" and event.message is not None:
                if self.add_message(event.message) or (not self.done and self._active(connection)):
                    out.append(event)
                continue
            if self.done or not self._active(connection):
                continue
            if event.type == "status" and event.status and event.status not in BUSY_STATUSES:
                self.status = event.status
            elif event.type == "error" and event.error is not None:
                self.error = event.error
            elif event.type == "action_required" and event.action_required is not None:
                self.action = event.action_required
            out.append(event)
        return out

    def result(self, chat_id: str) -> TurnResult:
        messages = [self.messages[i] for i in sorted(self.messages)]
        texts: list[str] = []
        calls: list[ChatMessagePart] = []
        results: list[ChatMessagePart] = []
        totals = dict.fromkeys(USAGE_TOKEN_FIELDS, 0)
        context_limit: int | None = None
        cost = 0
        for message in messages:
            if message.role == "assistant":
                text = "".join(p.text or "" for p in message.content if p.type == "text")
                if text:
                    texts.append(text)
                if message.usage is not None:
                    for name in USAGE_TOKEN_FIELDS:
                        totals[name] += getattr(message.usage, name) or 0
                    context_limit = message.usage.context_limit or context_limit
                cost += message.total_cost_micros or 0
            if message.role in ("assistant", "tool"):
                calls += [p for p in message.content if p.type == "tool-call"]
                results += [p for p in message.content if p.type == "tool-result"]
        assert self.status is not None
        return TurnResult(
            chat_id=chat_id,
            status=self.status,
            text="\n\n".join(texts),
            messages=messages,
            tool_calls=calls,
            tool_results=results,
            usage=ChatMessageUsage(context_limit=context_limit, **totals),
            total_cost_micros=cost,
            error=self.error if self.status == "error" else None,
            action_required=self.action if self.status == "requires_action" else None,
            superseded=self.superseded,
        )


async def _notify(on_event: OnEvent | None, items: list[ChatStreamEvent | StreamMarker]) -> None:
    if on_event is None:
        return
    for item in items:
        outcome = on_event(item)
        if inspect.isawaitable(outcome):
            await outcome


async def _check_user_alive(client: TurnApi, chat_id: str, tracker: _Tracker) -> None:
    """After a history reset: an edit at or before the turn's user message deleted the turn,
    which then counts as superseded."""
    tracker.check_user = False
    if tracker.done or tracker.user_id is None:
        return
    page = await client.list_messages(chat_id, after_id=tracker.user_id - 1, limit=1)
    if not page.messages or page.messages[0].id != tracker.user_id:
        tracker.status = "waiting"
        tracker.superseded = True


async def _catch_up(client: TurnApi, chat_id: str, tracker: _Tracker) -> None:
    """Read the turn's messages the stream has not delivered (the turn has ended, so the
    database holds all of them)."""
    if tracker.messages:
        after = max(tracker.messages)
    elif tracker.user_id is not None:
        after = tracker.user_id - 1
    else:
        after = tracker.baseline
    while True:
        page = await client.list_messages(chat_id, after_id=after, limit=MAX_PAGE_LIMIT)
        for message in page.messages:
            tracker.add_message(message)
        if not page.has_more or not page.messages:
            return
        after = page.messages[-1].id


async def run_turn(
    client: TurnApi,
    chat_id: str | None,
    content: list[dict[str, Any]],
    *,
    model_config_id: str | None,
    busy_behavior: Literal["queue", "interrupt"] | None,
    on_event: OnEvent | None,
    timeout: float,
    create_options: dict[str, Any],
) -> TurnResult:
    """See :meth:`AsyncChatClient.run_turn`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    items: asyncio.Queue[tuple[int, StreamItem] | BaseException] = asyncio.Queue()

    if chat_id is None:
        chat = await client.create_chat(content, model_config_id=model_config_id, **create_options)
        chat_id = chat.id
        tracker = _Tracker(first_user=True)
    else:
        newest = await client.list_messages(chat_id, limit=1)
        tracker = _Tracker(
            first_user=False, baseline=newest.messages[0].id if newest.messages else 0
        )

    async def pump(target: str) -> None:
        try:
            async for item in client.stream_with_connections(
                target, tracker.baseline, on_connect=tracker.on_connect
            ):
                items.put_nowait(item)
        except BaseException as exc:
            items.put_nowait(exc)
            raise

    async def next_item(wait: float) -> tuple[int, StreamItem] | None:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TurnTimeout(chat_id or "", timeout)
        try:
            got = await asyncio.wait_for(items.get(), min(wait, remaining))
        except asyncio.TimeoutError:
            return None
        if isinstance(got, BaseException):
            raise got
        return got

    pump_task = asyncio.ensure_future(pump(chat_id))
    try:
        backlog: list[tuple[int, StreamItem]] = []
        if not tracker.user_known:
            # Subscribed before sending: wait for the connect snapshot, then send.
            first = None
            while first is None:
                first = await next_item(IDLE_POLL_INTERVAL)
            backlog.append(first)
            tracker.expect(
                await client.send_message(
                    chat_id,
                    content,
                    model_config_id=model_config_id,
                    busy_behavior=busy_behavior,
                )
            )
        while not tracker.done:
            got = backlog.pop(0) if backlog else await next_item(IDLE_POLL_INTERVAL)
            if got is not None:
                await _notify(on_event, tracker.feed(*got))
                if tracker.check_user:
                    await _check_user_alive(client, chat_id, tracker)
            elif tracker.user_known:
                # The user message exists, so a terminal status now means the turn ended.
                polled = await client.get_chat(chat_id)
                if polled.status not in BUSY_STATUSES:
                    tracker.status = polled.status
                    tracker.error = polled.last_error
        # Events of the batch that ended the turn were folded in; fetch what the stream may
        # still owe (it delivers the same rows, so this only fills gaps).
        await _catch_up(client, chat_id, tracker)
    finally:
        pump_task.cancel()
        with contextlib.suppress(BaseException):
            await pump_task
    if tracker.status == "error" and tracker.error is None:
        tracker.error = (await client.get_chat(chat_id)).last_error
    return tracker.result(chat_id)
