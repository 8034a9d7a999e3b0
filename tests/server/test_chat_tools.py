"""``POST chats/{id}/tools/{name}``: run one tool in a chat's context, as ``%chat tool`` does,
without writing to the chat."""

from __future__ import annotations

from typing import Any


async def _chat(api: Any) -> dict[str, Any]:
    chat = await api.ok("POST", "chats", {"content": "hello"})
    await api.wait_status(chat["id"], "waiting", "error")
    return dict(chat)


async def test_a_tool_runs_in_the_chats_context_and_leaves_the_history_alone(api: Any) -> None:
    chat = await _chat(api)
    before = await api.messages(chat["id"])
    result = await api.ok("POST", f"chats/{chat['id']}/tools/echo", {"args": {"text": "hi"}})
    assert result["tool_name"] == "echo"
    assert result["args"] == {"text": "hi"}
    assert result["result"] == {"text": "hi"}
    assert result["is_error"] is False
    assert result["tool_call_id"].startswith("direct_")
    assert await api.messages(chat["id"]) == before


async def test_a_failing_tool_answers_like_the_loop_does(api: Any) -> None:
    chat = await _chat(api)
    result = await api.ok("POST", f"chats/{chat['id']}/tools/fail", {"args": {"message": "x"}})
    assert result["is_error"] is True
    assert result["result"] == "tool failed: x"


async def test_a_workspace_tool_without_a_workspace_tells_what_is_missing(api: Any) -> None:
    chat = await _chat(api)
    result = await api.ok("POST", f"chats/{chat['id']}/tools/execute", {"args": {"command": "ls"}})
    assert result["is_error"] is True
    assert "workspace" in result["result"].lower()


async def test_bad_tool_calls_are_refused_with_the_documented_errors(api: Any) -> None:
    chat = await _chat(api)
    status, body = await api("POST", f"chats/{chat['id']}/tools/nope", {"args": {}})
    assert (status, body["message"]) == (404, "Tool not found.")
    status, body = await api("POST", f"chats/{chat['id']}/tools/echo", {"args": {"txt": "a"}})
    assert (status, body["message"]) == (400, "Invalid tool arguments.")
    assert "text" in body["detail"]
    status, body = await api("POST", f"chats/{chat['id']}/tools/echo", {"args": [1]})
    assert status == 400
    assert body["validations"] == [{"field": "args", "detail": "must be an object"}]
    status, body = await api(
        "POST", "chats/00000000-0000-0000-0000-000000000000/tools/echo", {"args": {"text": "a"}}
    )
    assert (status, body["message"]) == (404, "Chat not found.")
    await api.ok("PATCH", f"chats/{chat['id']}", {"archived": True})
    status, body = await api("POST", f"chats/{chat['id']}/tools/echo", {"args": {"text": "a"}})
    assert (status, body["message"]) == (409, "Chat is archived.")
