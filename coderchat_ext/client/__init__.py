"""Python client of the coderchat API (docs/api.md, docs/stream-protocol.md, docs/client.md), used
by the magics, the widget, the CLI and the tests.

:class:`AsyncChatClient` (httpx + websockets) and its blocking twin :class:`ChatClient` (the
async client on a private loop thread, safe inside a Jupyter kernel) cover every endpoint,
follow chat streams with reconnects (:class:`StreamMarker`), and run whole turns
(:class:`TurnResult`). Server discovery: :func:`discover_server`. Errors: :class:`ApiError`,
:class:`ServerNotFound`, :class:`TurnTimeout`, all :class:`ChatClientError`.
"""

from __future__ import annotations

from ._async import AsyncChatClient
from ._discovery import ServerInfo, discover_server
from ._errors import ApiError, ChatClientError, ServerNotFound, TurnTimeout
from ._sync import ChatClient
from ._turn import OnEvent, TurnResult
from ._types import UNSET, Content, MessagePage, SendResult, StreamItem, StreamMarker, WatchItem

__all__ = [
    "UNSET",
    "ApiError",
    "AsyncChatClient",
    "ChatClient",
    "ChatClientError",
    "Content",
    "MessagePage",
    "OnEvent",
    "SendResult",
    "ServerInfo",
    "ServerNotFound",
    "StreamItem",
    "StreamMarker",
    "TurnResult",
    "TurnTimeout",
    "WatchItem",
    "discover_server",
]
