"""Turns through the real server API against the fake provider server, reached through the
real SDK adapters (issue: providers): retries, the first-chunk timeout, auth failures, errors
mid-stream and the history each provider is sent on a multi-step tool turn."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from coderchat_ext.providers.fake import FakeProviderServer
from coderchat_ext.providers.scripted import ScriptedModel
from tests.helpers import FAKE_PROVIDER_MODELS, fake_provider_config

MODELS = FAKE_PROVIDER_MODELS


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def coderchat_config(tmp_path: Any, fake: FakeProviderServer) -> dict[str, Any]:
    config = fake_provider_config(str(tmp_path / "coderchat" / "coderchat.db"), fake)
    return {**config, "test_tools": True}


@pytest.fixture(autouse=True)
def titles_in_process(app: Any) -> None:
    """Titles come from an in-process echo model, so every request the fake server gets is a
    chat step and its queue of turns is consumed in order."""
    echo = ScriptedModel({"default": {"echo": True}})
    for name, factory in list(app.services.catalog.factories.items()):
        app.services.catalog.factories[name] = lambda c, r, p, f=factory: (
            echo if p == "title" else f(c, r, p)
        )


@pytest.fixture
def no_backoff(app: Any) -> list[float]:
    """Retries happen at once; the delays the daemon asked for are recorded."""
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    app.services.daemon.config.retry_sleep = record
    return waits


async def config_id(api: Any, provider: str) -> str:
    configs = await api.ok("GET", "model-configs")
    return next(c["id"] for c in configs if c["provider"] == provider)


async def run_turn(api: Any, provider: str, text: str = "go") -> tuple[dict[str, Any], list[Any]]:
    chat = await api.ok(
        "POST",
        "chats",
        {
            "content": [{"type": "text", "text": text}],
            "model_config_id": await config_id(api, provider),
        },
    )
    done = await api.wait_status(chat["id"], "waiting", "error")
    return done, await api.messages(chat["id"])


def chat_requests(fake: FakeProviderServer) -> list[Any]:
    """The model calls the daemon made."""
    return [r for r in fake.requests if r.method == "POST"]


@pytest.mark.parametrize("provider", list(MODELS))
async def test_rate_limited_twice_then_success_retries_with_two_retry_events(
    api: Any, fake: FakeProviderServer, no_backoff: list[float], published: Any, provider: str
) -> None:
    fake.push(
        {"status": 429, "retry_after": 1},
        {"status": 429, "retry_after": 1},
        {"text": "made it"},
    )
    chat, messages = await run_turn(api, provider)
    assert chat["status"] == "waiting"
    assert chat.get("last_error") is None
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[-1]["content"][0]["text"] == "made it"
    retries = [
        e["retry"] for ch, e in published if ch == f"chat:{chat['id']}" and e["type"] == "retry"
    ]
    assert [r["attempt"] for r in retries] == [1, 2]
    assert {r["kind"] for r in retries} == {"rate_limit"}
    assert {r["status_code"] for r in retries} == {429}
    assert no_backoff == [1.0, 2.0]


async def test_a_stall_before_the_first_chunk_retries_as_startup_timeout(
    api: Any, app: Any, fake: FakeProviderServer, no_backoff: list[float], published: Any
) -> None:
    app.services.daemon.config.startup_timeout = 0.3
    fake.push({"text": "too late", "stall": 5}, {"text": "on time"})
    chat, messages = await run_turn(api, "anthropic")
    assert chat["status"] == "waiting"
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[-1]["content"][0]["text"] == "on time"
    retries = [
        e["retry"] for ch, e in published if ch == f"chat:{chat['id']}" and e["type"] == "retry"
    ]
    assert [r["kind"] for r in retries] == ["startup_timeout"]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_unauthorized_ends_in_an_auth_error_without_retrying(
    api: Any, fake: FakeProviderServer, no_backoff: list[float], provider: str
) -> None:
    fake.push({"status": 401})
    chat, messages = await run_turn(api, provider)
    assert chat["status"] == "error"
    error = chat["last_error"]
    assert (error["kind"], error["retryable"], error["status_code"]) == ("auth", False, 401)
    assert error["provider"] == provider
    assert "Check the API key" in error["message"]
    assert "sk-" not in str(chat)
    assert no_backoff == []
    assert [m["role"] for m in messages] == ["user"]
    assert len(chat_requests(fake)) == 1


PROVIDER_FAULTS = {
    "500": {"status": 500},
    "529": {"status": 529},
    "error mid-stream": {"text": "half an answer", "chunk_size": 4, "error_midstream": 2},
    "drop mid-stream": {"text": "half an answer", "chunk_size": 4, "drop_after": 2},
}
"""Transient provider faults of the fault matrix (tests/server/test_faults.py); the 429 and
stall cells are the two tests above."""


@pytest.mark.parametrize("fault", list(PROVIDER_FAULTS))
@pytest.mark.parametrize("provider", list(MODELS))
async def test_a_transient_provider_fault_is_retried_and_the_answer_is_stored_once(
    api: Any,
    fake: FakeProviderServer,
    no_backoff: list[float],
    published: Any,
    provider: str,
    fault: str,
) -> None:
    fake.push(PROVIDER_FAULTS[fault], {"text": "made it"})
    chat, messages = await run_turn(api, provider)
    assert (chat["status"], chat.get("last_error")) == ("waiting", None)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[-1]["content"] == [{"type": "text", "text": "made it"}]
    assert "half an answer" not in str(messages)
    retries = [e for ch, e in published if ch == f"chat:{chat['id']}" and e["type"] == "retry"]
    assert len(retries) == 1
    assert len(chat_requests(fake)) == 2


@pytest.mark.parametrize("provider", list(MODELS))
async def test_an_error_mid_stream_after_some_text_persists_nothing_half_done(
    api: Any, fake: FakeProviderServer, no_backoff: list[float], provider: str
) -> None:
    fake.push(
        {"text": "partial answer that never finishes", "chunk_size": 4, "error_midstream": 3},
        {"status": 401},
    )
    chat, messages = await run_turn(api, provider)
    assert chat["status"] == "error"
    assert [m["role"] for m in messages] == ["user"]
    assert not any("partial" in str(m["content"]) for m in messages)


async def test_multi_step_tool_turn_sends_anthropic_the_tool_use_and_result_history(
    api: Any, fake: FakeProviderServer
) -> None:
    fake.push(
        {
            "reasoning": "I should echo.",
            "tool_calls": [{"id": "toolu_1", "name": "echo", "arguments": {"text": "ping"}}],
        },
        {"text": "echoed"},
    )
    chat, messages = await run_turn(api, "anthropic", "please echo ping")
    assert chat["status"] == "waiting"
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    first, second = chat_requests(fake)[:2]
    assert first.path == "/v1/messages"
    assert first.headers.get("x-api-key", first.headers.get("authorization", "")).endswith(
        "sk-ant-test"
    )
    assert "echo" in [t["name"] for t in first.json["tools"]]
    history = second.json["messages"]
    assert history[0]["role"] == "user"
    assistant = history[1]
    assert assistant["role"] == "assistant"
    kinds = [b["type"] for b in assistant["content"]]
    assert kinds == ["thinking", "tool_use"]
    thinking, tool_use = assistant["content"]
    assert thinking["thinking"] == "I should echo."
    assert thinking["signature"]
    assert (tool_use["id"], tool_use["name"], tool_use["input"]) == (
        "toolu_1",
        "echo",
        {"text": "ping"},
    )
    result = history[2]
    assert result["role"] == "user"
    (block,) = [b for b in result["content"] if b["type"] == "tool_result"]
    assert block["tool_use_id"] == "toolu_1"
    assert "ping" in str(block["content"])


async def test_multi_step_tool_turn_sends_responses_function_call_and_output(
    api: Any, fake: FakeProviderServer
) -> None:
    fake.push(
        {"tool_calls": [{"id": "call_1", "name": "echo", "arguments": {"text": "ping"}}]},
        {"text": "echoed"},
    )
    chat, _ = await run_turn(api, "openai", "please echo ping")
    assert chat["status"] == "waiting"
    first, second = chat_requests(fake)[:2]
    assert first.path == "/v1/responses"
    items = second.json["input"]
    calls = [i for i in items if i.get("type") == "function_call"]
    outputs = [i for i in items if i.get("type") == "function_call_output"]
    assert [(c["call_id"], c["name"]) for c in calls] == [("call_1", "echo")]
    assert [o["call_id"] for o in outputs] == ["call_1"]
    assert "ping" in outputs[0]["output"]


async def test_multi_step_tool_turn_sends_chat_completions_tool_messages(
    api: Any, fake: FakeProviderServer
) -> None:
    fake.push(
        {"tool_calls": [{"id": "call_1", "name": "echo", "arguments": {"text": "ping"}}]},
        {"text": "echoed"},
    )
    chat, _ = await run_turn(api, "openai-compat", "please echo ping")
    assert chat["status"] == "waiting"
    first, second = chat_requests(fake)[:2]
    assert first.path == "/v1/chat/completions"
    history = second.json["messages"]
    assistant = next(m for m in history if m["role"] == "assistant")
    assert [(c["id"], c["function"]["name"]) for c in assistant["tool_calls"]] == [
        ("call_1", "echo")
    ]
    tool = next(m for m in history if m["role"] == "tool")
    assert tool["tool_call_id"] == "call_1"
    assert "ping" in str(tool["content"])
    # A custom base URL never receives the default OpenAI key.
    assert "sk-openai-test" not in str(second.headers)


async def test_no_endpoint_error_or_log_line_contains_a_provider_key(
    api: Any, app: Any, fake: FakeProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-live-0123456789abcdefSECRET"
    created = await api.ok(
        "POST",
        "providers",
        {"provider": "openai", "api_key": secret, "base_url": fake.openai_base_url},
    )
    fake.push(
        {
            "status": 401,
            "error": {
                "message": f"Incorrect API key provided: {secret}.",
                "code": "invalid_api_key",
            },
        }
    )
    chat, _ = await run_turn(api, "openai")
    assert chat["status"] == "error"
    assert fake.requests[-1].headers["authorization"] == f"Bearer {secret}"
    seen = [
        created,
        chat,
        await api.ok("GET", "providers"),
        await api.ok("GET", "models"),
        await api.ok("GET", "model-configs"),
        await api.ok("GET", "info"),
        await api.ok("GET", f"chats/{chat['id']}/messages"),
    ]
    assert secret not in str(seen)
    assert secret not in caplog.text
