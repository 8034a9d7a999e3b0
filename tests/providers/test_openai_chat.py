"""The OpenAI-compatible (Chat Completions) adapter against the fake provider server through the
real SDK: history mapping (assistant tool_calls, one tool message per result), options,
reasoning deltas, tool calls by index, keys, and stream endings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.chatd.errors import classify
from coderchat_ext.models import ChatModelCallConfig, ChatModelConfig
from coderchat_ext.providers.base import ModelRequest, ToolSpec
from coderchat_ext.providers.fake import FakeProviderServer
from coderchat_ext.providers.openai_chat import PLACEHOLDER_KEY, OpenAIChatModel, make_model
from coderchat_ext.providers.registry import ResolvedProvider

from .streams import collect, message, persisted, text, tool_result, user_request

TOOLS = [
    ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {"path": {}}}),
    ToolSpec("execute", "Run a command.", {"type": "object", "properties": {"command": {}}}),
]


def model(fake: FakeProviderServer, key: str = "") -> OpenAIChatModel:
    return OpenAIChatModel("qwen3:8b", api_key=key, base_url=fake.openai_base_url)


def sent(fake: FakeProviderServer) -> dict[str, Any]:
    body = fake.requests[-1].json
    assert isinstance(body, dict)
    assert fake.requests[-1].path == "/v1/chat/completions"
    return body


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_a_tool_turn_replays_calls_and_one_tool_message_per_result(
    fake: FakeProviderServer, field: str
) -> None:
    fake.push(
        {
            "reasoning": "Two tools.",
            "reasoning_field": field,
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
        message("system", text("Be brief.")),
        message("user", text("Read a.txt and list the files.")),
    ]
    assistant, finish = persisted(model(fake), ModelRequest(history, tools=TOOLS))
    assert finish is not None
    assert finish.reason == "tool-calls"
    assert [(p.type, p.text) for p in assistant[:2]] == [
        ("reasoning", "Two tools."),
        ("text", "Checking."),
    ]
    calls = [p for p in assistant if p.type == "tool-call"]
    history += [
        message("assistant", *(p.model_dump() for p in assistant)),
        message("tool", tool_result(calls[0], "hello")),
        message("tool", tool_result(calls[1], "exit status 2", is_error=True)),
        message("system", text("A late system note.")),
        message("user", text("Thanks.")),
    ]

    collected = collect(model(fake), ModelRequest(history, tools=TOOLS))

    assert collected.text == "Done."
    assert sent(fake)["messages"] == [
        {"role": "system", "content": "You are an agent.\n\nBe brief."},
        {"role": "user", "content": "Read a.txt and list the files."},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_read",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a.txt"}'},
                },
                {
                    "id": "call_ls",
                    "type": "function",
                    "function": {"name": "execute", "arguments": '{"command": "ls"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_read", "content": "hello"},
        {"role": "tool", "tool_call_id": "call_ls", "content": "exit status 2"},
        {"role": "system", "content": "A late system note."},
        {"role": "user", "content": "Thanks."},
    ]


def test_provider_executed_parts_stay_out_and_images_are_image_urls(
    fake: FakeProviderServer,
) -> None:
    fake.push({"text": "ok"})
    history = [
        message(
            "user",
            text("Look."),
            {"type": "file", "media_type": "image/png", "name": "a.png", "data": "iVBO"},
        ),
        message(
            "assistant",
            {
                "type": "tool-call",
                "tool_call_id": "ws_1",
                "tool_name": "web_search",
                "args": {"query": "x"},
                "provider_executed": True,
            },
            {
                "type": "tool-result",
                "tool_call_id": "ws_1",
                "tool_name": "web_search",
                "result": {"status": "completed"},
                "provider_executed": True,
            },
            text("Found it."),
        ),
    ]

    collect(model(fake), ModelRequest(history))

    assert sent(fake)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
            ],
        },
        {"role": "assistant", "content": "Found it."},
    ]


def test_call_options_map_to_the_request(fake: FakeProviderServer) -> None:
    fake.push({"text": "ok"}, {"text": "ok"})
    options = ChatModelCallConfig.model_validate(
        {
            "temperature": 0.4,
            "top_p": 0.9,
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            "provider_options": {"openaicompat": {"user": "alice", "reasoning_effort": "low"}},
        }
    )

    collect(model(fake), user_request(tools=TOOLS, options=options, max_output_tokens=700))
    body = sent(fake)
    collect(model(fake), user_request(tools=TOOLS, tool_choice="none"))

    assert {k: body[k] for k in ("max_tokens", "temperature", "top_p", "stream")} == {
        "max_tokens": 700,
        "temperature": 0.4,
        "top_p": 0.9,
        "stream": True,
    }
    assert (body["presence_penalty"], body["frequency_penalty"]) == (0.1, 0.2)
    assert (body["user"], body["reasoning_effort"]) == ("alice", "low")
    assert body["stream_options"] == {"include_usage": True}
    assert body["tools"][1] == {
        "type": "function",
        "function": {
            "name": "execute",
            "description": "Run a command.",
            "parameters": TOOLS[1].input_schema,
        },
    }
    assert "tool_choice" not in body
    assert sent(fake)["tool_choice"] == "none"


def test_usage_comes_from_the_usage_chunk(fake: FakeProviderServer) -> None:
    fake.push(
        {"text": "Hi", "usage": {"input_tokens": 50, "output_tokens": 7, "cache_read_tokens": 20}}
    )

    collected = collect(model(fake), user_request())

    assert collected.finish is not None
    usage = collected.finish.usage
    # The wire's prompt_tokens (70) include the cached ones; ours do not
    # (docs/data-model.md#usage-and-cost).
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (50, 20, 7)
    assert usage.total_tokens == 77


def _sse(tmp_path: Path, chunks: list[dict[str, Any]], *, done: bool = True) -> Path:
    path = tmp_path / "stream.sse"
    envelope = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    lines = [f"data: {json.dumps({**envelope, 'choices': [c]})}\n\n" for c in chunks]
    path.write_text("".join(lines) + ("data: [DONE]\n\n" if done else ""))
    return path


def _call(index: int, call_id: str | None, name: str | None, args: str) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": args}
    if name:
        function["name"] = name
    delta: dict[str, Any] = {"index": index, "function": function}
    if call_id:
        delta["id"] = call_id
    return {"index": 0, "delta": {"tool_calls": [delta]}, "finish_reason": None}


def test_calls_that_all_use_index_zero_are_told_apart_by_their_ids(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    fake.replay(
        _sse(
            tmp_path,
            [
                _call(0, "call_a", "read_file", '{"path": "a"}'),
                _call(0, "call_b", "read_file", '{"path": "b"}'),
                {"index": 0, "delta": {}, "finish_reason": "tool_calls"},
            ],
        )
    )

    collected = collect(model(fake), user_request())

    assert [(c.id, c.arguments) for c in collected.local_calls()] == [
        ("call_a", {"path": "a"}),
        ("call_b", {"path": "b"}),
    ]
    assert all(c.ended for c in collected.local_calls())


def test_a_call_without_an_id_gets_one_and_stop_after_calls_means_tool_calls(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    fake.replay(
        _sse(
            tmp_path,
            [
                _call(0, None, "execute", '{"command":'),
                _call(0, None, None, ' "ls"}'),
                {"index": 0, "delta": {}, "finish_reason": "stop"},
            ],
        )
    )

    collected = collect(model(fake), user_request())

    (call,) = collected.local_calls()
    assert call.id.startswith("call_")
    assert (call.name, call.arguments) == ("execute", {"command": "ls"})
    assert collected.finish is not None
    assert collected.finish.reason == "tool-calls"


def test_a_stream_that_ends_before_a_finish_reason_is_a_retryable_timeout(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    fake.replay(
        _sse(
            tmp_path,
            [{"index": 0, "delta": {"content": "Half"}, "finish_reason": None}],
            done=False,
        )
    )

    collected = collect(model(fake), user_request())

    assert collected.text == "Half"
    error = classify(collected.error, provider="openai-compat").error
    assert (error.kind, error.retryable) == ("timeout", True)


def test_an_error_chunk_mid_stream_is_classified(fake: FakeProviderServer) -> None:
    fake.push(
        {
            "text": "Partial answer",
            "error_midstream": True,
            "error": {"type": "server_error", "message": "The server had an error."},
        }
    )

    collected = collect(model(fake), user_request())

    assert collected.text == "Partial answer"
    assert collected.finish is None
    error = classify(collected.error, provider="openai-compat").error
    assert (error.kind, error.retryable, error.status_code) == ("generic", True, 500)
    assert error.detail == "The server had an error."


def test_no_key_sends_a_placeholder_never_the_environment_key(
    fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    fake.push({"text": "ok"}, {"text": "ok"})

    collect(model(fake), user_request())
    placeholder = fake.requests[-1].headers["authorization"]
    collect(model(fake, key="sk-compat"), user_request())

    assert placeholder == f"Bearer {PLACEHOLDER_KEY}"
    assert fake.requests[-1].headers["authorization"] == "Bearer sk-compat"


def test_titles_use_the_chat_model() -> None:
    config = ChatModelConfig(
        id="c",
        provider="openai-compat",
        model="llama3.2",
        display_name="Llama",
        context_limit=128_000,
        created_at="",
        updated_at="",
    )
    local = ResolvedProvider("openai-compat", "Ollama", True, "", "http://ollama:11434/v1", "env")

    title = make_model(config, local, "title")

    assert (title.model, title.base_url) == ("llama3.2", "http://ollama:11434/v1")
