"""The OpenAI Responses adapter against the fake provider server through the real SDK: history
mapping (function_call / function_call_output by call id, encrypted reasoning replayed with item
ids), call options, keys, and stream endings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.chatd.errors import classify
from coderchat_ext.models import ChatModelCallConfig, ChatModelConfig
from coderchat_ext.providers.base import ModelRequest, ToolSpec
from coderchat_ext.providers.fake import FakeProviderServer, encrypted_reasoning
from coderchat_ext.providers.openai_responses import (
    DEFAULT_BASE_URL,
    TITLE_MODEL,
    OpenAIResponsesModel,
    is_reasoning_model,
    make_model,
)
from coderchat_ext.providers.registry import ResolvedProvider

from .streams import FIXTURES, collect, message, persisted, text, tool_result, user_request

KEY = "sk-openai-test-key"
TOOLS = [
    ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {"path": {}}}),
    ToolSpec("execute", "Run a command.", {"type": "object", "properties": {"command": {}}}),
]


def model(fake: FakeProviderServer, name: str = "gpt-5") -> OpenAIResponsesModel:
    return OpenAIResponsesModel(name, api_key=KEY, base_url=fake.openai_base_url)


def sent(fake: FakeProviderServer) -> dict[str, Any]:
    body = fake.requests[-1].json
    assert isinstance(body, dict)
    assert fake.requests[-1].path == "/v1/responses"
    return body


def _tool_turn(fake: FakeProviderServer, name: str) -> tuple[list[Any], list[Any]]:
    """One step with reasoning and two function calls, then the history for the next step."""
    fake.push(
        {
            "reasoning": ["Two tools are needed.", "Read first, then list."],
            "text": "Checking.",
            "tool_calls": [
                {"name": "read_file", "arguments": {"path": "a.txt"}, "id": "call_read"},
                {"name": "execute", "arguments": {"command": "ls"}, "id": "call_ls"},
            ],
        },
        {"text": "Done."},
    )
    history = [
        message("system", text("You are an agent.")),
        message("user", text("Read a.txt and list the files.")),
    ]
    assistant, finish = persisted(model(fake, name), ModelRequest(history, tools=TOOLS))
    assert finish is not None
    assert finish.reason == "tool-calls"
    calls = [p for p in assistant if p.type == "tool-call"]
    history += [
        message("assistant", *(p.model_dump() for p in assistant)),
        message("tool", tool_result(calls[0], "hello")),
        message("tool", tool_result(calls[1], {"exit_code": 2}, is_error=True)),
    ]
    return assistant, history


def test_a_reasoning_model_gets_its_encrypted_reasoning_and_item_ids_back(
    fake: FakeProviderServer,
) -> None:
    assistant, history = _tool_turn(fake, "gpt-5")
    first = fake.requests[0].json
    assert first["include"] == ["reasoning.encrypted_content"]
    assert first["store"] is False
    ids = {p.type + (p.tool_call_id or ""): p.provider_metadata for p in assistant}

    collected = collect(model(fake), ModelRequest(history, tools=TOOLS))

    assert collected.text == "Done."
    reasoning_id = ids["reasoning"]["openai"]["item_id"]
    assert sent(fake)["input"] == [
        {"role": "developer", "content": "You are an agent."},
        {
            "role": "user",
            "content": [{"type": "input_text", "text": "Read a.txt and list the files."}],
        },
        {
            "type": "reasoning",
            "id": reasoning_id,
            "encrypted_content": encrypted_reasoning(
                "Two tools are needed.\n\nRead first, then list."
            ),
            "summary": [
                {"type": "summary_text", "text": "Two tools are needed.\n\nRead first, then list."}
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "id": ids["text"]["openai"]["item_id"],
            "status": "completed",
            "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
        },
        {
            "type": "function_call",
            "call_id": "call_read",
            "name": "read_file",
            "arguments": '{"path": "a.txt"}',
            "id": ids["tool-callcall_read"]["openai"]["item_id"],
        },
        {
            "type": "function_call",
            "call_id": "call_ls",
            "name": "execute",
            "arguments": '{"command": "ls"}',
            "id": ids["tool-callcall_ls"]["openai"]["item_id"],
        },
        {"type": "function_call_output", "call_id": "call_read", "output": "hello"},
        {"type": "function_call_output", "call_id": "call_ls", "output": '{"exit_code": 2}'},
    ]


def test_without_replayable_reasoning_items_go_back_without_ids(
    fake: FakeProviderServer,
) -> None:
    _, history = _tool_turn(fake, "gpt-4.1")
    first = fake.requests[0].json
    assert "include" not in first

    collect(model(fake, "gpt-4.1"), ModelRequest(history, tools=TOOLS))

    items = sent(fake)["input"]
    assert items[0] == {"role": "system", "content": "You are an agent."}
    assert [i.get("type") for i in items] == [
        None,
        None,
        None,
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
    ]
    assert items[2] == {"role": "assistant", "content": "Checking."}
    assert all("id" not in i for i in items)
    assert [i["call_id"] for i in items[3:]] == ["call_read", "call_ls", "call_read", "call_ls"]


def test_web_search_history_is_replayed_only_with_its_reasoning(fake: FakeProviderServer) -> None:
    fake.replay(FIXTURES / "openai_responses" / "web_search.sse")
    question = [message("user", text("How many people live in Tokyo?"))]
    assistant, _ = persisted(model(fake, "gpt-4.1"), ModelRequest(question))
    assert [p.type for p in assistant] == ["tool-call", "tool-result", "text", "source"]
    fake.push({"text": "ok"})

    collect(
        model(fake, "gpt-4.1"),
        ModelRequest(
            [
                *question,
                message("assistant", *(p.model_dump() for p in assistant)),
                message("user", text("Thanks")),
            ]
        ),
    )

    items = sent(fake)["input"]
    # No reasoning to pair it with: the search call stays out, its answer goes back as text.
    assert [i.get("type", i.get("role")) for i in items] == ["user", "assistant", "user"]
    assert items[1]["content"].startswith("Here is the most recent")


@pytest.mark.parametrize(
    ("model_name", "call_options", "expected", "absent"),
    [
        (
            "gpt-4.1",
            {"max_output_tokens": 900, "temperature": 0.2, "top_p": 0.8},
            {"max_output_tokens": 900, "temperature": 0.2, "top_p": 0.8, "store": False},
            ["reasoning", "include", "tool_choice"],
        ),
        (
            "gpt-5",
            {
                "temperature": 0.2,
                "provider_options": {
                    "openai": {
                        "reasoning_effort": "high",
                        "reasoning_summary": "detailed",
                        "text_verbosity": "low",
                        "max_completion_tokens": 5000,
                        "parallel_tool_calls": False,
                        "prompt_cache_key": "chat-1",
                        "service_tier": "flex",
                    }
                },
            },
            {
                "reasoning": {"effort": "high", "summary": "detailed"},
                "include": ["reasoning.encrypted_content"],
                "text": {"verbosity": "low"},
                "max_output_tokens": 5000,
                "parallel_tool_calls": False,
                "prompt_cache_key": "chat-1",
                "service_tier": "flex",
            },
            ["temperature"],
        ),
        (
            "gpt-5",
            {"provider_options": {"openai": {"store": True}}},
            {"store": True},
            ["include"],
        ),
    ],
    ids=["sampling", "reasoning-options", "store"],
)
def test_call_options_map_to_the_request(
    fake: FakeProviderServer,
    model_name: str,
    call_options: dict[str, Any],
    expected: dict[str, Any],
    absent: list[str],
) -> None:
    fake.push({"text": "ok"})
    options = ChatModelCallConfig.model_validate(call_options)
    request = user_request(
        tools=TOOLS, options=options, max_output_tokens=options.max_output_tokens
    )

    collect(model(fake, model_name), request)

    body = sent(fake)
    assert {k: body.get(k) for k in expected} == expected
    assert [k for k in absent if k in body] == []
    assert body["tools"][0] == {
        "type": "function",
        "name": "read_file",
        "description": "Read a file.",
        "parameters": TOOLS[0].input_schema,
        "strict": False,
    }


def test_web_search_is_offered_with_its_context_size_and_domains(fake: FakeProviderServer) -> None:
    fake.push({"text": "ok"}, {"text": "ok"})
    options = ChatModelCallConfig(
        provider_options={
            "openai": {
                "web_search_enabled": True,
                "search_context_size": "high",
                "allowed_domains": ["python.org", "docs.python.org"],
            }
        }
    )

    collect(model(fake, "gpt-4.1"), user_request(options=options))
    offered = sent(fake)
    collect(model(fake, "gpt-4.1"), user_request(options=options, tool_choice="none"))

    assert offered["include"] == ["web_search_call.action.sources"]
    assert offered["tools"] == [
        {
            "type": "web_search",
            "search_context_size": "high",
            "filters": {"allowed_domains": ["python.org", "docs.python.org"]},
        }
    ]
    assert "tools" not in sent(fake)
    assert "include" not in sent(fake)


def test_user_images_and_pdfs_are_input_items(fake: FakeProviderServer) -> None:
    fake.push({"text": "ok"})
    user = message(
        "user",
        text("What is in these?"),
        {"type": "file", "media_type": "image/jpeg", "name": "a.jpg", "data": "/9j/"},
        {"type": "file", "media_type": "application/pdf", "name": "b.pdf", "data": "JVBERg=="},
    )

    collect(model(fake), ModelRequest([user]))

    assert sent(fake)["input"][0]["content"] == [
        {"type": "input_text", "text": "What is in these?"},
        {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/"},
        {
            "type": "input_file",
            "filename": "b.pdf",
            "file_data": "data:application/pdf;base64,JVBERg==",
        },
    ]


def test_an_incomplete_response_finishes_with_length(fake: FakeProviderServer) -> None:
    fake.push({"text": "This got cut", "stop_reason": "length"})

    collected = collect(model(fake), user_request())

    assert collected.finish is not None
    assert (collected.text, collected.finish.reason) == ("This got cut", "length")


def test_a_stream_without_a_terminal_event_is_a_retryable_timeout(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    whole = (FIXTURES / "openai_responses" / "text.sse").read_bytes()
    cut = tmp_path / "cut.sse"
    cut.write_bytes(b"\n\n".join(whole.split(b"\n\n")[:6]) + b"\n\n")
    fake.replay(cut)

    collected = collect(model(fake), user_request())

    assert collected.text == "Olá!"
    error = classify(collected.error, provider="openai").error
    assert (error.kind, error.retryable) == ("timeout", True)
    assert error.message == "OpenAI stream closed unexpectedly before the response completed."


def test_an_http_error_carries_status_and_retry_after(fake: FakeProviderServer) -> None:
    fake.push({"status": 429, "retry_after": 7})

    collected = collect(model(fake), user_request())

    classified = classify(collected.error, provider="openai")
    assert (classified.error.kind, classified.error.status_code) == ("rate_limit", 429)
    assert classified.retry_after == 7


def test_a_missing_key_fails_as_auth_and_the_environment_key_is_never_used(
    fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)

    collected = collect(OpenAIResponsesModel("gpt-5", api_key=""), user_request())

    error = classify(collected.error, provider="openai").error
    assert (error.kind, error.status_code) == ("auth", 401)
    assert fake.requests == []

    async def base_url() -> str:
        return str(OpenAIResponsesModel("gpt-5", api_key=KEY).base_url)

    assert asyncio.run(base_url()) == DEFAULT_BASE_URL


def test_the_key_is_sent_as_a_bearer_token(fake: FakeProviderServer) -> None:
    fake.push({"text": "ok"})

    collect(model(fake), user_request())

    assert fake.requests[-1].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("name", "reasoning"),
    [
        ("gpt-5", True),
        ("gpt-5-mini", True),
        ("o3", True),
        ("o4-mini", True),
        ("gpt-5-chat-latest", False),
        ("gpt-4.1", False),
        ("gpt-4o-mini", False),
        ("openai/gpt-5", True),
    ],
)
def test_reasoning_models_are_recognized(name: str, reasoning: bool) -> None:
    assert is_reasoning_model(name) is reasoning


def test_titles_use_the_cheap_model_unless_the_endpoint_is_custom() -> None:
    config = ChatModelConfig(
        id="c",
        provider="openai",
        model="gpt-5",
        display_name="GPT-5",
        context_limit=400_000,
        created_at="",
        updated_at="",
    )
    default = ResolvedProvider("openai", "OpenAI", True, KEY, "", "env")
    gateway = ResolvedProvider("openai", "OpenAI", True, KEY, "http://gateway/v1", "config")

    assert make_model(config, default, "title").model == TITLE_MODEL
    assert make_model(config, default, "chat").model == "gpt-5"
    assert make_model(config, gateway, "title").model == "gpt-5"
    assert make_model(config, gateway, "chat").base_url == "http://gateway/v1"


def test_a_search_result_lists_the_pages_it_read(fake: FakeProviderServer, tmp_path: Path) -> None:
    response = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
    search = {"id": "ws_1", "type": "web_search_call", "status": "in_progress"}
    action = {
        "type": "search",
        "query": "jupyter",
        "sources": [{"type": "url", "url": "https://jupyter.org/"}],
    }
    done = {**search, "status": "completed", "action": action}
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 12,
    }
    events = [
        ("response.created", {"response": response}),
        ("response.output_item.added", {"output_index": 0, "item": search}),
        ("response.output_item.done", {"output_index": 0, "item": done}),
        (
            "response.completed",
            {"response": {**response, "status": "completed", "output": [done], "usage": usage}},
        ),
    ]
    stream = tmp_path / "search.sse"
    stream.write_text(
        "".join(
            f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': n, **data})}\n\n"
            for n, (name, data) in enumerate(events)
        )
    )
    fake.replay(stream)

    collected = collect(model(fake), user_request())

    (call,) = collected.provider_calls()
    assert call.arguments == {"type": "search", "query": "jupyter"}
    (result,) = collected.results
    assert result.result == {
        "status": "completed",
        "sources": [{"type": "url", "url": "https://jupyter.org/"}],
    }
