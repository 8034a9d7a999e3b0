from __future__ import annotations

from typing import Any


async def test_create_chat_runs_a_turn_and_answers(api: Any, scripted: Any) -> None:
    scripted.push({"text": "Hello there, human."})
    chat = await api.ok("POST", "chats", {"content": [{"type": "text", "text": "Say hello"}]})
    assert chat["status"] == "pending"
    assert chat["title"] == "Say hello"
    done = await api.wait_status(chat["id"], "waiting")
    assert done["last_error"] is None if "last_error" in done else True
    messages = await api.messages(chat["id"])
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"] == [{"type": "text", "text": "Hello there, human."}]
    assert messages[1]["usage"]["output_tokens"] > 0
