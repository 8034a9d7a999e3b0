"""Fixtures of the client tests: the test server's URL and token (tests/conftest.py starts
it with the scripted model) and an :class:`AsyncChatClient` of it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from coderchat_ext.client import AsyncChatClient

DEADLINE = 30.0
"""Seconds a test waits for the server at most."""


@pytest.fixture
def base_url(app: Any, http_server: Any, jp_http_port: int, jp_base_url: str) -> str:
    """The test server's base URL; ``http_server`` makes pytest-jupyter accept connections on
    ``jp_http_port``."""
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}"


@pytest.fixture
def token(jp_serverapp: Any) -> str:
    return str(jp_serverapp.identity_provider.token)


@pytest.fixture
def client(base_url: str, token: str, jp_asyncio_loop: Any) -> Iterator[AsyncChatClient]:
    instance = AsyncChatClient(base_url, token)
    yield instance
    jp_asyncio_loop.run_until_complete(instance.aclose())


def text_of(message: Any) -> str:
    return "".join(p.text or "" for p in message.content if p.type == "text")


async def wait_for_status(client: AsyncChatClient, chat_id: str, *statuses: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while (await client.get_chat(chat_id)).status not in statuses:
        assert time.monotonic() < deadline, f"chat never reached {statuses}"
        await asyncio.sleep(0.02)
