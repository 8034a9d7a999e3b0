"""Value types of the client: content, stream markers, pages and send results."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from ..models import ChatMessage, ChatQueuedMessage, ChatStreamEvent, ChatWatchEvent

Content: TypeAlias = str | Sequence[Mapping[str, Any]]
"""Message content: plain text, or a list of input parts (``{"type": "text", "text": ...}``,
``{"type": "file-reference", ...}``; docs/api.md#chats)."""


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET
"""Marks an optional field of :meth:`AsyncChatClient.update_chat` as "leave unchanged"."""


@dataclass(frozen=True)
class StreamMarker:
    """A synthetic item of :meth:`AsyncChatClient.stream` and :meth:`~AsyncChatClient.watch`,
    yielded when a new connection replaces one that ended.

    ``kind`` is ``"reconnect"`` after a dropped connection or a server close other than
    4001: for a chat stream the new connection resumes after the highest message id seen, but
    the server re-sends the ``message_part`` events of the step in flight, so drop any partial
    parts accumulated since the last ``message`` event. For the watch feed, events sent while
    disconnected are lost: re-list the chats.

    ``kind`` is ``"reset"`` after close code 4001 (history changed, e.g. a message was
    edited): the new connection starts from ``after_id=0``, so discard everything derived from
    the stream and rebuild from what follows (message ids seen before the reset are sent
    again).

    ``code``/``reason`` describe how the previous connection ended (``code`` is ``None`` when
    it dropped without a close frame or the connect attempt failed); ``after_id`` is the
    cursor the new connection used; ``connection`` numbers connections from 0.
    """

    kind: Literal["reconnect", "reset"]
    code: int | None
    reason: str
    after_id: int
    connection: int


StreamItem: TypeAlias = list[ChatStreamEvent] | StreamMarker
"""What :meth:`AsyncChatClient.stream` yields: one frame's events, or a marker."""
WatchItem: TypeAlias = ChatWatchEvent | StreamMarker
"""What :meth:`AsyncChatClient.watch` yields: one watch event, or a marker."""


@dataclass(frozen=True)
class MessagePage:
    """``GET chats/{id}/messages``: ``messages`` newest first (oldest first when only
    ``after_id`` is given), the chat's queue (first page only) and whether more exist."""

    messages: list[ChatMessage]
    queued_messages: list[ChatQueuedMessage]
    has_more: bool


@dataclass(frozen=True)
class SendResult:
    """``POST chats/{id}/messages``: either the inserted user ``message`` or, when the chat was
    busy, the ``queued_message`` (``queued`` says which)."""

    queued: bool
    message: ChatMessage | None = None
    queued_message: ChatQueuedMessage | None = None
