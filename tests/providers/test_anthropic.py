"""The Anthropic adapter against the fake provider server through the real SDK: history mapping
(thinking signatures sent back, tool_use/tool_result pairing, server tools kept inline, prompt
caching markers), call options, keys and clients, and stream endings."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.chatd.errors import classify
from coderchat_ext.models import ChatModelCallConfig, ChatModelConfig
from coderchat_ext.providers.anthropic import (
    DEFAULT_BASE_URL,
    TITLE_MODEL,
    AnthropicModel,
    make_model,
)
from coderchat_ext.providers.base import ModelRequest, ToolSpec
from coderchat_ext.providers.fake import FakeProviderServer, thinking_signature
from coderchat_ext.providers.registry import ResolvedProvider

from .streams import FIXTURES, collect, message, persisted, text, tool_result, user_request

KEY = "sk-ant-test-key"
TOOLS = [
    ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {"path": {}}}),
    ToolSpec("execute", "Run a command.", {"type": "object", "properties": {"command": {}}}),
]
MARK = {"type": "ephemeral"}


def model(fake: FakeProviderServer, name: str = "claude-sonnet-4-6") -> AnthropicModel:
    return AnthropicModel(name, api_key=KEY, base_url=fake.url)


def sent(fake: FakeProviderServer) -> dict[str, Any]:
    body = fake.requests[-1].json
    assert isinstance(body, dict)
    return body


def test_a_tool_turn_sends_back_signed_thinking_and_pairs_every_result(
    fake: FakeProviderServer,
) -> None:
    reasoning = "The user wants a.txt read and listed; two tools at once."
    fake.push(
        {
            "reasoning": reasoning,
            "text": "Reading it.",
            "tool_calls": [
                {"name": "read_file", "arguments": {"path": "a.txt"}, "id": "toolu_1"},
                {"name": "execute", "arguments": {"command": "ls"}, "id": "toolu_2"},
            ],
        },
        {"text": "Done."},
    )
    history = [
        message("system", text("You are an agent.")),
        message("system", text("<user-instructions>\nBe brief.\n</user-instructions>")),
        message("user", text("Read a.txt and list the files.")),
    ]
    assistant, finish = persisted(model(fake), ModelRequest(history, tools=TOOLS))
    assert finish is not None
    assert finish.reason == "tool-calls"
    calls = [p for p in assistant if p.type == "tool-call"]
    history += [
        message("assistant", *(p.model_dump() for p in assistant)),
        message("tool", tool_result(calls[0], "hello")),
        message("tool", tool_result(calls[1], "exit status 2", is_error=True)),
    ]

    collected = collect(model(fake), ModelRequest(history, tools=TOOLS))

    assert collected.text == "Done."
    body = sent(fake)
    assert body["system"] == [
        {"type": "text", "text": "You are an agent."},
        {
            "type": "text",
            "text": "<user-instructions>\nBe brief.\n</user-instructions>",
            "cache_control": MARK,
        },
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Read a.txt and list the files."}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "thinking",
                    "thinking": reasoning,
                    "signature": thinking_signature(reasoning),
                },
                {"type": "text", "text": "Reading it."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "read_file",
                    "input": {"path": "a.txt"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "execute",
                    "input": {"command": "ls"},
                    "cache_control": MARK,
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "hello"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "exit status 2",
                    "is_error": True,
                    "cache_control": MARK,
                },
            ],
        },
    ]
    assert [t["name"] for t in body["tools"]] == ["read_file", "execute"]
    assert body["tools"][0]["input_schema"] == TOOLS[0].input_schema


def test_cache_markers_go_on_the_last_leading_system_block_and_the_final_two_messages(
    fake: FakeProviderServer,
) -> None:
    fake.push({"text": "ok"})
    history = [
        message("system", text("one")),
        message("system", text("two")),
        message("user", text("first")),
        message("assistant", text("answer")),
        message("user", text("second")),
    ]

    collect(model(fake), ModelRequest(history))

    body = sent(fake)
    assert [b.get("cache_control") for b in body["system"]] == [None, MARK]
    assert [m["content"][-1].get("cache_control") for m in body["messages"]] == [
        None,
        MARK,
        MARK,
    ]


def test_server_tool_history_stays_inline_and_unpaired_parts_are_sanitized(
    fake: FakeProviderServer,
) -> None:
    fake.replay(FIXTURES / "anthropic" / "web_search.sse")
    question = [message("user", text("How many people live in Tokyo?"))]
    assistant, _ = persisted(model(fake), ModelRequest(question))
    search_call = next(p for p in assistant if p.type == "tool-call")
    search_result = next(p for p in assistant if p.type == "tool-result")
    raw_block = search_result.provider_metadata["anthropic"]["block"]
    # Clients see the search results without Anthropic's encrypted page content.
    assert "encrypted_content" not in str(search_result.strip_internal().dump())
    assert "encrypted_content" in str(raw_block)
    interrupted = {
        "type": "tool-call",
        "tool_call_id": "srvtoolu_interrupted",
        "tool_name": "web_search",
        "args": {"query": "cut off"},
        "provider_executed": True,
    }
    orphan = {
        "type": "tool-result",
        "tool_call_id": "srvtoolu_gone",
        "tool_name": "web_search",
        "result": "orphaned search result",
        "provider_executed": True,
    }
    history = [
        *question,
        message("assistant", *(p.model_dump() for p in assistant), interrupted, orphan),
        message("user", text("And Osaka?")),
    ]
    fake.push({"text": "About 2.7 million."})

    collect(model(fake), ModelRequest(history))

    content = sent(fake)["messages"][1]["content"]
    assert content[0] == {
        "type": "server_tool_use",
        "id": search_call.tool_call_id,
        "name": "web_search",
        "input": {"query": "Tokyo population 2026 current"},
    }
    assert content[1] == raw_block
    assert [b["type"] for b in content[2:]] == ["text", "text"]
    assert content[2]["text"].startswith("Based on the search results")
    assert content[3]["text"] == "orphaned search result"
    assert all(b.get("id") != "srvtoolu_interrupted" for b in content)


def test_redacted_thinking_is_kept_and_send_reasoning_false_leaves_thinking_out(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    stream = tmp_path / "redacted.sse"
    events = [
        (
            "message_start",
            {
                "message": {
                    "id": "msg_r",
                    "type": "message",
                    "role": "assistant",
                    "model": "m",
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": 5, "output_tokens": 1},
                }
            },
        ),
        (
            "content_block_start",
            {"index": 0, "content_block": {"type": "redacted_thinking", "data": "opaque-bytes"}},
        ),
        ("content_block_stop", {"index": 0}),
        ("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "text_delta", "text": "Hi."}}),
        ("content_block_stop", {"index": 1}),
        ("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
        ("message_stop", {}),
    ]
    stream.write_text(
        "".join(
            f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"
            for name, data in events
        )
    )
    fake.replay(stream)
    assistant, _ = persisted(model(fake), user_request())
    assert [p.type for p in assistant] == ["reasoning", "text"]
    history = [
        message("user", text("hi")),
        message("assistant", *(p.model_dump() for p in assistant)),
    ]
    history.append(message("user", text("again")))
    fake.push({"text": "ok"}, {"text": "ok"})

    collect(model(fake), ModelRequest(history))
    with_reasoning = sent(fake)["messages"][1]["content"]
    options = ChatModelCallConfig(provider_options={"anthropic": {"send_reasoning": False}})
    collect(model(fake), ModelRequest(history, options=options))
    without_reasoning = sent(fake)["messages"][1]["content"]

    assert with_reasoning[0] == {"type": "redacted_thinking", "data": "opaque-bytes"}
    assert [b["type"] for b in without_reasoning] == ["text"]


def test_user_files_references_context_files_and_skills_render_for_the_model(
    fake: FakeProviderServer,
) -> None:
    png = base64.b64encode(b"\x89PNG fake image").decode()
    notes = base64.b64encode(b"line one\nline two").decode()
    fake.push({"text": "ok"})
    user = message(
        "user",
        text("Look at these."),
        {"type": "file", "media_type": "image/png", "name": "shot.png", "data": png},
        {"type": "file", "media_type": "text/plain", "name": "notes.txt", "data": notes},
        {"type": "file", "media_type": "application/zip", "name": "a.zip", "data": "UEs="},
        {
            "type": "file-reference",
            "file_name": "src/app.py",
            "start_line": 3,
            "end_line": 5,
            "content": "def main():\n    pass",
        },
        {
            "type": "context-file",
            "context_file_path": "/home/me/AGENTS.md",
            "context_file_content": "Use pytest.",
        },
        {"type": "context-file", "context_file_agent_id": "agent-1"},
        {"type": "skill", "skill_name": "release", "skill_description": "Cut a release."},
        {"type": "skill", "skill_name": "triage", "skill_description": "Sort issues."},
    )

    collect(model(fake), ModelRequest([user]))

    content = sent(fake)["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Look at these."}
    assert content[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": png},
    }
    assert content[2]["text"] == '<file name="notes.txt">\nline one\nline two\n</file>'
    assert "a.zip" in content[3]["text"]
    assert "cannot be shown" in content[3]["text"]
    assert content[4]["text"] == "src/app.py:3-5\n```\ndef main():\n    pass\n```"
    assert content[5]["text"] == (
        '<context-file path="/home/me/AGENTS.md">\nUse pytest.\n</context-file>'
    )
    skills = content[6]["text"]
    assert skills.startswith("<available-skills>\n")
    assert "read_skill" in skills
    assert "- release: Cut a release.\n- triage: Sort issues.\n</available-skills>" in skills
    assert len(content) == 7


def test_media_tool_results_are_sent_as_images(fake: FakeProviderServer) -> None:
    call = {"type": "tool-call", "tool_call_id": "toolu_s", "tool_name": "screenshot", "args": {}}
    media = {"media_type": "image/png", "data": "aGVsbG8="}
    history = [
        message("user", text("Screenshot please.")),
        message("assistant", call),
        message(
            "tool",
            {**tool_result(message("assistant", call).content[0], media), "is_media": True},
        ),
    ]
    fake.push({"text": "I see it."})

    collect(model(fake), ModelRequest(history))

    result = sent(fake)["messages"][2]["content"][0]
    assert result["content"] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "aGVsbG8="},
        }
    ]


@pytest.mark.parametrize(
    ("call_options", "expected", "absent"),
    [
        (
            # API version 2026-10-21 rejects every sampling option, even temperature 1.0.
            {"max_output_tokens": 1000, "temperature": 1.0, "top_p": 0.9, "top_k": 20},
            {"max_tokens": 1000},
            ["temperature", "top_p", "top_k", "thinking", "output_config", "tool_choice"],
        ),
        (
            {
                "max_output_tokens": 1000,
                "temperature": 0.3,
                "provider_options": {
                    "anthropic": {"thinking": {"budget_tokens": 2048}, "effort": "high"}
                },
            },
            {
                "max_tokens": 3048,
                "thinking": {"type": "enabled", "budget_tokens": 2048},
                "output_config": {"effort": "high"},
            },
            ["temperature", "top_k"],
        ),
        (
            {"provider_options": {"anthropic": {"disable_parallel_tool_use": True}}},
            {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
            [],
        ),
    ],
    ids=["no-sampling-options", "thinking-budget-and-effort", "no-parallel-tools"],
)
def test_call_options_map_to_the_request(
    fake: FakeProviderServer,
    call_options: dict[str, Any],
    expected: dict[str, Any],
    absent: list[str],
) -> None:
    fake.push({"text": "ok"})
    options = ChatModelCallConfig.model_validate(call_options)
    request = user_request(
        tools=TOOLS, options=options, max_output_tokens=options.max_output_tokens
    )

    collect(model(fake), request)

    body = sent(fake)
    assert {k: body.get(k) for k in expected} == expected
    assert [k for k in absent if k in body] == []


@pytest.mark.parametrize(
    ("domains", "expected"),
    [
        ({}, {}),
        ({"allowed_domains": ["python.org"]}, {"allowed_domains": ["python.org"]}),
        ({"blocked_domains": ["spam.example"]}, {"blocked_domains": ["spam.example"]}),
    ],
    ids=["any", "allowed", "blocked"],
)
def test_web_search_is_offered_with_its_domains(
    fake: FakeProviderServer, domains: dict[str, Any], expected: dict[str, Any]
) -> None:
    fake.push({"text": "ok"})
    options = ChatModelCallConfig(
        provider_options={"anthropic": {"web_search_enabled": True, **domains}}
    )

    collect(model(fake), user_request(tools=TOOLS[:1], options=options))

    assert sent(fake)["tools"][1] == {
        "type": "web_search_20250305",
        "name": "web_search",
        **expected,
    }


def test_tool_choice_none_forbids_tools_and_web_search(fake: FakeProviderServer) -> None:
    fake.push({"text": "ok"})
    options = ChatModelCallConfig(provider_options={"anthropic": {"web_search_enabled": True}})

    collect(model(fake), user_request(tools=TOOLS, options=options, tool_choice="none"))

    body = sent(fake)
    assert body["tool_choice"] == {"type": "none"}
    assert [t["name"] for t in body["tools"]] == ["read_file", "execute"]


def test_invalid_provider_options_fail_as_a_config_error_without_a_request(
    fake: FakeProviderServer,
) -> None:
    options = ChatModelCallConfig(provider_options={"anthropic": {"effort": "extreme"}})

    collected = collect(model(fake), user_request(options=options))

    error = classify(collected.error, provider="anthropic").error
    assert (error.kind, error.retryable) == ("config", False)
    assert "effort" in (error.detail or "")
    assert fake.requests == []


def test_the_key_is_sent_and_a_missing_key_fails_as_auth_before_any_request(
    fake: FakeProviderServer,
) -> None:
    fake.push({"text": "ok"})
    collect(model(fake), user_request())
    # Newer SDK releases send it as a bearer token, older ones as x-api-key.
    headers = fake.requests[-1].headers
    assert headers.get("authorization") == f"Bearer {KEY}" or headers.get("x-api-key") == KEY

    collected = collect(AnthropicModel("m", api_key="", base_url=fake.url), user_request())

    error = classify(collected.error, provider="anthropic").error
    assert (error.kind, error.retryable, error.status_code) == ("auth", False, 401)
    assert error.detail == "No API key is configured for the Anthropic provider."
    assert len(fake.requests) == 1


def test_no_base_url_means_the_anthropic_api_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://attacker.invalid")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")

    async def client_settings() -> tuple[str, str | None, int]:
        client = AnthropicModel("m", api_key=KEY)._client()
        return str(client.base_url), client.api_key, client.max_retries

    base_url, api_key, max_retries = asyncio.run(client_settings())
    assert base_url.rstrip("/") == DEFAULT_BASE_URL
    assert (api_key, max_retries) == (KEY, 0)


def test_one_client_per_loop_base_url_and_key() -> None:
    async def clients() -> list[object]:
        return [
            AnthropicModel("a", api_key=KEY, base_url="http://one")._client(),
            AnthropicModel("b", api_key=KEY, base_url="http://one")._client(),
            AnthropicModel("a", api_key="other", base_url="http://one")._client(),
            AnthropicModel("a", api_key=KEY, base_url="http://two")._client(),
        ]

    first, same, other_key, other_url = asyncio.run(clients())
    assert first is same
    assert len({id(first), id(other_key), id(other_url)}) == 3


def test_a_stream_that_ends_before_message_stop_is_a_retryable_timeout(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    whole = (FIXTURES / "anthropic" / "text.sse").read_bytes()
    cut = tmp_path / "cut.sse"
    cut.write_bytes(b"\n\n".join(whole.split(b"\n\n")[:5]) + b"\n\n")
    fake.replay(cut)

    collected = collect(model(fake), user_request())

    assert collected.text
    assert collected.finish is None
    error = classify(collected.error, provider="anthropic").error
    assert (error.kind, error.retryable) == ("timeout", True)
    assert error.message == "Anthropic stream closed unexpectedly before the response completed."


def test_a_dropped_connection_is_a_retryable_timeout(fake: FakeProviderServer) -> None:
    fake.push({"text": "This answer is cut off half way.", "chunk_size": 4, "drop_after": 2})

    collected = collect(model(fake), user_request())

    assert collected.text == "This ans"
    error = classify(collected.error, provider="anthropic").error
    assert (error.kind, error.retryable) == ("timeout", True)


def test_titles_use_the_cheap_model_unless_the_endpoint_is_custom() -> None:
    config = ChatModelConfig(
        id="c",
        provider="anthropic",
        model="claude-opus-4-8",
        display_name="Opus",
        context_limit=200_000,
        created_at="",
        updated_at="",
    )
    default = ResolvedProvider("anthropic", "Anthropic", True, KEY, "", "env")
    proxy = ResolvedProvider("anthropic", "Anthropic", True, KEY, "http://proxy", "config")

    assert make_model(config, default, "chat").model == "claude-opus-4-8"
    assert make_model(config, default, "title").model == TITLE_MODEL
    assert make_model(config, proxy, "title").model == "claude-opus-4-8"
    assert make_model(config, proxy, "chat").base_url == "http://proxy"
    assert KEY not in repr(make_model(config, default, "chat"))
