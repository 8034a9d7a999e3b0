"""``ChatWidget``: the chat renderer as an anywidget (docs/frontend.md#kernel-relay-protocol).

The front end (``static/widget.js``, built from ``js/`` by the npm build) talks to the
server itself when the page is served by the same Jupyter server, else through the kernel:
the *kernel relay* below answers the JS side's custom messages with the
:class:`~coderchat_ext.client.AsyncChatClient` of this process:

- ``{kind: "request", id, method, path, body, query}`` -> ``{kind: "response", id, status,
  body}`` (status >= 400: the API's error body; status 0: the server is unreachable,
  body ``{message}``);
- ``{kind: "subscribe", id, chat_id, after_id}`` -> ``{kind: "events", id, events}`` per
  stream frame and ``{kind: "state", id, state}``; ``{kind: "unsubscribe", id}`` stops it;
- ``{kind: "watch", id}`` -> ``{kind: "watch_event", id, event}`` and ``state`` messages;
  ``{kind: "unwatch", id}`` stops it.

The relay runs on the event loop that is running when a message arrives (the kernel's), or
on a private loop thread where none runs; closing the widget stops every subscription.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import anywidget
import httpx
import traitlets

from .client import ApiError, AsyncChatClient, ServerNotFound, StreamMarker, discover_server

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
WIDGET_JS = STATIC / "widget.js"
WIDGET_CSS = STATIC / "chat.css"
NOT_BUILT = (
    "The coderchat front end is not built (coderchat_ext/static/widget.js is missing): run "
    "`npm install && npm run build` in js/, or `pip install -e .` which builds it."
)
_MISSING_ESM = (
    "export default { render({ el }) { el.textContent = "
    + repr(NOT_BUILT).replace("'", '"')
    + "; } };\n"
)
NO_SERVER = (
    "no coderchat server found: start JupyterLab with coderchat_ext enabled or set "
    "CODERCHAT_URL/CODERCHAT_TOKEN"
)
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _asset(path: Path, fallback: str) -> Path | str:
    """The built file when it exists, else inline ``fallback`` (anywidget reads a missing
    path at class creation and would make this module fail to import)."""
    return path if path.is_file() else fallback


def _check_path(path: Any) -> str | None:
    """Why a relayed API path is refused, or None: it must stay under ``api/coderchat/``
    (the relay sends the kernel's token, so it must never reach another URL)."""
    if not isinstance(path, str) or not path:
        return "path is required"
    if path.startswith("/") or "://" in path or "\\" in path:
        return "path must be relative to api/coderchat/"
    if any(segment in (".", "..") for segment in path.split("?")[0].split("/")):
        return "path must not contain . or .. segments"
    return None


class _RelayLoop:
    """A private event loop thread for relays created where no loop runs (scripts, tests
    without a loop). Shared by all widgets of the process."""

    _instance: _RelayLoop | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self.loop.run_forever, name="coderchat-relay", daemon=True)
        thread.start()

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance.loop


class ChatWidget(anywidget.AnyWidget):
    """One chat (or, with ``chat_id=""``, a composer that creates one) rendered in a notebook.

    ``chat_id`` is synced both ways (the front end sets it when the user creates a chat);
    ``server_url`` is the Jupyter server base URL this kernel's client uses (discovered as
    docs/client.md#server-discovery unless given); ``transport`` is ``"auto"``, ``"server"`` or
    ``"kernel"``; ``height`` is a CSS height. ``token`` (not synced: it never leaves the kernel)
    defaults to the discovered server's.
    """

    _esm = _asset(WIDGET_JS, _MISSING_ESM)
    _css = _asset(WIDGET_CSS, "")

    chat_id = traitlets.Unicode("").tag(sync=True)
    server_url = traitlets.Unicode("").tag(sync=True)
    transport = traitlets.Enum(("auto", "server", "kernel"), default_value="auto").tag(sync=True)
    height = traitlets.Unicode("600px").tag(sync=True)

    def __init__(
        self,
        chat_id: str | None = None,
        *,
        server_url: str | None = None,
        token: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._token = token
        self._discovery_error: str | None = None
        if server_url is None:
            try:
                info = discover_server()
                server_url, self._token = info.url, token or info.token
            except ServerNotFound as exc:
                server_url, self._discovery_error = "", f"{NO_SERVER} ({exc})"
        super().__init__(chat_id=chat_id or "", server_url=server_url, **kwargs)
        self._client: AsyncChatClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[str, asyncio.Task[None] | concurrent.futures.Future[None]] = {}
        self.on_msg(self._on_custom_msg)

    # --- display --------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        label = f"ChatWidget(chat_id={self.chat_id!r})"
        if not WIDGET_JS.is_file():
            label += f"\n{NOT_BUILT}"
        return {**data, "text/plain": label}, metadata

    # --- relay ----------------------------------------------------------------------------

    def _on_custom_msg(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("kind")
        rid = str(content.get("id", ""))
        if kind in ("unsubscribe", "unwatch"):
            self._cancel(rid)
        elif kind == "request":
            self._spawn(rid, self._request(rid, content), track=False)
        elif kind == "subscribe":
            self._cancel(rid)
            self._spawn(rid, self._subscribe(rid, content))
        elif kind == "watch":
            self._cancel(rid)
            self._spawn(rid, self._watch(rid))

    def _spawn(self, rid: str, coro: Coroutine[Any, Any, None], *, track: bool = True) -> None:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is None:
            # The client belongs to one loop: the kernel's when a message arrives on it.
            self._loop = running or _RelayLoop.get()
        task: asyncio.Task[None] | concurrent.futures.Future[None]
        if running is self._loop:
            task = self._loop.create_task(coro)
        else:
            task = asyncio.run_coroutine_threadsafe(coro, self._loop)
        if track:
            self._tasks[rid] = task

            def forget(done: Any) -> None:
                if self._tasks.get(rid) is done:
                    del self._tasks[rid]

            task.add_done_callback(forget)

    def _cancel(self, rid: str) -> None:
        task = self._tasks.pop(rid, None)
        if isinstance(task, asyncio.Task):
            task.get_loop().call_soon_threadsafe(task.cancel)
        elif task is not None:
            task.cancel()

    def _api(self) -> AsyncChatClient:
        if self._discovery_error is not None or not self.server_url:
            raise ServerNotFound(self._discovery_error or NO_SERVER)
        if self._client is None:
            self._client = AsyncChatClient(self.server_url, self._token)
        return self._client

    def _reply(self, message: dict[str, Any]) -> None:
        self.send(message)

    def _respond(self, rid: str, status: int, body: Any) -> None:
        self._reply({"kind": "response", "id": rid, "status": status, "body": body})

    async def _request(self, rid: str, msg: dict[str, Any]) -> None:
        method = str(msg.get("method") or "GET").upper()
        path = msg.get("path")
        problem = _check_path(path)
        if method not in _METHODS:
            problem = f"method must be one of {', '.join(_METHODS)}"
        if problem is not None:
            self._respond(rid, 400, {"message": problem})
            return
        query = msg.get("query") if isinstance(msg.get("query"), dict) else None
        try:
            body = await self._api().request(method, str(path), params=query, body=msg.get("body"))
        except ApiError as exc:
            error = exc.body if isinstance(exc.body, dict) else {"message": exc.message}
            self._respond(rid, exc.status, error)
        except ServerNotFound as exc:
            self._respond(rid, 0, {"message": str(exc)})
        except (httpx.TransportError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            message = f"cannot reach the coderchat server at {self.server_url}: {reason}"
            self._respond(rid, 0, {"message": message})
        else:
            self._respond(rid, 200, body)

    def _state(self, rid: str, state: str, **extra: Any) -> None:
        self._reply({"kind": "state", "id": rid, "state": state, **extra})

    async def _subscribe(self, rid: str, msg: dict[str, Any]) -> None:
        chat_id = str(msg.get("chat_id") or "")
        after = msg.get("after_id")
        after_id = after if isinstance(after, int) and after >= 0 else 0
        opened = False

        def on_connect(connection: int) -> None:
            nonlocal opened
            opened = False
            self._state(rid, "connecting" if connection == 0 else "reconnecting")

        try:
            async for _, item in self._api().stream_with_connections(
                chat_id, after_id, on_connect=on_connect
            ):
                if not opened:
                    opened = True
                    self._state(rid, "open")
                if isinstance(item, StreamMarker):
                    # The JS side treats a new connection like its own reconnect: partial
                    # parts are re-sent, and after a reset (4001) everything is.
                    self._state(rid, "open", marker=item.kind)
                    continue
                self._reply({"kind": "events", "id": rid, "events": [e.dump() for e in item]})
        except asyncio.CancelledError:
            raise
        except (ApiError, ServerNotFound) as exc:
            self._state(rid, "closed", error={"message": str(exc)})

    async def _watch(self, rid: str) -> None:
        self._state(rid, "connecting")
        try:
            self._state(rid, "open")
            async for item in self._api().watch():
                if isinstance(item, StreamMarker):
                    self._state(rid, "open", marker=item.kind)
                    continue
                self._reply({"kind": "watch_event", "id": rid, "event": item.dump()})
        except asyncio.CancelledError:
            raise
        except (ApiError, ServerNotFound) as exc:
            self._state(rid, "closed", error={"message": str(exc)})

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every subscription and close the HTTP client, then close the comm."""
        for rid in list(self._tasks):
            self._cancel(rid)
        client, self._client = self._client, None
        loop = self._loop
        if client is not None and loop is not None and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(client.aclose(), loop)
        super().close()
