"""The fake provider server through the real SDKs: each wire (Anthropic Messages, OpenAI
Responses, Chat Completions), streaming and not, carries text, reasoning (with signatures),
tool calls with arguments, usage and stop reasons the way the SDKs parse them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from coderchat_ext.providers.fake import (
    FakeProviderServer,
    encrypted_reasoning,
    thinking_signature,
)

TURN: dict[str, Any] = {
    "reasoning": "The user wants a sum. I will call add.",
    "text": "Let me add those numbers for you.",
    "tool_calls": [
        {"name": "add", "arguments": {"a": 2, "b": 40}, "id": "call_add"},
        {"name": "lookup", "arguments": {"query": "meaning of life", "limit": 3}},
    ],
    "usage": {
        "input_tokens": 120,
        "output_tokens": 45,
        "cache_creation_tokens": 30,
        "cache_read_tokens": 400,
        "reasoning_tokens": 12,
    },
    "chunk_size": 5,
}
USER = [{"role": "user", "content": "What is 2 + 40?"}]


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as fake:
        yield fake


def anthropic_client(server: FakeProviderServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)


def openai_client(server: FakeProviderServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)


# --- Anthropic Messages --------------------------------------------------------------------


async def test_anthropic_stream_carries_thinking_text_tool_calls_usage_and_stop_reason(
    server: FakeProviderServer,
) -> None:
    server.push(TURN)
    async with (
        anthropic_client(server) as client,
        client.messages.stream(model="claude-test", max_tokens=1000, messages=USER) as stream,
    ):
        events = [event async for event in stream]
        message = await stream.get_final_message()

    thinking, text, add, lookup = message.content
    assert thinking.type == "thinking"
    assert thinking.thinking == TURN["reasoning"]
    assert thinking.signature == thinking_signature(TURN["reasoning"])
    assert text.type == "text"
    assert text.text == TURN["text"]
    assert (add.type, add.id, add.name) == ("tool_use", "call_add", "add")
    assert add.input == {"a": 2, "b": 40}
    assert lookup.type == "tool_use"
    assert lookup.id.startswith("toolu_")
    assert (lookup.name, lookup.input) == ("lookup", {"query": "meaning of life", "limit": 3})
    assert message.stop_reason == "tool_use"
    assert message.model == "claude-test"
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (120, 45)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (30, 400)
    # Streamed in pieces: several text and thinking deltas, arguments split over several chunks.
    assert sum(e.type == "text" for e in events) == 7
    assert sum(e.type == "thinking" for e in events) == 8
    assert sum(e.type == "input_json" and e.partial_json != "" for e in events) >= 6


async def test_anthropic_stream_sends_one_signature_per_thinking_block(
    server: FakeProviderServer,
) -> None:
    server.push({"reasoning": ["First thought.", "Second thought."], "signature": "c2lnbmVk"})
    async with (
        anthropic_client(server) as client,
        client.messages.stream(model="m", max_tokens=10, messages=USER) as stream,
    ):
        message = await stream.get_final_message()

    assert [(b.type, b.thinking, b.signature) for b in message.content] == [  # type: ignore[union-attr]
        ("thinking", "First thought.", "c2lnbmVk"),
        ("thinking", "Second thought.", "c2lnbmVk"),
    ]
    assert message.stop_reason == "end_turn"


async def test_anthropic_non_streaming_message_has_the_same_content(
    server: FakeProviderServer,
) -> None:
    server.push(TURN)
    async with anthropic_client(server) as client:
        message = await client.messages.create(model="claude-test", max_tokens=10, messages=USER)

    assert [block.type for block in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[2].input == {"a": 2, "b": 40}  # type: ignore[union-attr]
    assert message.stop_reason == "tool_use"
    assert message.usage.cache_read_input_tokens == 400


@pytest.mark.parametrize(
    ("stop", "wire_value"),
    [("length", "max_tokens"), ("content-filter", "refusal"), ("pause_turn", "pause_turn")],
)
async def test_anthropic_stop_reason_maps_neutral_names_and_passes_others(
    server: FakeProviderServer, stop: str, wire_value: str
) -> None:
    server.push({"text": "cut", "stop_reason": stop})
    async with (
        anthropic_client(server) as client,
        client.messages.stream(model="m", max_tokens=10, messages=USER) as stream,
    ):
        message = await stream.get_final_message()

    assert message.stop_reason == wire_value


# --- OpenAI Responses ----------------------------------------------------------------------


async def test_responses_stream_carries_reasoning_summary_text_function_calls_and_usage(
    server: FakeProviderServer,
) -> None:
    server.push(TURN)
    async with (
        openai_client(server) as client,
        client.responses.stream(model="gpt-test", input="What is 2 + 40?") as stream,
    ):
        events = [event async for event in stream]
        response = await stream.get_final_response()

    reasoning, message, add, lookup = response.output
    assert reasoning.type == "reasoning"
    assert [s.text for s in reasoning.summary] == [TURN["reasoning"]]
    assert reasoning.encrypted_content is None
    assert message.type == "message"
    assert response.output_text == TURN["text"]
    assert add.type == "function_call"
    assert lookup.type == "function_call"
    assert (add.call_id, add.name) == ("call_add", "add")
    assert json.loads(add.arguments) == {"a": 2, "b": 40}
    assert lookup.call_id.startswith("call_")
    assert add.id != lookup.id
    assert json.loads(lookup.arguments) == {"query": "meaning of life", "limit": 3}
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.model == "gpt-test"
    usage = response.usage
    assert usage is not None
    # OpenAI counts cached tokens inside input_tokens.
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens) == (520, 400)
    assert (usage.output_tokens, usage.output_tokens_details.reasoning_tokens) == (45, 12)
    assert usage.total_tokens == 565
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 7
    assert kinds.count("response.reasoning_summary_text.delta") == 8
    assert kinds.count("response.function_call_arguments.delta") >= 6
    assert [e.sequence_number for e in events] == list(range(len(events)))  # type: ignore[union-attr]


async def test_responses_reasoning_is_encrypted_when_the_request_includes_it(
    server: FakeProviderServer,
) -> None:
    server.push({"reasoning": ["Part one.", "Part two."], "text": "ok"})
    async with (
        openai_client(server) as client,
        client.responses.stream(
            model="gpt-test", input="hi", include=["reasoning.encrypted_content"]
        ) as stream,
    ):
        response = await stream.get_final_response()

    reasoning = response.output[0]
    assert reasoning.type == "reasoning"
    assert [s.text for s in reasoning.summary] == ["Part one.", "Part two."]
    assert reasoning.encrypted_content == encrypted_reasoning("Part one.\n\nPart two.")


async def test_responses_length_stop_ends_with_response_incomplete(
    server: FakeProviderServer,
) -> None:
    server.push({"text": "cut short", "stop_reason": "length"})
    async with openai_client(server) as client:
        stream = await client.responses.create(model="gpt-test", input="hi", stream=True)
        events = [event async for event in stream]

    final = events[-1]
    assert final.type == "response.incomplete"
    assert final.response.status == "incomplete"
    assert final.response.incomplete_details is not None
    assert final.response.incomplete_details.reason == "max_output_tokens"


async def test_responses_non_streaming_response_has_the_same_output(
    server: FakeProviderServer,
) -> None:
    server.push(TURN)
    async with openai_client(server) as client:
        response = await client.responses.create(model="gpt-test", input="hi")

    assert [item.type for item in response.output] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    assert response.output_text == TURN["text"]
    assert response.usage is not None
    assert response.usage.output_tokens == 45


# --- Chat Completions ----------------------------------------------------------------------


async def collect_chat(stream: Any) -> dict[str, Any]:
    """Accumulate a chat stream by tool-call index, as an adapter does."""
    result: dict[str, Any] = {
        "text": "",
        "reasoning": "",
        "calls": {},
        "finish": None,
        "usage": None,
        "chunks": 0,
    }
    async for chunk in stream:
        result["chunks"] += 1
        if chunk.usage is not None:
            result["usage"] = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            result["text"] += delta.content or ""
            extra = delta.model_extra or {}
            result["reasoning"] += extra.get("reasoning_content") or extra.get("reasoning") or ""
            for call in delta.tool_calls or []:
                empty = {"id": None, "name": None, "args": []}
                entry = result["calls"].setdefault(call.index, empty)
                if call.id:
                    entry["id"] = call.id
                if call.function and call.function.name:
                    entry["name"] = call.function.name
                if call.function and call.function.arguments:
                    entry["args"].append(call.function.arguments)
            if choice.finish_reason:
                result["finish"] = choice.finish_reason
    return result


async def test_chat_stream_carries_reasoning_content_text_tool_call_deltas_and_usage(
    server: FakeProviderServer,
) -> None:
    server.push(TURN)
    async with openai_client(server) as client:
        stream = await client.chat.completions.create(
            model="local-model",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        result = await collect_chat(stream)

    assert result["text"] == TURN["text"]
    assert result["reasoning"] == TURN["reasoning"]
    add, lookup = result["calls"][0], result["calls"][1]
    assert (add["id"], add["name"]) == ("call_add", "add")
    assert json.loads("".join(add["args"])) == {"a": 2, "b": 40}
    assert len(add["args"]) > 1
    assert lookup["id"].startswith("call_")
    assert json.loads("".join(lookup["args"])) == {"query": "meaning of life", "limit": 3}
    assert result["finish"] == "tool_calls"
    usage = result["usage"]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (520, 45, 565)
    assert usage.prompt_tokens_details.cached_tokens == 400
    assert usage.completion_tokens_details.reasoning_tokens == 12


async def test_chat_stream_sends_usage_only_when_asked(server: FakeProviderServer) -> None:
    server.push({"text": "hello"})
    async with openai_client(server) as client:
        stream = await client.chat.completions.create(
            model="m",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
        )
        result = await collect_chat(stream)

    assert result["text"] == "hello"
    assert result["usage"] is None
    assert result["finish"] == "stop"


async def test_chat_stream_ends_with_done_sentinel(server: FakeProviderServer) -> None:
    server.push({"text": "hi there", "reasoning": "hmm", "reasoning_field": "reasoning"})
    body = {"model": "m", "messages": USER, "stream": True}
    async with httpx.AsyncClient() as client:
        response = await client.post(server.openai_base_url + "/chat/completions", json=body)

    events = response.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("reasoning", "") for c in chunks) == "hmm"
    assert all("reasoning_content" not in c["choices"][0]["delta"] for c in chunks)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"


async def test_chat_non_streaming_completion_has_the_same_content(
    server: FakeProviderServer,
) -> None:
    server.push(TURN)
    async with openai_client(server) as client:
        completion = await client.chat.completions.create(
            model="m",
            messages=USER,  # type: ignore[arg-type]
        )

    choice = completion.choices[0]
    assert choice.message.content == TURN["text"]
    assert (choice.message.model_extra or {})["reasoning_content"] == TURN["reasoning"]
    calls = choice.message.tool_calls or []
    assert (calls[0].id, calls[0].function.name) == ("call_add", "add")  # type: ignore[union-attr]
    assert choice.finish_reason == "tool_calls"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 520


# --- the default turn, models, recorded requests -------------------------------------------


async def test_default_turn_echoes_the_last_user_message_on_every_wire(
    server: FakeProviderServer,
) -> None:
    async with anthropic_client(server) as claude, openai_client(server) as gpt:
        message = await claude.messages.create(
            model="m",
            max_tokens=10,
            messages=[
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "say this back"}]},
            ],
        )
        response = await gpt.responses.create(
            model="m",
            input=[{"role": "user", "content": [{"type": "input_text", "text": "and this"}]}],
        )
        completion = await gpt.chat.completions.create(
            model="m",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "this too"},
            ],
        )

    assert message.content[0].text == "say this back"  # type: ignore[union-attr]
    assert response.output_text == "and this"
    assert completion.choices[0].message.content == "this too"


async def test_usage_is_estimated_when_the_turn_gives_none(server: FakeProviderServer) -> None:
    server.push({"text": "x" * 40})
    async with anthropic_client(server) as client:
        message = await client.messages.create(model="m", max_tokens=10, messages=USER)

    assert message.usage.output_tokens == 10
    assert message.usage.input_tokens > 0


async def test_models_are_listed_in_each_sdks_shape(server: FakeProviderServer) -> None:
    server.set_script({"models": ["alpha", "beta"]})
    async with anthropic_client(server) as claude, openai_client(server) as gpt:
        claude_models = [m.id async for m in claude.models.list()]
        gpt_models = [m.id async for m in gpt.models.list()]

    assert claude_models == ["alpha", "beta"]
    assert gpt_models == ["alpha", "beta"]


async def test_requests_record_what_each_sdk_sent(server: FakeProviderServer) -> None:
    tools = [{"name": "add", "description": "add", "input_schema": {"type": "object"}}]
    async with anthropic_client(server) as claude, openai_client(server) as gpt:
        await claude.messages.create(model="claude-x", max_tokens=7, messages=USER, tools=tools)  # type: ignore[arg-type]
        await gpt.responses.create(model="gpt-x", input="hi", store=False)

    first, second = server.requests
    assert (first.method, first.path, first.wire) == ("POST", "/v1/messages", "anthropic")
    credential = first.headers.get("x-api-key") or first.headers["authorization"]
    assert credential.endswith("sk-ant-test")
    assert "anthropic-version" in first.headers
    assert first.json == {"model": "claude-x", "max_tokens": 7, "messages": USER, "tools": tools}
    assert json.loads(first.body) == first.json
    assert (second.path, second.wire) == ("/v1/responses", "responses")
    assert second.headers["authorization"] == "Bearer sk-test"
    assert second.json == {"model": "gpt-x", "input": "hi", "store": False}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/messages", {"model": "m", "messages": USER}, "max_tokens: Field required"),
        ("/v1/chat/completions", {"messages": USER}, "Missing required parameter: 'model'."),
        ("/v1/responses", {"input": "hi"}, "Missing required parameter: 'model'."),
    ],
)
async def test_requests_missing_a_required_field_get_the_wires_400(
    server: FakeProviderServer, path: str, body: dict[str, Any], message: str
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(server.url + path, json=body)

    assert response.status_code == 400
    assert response.json()["error"]["message"] == message
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert len(server.requests) == 1


async def test_a_body_that_is_not_json_gets_a_400(server: FakeProviderServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(server.url + "/v1/messages", content=b"{not json")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert server.requests[0].json is None
    assert server.requests[0].body == b"{not json"
