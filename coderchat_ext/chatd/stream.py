"""The stream hub: per-chat event fan-out, the in-flight part buffer and the watch feed
(docs/stream-protocol.md).

Events travel as JSON-ready dicts, serialized once however many subscribers there are. Every
subscriber has a bounded queue; one that falls ``SUBSCRIBER_QUEUE_CAP`` events behind is closed
with :data:`CLOSE_TOO_SLOW` so its client reconnects with ``after_id`` and loses nothing durable
(upstream drops events instead, which leaves gaps). When history is rewritten (an edit) every
subscriber of the chat is closed with :data:`CLOSE_HISTORY_CHANGED`: the client starts over from
``after_id=0``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..models import STREAM_FRAME_MAX_EVENTS, ChatWatchEvent
from .pubsub import PubSub

log = logging.getLogger(__name__)

MAX_BATCH = STREAM_FRAME_MAX_EVENTS
"""Events per WebSocket frame at most (docs/stream-protocol.md#frames; the wire limit is
``models.STREAM_FRAME_MAX_EVENTS``): the largest batch a subscription hands out, and the frames
``server.ws`` splits the on-connect replay into."""
PART_BUFFER_CAP = 10_000
"""Buffered ``message_part`` events per chat per step at most
(docs/stream-protocol.md#part-buffer)."""
SUBSCRIBER_QUEUE_CAP = 8_192
BUFFER_WARN_INTERVAL = 10.0

CLOSE_HISTORY_CHANGED = 4001
CLOSE_TOO_SLOW = 4002
CLOSE_SHUTDOWN = 1001

Event = dict[str, Any]


class StreamClosed(Exception):
    """The subscription ended; ``code``/``reason`` are the WebSocket close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Subscription:
    """A subscriber's queue of events on one channel. Drops ``message`` events whose id was
    already delivered (``last_message_id``) so a reconnect never shows an id twice."""

    def __init__(self, unsubscribe: Callable[[], None] | None = None) -> None:
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self._closed: StreamClosed | None = None
        self._unsubscribe = unsubscribe
        self.last_message_id = 0

    def push(self, event: Event) -> None:
        if self._closed is not None:
            return
        if len(self._queue) >= SUBSCRIBER_QUEUE_CAP:
            self.close(CLOSE_TOO_SLOW, "subscriber fell behind; reconnect with after_id")
            return
        self._queue.append(event)
        self._ready.set()

    def close(self, code: int, reason: str) -> None:
        if self._closed is None:
            self._closed = StreamClosed(code, reason)
            self._ready.set()
            if self._unsubscribe is not None:
                self._unsubscribe()

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def take_queued(self) -> list[Event]:
        events = list(self._queue)
        self._queue.clear()
        self._ready.clear()
        return events

    def deliverable(self, events: list[Event]) -> list[Event]:
        """Filter ``events`` for delivery, advancing ``last_message_id``."""
        out = []
        for event in events:
            if event.get("type") == "message":
                message_id = event["message"]["id"]
                if message_id <= self.last_message_id:
                    continue
                self.last_message_id = message_id
            out.append(event)
        return out

    async def next_batch(self, limit: int = MAX_BATCH) -> list[Event]:
        """Wait for at least one event, then return up to ``limit`` without waiting more.

        Raises :class:`StreamClosed` once closed and drained.
        """
        while True:
            if self._queue:
                batch: list[Event] = []
                while self._queue and len(batch) < limit:
                    batch.append(self._queue.popleft())
                if not self._queue:
                    self._ready.clear()
                batch = self.deliverable(batch)
                if batch:
                    return batch
                continue
            if self._closed is not None:
                raise self._closed
            await self._ready.wait()


class _ChatState:
    def __init__(self) -> None:
        self.buffering = False
        self.parts: deque[Event] = deque()
        self.dropped_warned_at = 0.0


class StreamHub:
    """Fan-out of chat stream events and watch events over a :class:`PubSub`."""

    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub
        self._chats: dict[str, _ChatState] = {}
        self._subscribers: dict[str, set[Subscription]] = {}
        self._watchers: set[Subscription] = set()

    # --- chat streams ---------------------------------------------------------------------

    def start_buffering(self, chat_id: str) -> None:
        """Processing starts on this worker: buffer ``message_part`` events from now on."""
        state = self._chats.setdefault(chat_id, _ChatState())
        state.buffering = True
        state.parts.clear()

    def stop_buffering(self, chat_id: str) -> None:
        state = self._chats.pop(chat_id, None)
        if state is not None:
            state.parts.clear()

    def clear_parts(self, chat_id: str) -> None:
        """Forget the in-flight parts (on retry, and once a step is persisted)."""
        state = self._chats.get(chat_id)
        if state is not None:
            state.parts.clear()

    def publish(self, chat_id: str, event: Event) -> None:
        """Send one stream event (a dumped ``ChatStreamEvent``) to the chat's subscribers."""
        if event["type"] == "message_part":
            state = self._chats.get(chat_id)
            if state is not None and state.buffering:
                if len(state.parts) >= PART_BUFFER_CAP:
                    state.parts.popleft()
                    now = time.monotonic()
                    if now - state.dropped_warned_at > BUFFER_WARN_INTERVAL:
                        state.dropped_warned_at = now
                        log.warning("chat %s: part buffer full, dropping oldest parts", chat_id)
                state.parts.append(event)
        self.pubsub.publish(f"chat:{chat_id}", event)

    def subscribe(self, chat_id: str) -> Subscription:
        """Subscribe to a chat's live events (do this before reading the database)."""
        subs = self._subscribers.setdefault(chat_id, set())
        sub: Subscription

        def unsubscribe() -> None:
            stop()
            subs.discard(sub)
            if not subs:
                self._subscribers.pop(chat_id, None)

        sub = Subscription(unsubscribe)
        stop = self.pubsub.subscribe(f"chat:{chat_id}", sub.push)
        subs.add(sub)
        return sub

    def take_in_flight(self, chat_id: str, sub: Subscription) -> tuple[list[Event], list[Event]]:
        """Atomically: the buffered parts of the step in flight, and the subscriber's queued
        events other than parts (the buffer supersedes queued parts). Returns
        ``(queued_non_part_events, in_flight_parts)``."""
        queued = [e for e in sub.take_queued() if e["type"] != "message_part"]
        state = self._chats.get(chat_id)
        parts = list(state.parts) if state is not None else []
        return queued, parts

    def close_subscribers(self, chat_id: str, code: int, reason: str) -> None:
        for sub in list(self._subscribers.get(chat_id, ())):
            sub.close(code, reason)

    def close_all(self, code: int = CLOSE_SHUTDOWN, reason: str = "server shutting down") -> None:
        for subs in list(self._subscribers.values()):
            for sub in list(subs):
                sub.close(code, reason)
        for sub in list(self._watchers):
            sub.close(code, reason)

    @property
    def subscription_count(self) -> int:
        """Live subscriptions, chat streams and watch feeds together (each open socket holds
        one; a leak shows here)."""
        return sum(len(subs) for subs in self._subscribers.values()) + len(self._watchers)

    def is_buffering(self, chat_id: str) -> bool:
        state = self._chats.get(chat_id)
        return state is not None and state.buffering

    # --- watch feed -----------------------------------------------------------------------

    def publish_watch(self, owner: str, event: ChatWatchEvent) -> None:
        self.pubsub.publish(f"watch:{owner}", event.dump())

    def subscribe_watch(self, owner: str) -> Subscription:
        sub: Subscription

        def unsubscribe() -> None:
            stop()
            self._watchers.discard(sub)

        sub = Subscription(unsubscribe)
        stop = self.pubsub.subscribe(f"watch:{owner}", sub.push)
        self._watchers.add(sub)
        return sub
