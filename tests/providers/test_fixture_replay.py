"""Every recorded provider fixture (tests/providers/fixtures, see its README and SOURCES.md files)
replayed byte for byte by the fake provider server into its adapter through the real SDK: the
stream parts add up to the fixture's ``.expect.json`` (text, reasoning and signatures, tool calls
with raw and parsed arguments, provider-executed calls and results, citations, usage, stop
reason), and every error (an HTTP error body or an error inside the stream) classifies to the
kind, retryability and status code of docs/loop.md#error-classification."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.chatd.errors import MAX_DETAIL_RUNES, classify
from coderchat_ext.providers.anthropic import AnthropicModel
from coderchat_ext.providers.base import Model, Usage
from coderchat_ext.providers.fake import FakeProviderServer
from coderchat_ext.providers.openai_chat import OpenAIChatModel
from coderchat_ext.providers.openai_responses import OpenAIResponsesModel

from .streams import FIXTURES, Collected, collect, user_request

API_KEY = "sk-test-fixture-key-0123456789"

ANTHROPIC_STOP = {"end_turn": "stop", "tool_use": "tool-calls", None: None}
CHAT_STOP = {"stop": "stop", "tool_calls": "tool-calls"}
RESPONSES_STOP = {"completed": None}  # "tool-calls" with function calls, else "stop"

# fixture → (kind, retryable, status code, message), as docs/loop.md#error-classification gives
# them for the provider that served it (the Chat Completions bodies through the openai-compat
# adapter).
ERRORS: dict[str, tuple[str, bool, int, str]] = {
    "anthropic/error_429_rate_limit.json": (
        "rate_limit",
        True,
        429,
        "Anthropic is rate limiting requests.",
    ),
    "anthropic/error_529_overloaded.json": (
        "overloaded",
        True,
        529,
        "Anthropic is temporarily overloaded.",
    ),
    "anthropic/error_overloaded_midstream.sse": (
        "overloaded",
        True,
        529,
        "Anthropic is temporarily overloaded.",
    ),
    "openai_chat/error_400_context_length_exceeded.json": (
        "config",
        False,
        400,
        "OpenAI Compatible rejected the model configuration. "
        "Check the selected model and provider settings.",
    ),
    "openai_chat/error_429_insufficient_quota.json": (
        "usage_limit",
        False,
        429,
        "The usage quota for OpenAI Compatible has been exceeded. "
        "Check the billing and quota settings for the provider account.",
    ),
    "openai_chat/error_429_rate_limit_exceeded.json": (
        "rate_limit",
        True,
        429,
        "OpenAI Compatible is rate limiting requests.",
    ),
    "openai_chat/error_500_server_error.json": (
        "generic",
        True,
        500,
        "OpenAI Compatible returned an unexpected error.",
    ),
    "openai_responses/error_insufficient_quota.sse": (
        "usage_limit",
        False,
        429,
        "The usage quota for OpenAI has been exceeded. "
        "Check the billing and quota settings for the provider account.",
    ),
}


def _fixtures() -> list[Path]:
    return sorted(
        p
        for p in FIXTURES.glob("*/*")
        if p.suffix in (".sse", ".json") and not (p.name.endswith(".expect.json"))
    )


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _expect(path: Path) -> dict[str, Any]:
    return json.loads(path.with_name(path.stem + ".expect.json").read_text())


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def _model(folder: str, fake: FakeProviderServer) -> Model:
    if folder == "anthropic":
        return AnthropicModel("claude-sonnet-4-6", api_key=API_KEY, base_url=fake.url)
    if folder == "openai_chat":
        return OpenAIChatModel("gpt-4o", api_key=API_KEY, base_url=fake.openai_base_url)
    return OpenAIResponsesModel("gpt-5", api_key=API_KEY, base_url=fake.openai_base_url)


def _replay(fake: FakeProviderServer, path: Path, model: Model | None = None) -> Collected:
    expect = _expect(path)
    headers = {
        k: v for k, v in (expect.get("response_headers") or {}).items() if k != "content-type"
    }
    fake.reset()
    fake.replay(path, status=expect["http_status"], headers=headers)
    collected = collect(model or _model(path.parent.name, fake), user_request())
    assert fake.pending == 0, "the adapter did not make its request"
    return collected


def test_every_fixture_has_a_check() -> None:
    fixtures = _fixtures()
    assert len(fixtures) == 24
    errors = {_id(p) for p in fixtures if _expect(p).get("error")}
    assert errors == set(ERRORS)


# --- streams --------------------------------------------------------------------------------


def _check_tool_calls(collected: Collected, expect: dict[str, Any]) -> None:
    calls = collected.local_calls()
    assert [(c.id, c.name) for c in calls] == [(t["id"], t["name"]) for t in expect["tool_calls"]]
    for call, want in zip(calls, expect["tool_calls"], strict=True):
        assert call.ended
        assert call.deltas == want["arguments_raw"]
        assert call.arguments == want["arguments"]
        if "item_id" in want:
            assert call.metadata == {"openai": {"item_id": want["item_id"]}}


def _dedupe_sources(citations: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    seen: dict[str, str | None] = {}
    for citation in citations:
        seen.setdefault(citation["url"], citation.get("title"))
    return list(seen.items())


def _check_anthropic(collected: Collected, expect: dict[str, Any]) -> None:
    assert collected.text == expect["text"]
    thinking = [b for b in collected.reasoning.values() if b.text or b.signature]
    assert "".join(b.text for b in thinking) == expect["reasoning_text"]
    assert [b.signature for b in thinking] == expect["reasoning_signatures"]
    _check_tool_calls(collected, expect)
    provider_calls = collected.provider_calls()
    assert [{"id": c.id, "name": c.name, "input": c.arguments} for c in provider_calls] == expect[
        "provider_executed_tool_calls"
    ]
    assert all(c.ended for c in provider_calls)
    results = []
    for result in collected.results:
        block = (result.provider_metadata or {})["anthropic"]["block"]
        assert block["tool_use_id"] == result.tool_call_id
        entry = {"tool_use_id": result.tool_call_id, "type": block["type"]}
        entry["results" if isinstance(result.result, list) else "content"] = result.result
        results.append(entry)
        assert not result.is_error
    assert results == expect["provider_executed_tool_results"]
    assert [(s.url, s.title) for s in collected.sources] == _dedupe_sources(expect["citations"])
    assert collected.finish is not None
    u = expect["usage"]
    assert collected.finish.usage == Usage(
        input_tokens=u["input_tokens"],
        output_tokens=u["output_tokens"],
        total_tokens=u["input_tokens"]
        + u["output_tokens"]
        + u["cache_creation_input_tokens"]
        + u["cache_read_input_tokens"],
        cache_creation_tokens=u["cache_creation_input_tokens"],
        cache_read_tokens=u["cache_read_input_tokens"],
    )
    assert collected.finish.reason == ANTHROPIC_STOP[expect["stop_reason"]]
    assert collected.finish.provider_response_id == expect["message_id"]


def _check_chat(collected: Collected, expect: dict[str, Any]) -> None:
    assert collected.text == expect["text"]
    assert "".join(b.text for b in collected.reasoning.values()) == expect["reasoning_text"]
    _check_tool_calls(collected, expect)
    assert collected.provider_calls() == []
    assert collected.results == []
    assert collected.sources == []
    assert collected.finish is not None
    u = expect["usage"]
    if u is None:
        assert collected.finish.usage == Usage()
    else:
        cached = u["cached_tokens"] or 0
        assert collected.finish.usage == Usage(
            input_tokens=u["prompt_tokens"] - cached,
            output_tokens=u["completion_tokens"],
            total_tokens=u["total_tokens"],
            reasoning_tokens=u["reasoning_tokens"],
            cache_read_tokens=cached,
        )
    assert collected.finish.reason == CHAT_STOP[expect["stop_reason"]]
    assert collected.finish.provider_response_id == expect["response_id"]


def _check_responses(collected: Collected, expect: dict[str, Any]) -> None:
    assert collected.text == expect["text"]
    summaries = [b.text for b in collected.reasoning.values() if b.text]
    assert "\n\n".join(summaries) == expect["reasoning_text"]
    # One reasoning part per reasoning item, its summary parts joined by a blank line.
    parts = expect["reasoning_summary_parts"]
    assert summaries == (["\n\n".join(parts)] if parts else [])
    for block in collected.reasoning.values():
        # The reasoning item's id and encrypted content come along for the round trip.
        assert block.metadata["openai"]["item_id"].startswith("rs_")
        assert block.metadata["openai"]["encrypted_content"].startswith("gAAAA")
    _check_tool_calls(collected, expect)
    provider_calls = collected.provider_calls()
    searches = expect["provider_executed_tool_calls"]
    assert [c.id for c in provider_calls] == [c["id"] for c in searches]
    for call, want in zip(provider_calls, searches, strict=True):
        assert call.name == "web_search"
        assert call.arguments == want["action"]
    # OpenAI sends no search results: each call's result is only its final status.
    assert [(r.tool_call_id, r.result) for r in collected.results] == [
        (c["id"], {"status": c["status"]}) for c in expect["provider_executed_tool_calls"]
    ]
    assert [(s.url, s.title) for s in collected.sources] == _dedupe_sources(expect["citations"])
    assert collected.finish is not None
    u = expect["usage"]
    assert collected.finish.usage == Usage(
        input_tokens=u["input_tokens"] - u["cached_tokens"],
        output_tokens=u["output_tokens"],
        total_tokens=u["total_tokens"],
        reasoning_tokens=u["reasoning_tokens"],
        cache_read_tokens=u["cached_tokens"],
    )
    assert expect["stop_reason"] == "completed"
    assert collected.finish.reason == ("tool-calls" if expect["tool_calls"] else "stop")
    assert collected.finish.provider_response_id == expect["response_id"]


CHECKS: dict[str, Callable[[Collected, dict[str, Any]], None]] = {
    "anthropic": _check_anthropic,
    "openai_chat": _check_chat,
    "openai_responses": _check_responses,
}


@pytest.mark.parametrize("path", [p for p in _fixtures() if not _expect(p).get("error")], ids=_id)
def test_replayed_stream_adds_up_to_its_expectation(fake: FakeProviderServer, path: Path) -> None:
    collected = _replay(fake, path)

    assert collected.error is None
    CHECKS[path.parent.name](collected, _expect(path))
    assert collected.parts[-1] is collected.finish


# --- errors ---------------------------------------------------------------------------------


def _provider(folder: str) -> str:
    return {"anthropic": "anthropic", "openai_chat": "openai-compat"}.get(folder, "openai")


def _truncated(detail: str) -> str:
    detail = detail.strip()
    return detail if len(detail) <= MAX_DETAIL_RUNES else detail[: MAX_DETAIL_RUNES - 1] + "…"


@pytest.mark.parametrize("path", [p for p in _fixtures() if _expect(p).get("error")], ids=_id)
def test_replayed_error_classifies_as_the_reference_says(
    fake: FakeProviderServer, path: Path
) -> None:
    expect = _expect(path)
    kind, retryable, status, message = ERRORS[_id(path)]

    collected = _replay(fake, path)

    assert collected.error is not None
    assert collected.finish is None
    # Text streamed before a mid-stream error is what the stream had said so far.
    assert collected.text == expect.get("text", "")
    if "sdk_exception" in expect:
        # An HTTP error reaches the loop as the SDK raised it (which subclass a status gets
        # varies by SDK release: 529 is OverloadedError only in newer ones).
        sdk = importlib.import_module(expect["sdk_exception"].split(".")[0])
        assert isinstance(collected.error, sdk.APIStatusError)
    classified = classify(collected.error, provider=_provider(path.parent.name)).error
    assert (classified.kind, classified.retryable, classified.status_code) == (
        kind,
        retryable,
        status,
    )
    assert classified.message == message
    assert classified.detail == _truncated(expect["error"]["message"])
    if expect["http_status"] != 200:
        assert classified.status_code == expect["http_status"]
    assert API_KEY not in str(collected.error)
    assert API_KEY not in classified.model_dump_json()


@pytest.mark.parametrize(
    "name",
    [
        "error_400_context_length_exceeded.json",
        "error_429_insufficient_quota.json",
        "error_429_rate_limit_exceeded.json",
        "error_500_server_error.json",
    ],
)
def test_openai_error_bodies_classify_the_same_through_the_responses_adapter(
    fake: FakeProviderServer, name: str
) -> None:
    path = FIXTURES / "openai_chat" / name
    kind, retryable, status, _ = ERRORS[f"openai_chat/{name}"]

    collected = _replay(fake, path, _model("openai_responses", fake))

    classified = classify(collected.error, provider="openai").error
    assert (classified.kind, classified.retryable, classified.status_code) == (
        kind,
        retryable,
        status,
    )
    assert "OpenAI" in classified.message
    assert "Compatible" not in classified.message
