"""``AsyncChatClient``: httpx for the REST API, websockets for the chat stream and the watch
feed (docs/api.md, docs/stream-protocol.md, docs/client.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
import pydantic
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..models import (
    Chat,
    ChatMessage,
    ChatModelConfig,
    ChatProviderConfig,
    ChatQueuedMessage,
    ChatStreamEvent,
    ChatWatchEvent,
)
from ._discovery import discover_server
from ._errors import ApiError
from ._turn import OnEvent, TurnResult, run_turn
from ._types import (
    UNSET,
    Content,
    MessagePage,
    SendResult,
    StreamItem,
    StreamMarker,
    WatchItem,
    _Unset,
)

log = logging.getLogger(__name__)

_W = TypeVar("_W", bound=pydantic.BaseModel)

BACKOFF_INITIAL = 0.25
"""Seconds before the first reconnect attempt; doubles per failed attempt."""
BACKOFF_MAX = 5.0
"""Seconds between reconnect attempts at most."""
CLOSE_HISTORY_CHANGED = 4001
"""Close code of a chat stream whose history was rewritten (``chatd/stream.py``)."""
CLOSE_TOO_SLOW = 4002
"""Close code of a chat stream whose client fell behind (``chatd/stream.py``)."""


def _content(content: Content) -> list[dict[str, Any]]:
    """Text -> one text part; "" -> no parts, so the server answers "Content is required."."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [dict(part) for part in content]


def _ws_base(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def _id(value: str | int) -> str:
    return quote(str(value), safe="")


class AsyncChatClient:
    """Async client of the coderchat API of one Jupyter server.

    ``url`` is the server's base URL (``http://127.0.0.1:8888/base/``, percent-encoding kept
    as given); ``token`` is sent as ``Authorization: token <token>`` (token-authenticated
    requests skip XSRF checks). Without a token the client sends its own double-submit XSRF
    cookie and header, for servers that allow unauthenticated access. ``timeout`` is the
    per-request timeout in seconds.

    Every REST method raises :class:`ApiError` for an error response and lets httpx's transport
    errors through. Use as an async context manager or call :meth:`aclose`. One instance
    belongs to one event loop.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.token = token or None
        self.api_url = self.url + "api/coderchat/"
        self.timeout = timeout
        headers = {"Accept": "application/json"}
        cookies: dict[str, str] = {}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        else:
            xsrf = secrets.token_hex(16)
            headers["X-XSRFToken"] = xsrf
            cookies["_xsrf"] = xsrf
        self._headers = headers
        self._ws_headers = {k: v for k, v in headers.items() if k == "Authorization"}
        if cookies:
            self._ws_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self._http = httpx.AsyncClient(
            base_url=self.api_url, headers=headers, cookies=cookies, timeout=timeout
        )

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

    async def aclose(self) -> None:
        """Close the HTTP connection pool (open streams close when their iterators do)."""
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # --- transport ------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        body: Any = None,
    ) -> Any:
        """One call to ``<url>api/coderchat/<path>`` -> the decoded JSON (``None`` for an empty
        response). ``None`` params are dropped, booleans become ``true``/``false``. Raises
        :class:`ApiError` for a status >= 400."""
        items = params.items() if isinstance(params, Mapping) else params or []
        query: list[tuple[str, str | int | float | bool | None]] = [
            (k, ("true" if v else "false") if isinstance(v, bool) else str(v))
            for k, v in items
            if v is not None
        ]
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = {}
        response = await self._http.request(
            method,
            path,
            params=query or None,
            content=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"} if body is not None else None,
        )
        if response.status_code >= 400:
            raise ApiError.from_response(
                response.status_code, response.reason_phrase, response.content
            )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @staticmethod
    def _parse(model: type[_W], data: Any) -> _W:
        return model.model_validate(data)

    # --- chats ----------------------------------------------------------------------------

    async def list_chats(
        self,
        *,
        q: str | None = None,
        labels: Mapping[str, str] | None = None,
        archived: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Chat]:
        """``GET chats``: the caller's root chats (children embedded), newest activity first.
        ``labels`` filters on every ``key: value``; ``limit`` is 1..200."""
        params: list[tuple[str, Any]] = [
            ("q", q),
            ("archived", archived),
            ("limit", limit),
            ("offset", offset),
        ]
        params += [("label", f"{k}:{v}") for k, v in (labels or {}).items()]
        data = await self.request("GET", "chats", params=params)
        return [self._parse(Chat, c) for c in data]

    async def create_chat(
        self,
        content: Content,
        *,
        model_config_id: str | None = None,
        workspace_id: str | None = None,
        system_prompt: str | None = None,
        labels: Mapping[str, str] | None = None,
        organization_id: str | None = None,
        unsafe_dynamic_tools: Sequence[Mapping[str, Any]] | None = None,
        client_type: Literal["ui", "api"] | None = None,
    ) -> Chat:
        """``POST chats`` -> the new :class:`Chat` (status ``pending``; its first turn starts
        on its own). 400 "Content is required." for empty content."""
        body: dict[str, Any] = {"content": _content(content)}
        optional = {
            "model_config_id": model_config_id,
            "workspace_id": workspace_id,
            "system_prompt": system_prompt,
            "labels": dict(labels) if labels is not None else None,
            "organization_id": organization_id,
            "unsafe_dynamic_tools": [dict(t) for t in unsafe_dynamic_tools]
            if unsafe_dynamic_tools is not None
            else None,
            "client_type": client_type,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return self._parse(Chat, await self.request("POST", "chats", body=body))

    async def get_chat(self, chat_id: str) -> Chat:
        """``GET chats/{id}`` -> :class:`Chat` (404 "Chat not found." for another owner's)."""
        return self._parse(Chat, await self.request("GET", f"chats/{_id(chat_id)}"))

    async def update_chat(
        self,
        chat_id: str,
        *,
        title: str | _Unset = UNSET,
        archived: bool | _Unset = UNSET,
        workspace_id: str | _Unset | None = UNSET,
        pin_order: int | _Unset = UNSET,
        labels: Mapping[str, str] | _Unset = UNSET,
    ) -> None:
        """``PATCH chats/{id}``: change only the given fields (``workspace_id=None`` unbinds
        the workspace). Archiving stops a running turn."""
        fields: dict[str, Any] = {
            "title": title,
            "archived": archived,
            "workspace_id": workspace_id,
            "pin_order": pin_order,
            "labels": dict(labels) if isinstance(labels, Mapping) else labels,
        }
        body = {k: v for k, v in fields.items() if v is not UNSET}
        await self.request("PATCH", f"chats/{_id(chat_id)}", body=body)

    async def archive_chat(self, chat_id: str) -> None:
        """Archive a chat and its children (400 when it already is)."""
        await self.update_chat(chat_id, archived=True)

    async def unarchive_chat(self, chat_id: str) -> None:
        """Unarchive a chat and its children (400 when it is not archived)."""
        await self.update_chat(chat_id, archived=False)

    # --- messages -------------------------------------------------------------------------

    async def list_messages(
        self,
        chat_id: str,
        *,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        """``GET chats/{id}/messages`` -> :class:`MessagePage` (visible messages only)."""
        data = await self.request(
            "GET",
            f"chats/{_id(chat_id)}/messages",
            params={"before_id": before_id, "after_id": after_id, "limit": limit},
        )
        return MessagePage(
            messages=[self._parse(ChatMessage, m) for m in data.get("messages") or []],
            queued_messages=[
                self._parse(ChatQueuedMessage, q) for q in data.get("queued_messages") or []
            ],
            has_more=bool(data.get("has_more")),
        )

    async def send_message(
        self,
        chat_id: str,
        content: Content,
        *,
        model_config_id: str | None = None,
        busy_behavior: Literal["queue", "interrupt"] | None = None,
    ) -> SendResult:
        """``POST chats/{id}/messages``. A busy chat queues the message (``busy_behavior``
        ``"interrupt"`` also stops the running turn); 429 when 20 are queued."""
        body: dict[str, Any] = {"content": _content(content)}
        if model_config_id is not None:
            body["model_config_id"] = model_config_id
        if busy_behavior is not None:
            body["busy_behavior"] = busy_behavior
        data = await self.request("POST", f"chats/{_id(chat_id)}/messages", body=body)
        message = data.get("message")
        queued = data.get("queued_message")
        return SendResult(
            queued=bool(data.get("queued")),
            message=self._parse(ChatMessage, message) if message else None,
            queued_message=self._parse(ChatQueuedMessage, queued) if queued else None,
        )

    async def edit_message(self, chat_id: str, message_id: int, content: Content) -> ChatMessage:
        """``PATCH chats/{id}/messages/{message_id}``: replace a user message, drop everything
        after it and the queue, restart the turn -> the new user message. Open streams of
        the chat close with 4001 (a ``reset`` marker)."""
        data = await self.request(
            "PATCH",
            f"chats/{_id(chat_id)}/messages/{_id(message_id)}",
            body={"content": _content(content)},
        )
        return self._parse(ChatMessage, data["message"])

    async def delete_queued_message(self, chat_id: str, queued_id: int) -> None:
        """``DELETE chats/{id}/queue/{queued_id}``."""
        await self.request("DELETE", f"chats/{_id(chat_id)}/queue/{_id(queued_id)}")

    async def promote_queued_message(self, chat_id: str, queued_id: int) -> ChatMessage:
        """``POST chats/{id}/queue/{queued_id}/promote``: send a queued message now (a running
        turn is interrupted) -> the inserted user message."""
        data = await self.request("POST", f"chats/{_id(chat_id)}/queue/{_id(queued_id)}/promote")
        return self._parse(ChatMessage, data)

    async def interrupt(self, chat_id: str) -> Chat:
        """``POST chats/{id}/interrupt``: stop the turn (the partial step is kept) -> the
        chat once the step is persisted."""
        return self._parse(Chat, await self.request("POST", f"chats/{_id(chat_id)}/interrupt"))

    async def submit_tool_results(self, chat_id: str, results: Sequence[Mapping[str, Any]]) -> None:
        """``POST chats/{id}/tool-results``: answer every pending dynamic tool call of a
        ``requires_action`` chat; each result is ``{"tool_call_id", "output", "is_error"?}``.
        409 when the chat is not waiting for results."""
        await self.request(
            "POST",
            f"chats/{_id(chat_id)}/tool-results",
            body={"results": [dict(r) for r in results]},
        )

    async def regenerate_title(self, chat_id: str) -> Chat:
        """``POST chats/{id}/title/regenerate`` -> the chat with its new title (409 while the
        chat runs)."""
        return self._parse(
            Chat, await self.request("POST", f"chats/{_id(chat_id)}/title/regenerate")
        )

    # --- models, providers, model configs -------------------------------------------------

    async def list_models(self) -> dict[str, Any]:
        """``GET models`` -> ``{"providers": [{provider, display_name, available,
        unavailable_reason?, models: [{id, provider, model, display_name, is_default}]}]}``."""
        return dict(await self.request("GET", "models"))

    async def list_providers(self) -> list[ChatProviderConfig]:
        """``GET providers`` (admin; 404 otherwise). Keys are never returned."""
        data = await self.request("GET", "providers")
        return [self._parse(ChatProviderConfig, p) for p in data]

    async def create_provider(
        self,
        provider: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        display_name: str | None = None,
        enabled: bool | None = None,
    ) -> ChatProviderConfig:
        """``POST providers`` (admin) -> the provider (409 when it exists)."""
        body = {
            "provider": provider,
            "api_key": api_key,
            "base_url": base_url,
            "display_name": display_name,
            "enabled": enabled,
        }
        data = await self.request(
            "POST", "providers", body={k: v for k, v in body.items() if v is not None}
        )
        return self._parse(ChatProviderConfig, data)

    async def update_provider(self, provider_id: str, **fields: Any) -> ChatProviderConfig:
        """``PATCH providers/{id}`` (admin) with any of ``api_key``, ``base_url``,
        ``display_name``, ``enabled``."""
        data = await self.request("PATCH", f"providers/{_id(provider_id)}", body=fields)
        return self._parse(ChatProviderConfig, data)

    async def delete_provider(self, provider_id: str) -> None:
        """``DELETE providers/{id}`` (admin)."""
        await self.request("DELETE", f"providers/{_id(provider_id)}")

    async def list_model_configs(self) -> list[ChatModelConfig]:
        """``GET model-configs`` (enabled ones only unless admin)."""
        data = await self.request("GET", "model-configs")
        return [self._parse(ChatModelConfig, c) for c in data]

    async def create_model_config(
        self, provider: str, model: str, *, context_limit: int, **fields: Any
    ) -> ChatModelConfig:
        """``POST model-configs`` (admin): ``fields`` may set ``display_name``, ``enabled``,
        ``is_default``, ``compression_threshold``, ``model_config`` (call options)."""
        body = {"provider": provider, "model": model, "context_limit": context_limit, **fields}
        return self._parse(ChatModelConfig, await self.request("POST", "model-configs", body=body))

    async def update_model_config(self, config_id: str, **fields: Any) -> ChatModelConfig:
        """``PATCH model-configs/{id}`` (admin) with any field of ``create_model_config``."""
        data = await self.request("PATCH", f"model-configs/{_id(config_id)}", body=fields)
        return self._parse(ChatModelConfig, data)

    async def delete_model_config(self, config_id: str) -> None:
        """``DELETE model-configs/{id}`` (admin)."""
        await self.request("DELETE", f"model-configs/{_id(config_id)}")

    # --- configuration --------------------------------------------------------------------

    async def get_system_prompt(self) -> dict[str, Any]:
        """``GET config/system-prompt`` (admin) -> ``{system_prompt,
        include_default_system_prompt, default_system_prompt}``."""
        return dict(await self.request("GET", "config/system-prompt"))

    async def set_system_prompt(
        self, system_prompt: str, *, include_default_system_prompt: bool | None = None
    ) -> None:
        """``PUT config/system-prompt`` (admin)."""
        body: dict[str, Any] = {"system_prompt": system_prompt}
        if include_default_system_prompt is not None:
            body["include_default_system_prompt"] = include_default_system_prompt
        await self.request("PUT", "config/system-prompt", body=body)

    async def get_user_prompt(self) -> str:
        """``GET config/user-prompt`` -> the caller's custom prompt ("" when unset)."""
        data = await self.request("GET", "config/user-prompt")
        return str(data.get("custom_prompt") or "")

    async def set_user_prompt(self, custom_prompt: str) -> str:
        """``PUT config/user-prompt`` -> the stored prompt."""
        data = await self.request(
            "PUT", "config/user-prompt", body={"custom_prompt": custom_prompt}
        )
        return str((data or {}).get("custom_prompt", custom_prompt))

    async def get_template_allowlist(self) -> list[str]:
        """``GET config/template-allowlist`` (admin) -> template ids."""
        data = await self.request("GET", "config/template-allowlist")
        return list(data.get("template_ids") or [])

    async def set_template_allowlist(self, template_ids: Sequence[str]) -> None:
        """``PUT config/template-allowlist`` (admin)."""
        await self.request(
            "PUT", "config/template-allowlist", body={"template_ids": list(template_ids)}
        )

    async def get_advisor_config(self) -> dict[str, Any]:
        """``GET config/advisor`` (admin)."""
        return dict(await self.request("GET", "config/advisor"))

    async def set_advisor_config(self, config: Mapping[str, Any]) -> None:
        """``PUT config/advisor`` (admin)."""
        await self.request("PUT", "config/advisor", body=dict(config))

    async def info(self) -> dict[str, Any]:
        """``GET info`` -> ``{version, time, features, default_model,
        real_provider_configured, providers}``."""
        return dict(await self.request("GET", "info"))

    async def openapi(self) -> dict[str, Any]:
        """``GET openapi.json``: the OpenAPI 3.1 document of the API."""
        return dict(await self.request("GET", "openapi.json"))

    # --- streams --------------------------------------------------------------------------

    def _ws_connect(self, path: str, params: Mapping[str, Any] | None = None) -> connect:
        url = _ws_base(self.api_url) + path
        if params:
            url += "?" + urlencode(params)
        return connect(
            url,
            additional_headers=self._ws_headers,
            max_size=None,
            open_timeout=self.timeout,
        )

    async def _frames(
        self,
        path: str,
        params: Callable[[StreamMarker | None], Mapping[str, Any]],
        *,
        reconnect: bool,
        on_connect: Callable[[int], None] | None = None,
    ) -> AsyncIterator[tuple[int, str | StreamMarker]]:
        """Raw text frames of a socket, reconnecting with backoff. Yields ``(connection,
        frame_or_marker)``; ``params(marker)`` gives each connection's query, where ``marker``
        is the one the new connection will be announced with (``None`` for the first). A 4xx
        handshake response raises :class:`ApiError`; the server's other failures are
        retried."""
        connection = 0
        delay = BACKOFF_INITIAL
        marker: StreamMarker | None = None
        while True:
            if on_connect is not None:
                on_connect(connection)
            query = dict(params(marker))
            code: int | None = None
            reason = ""
            got_frame = False
            try:
                async with self._ws_connect(path, query) as ws:
                    if marker is not None:
                        yield (
                            connection,
                            StreamMarker(
                                marker.kind,
                                marker.code,
                                marker.reason,
                                int(query.get("after_id", 0)),
                                connection,
                            ),
                        )
                        marker = None
                    try:
                        async for raw in ws:
                            got_frame = True
                            yield connection, raw if isinstance(raw, str) else raw.decode()
                    except ConnectionClosed:
                        pass
                    code, reason = _close_info(ws)
            except InvalidStatus as exc:
                response = exc.response
                if response.status_code < 500 and response.status_code != 429:
                    raise ApiError.from_response(
                        response.status_code, response.reason_phrase, bytes(response.body or b"")
                    ) from None
                reason = f"HTTP {response.status_code}"
            except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
            if not reconnect:
                return
            if code == CLOSE_HISTORY_CHANGED or (marker is not None and marker.kind == "reset"):
                marker = StreamMarker("reset", code, reason, 0, connection + 1)
            else:
                marker = StreamMarker("reconnect", code, reason, 0, connection + 1)
            if got_frame:
                delay = BACKOFF_INITIAL
            log.debug("%s closed (%s %s); reconnecting in %.2fs", path, code, reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
            connection += 1

    async def stream_with_connections(
        self,
        chat_id: str,
        after_id: int = 0,
        *,
        reconnect: bool = True,
        on_connect: Callable[[int], None] | None = None,
    ) -> AsyncIterator[tuple[int, StreamItem]]:
        """:meth:`stream` with each item paired with the number of the connection it came on
        (0 first); ``on_connect(n)`` runs just before connection ``n`` is attempted."""
        cursor = after_id

        def cursor_for(marker: StreamMarker | None) -> dict[str, Any]:
            nonlocal cursor
            if marker is not None and marker.kind == "reset":
                cursor = 0
            return {"after_id": cursor}

        async for connection, frame in self._frames(
            f"chats/{_id(chat_id)}/stream",
            cursor_for,
            reconnect=reconnect,
            on_connect=on_connect,
        ):
            if isinstance(frame, StreamMarker):
                yield connection, frame
                continue
            events = []
            for raw in _json_list(frame):
                event = _validate(ChatStreamEvent, raw)
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
    ) -> AsyncIterator[StreamItem]:
        """Follow a chat: ``async for item in client.stream(chat_id, after_id=0)``.

        Yields one ``list[ChatStreamEvent]`` per WebSocket frame (docs/stream-protocol.md#frames):
        first the connect snapshot (``status``, the visible messages with ``id > after_id``, the
        parts of the step in flight, ``queue_update``), then live events. A message id is never
        yielded twice (between resets): reconnects (automatic, after 0.25 s doubling to 5 s, reset
        after a connection that delivered a frame) resume after the highest message id seen.
        Between connections a :class:`StreamMarker` is yielded: ``reconnect`` (drop partial parts
        of the step in flight; the server re-sends them) or ``reset`` after close code 4001
        (history changed: start over, ids restart from 0).

        With ``reconnect=False`` the iteration ends when the socket closes. Raises
        :class:`ApiError` when the server refuses the connection (404 for an unknown chat).
        The stream never ends on its own otherwise: break out of the loop to stop it.
        """
        async for _, item in self.stream_with_connections(chat_id, after_id, reconnect=reconnect):
            yield item

    async def watch(self, *, reconnect: bool = True) -> AsyncIterator[WatchItem]:
        """Follow the caller's chats: yields one :class:`ChatWatchEvent` per frame
        (``created``, ``deleted``, ``status_change``, ``title_change``, ``action_required``)
        and a ``reconnect`` :class:`StreamMarker` after each reconnect (events in between are
        lost: re-list chats). Backoff and errors as :meth:`stream`."""
        async for _, frame in self._frames("chats/watch", lambda _: {}, reconnect=reconnect):
            if isinstance(frame, StreamMarker):
                yield frame
                continue
            try:
                raw = json.loads(frame)
            except ValueError:
                log.warning("ignoring a watch frame that is not JSON")
                continue
            event = _validate(ChatWatchEvent, raw)
            if event is not None:
                yield event

    # --- turns ----------------------------------------------------------------------------

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
            _content(content),
            model_config_id=model_config_id,
            busy_behavior=busy_behavior,
            on_event=on_event,
            timeout=timeout,
            create_options=dict(create_options or {}),
        )


def _close_info(ws: ClientConnection) -> tuple[int | None, str]:
    return ws.close_code, ws.close_reason or ""


def _json_list(frame: str) -> list[Any]:
    try:
        value = json.loads(frame)
    except ValueError:
        log.warning("ignoring a stream frame that is not JSON")
        return []
    return value if isinstance(value, list) else [value]


def _validate(model: type[_W], raw: Any) -> _W | None:
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        log.warning("ignoring an event this client does not understand: %s", exc)
        return None
