"""Wire faults through the real server, the daemon and each SDK adapter: what the user sees of a
transient fault is one error for every provider (the retry events, and once the retries run out
the chat's status and ``last_error``), and nothing a failed attempt streamed is persisted
(docs/loop.md#retries, docs/loop.md#error-classification)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from coderchat_ext.chatd.errors import PROVIDER_DISPLAY_NAMES
from coderchat_ext.chatd.retry import MAX_ATTEMPTS
from coderchat_ext.providers.fake import FakeProviderServer
from coderchat_ext.providers.scripted import ScriptedModel
from tests.helpers import FAKE_PROVIDER_MODELS, fake_provider_config

MODELS = FAKE_PROVIDER_MODELS

# (turn, kind, status code, message with {p} for the provider's name); all retryable.
FAULTS: dict[str, tuple[dict[str, Any], str, int | None, str]] = {
    "429": ({"status": 429}, "rate_limit", 429, "{p} is rate limiting requests."),
    "500": ({"status": 500}, "generic", 500, "{p} returned an unexpected error."),
    "529": ({"status": 529}, "overloaded", 529, "{p} is temporarily overloaded."),
    "drop_mid_stream": (
        {"text": "half an answer that is cut off", "chunk_size": 4, "drop_after": 2},
        "timeout",
        None,
        "{p} is temporarily unavailable.",
    ),
    # The daemon's first-chunk timeout (shortened to STALL_STARTUP_TIMEOUT) beats the SDK's
    # read timeout.
    "stall_before_first_event": (
        {"text": "too late", "stall": 30},
        "startup_timeout",
        None,
        "{p} did not start responding in time.",
    ),
}


STALL_STARTUP_TIMEOUT = 0.2
"""Seconds to the first chunk for the stall faults only: a loaded machine may take longer to
answer a first request, which must not turn the other faults into startup timeouts."""


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def coderchat_config(tmp_path: Any, fake: FakeProviderServer) -> dict[str, Any]:
    return fake_provider_config(str(tmp_path / "coderchat" / "coderchat.db"), fake)


@pytest.fixture
def daemon(app: Any) -> Any:
    """No backoff, and titles from an in-process model, so every request the fake server gets
    is a chat step."""

    async def no_wait(seconds: float) -> None:
        return None

    app.services.daemon.config.retry_sleep = no_wait
    echo = ScriptedModel({"default": {"echo": True}})
    for name, factory in list(app.services.catalog.factories.items()):
        app.services.catalog.factories[name] = lambda c, r, p, f=factory: (
            echo if p == "title" else f(c, r, p)
        )
    return app.services.daemon


@pytest.fixture
def retries(app: Any) -> list[dict[str, Any]]:
    """The payload of every ``retry`` event published, in order."""
    events: list[dict[str, Any]] = []
    original = app.services.pubsub.publish

    def record(channel: str, message: Any) -> None:
        if isinstance(message, dict) and message.get("type") == "retry":
            events.append(message["retry"])
        original(channel, message)

    app.services.pubsub.publish = record
    return events


async def start_turn(api: Any, provider: str) -> str:
    configs = await api.ok("GET", "model-configs")
    config_id = next(c["id"] for c in configs if c["provider"] == provider)
    chat = await api.ok(
        "POST",
        "chats",
        {"content": [{"type": "text", "text": "go"}], "model_config_id": config_id},
    )
    return str(chat["id"])


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("provider", list(MODELS))
async def test_a_fault_that_outlasts_the_retries_ends_in_one_error_for_every_provider(
    api: Any,
    daemon: Any,
    fake: FakeProviderServer,
    retries: list[dict[str, Any]],
    provider: str,
    fault: str,
) -> None:
    turn, kind, status_code, message = FAULTS[fault]
    fake.push(*[turn] * MAX_ATTEMPTS)
    if kind == "startup_timeout":
        daemon.config.startup_timeout = STALL_STARTUP_TIMEOUT

    chat_id = await start_turn(api, provider)
    chat = await api.wait_status(chat_id, "error", "waiting", timeout=60)

    assert chat["status"] == "error"
    error = chat["last_error"]
    name = PROVIDER_DISPLAY_NAMES[provider]
    assert (error["kind"], error["retryable"], error.get("status_code"), error["provider"]) == (
        kind,
        True,
        status_code,
        provider,
    )
    assert error["message"] == message.format(p=name)
    assert [(r["kind"], r.get("status_code"), r["provider"]) for r in retries] == [
        (kind, status_code, provider)
    ] * (MAX_ATTEMPTS - 1)
    assert {r["error"] for r in retries} == {message.format(p=name)}
    messages = await api.messages(chat_id)
    assert [m["role"] for m in messages] == ["user"]


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("provider", list(MODELS))
async def test_after_a_fault_the_retry_persists_only_the_answer_that_completed(
    api: Any,
    daemon: Any,
    fake: FakeProviderServer,
    retries: list[dict[str, Any]],
    provider: str,
    fault: str,
) -> None:
    turn, kind, status_code, _ = FAULTS[fault]
    fake.push(turn, {"text": "the whole answer"})
    if kind == "startup_timeout":
        daemon.config.startup_timeout = STALL_STARTUP_TIMEOUT

    chat_id = await start_turn(api, provider)
    chat = await api.wait_status(chat_id, "error", "waiting", timeout=30)

    assert chat["status"] == "waiting"
    assert chat.get("last_error") is None
    assert [(r["attempt"], r["kind"], r.get("status_code")) for r in retries] == [
        (1, kind, status_code)
    ]
    messages = await api.messages(chat_id)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert [p for p in messages[1]["content"] if p["type"] != "reasoning"] == [
        {"type": "text", "text": "the whole answer"}
    ]
