"""The client's direct tool runs, dynamic tool results and typed settings against the real
server (scripted model, test tools)."""

from __future__ import annotations

from typing import Any

import pytest

from coderchat_ext.client import AdvisorConfig, ApiError, AsyncChatClient, ToolResult
from coderchat_ext.models import ChatModelCallConfig, DynamicTool
from tests.client.conftest import DEADLINE, text_of, wait_for_status


async def test_run_tool_runs_a_tool_now_without_writing_to_the_chat(
    client: AsyncChatClient,
) -> None:
    chat = await client.create_chat("a chat to run tools in")
    await wait_for_status(client, chat.id, "waiting")
    before = await client.list_messages(chat.id, limit=200)

    ran = await client.run_tool(chat.id, "echo", {"text": "hi"})

    assert (ran.tool_name, ran.args, ran.result, ran.is_error) == (
        "echo",
        {"text": "hi"},
        {"text": "hi"},
        False,
    )
    assert ran.tool_call_id.startswith("direct_")
    assert await client.list_messages(chat.id, limit=200) == before
    failed = await client.run_tool(chat.id, "fail", {})
    assert failed.is_error
    with pytest.raises(ApiError) as bad_args:
        await client.run_tool(chat.id, "echo", {"text": 5})
    assert (bad_args.value.status, bad_args.value.message) == (400, "Invalid tool arguments.")
    assert [v.field for v in bad_args.value.validations] == ["args"]
    with pytest.raises(ApiError) as unknown:
        await client.run_tool(chat.id, "no_such_tool")
    assert (unknown.value.status, unknown.value.message) == (404, "Tool not found.")


async def test_a_dynamic_tool_call_is_answered_with_tool_results(
    client: AsyncChatClient, scripted: Any
) -> None:
    scripted.push(
        {"tool_calls": [{"id": "call_1", "name": "pick", "args": {"among": [1, 2]}}]},
        {"text": "You picked 2."},
    )
    tool = DynamicTool(name="pick", description="Ask the user to pick a number.")

    asked = await client.run_turn(
        None, "Pick one", create_options={"unsafe_dynamic_tools": [tool]}, timeout=DEADLINE
    )

    assert asked.status == "requires_action"
    assert asked.action_required is not None
    [call] = asked.action_required.tool_calls
    assert (call.tool_call_id, call.tool_name) == ("call_1", "pick")
    await client.submit_tool_results(asked.chat_id, [ToolResult(tool_call_id="call_1", output=2)])
    await wait_for_status(client, asked.chat_id, "waiting")
    page = await client.list_messages(asked.chat_id, limit=200)
    assert text_of(page.messages[0]) == "You picked 2."
    results = [p for m in page.messages for p in m.content if p.type == "tool-result"]
    assert [(r.tool_call_id, r.result) for r in results] == [("call_1", 2)]


async def test_settings_round_trip_as_typed_objects(client: AsyncChatClient) -> None:
    provider = await client.create_provider("anthropic", api_key="sk-ant-test")
    assert (provider.provider, provider.has_api_key) == ("anthropic", True)
    renamed = await client.update_provider(provider.id, display_name="Claude")
    assert renamed.display_name == "Claude"
    await client.delete_provider(provider.id)
    with pytest.raises(ApiError) as gone:
        await client.delete_provider(provider.id)
    assert gone.value.status == 404

    config = await client.create_model_config(
        "scripted",
        "scripted-3",
        context_limit=4000,
        compression_threshold=50,
        model_config=ChatModelCallConfig(temperature=0.5),
    )
    assert (config.compression_threshold, config.model_config_) == (
        50,
        ChatModelCallConfig(temperature=0.5),
    )
    updated = await client.update_model_config(config.id, model_config={"temperature": 1.5})
    assert updated.model_config_ is not None
    assert updated.model_config_.temperature == 1.5
    listed = (await client.list_models()).providers
    assert "scripted-3" in [m.model for p in listed if p.provider == "scripted" for m in p.models]

    prompt = await client.get_system_prompt()
    assert prompt.default_system_prompt
    await client.set_system_prompt("Be brief.", include_default_system_prompt=False)
    assert (await client.get_system_prompt()).include_default_system_prompt is False

    advisor = AdvisorConfig(enabled=True, max_uses_per_run=2, model_config_id=config.id)
    await client.set_advisor_config(advisor)
    assert await client.get_advisor_config() == advisor
    with pytest.raises(ApiError) as bad_effort:
        await client.set_advisor_config({"reasoning_effort": "max"})
    assert bad_effort.value.status == 400
    assert bad_effort.value.message.startswith('reasoning_effort "max" is not valid')

    info = await client.info()
    assert info.version
    assert info.default_model is not None
    assert "scripted" in info.providers
