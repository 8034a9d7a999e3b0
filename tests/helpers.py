"""Helpers shared by the tests: waiting for a condition with a deadline (never a sleep), and the
configuration of a server whose providers all talk to the fake provider server."""

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


FAKE_PROVIDER_MODELS = {
    "anthropic": "claude-sonnet-5-5",
    "openai": "gpt-6.2-sol",
    "openai-compat": "llama3.2",
}
"""One model config per real provider kind, each reached through the fake provider server."""


def fake_provider_config(db_path: str, fake: Any) -> dict[str, Any]:
    """``CoderChatApp`` traits for a server whose three providers (Anthropic, OpenAI,
    OpenAI-compatible) all talk to ``fake`` (a ``FakeProviderServer``) through the real SDKs,
    with :data:`FAKE_PROVIDER_MODELS` (Anthropic's the default)."""
    return {
        "db_path": db_path,
        "seed_default_models": False,
        "providers": {
            "anthropic": {"api_key": "sk-ant-test", "base_url": fake.url},
            "openai": {"api_key": "sk-openai-test", "base_url": fake.openai_base_url},
            "openai-compat": {"base_url": fake.openai_base_url},
        },
        "model_configs": [
            {"provider": p, "model": m, "context_limit": 100_000, "is_default": p == "anthropic"}
            for p, m in FAKE_PROVIDER_MODELS.items()
        ],
        "acquire_interval": 0.05,
    }
