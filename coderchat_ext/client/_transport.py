"""The request builder and the two transports every endpoint method goes through: one REST
call (:meth:`Transport.request`) and a WebSocket feed that reconnects (:meth:`Transport._frames`).

The endpoint mixins (``_chats``, ``_settings``, ``_workspaces``, ``_streams``) describe each
endpoint on top of these; :class:`~coderchat_ext.client.ChatClient` runs the same methods on
its loop thread, so a request is built in exactly one place.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Container, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
import pydantic
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ._errors import ApiError
from ._types import Content, StreamMarker

log = logging.getLogger(__name__)

W = TypeVar("W", bound=pydantic.BaseModel)

BACKOFF_INITIAL = 0.25
"""Seconds before the first reconnect attempt; doubles per failed attempt."""
BACKOFF_MAX = 5.0
"""Seconds between reconnect attempts at most."""
CLOSE_HISTORY_CHANGED = 4001
"""Close code of a chat stream whose history was rewritten (``chatd/stream.py``)."""
CLOSE_TOO_SLOW = 4002
"""Close code of a chat stream whose client fell behind (``chatd/stream.py``)."""

Params = Mapping[str, Any] | Sequence[tuple[str, Any]]
"""Query parameters: a mapping, or ``(name, value)`` pairs for repeated names."""


def content_parts(content: Content) -> list[dict[str, Any]]:
    """Text -> one text part; "" -> no parts, so the server answers "Content is required."."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [dict(part) for part in content]


def segment(value: str | int) -> str:
    """One path segment: ``value`` percent-encoded, ``/`` included."""
    return quote(str(value), safe="")


def compact(fields: Mapping[str, Any], absent: object = None) -> dict[str, Any]:
    """``fields`` without the entries whose value is ``absent`` (by identity)."""
    return {k: v for k, v in fields.items() if v is not absent}


def parse_list(model: type[W], data: Any) -> list[W]:
    """A JSON array -> a list of ``model`` (pydantic ``ValidationError`` when it is not)."""
    return [model.model_validate(item) for item in data]


def _query(params: Params | None) -> list[tuple[str, str | int | float | bool | None]]:
    items = params.items() if isinstance(params, Mapping) else params or []
    return [
        (k, ("true" if v else "false") if isinstance(v, bool) else str(v))
        for k, v in items
        if v is not None
    ]


def _ws_base(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def _close_info(ws: ClientConnection) -> tuple[int | None, str]:
    return ws.close_code, ws.close_reason or ""


class Transport:
    """Connection settings and the two ways of talking to ``<url>api/coderchat/``.

    ``url`` is the server's base URL (``http://127.0.0.1:8888/base/``, percent-encoding kept
    as given); ``token`` is sent as ``Authorization: token <token>`` (token-authenticated
    requests skip XSRF checks). Without a token the client sends its own double-submit XSRF
    cookie and header, for servers that allow unauthenticated access. ``timeout`` is the
    per-request (and WebSocket opening) timeout in seconds.
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
        self._ws_headers = {k: v for k, v in headers.items() if k == "Authorization"}
        if cookies:
            self._ws_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self._http = httpx.AsyncClient(
            base_url=self.api_url, headers=headers, cookies=cookies, timeout=timeout
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool (open streams close when their iterators do)."""
        await self._http.aclose()

    async def request(
        self, method: str, path: str, *, params: Params | None = None, body: Any = None
    ) -> Any:
        """One call to ``<url>api/coderchat/<path>`` -> the decoded JSON (``None`` for an
        empty answer). ``path`` is relative and already encoded; ``None`` params are dropped,
        booleans become ``true``/``false``; ``body`` is sent as JSON (``{}`` when a POST, PUT
        or PATCH has none). The endpoint methods are built on this; call it directly only
        for what they do not cover (the widget's relay forwards the browser's requests).
        Raises :class:`ApiError` for a status >= 400 and lets httpx's transport errors
        through."""
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = {}
        response = await self._http.request(
            method,
            path,
            params=_query(params) or None,
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

    def _ws_connect(self, path: str, params: Mapping[str, Any]) -> connect:
        url = _ws_base(self.api_url) + path
        if params:
            url += "?" + urlencode(params)
        return connect(
            url, additional_headers=self._ws_headers, max_size=None, open_timeout=self.timeout
        )

    async def _frames(
        self,
        path: str,
        params: Callable[[StreamMarker | None], Mapping[str, Any]],
        *,
        reconnect: bool,
        on_connect: Callable[[int], None] | None = None,
        final_codes: Container[int] = (),
    ) -> AsyncIterator[tuple[int, str | StreamMarker]]:
        """Raw text frames of a socket, reconnecting with backoff (0.25 s doubling to 5 s,
        back to 0.25 s after a connection that delivered a frame). Yields ``(connection,
        frame_or_marker)``; ``params(marker)`` gives each connection's query, where ``marker``
        is the one the new connection will be announced with (``None`` for the first). The
        feed ends when the server closes with a code in ``final_codes`` (or at the first
        close without ``reconnect``). A 4xx handshake answer (but 429) raises
        :class:`ApiError`; the server's other failures are retried."""
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
                        after_id = int(query.get("after_id", 0))
                        yield (
                            connection,
                            StreamMarker(
                                marker.kind, marker.code, marker.reason, after_id, connection
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
            if not reconnect or (code is not None and code in final_codes):
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


def json_frame(frame: str) -> Any:
    """A frame's JSON value, or ``None`` (logged) when it is not JSON."""
    try:
        return json.loads(frame)
    except ValueError:
        log.warning("ignoring a frame that is not JSON")
        return None


def validate_event(model: type[W], raw: Any) -> W | None:
    """``raw`` as ``model``, or ``None`` (logged) for an event this client does not know."""
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        log.warning("ignoring an event this client does not understand: %s", exc)
        return None
