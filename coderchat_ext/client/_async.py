"""``AsyncChatClient``: every endpoint of the coderchat API, plus whole turns (docs/api.md,
docs/stream-protocol.md, docs/client.md). The endpoints live in one mixin per concern (``_chats``,
``_settings``, ``_workspaces``, ``_streams``), all built on :class:`~._transport.Transport`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ._chats import ChatsApi
from ._discovery import discover_server
from ._settings import SettingsApi
from ._streams import StreamsApi
from ._transport import content_parts
from ._turn import OnEvent, TurnResult, run_turn
from ._types import Content
from ._workspaces import WorkspacesApi


class AsyncChatClient(ChatsApi, SettingsApi, WorkspacesApi, StreamsApi):
    """Async client of the coderchat API of one Jupyter server (httpx for REST, websockets
    for the chat stream, the watch feed and build logs).

    ``url`` is the server's base URL (``http://127.0.0.1:8888/base/``, percent-encoding kept
    as given); ``token`` is sent as ``Authorization: token <token>`` (token-authenticated
    requests skip XSRF checks). Without a token the client sends its own double-submit XSRF
    cookie and header, for servers that allow unauthenticated access. ``timeout`` is the
    per-request timeout in seconds.

    Every endpoint method returns the pydantic model of its answer (:mod:`coderchat_ext.models`
    and the client's own) and raises :class:`ApiError` for an error answer; httpx's transport
    errors go through. Use as an async context manager or call :meth:`aclose`. One instance
    belongs to one event loop.
    """

    @classmethod
    def discover(cls, *, timeout: float = 30.0) -> AsyncChatClient:
        """A client for the server found by :func:`discover_server` (``CODERCHAT_URL``/
        ``CODERCHAT_TOKEN``, then the parent Jupyter server, then the only running one).
        Raises :class:`ServerNotFound`."""
        info = discover_server()
        return cls(info.url, info.token, timeout=timeout)

    async def __aenter__(self) -> AsyncChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    async def run_turn(
        self,
        chat_id: str | None,
        content: Content,
        *,
        model_config_id: str | None = None,
        busy_behavior: Literal["queue", "interrupt"] | None = None,
        on_event: OnEvent | None = None,
        timeout: float = 600.0,
        create_options: Mapping[str, Any] | None = None,
    ) -> TurnResult:
        """Send ``content`` to ``chat_id`` (or create a chat when it is ``None``) and wait for
        the turn to end -> :class:`TurnResult`.

        The turn ends at the first terminal status (``waiting``, ``error``,
        ``requires_action``) after the turn's user message, or when a later user message
        starts the next turn or an edit deletes this one (then ``status`` is ``waiting`` and
        ``superseded`` is true). A queued message's turn starts when the queue promotes it.
        The stream is subscribed before the message is sent. ``on_event`` (sync or async)
        receives every :class:`ChatStreamEvent` and :class:`StreamMarker` of the turn as it
        arrives.
        ``create_options`` are extra keyword arguments of :meth:`create_chat`.

        Raises :class:`TurnTimeout` after ``timeout`` seconds (the turn keeps running on the
        server; call :meth:`interrupt` to stop it) and :class:`ApiError` when a request is
        refused.
        """
        return await run_turn(
            self,
            chat_id,
            content_parts(content),
            model_config_id=model_config_id,
            busy_behavior=busy_behavior,
            on_event=on_event,
            timeout=timeout,
            create_options=dict(create_options or {}),
        )
