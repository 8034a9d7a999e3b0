"""The fake provider's script: the queue, rules on the last user message, ``steps`` picked by
tool-result rounds (stateless, so concurrent chats each get their own step), and validation
with clear errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from coderchat_ext.providers.fake import (
    FakeProviderServer,
    ScriptError,
    load_script,
    parse_script,
)
from coderchat_ext.providers.fake.script import conversation_position

WEATHER_STEPS: dict[str, Any] = {
    "rules": [
        {
            "contains": "weather",
            "steps": [
                {
                    "text": "Checking.",
                    "tool_calls": [{"name": "weather", "arguments": {"city": "Rome"}}],
                },
                {"tool_calls": [{"name": "forecast", "arguments": {"days": 2}}]},
                {"text": "Sunny in Rome."},
            ],
        },
        {"match": r"^\s*hello\b", "turn": {"text": "Hi there!"}},
    ],
    "default": {"text": "I only talk about the weather."},
}


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(WEATHER_STEPS) as fake:
        yield fake


def anthropic_client(server: FakeProviderServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.url, api_key="x", max_retries=0)


def openai_client(server: FakeProviderServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="x", max_retries=0)


# --- reading a request's position in the conversation --------------------------------------


def tool_use(call_id: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": call_id, "name": "w", "input": {}}],
    }


def tool_result(call_id: str) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "x"}],
    }


ANTHROPIC_TWO_ROUNDS = {
    "messages": [
        {"role": "user", "content": "old question"},
        {"role": "assistant", "content": "old answer"},
        {"role": "user", "content": [{"type": "text", "text": "What's the weather?"}]},
        tool_use("a"),
        tool_result("a"),
        tool_use("b"),
        tool_result("b"),
    ]
}
RESPONSES_ONE_ROUND_PARALLEL = {
    "input": [
        {"role": "developer", "content": "be nice"},
        {"role": "user", "content": [{"type": "input_text", "text": "What's the weather?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "x"},
        {"type": "function_call_output", "call_id": "c2", "output": "y"},
    ]
}
CHAT_NO_ROUND_YET = {
    "messages": [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]},
        {"role": "tool", "tool_call_id": "c", "content": "x"},
        {"role": "assistant", "content": "done"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's "},
                {"type": "text", "text": "the weather?"},
            ],
        },
    ]
}


@pytest.mark.parametrize(
    ("wire", "body", "expected"),
    [
        ("anthropic", ANTHROPIC_TWO_ROUNDS, ("What's the weather?", 2)),
        ("responses", RESPONSES_ONE_ROUND_PARALLEL, ("What's the weather?", 1)),
        ("chat", CHAT_NO_ROUND_YET, ("What's the weather?", 0)),
        ("responses", {"input": "plain string"}, ("plain string", 0)),
        ("chat", {"messages": []}, ("", 0)),
    ],
)
def test_conversation_position_finds_the_last_user_text_and_tool_rounds(
    wire: Any, body: dict[str, Any], expected: tuple[str, int]
) -> None:
    assert conversation_position(wire, body) == expected


# --- queue, rules, steps, default ----------------------------------------------------------


async def test_queued_turns_come_first_in_order_across_wires(server: FakeProviderServer) -> None:
    server.push({"text": "one"}, {"text": "two"})
    async with anthropic_client(server) as claude, openai_client(server) as gpt:
        first = await gpt.responses.create(model="m", input="hello")
        second = await claude.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hello"}]
        )
        third = await gpt.responses.create(model="m", input="hello")

    assert first.output_text == "one"
    assert second.content[0].text == "two"  # type: ignore[union-attr]
    assert third.output_text == "Hi there!"
    assert server.pending == 0


async def test_rules_match_substrings_and_regexes_case_insensitively(
    server: FakeProviderServer,
) -> None:
    async with openai_client(server) as client:
        answers = [
            (await client.responses.create(model="m", input=text)).output_text
            for text in ("  HELLO you", "say hello", "anything else")
        ]

    fallback = "I only talk about the weather."
    assert answers == ["Hi there!", fallback, fallback]


async def test_steps_follow_a_real_tool_loop_through_the_anthropic_sdk(
    server: FakeProviderServer,
) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "How is the weather?"}]
    answers = []
    async with anthropic_client(server) as client:
        for _ in range(4):
            message = await client.messages.create(model="m", max_tokens=50, messages=messages)  # type: ignore[arg-type]
            answers.append(message)
            calls = [b for b in message.content if b.type == "tool_use"]
            if not calls:
                break
            content = [block.model_dump() for block in message.content]
            messages.append({"role": "assistant", "content": content})
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": c.id, "content": "ok"} for c in calls
                    ],
                }
            )

    assert [m.stop_reason for m in answers] == ["tool_use", "tool_use", "end_turn"]
    assert answers[0].content[1].name == "weather"  # type: ignore[union-attr]
    assert answers[1].content[0].input == {"days": 2}  # type: ignore[union-attr]
    assert answers[2].content[0].text == "Sunny in Rome."  # type: ignore[union-attr]
    # The requests the server recorded carry the growing history.
    assert [len(r.json["messages"]) for r in server.requests] == [1, 3, 5]


async def test_steps_past_the_last_give_the_default(server: FakeProviderServer) -> None:
    body = json.loads(json.dumps(ANTHROPIC_TWO_ROUNDS))
    body["messages"] += [tool_use("c"), tool_result("c")]
    async with anthropic_client(server) as client:
        message = await client.messages.create(model="m", max_tokens=5, **body)

    assert message.content[0].text == "I only talk about the weather."  # type: ignore[union-attr]


async def test_concurrent_chats_each_get_their_own_step(server: FakeProviderServer) -> None:
    async def chat_at(rounds: int) -> str:
        messages: list[dict[str, Any]] = [{"role": "user", "content": "weather please"}]
        for n in range(rounds):
            call = {"id": f"c{n}", "type": "function", "function": {"name": "w", "arguments": "{}"}}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            messages.append({"role": "tool", "tool_call_id": f"c{n}", "content": "ok"})
        async with openai_client(server) as client:
            completion = await client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
        choice = completion.choices[0]
        calls = choice.message.tool_calls or []
        return choice.message.content or calls[0].function.name  # type: ignore[union-attr]

    results = await asyncio.gather(*(chat_at(n % 3) for n in range(12)))

    assert results == ["Checking.", "forecast", "Sunny in Rome."] * 4


@pytest.mark.parametrize("wire", ["anthropic", "responses", "chat"])
async def test_a_tools_rule_applies_only_when_the_request_offers_those_tools(
    server: FakeProviderServer, wire: str
) -> None:
    server.set_script(
        {
            "rules": [{"tools": ["execute"], "turn": {"text": "I can run things."}}],
            "default": {"text": "No tools here."},
        }
    )
    schema = {"type": "object", "properties": {}}

    async def ask(offer: bool) -> str:
        if wire == "anthropic":
            tools = [{"name": "execute", "description": "d", "input_schema": schema}]
            async with anthropic_client(server) as client:
                message = await client.messages.create(
                    model="m",
                    max_tokens=5,
                    messages=[{"role": "user", "content": "hi"}],
                    **({"tools": tools} if offer else {}),  # type: ignore[arg-type]
                )
            return message.content[0].text  # type: ignore[union-attr]
        async with openai_client(server) as client:
            if wire == "responses":
                rtools = [{"type": "function", "name": "execute", "parameters": schema}]
                response = await client.responses.create(
                    model="m",
                    input="hi",
                    **({"tools": rtools} if offer else {}),  # type: ignore[arg-type]
                )
                return response.output_text
            ctools = [{"type": "function", "function": {"name": "execute", "parameters": schema}}]
            completion = await client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "hi"}],
                **({"tools": ctools} if offer else {}),  # type: ignore[arg-type]
            )
            return completion.choices[0].message.content or ""

    assert await ask(True) == "I can run things."
    assert await ask(False) == "No tools here."


async def test_set_script_replaces_rules_and_queue_and_reset_clears_queue_and_requests(
    server: FakeProviderServer,
) -> None:
    server.push({"text": "queued"})
    server.set_script({"turns": [{"text": "new queue"}], "default": {"text": "new default"}})
    async with openai_client(server) as client:
        first = await client.responses.create(model="m", input="hello")
        server.push({"text": "dropped by reset"})
        server.reset()
        second = await client.responses.create(model="m", input="hello")

    assert (first.output_text, second.output_text) == ("new queue", "new default")
    assert len(server.requests) == 1
    assert server.pending == 0


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ({"turns": [{"txt": "typo"}]}, "turns[0].txt: Extra inputs are not permitted"),
        (
            {"turns": [{"tool_calls": [{"arguments": {}}]}]},
            "turns[0].tool_calls[0].name: Field required",
        ),
        (
            {"rules": [{"turn": {"text": "x"}}]},
            "rules[0]: a rule needs contains, match or tools",
        ),
        (
            {"rules": [{"contains": "a", "turn": {}, "steps": [{}]}]},
            "rules[0]: a rule needs exactly one of turn or steps",
        ),
        (
            {"rules": [{"match": "(", "turn": {}}]},
            "rules[0]: match is not a valid regular expression",
        ),
        (
            {"default": {"status": 200}},
            "default.status: Input should be greater than or equal to 400",
        ),
        ({"turns": [{"text": "a", "echo": True}]}, "give either text or echo"),
        ({"turns": [{"status": 500, "drop_after": 1}]}, "status answers before the stream starts"),
        (
            {"turns": [{"chunk_size": 0}]},
            "turns[0].chunk_size: Input should be greater than or equal to 1",
        ),
        (
            {"turns": [{"replay": {"path": "/nonexistent.sse"}}]},
            "cannot read replay file '/nonexistent.sse'",
        ),
        ({"turns": [{"body": {}}]}, "body is the error body of a status"),
    ],
)
def test_invalid_scripts_are_refused_with_the_location_of_each_problem(
    script: dict[str, Any], message: str
) -> None:
    with pytest.raises(ScriptError, match="invalid fake provider script") as caught:
        parse_script(script)
    assert message in str(caught.value)


def test_push_of_an_invalid_turn_queues_nothing(server: FakeProviderServer) -> None:
    with pytest.raises(ScriptError, match=r"invalid fake provider turn: stall"):
        server.push({"text": "fine"}, {"stall": -1})
    assert server.pending == 0


def test_scripted_model_vocabulary_is_accepted() -> None:
    script = parse_script(
        {
            "turns": [
                {
                    "text": "x",
                    "finish_reason": "length",
                    "tool_calls": [{"name": "echo", "args": {"v": 1}}],
                }
            ]
        }
    )
    turn = script.turns[0]
    assert turn.stop_reason == "length"
    assert turn.tool_calls[0].arguments == {"v": 1}
    assert script.default.echo


def test_load_script_reads_json_and_resolves_replay_paths_next_to_it(tmp_path: Path) -> None:
    (tmp_path / "stream.sse").write_bytes(b"data: [DONE]\n\n")
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"turns": [{"replay": {"path": "stream.sse"}}]}))

    script = load_script(path)

    replay = script.turns[0].replay
    assert replay is not None
    assert replay.data == b"data: [DONE]\n\n"
    assert replay.media_type == "text/event-stream; charset=utf-8"


@pytest.mark.parametrize(
    ("content", "message"), [("{", "is not valid JSON"), ("[]", "must hold a JSON object")]
)
def test_load_script_refuses_files_that_are_not_a_json_object(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "script.json"
    path.write_text(content)
    with pytest.raises(ScriptError, match=message):
        load_script(path)
