"""The step loop through the real server: steps, parallel tools, tool errors, the exclusive
policy, max steps, provider-executed results, prompt order, retry and errors (docs/loop.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from coderchat_ext.tools.base import Tool, ToolArgs, ToolContext, ToolResult


class BarrierTool(Tool):
    """Completes only when ``parties`` calls run at the same time (proves concurrency)."""

    name = "barrier"
    description = "Wait for the other calls of this batch."
    Args = ToolArgs

    def __init__(self, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)
        self.order: list[str] = []

    async def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        await asyncio.wait_for(self.barrier.wait(), 5)
        self.order.append(ctx.tool_call_id)
        return ToolResult({"released": ctx.tool_call_id})


class HiddenTool(Tool):
    name = "hidden"
    description = "Never active."
    Args = ToolArgs

    def is_active(self, chat: Any) -> bool:
        return False

    async def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        return ToolResult("should not run")


def calls(*specs: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {"tool_calls": [{"id": i, "name": n, "args": a} for i, n, a in specs]}


async def run_chat(api: Any, text: str = "go", **body: Any) -> tuple[dict[str, Any], list[Any]]:
    chat = await api.ok("POST", "chats", {"content": [{"type": "text", "text": text}], **body})
    done = await api.wait_status(chat["id"], "waiting", "error", "requires_action")
    return done, await api.messages(chat["id"])


async def test_multi_step_turn_runs_parallel_tools_and_persists_results_in_call_order(
    api: Any, app: Any, scripted: Any
) -> None:
    barrier = BarrierTool(3)
    app.services.tools.register(barrier)
    scripted.push(
        calls(("c1", "barrier", {}), ("c2", "barrier", {}), ("c3", "barrier", {})),
        calls(("c4", "echo", {"text": "second step"})),
        {"text": "all done"},
    )
    chat, messages = await run_chat(api)
    assert chat["status"] == "waiting"
    roles = [m["role"] for m in messages]
    assert roles == ["user", "assistant", "tool", "tool", "tool", "assistant", "tool", "assistant"]
    results = [m["content"][0] for m in messages if m["role"] == "tool"]
    assert [r["tool_call_id"] for r in results] == ["c1", "c2", "c3", "c4"]
    assert results[3]["result"] == {"text": "second step"}
    assert all(not r.get("is_error") for r in results)
    calls_made = [p for p in messages[1]["content"] if p["type"] == "tool-call"]
    assert [c["tool_call_id"] for c in calls_made] == ["c1", "c2", "c3"]
    assert all(r["created_at"] >= calls_made[0]["created_at"] for r in results[:3])
    assert messages[-1]["content"] == [{"type": "text", "text": "all done"}]
    # The second model call saw the first step's calls and results.
    second = scripted.requests[1].messages
    assert [m.role for m in second[-4:]] == ["assistant", "tool", "tool", "tool"]


async def test_tool_failures_become_error_results_and_the_turn_goes_on(
    api: Any, app: Any, scripted: Any
) -> None:
    app.services.tools.register(HiddenTool())
    scripted.push(
        calls(
            ("a", "nope", {}),
            ("b", "hidden", {}),
            ("c", "fail", {"message": "kaboom"}),
            ("d", "echo", {"wrong": 1}),
        ),
        {"text": "recovered"},
    )
    chat, messages = await run_chat(api)
    assert chat["status"] == "waiting"
    results = {
        m["content"][0]["tool_call_id"]: m["content"][0] for m in messages if m["role"] == "tool"
    }
    assert results["a"]["result"] == "Tool not found: nope"
    assert results["b"]["result"] == "Tool not active in this turn: hidden"
    assert results["c"]["result"] == "tool failed: kaboom"
    assert results["d"]["result"].startswith("invalid parameters: ")
    assert all(r["is_error"] for r in results.values())
    assert messages[-1]["content"][0]["text"] == "recovered"


async def test_exclusive_tool_in_a_batch_blocks_every_call(api: Any, scripted: Any) -> None:
    scripted.push(
        calls(("x", "solo", {"question": "?"}), ("y", "echo", {"text": "hi"})),
        calls(("z", "solo", {"question": "alone"})),
        {"text": "ok"},
    )
    _, messages = await run_chat(api)
    results = [m["content"][0] for m in messages if m["role"] == "tool"]
    assert results[0]["result"] == (
        "solo must be called alone, without other tools in the same batch. "
        "Retry with only the solo call."
    )
    assert results[1]["result"] == (
        "this tool was skipped because solo must run alone in its batch. Retry your tool "
        "calls without solo, or call solo separately first."
    )
    assert results[0]["is_error"]
    assert results[1]["is_error"]
    assert results[2]["result"] == {"answer": "solo: alone"}


async def test_reaching_max_steps_ends_the_turn_silently(api: Any, app: Any, scripted: Any) -> None:
    app.services.daemon.config.max_steps = 2
    scripted.push(*[calls((f"c{i}", "echo", {"text": str(i)})) for i in range(5)])
    chat, messages = await run_chat(api)
    assert chat["status"] == "waiting"
    assert chat.get("last_error") is None
    assert [m["role"] for m in messages].count("assistant") == 2
    assert len(scripted.requests) == 2


async def test_provider_executed_results_stay_in_the_assistant_message(
    api: Any, scripted: Any
) -> None:
    scripted.push(
        {
            "provider_tools": [
                {
                    "name": "web_search",
                    "args": {"query": "jupyter"},
                    "result": [{"url": "https://jupyter.org", "title": "Jupyter"}],
                }
            ],
            "text": "Found it.",
        }
    )
    _chat, messages = await run_chat(api)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    kinds = [(p["type"], p.get("provider_executed")) for p in messages[1]["content"]]
    assert kinds == [("tool-call", True), ("tool-result", True), ("text", None)]
    assert len(scripted.requests) == 1


async def test_prompt_is_assembled_in_the_reference_order(api: Any, scripted: Any) -> None:
    await api.ok(
        "PUT",
        "config/system-prompt",
        {"system_prompt": "Deployment rules.", "include_default_system_prompt": True},
    )
    await api.ok("PUT", "config/user-prompt", {"custom_prompt": "Call me Ada."})
    await run_chat(api, "Hello", system_prompt="Chat rules.")
    texts = [(m.role, m.content[0].text) for m in scripted.requests[0].messages]
    assert [r for r, _ in texts] == ["system", "system", "system", "system", "user"]
    assert texts[0][1].startswith("You are an agent working for a user of Jupyter")
    assert texts[0][1].endswith("Deployment rules.")
    assert texts[1][1] == "Chat rules."
    assert "no workspace yet" in texts[2][1]
    assert texts[3][1] == "<user-instructions>\nCall me Ada.\n</user-instructions>"
    assert texts[4][1] == "Hello"


async def test_retryable_errors_retry_with_events_then_succeed(
    api: Any, app: Any, scripted: Any, jp_ws_fetch: Any
) -> None:
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    app.services.daemon.config.retry_sleep = no_wait
    scripted.push(
        {"error": {"status": 429, "message": "slow down"}},
        {"error": {"status": 429, "message": "slow down"}},
        {"text": "finally"},
    )
    chat, messages = await run_chat(api)
    assert chat["status"] == "waiting"
    assert waits == [1.0, 2.0]
    assert messages[-1]["content"][0]["text"] == "finally"


async def test_startup_timeout_is_a_retryable_error(api: Any, app: Any, scripted: Any) -> None:
    async def no_wait(seconds: float) -> None:
        return None

    app.services.daemon.config.retry_sleep = no_wait
    app.services.daemon.config.startup_timeout = 0.2
    scripted.push({"delay_first": 2, "text": "late"}, {"text": "on time"})
    chat, messages = await run_chat(api)
    assert chat["status"] == "waiting"
    assert messages[-1]["content"][0]["text"] == "on time"


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (
            401,
            "auth",
            "Authentication with Scripted model failed. Check the API key and permissions.",
        ),
        (400, "generic", "Scripted model returned an unexpected error."),
    ],
)
async def test_non_retryable_error_ends_in_error_and_keeps_history(
    api: Any, scripted: Any, status: int, kind: str, message: str
) -> None:
    scripted.push({"text": "first answer"}, {"error": {"status": status, "message": "nope"}})
    chat = await api.ok("POST", "chats", {"content": "one"})
    await api.wait_status(chat["id"], "waiting")
    await api.ok("POST", f"chats/{chat['id']}/messages", {"content": "two"})
    failed = await api.wait_status(chat["id"], "error")
    error = failed["last_error"]
    assert (error["kind"], error["retryable"], error["status_code"]) == (kind, False, status)
    assert error["message"] == message
    assert error["detail"] == "nope"
    messages = await api.messages(chat["id"])
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    # The chat is usable again: the next message clears the error.
    await api.ok("POST", f"chats/{chat['id']}/messages", {"content": "three"})
    recovered = await api.wait_status(chat["id"], "waiting")
    assert recovered.get("last_error") is None


async def test_error_mid_stream_persists_nothing_half_done(api: Any, scripted: Any) -> None:
    scripted.push(
        {
            "text": "partial words",
            "error_after_text": True,
            "error": {"status": 401, "message": "revoked"},
        }
    )
    chat, messages = await run_chat(api)
    assert chat["status"] == "error"
    assert [m["role"] for m in messages] == ["user"]


async def test_cost_and_usage_are_recorded_per_assistant_message(api: Any, scripted: Any) -> None:
    scripted.push({"text": "priced", "usage": {"input_tokens": 1000, "output_tokens": 100}})
    _, messages = await run_chat(api)
    assistant = messages[-1]
    assert assistant["usage"]["input_tokens"] == 1000
    assert assistant["usage"]["context_limit"] == 100_000
    # 1000 * $3/M + 100 * $15/M = $0.0045 = 4500 micro-dollars
    assert assistant["total_cost_micros"] == 4500


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Fix the bug", "Fix the bug"),
        ("one two three four five six seven", "one two three four five six…"),
        ("x" * 100, "x" * 79 + "…"),
        ("   ", "New Chat"),
    ],
)
def test_initial_title_is_the_first_six_words_within_80_characters(text: str, title: str) -> None:
    from coderchat_ext.chatd.prompt import initial_title
    from coderchat_ext.models import ChatMessagePart

    assert initial_title([ChatMessagePart(type="text", text=text)]) == title
