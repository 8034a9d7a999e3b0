"""Polling helpers shared by the tests: wait for a condition with a deadline, never a sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def wait_for(
    check: Callable[[], Any], what: str = "the condition", timeout: float = 10.0
) -> Any:
    """Poll ``check`` every 20 ms until it returns something truthy, and return that.

    ``check`` may be a plain function or a coroutine function. Raises ``AssertionError``
    ("timed out waiting for <what>") after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def wait_for_sync(
    check: Callable[[], Any], what: str = "the condition", timeout: float = 10.0
) -> Any:
    """:func:`wait_for` for code without an event loop (threads, a browser driven
    synchronously): polls every 20 ms, blocking the calling thread."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
