"""The chat stream and the watch feed over WebSockets (docs/stream-protocol.md)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

from ..models import ChatStreamEvent, ChatWatchEvent
from ._transport import Transport, json_frame, segment, validate_event
from ._types import StreamItem, StreamMarker, WatchItem


class StreamsApi(Transport):
    """Following a chat (:meth:`stream`) and all of the caller's chats (:meth:`watch`)."""

    async def stream_with_connections(
        self,
        chat_id: str,
        after_id: int = 0,
        *,
        reconnect: bool = True,
        on_connect: Callable[[int], None] | None = None,
    ) -> AsyncGenerator[tuple[int, StreamItem], None]:
        """:meth:`stream` with each item paired with the number of the connection it came on
        (0 first); ``on_connect(n)`` runs just before connection ``n`` is attempted."""
        cursor = after_id

        def cursor_for(marker: StreamMarker | None) -> dict[str, Any]:
            nonlocal cursor
            if marker is not None and marker.kind == "reset":
                cursor = 0
            return {"after_id": cursor}

        async for connection, frame in self._frames(
            f"chats/{segment(chat_id)}/stream",
            cursor_for,
            reconnect=reconnect,
            on_connect=on_connect,
        ):
            if isinstance(frame, StreamMarker):
                yield connection, frame
                continue
            value = json_frame(frame)
            events = []
            for raw in value if isinstance(value, list) else [] if value is None else [value]:
                event = validate_event(ChatStreamEvent, raw)
                if event is None:
                    continue
                if event.type == "message" and event.message is not None:
                    if event.message.id <= cursor:
                        continue
                    cursor = event.message.id
                events.append(event)
            if events:
                yield connection, events

    async def stream(
        self, chat_id: str, after_id: int = 0, *, reconnect: bool = True
    ) -> AsyncGenerator[StreamItem, None]:
        """Follow a chat: ``async for item in client.stream(chat_id, after_id=0)``.

        Yields one ``list[ChatStreamEvent]`` per WebSocket frame (docs/stream-protocol.md#frames):
        first the connect snapshot (``status``, the visible messages with ``id > after_id``, the
        parts of the step in flight, ``queue_update``), then live events. A message id is never
        yielded twice (between resets): reconnects (automatic, after 0.25 s doubling to 5 s, reset
        after a connection that delivered a frame) resume after the highest message id seen. Between
        connections a :class:`StreamMarker` is yielded: ``reconnect`` (drop partial parts of
        the step in flight; the server re-sends them) or ``reset`` after close code 4001
        (history changed: start over, ids restart from 0).

        With ``reconnect=False`` the iteration ends when the socket closes. Raises
        :class:`ApiError` when the server refuses the connection (404 for an unknown chat).
        The stream never ends on its own otherwise: break out of the loop to stop it.
        """
        async for _, item in self.stream_with_connections(chat_id, after_id, reconnect=reconnect):
            yield item

    async def watch(self, *, reconnect: bool = True) -> AsyncGenerator[WatchItem, None]:
        """Follow the caller's chats (``GET chats/watch``): yields one :class:`ChatWatchEvent`
        per frame (``created``, ``deleted``, ``status_change``, ``title_change``,
        ``action_required``) and a ``reconnect`` :class:`StreamMarker` after each reconnect
        (events in between are lost: re-list chats). Backoff and errors as :meth:`stream`."""
        async for _, frame in self._frames("chats/watch", lambda _: {}, reconnect=reconnect):
            if isinstance(frame, StreamMarker):
                yield frame
                continue
            value = json_frame(frame)
            event = validate_event(ChatWatchEvent, value) if value is not None else None
            if event is not None:
                yield event
