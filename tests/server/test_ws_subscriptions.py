"""WebSocket subscriptions live exactly as long as an accepted socket (issue 11, item 2):
refused upgrades (wrong Origin, no ``Upgrade`` header, a bad ``after_id``) leave no
subscription behind on ``chats/{id}/stream`` nor ``chats/watch``, and a socket that connects
and goes away releases its own."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.conftest import Api

REFUSALS = 400
"""Refused requests per kind and endpoint (2,000 in all)."""
BATCH = 50
"""Requests in flight at once."""


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def refused(request: Callable[[], Awaitable[Any]]) -> int:
    """The HTTP status of a request that must be refused."""
    with pytest.raises(HTTPClientError) as error:
        await request()
    return error.value.code


async def refuse_many(request: Callable[[], Awaitable[Any]], status: int) -> None:
    for start in range(0, REFUSALS, BATCH):
        codes = await asyncio.gather(
            *(refused(request) for _ in range(start, min(start + BATCH, REFUSALS)))
        )
        assert set(codes) == {status}


async def browser_headers(jp_fetch: Any) -> dict[str, str]:
    """A browser's credentials: the login cookie, no token (a token-authenticated request
    skips the Origin check, a cookie-authenticated one does not)."""
    response = await jp_fetch("api", "coderchat", "chats")
    cookie = response.headers.get_list("Set-Cookie")[0].split(";", 1)[0]
    # The cookie's name carries the host it was set for.
    host = urllib.parse.urlparse(response.effective_url).netloc
    return {"Cookie": cookie, "Host": host, "Authorization": ""}


async def test_refused_upgrades_leave_no_subscription_behind(
    app: Any, api: Api, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    chat = await api.ok("POST", "chats", {"content": "hello"})
    chat_id = chat["id"]
    await api.wait_status(chat_id, "waiting")
    hub = app.services.hub
    evil = {**await browser_headers(jp_fetch), "Origin": "http://evil.example"}
    endpoints = {
        "stream": ("api", "coderchat", "chats", chat_id, "stream"),
        "watch": ("api", "coderchat", "chats", "watch"),
    }
    for name, parts in endpoints.items():
        await refuse_many(
            lambda parts=parts: jp_ws_fetch(*parts, headers=dict(evil)),
            403,
        )
        assert hub.subscription_count == 0, f"{name}: a wrong Origin left subscriptions"
        # A plain GET: tornado refuses it for its missing Upgrade header.
        await refuse_many(lambda parts=parts: jp_fetch(*parts), 400)
        assert hub.subscription_count == 0, f"{name}: no Upgrade header left subscriptions"
    await refuse_many(lambda: jp_ws_fetch(*endpoints["stream"], params={"after_id": "x"}), 400)
    assert hub.subscription_count == 0, "a bad after_id left subscriptions"

    # An accepted socket holds one subscription while it is open, none once it is gone.
    stream = await jp_ws_fetch(*endpoints["stream"])
    snapshot = json.loads(await asyncio.wait_for(stream.read_message(), 10))
    assert snapshot[0] == {"type": "status", "chat_id": chat_id, "status": "waiting"}
    assert hub.subscription_count == 1
    watch = await jp_ws_fetch(*endpoints["watch"])
    await wait_until(lambda: hub.subscription_count == 2)
    stream.close()
    watch.close()
    await wait_until(lambda: hub.subscription_count == 0)
