"""The message queue of a busy chat, interrupts, message edits and client tool results
(docs/status-machine.md, docs/api.md#messages-and-queue, docs/api.md#dynamic-tool-results):
status codes, exact messages, and that refused requests change nothing in the database."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.helpers import wait_for

INTERRUPTED_RESULT = "tool call was interrupted before it produced a result"
INTERRUPTED_BY_USER = "Tool execution interrupted by user"
PICK_COLOR = {"name": "pick_color", "input_schema": {"type": "object"}}


def text(value: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": value}]


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text") or "" for p in message["content"] if p["type"] == "text")


async def db_rows(app: Any, chat_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """The chat's message and queue rows (every column), to compare around a refused request;
    with ``chats`` too when the chat is idle, because then nothing else writes it."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with app.services.db.read() as conn:
        for table in ("chat_messages", "chat_queued_messages"):
            rows = await conn.fetchall(
                f"SELECT * FROM {table} WHERE chat_id = ? ORDER BY id", (chat_id,)
            )
            out[table] = [tuple(r) for r in rows]
        chat = await conn.fetchone("SELECT * FROM chats WHERE id = ?", (chat_id,))
        if chat is not None and chat["status"] in ("waiting", "requires_action", "error"):
            out["chats"] = [tuple(chat)]
    return out


def assert_error(result: tuple[int, Any], status: int, message: str, detail: str | None) -> None:
    code, body = result
    assert code == status, body
    assert body["message"] == message
    assert body.get("detail") == detail


async def wait_history(
    api: Any, chat_id: str, roles: list[str], timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Wait until the chat is ``waiting`` with an empty queue and visible messages of
    ``roles``; returns the messages (oldest first)."""
    seen: list[Any] = []

    async def check() -> list[dict[str, Any]] | None:
        nonlocal seen
        chat = await api.ok("GET", f"chats/{chat_id}")
        page = await api.ok("GET", f"chats/{chat_id}/messages", params={"limit": 200})
        messages = list(reversed(page["messages"]))
        seen = [chat["status"], [m["role"] for m in messages], len(page["queued_messages"])]
        idle = chat["status"] == "waiting" and not page["queued_messages"]
        return messages if idle and [m["role"] for m in messages] == roles else None

    try:
        return await wait_for(check, f"history {roles}", timeout)
    except AssertionError:
        raise AssertionError(f"wanted waiting, {roles}, empty queue; last saw {seen}") from None


class TurnGate:
    """Holds the next model call of the scripted model until :meth:`release`, so a chat stays
    ``running`` for as long as a test needs (no timing assumptions)."""

    def __init__(self, scripted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = asyncio.Event()
        self._release = asyncio.Event()
        original = scripted.stream
        gate = self

        async def stream(request: Any) -> AsyncIterator[Any]:
            if not gate.entered.is_set():
                gate.entered.set()
                await gate._release.wait()
            async for part in original(request):
                yield part

        monkeypatch.setattr(scripted, "stream", stream)

    async def wait_entered(self) -> None:
        await asyncio.wait_for(self.entered.wait(), 10)

    def release(self) -> None:
        self._release.set()


@pytest.fixture
def gate(scripted: Any, monkeypatch: pytest.MonkeyPatch) -> TurnGate:
    return TurnGate(scripted, monkeypatch)


async def busy_chat(api: Any, gate: TurnGate, first: str = "first") -> str:
    """A chat whose first turn is held ``running`` by ``gate``."""
    chat = await api.ok("POST", "chats", {"content": text(first)})
    await gate.wait_entered()
    assert (await api.ok("GET", f"chats/{chat['id']}"))["status"] == "running"
    return str(chat["id"])


class Stream:
    """A chat's WebSocket stream, read until an event matches."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._checked = 0

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while self._checked < len(self.events):
                event = self.events[self._checked]
                self._checked += 1
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no matching stream event")
            frame = await asyncio.wait_for(self.ws.read_message(), remaining)
            assert frame is not None, "stream closed"
            self.events.extend(json.loads(frame))

    def statuses(self) -> list[str]:
        return [e["status"] for e in self.events[: self._checked] if e["type"] == "status"]


@pytest.fixture
def open_stream(jp_ws_fetch: Any) -> Any:
    sockets: list[Any] = []

    async def open_(chat_id: str) -> Stream:
        ws = await jp_ws_fetch("api", "coderchat", "chats", chat_id, "stream")
        sockets.append(ws)
        return Stream(ws)

    yield open_
    for ws in sockets:
        ws.close()


# --- the queue -------------------------------------------------------------------------------


async def test_send_to_busy_chat_queues_the_message(api: Any, app: Any, gate: TurnGate) -> None:
    chat_id = await busy_chat(api, gate)
    before = await db_rows(app, chat_id)
    status, reply = await api("POST", f"chats/{chat_id}/messages", {"content": text("second")})
    assert status == 200, reply
    assert reply["queued"] is True
    assert "message" not in reply or reply["message"] is None
    queued = reply["queued_message"]
    assert queued["chat_id"] == chat_id
    assert queued["content"] == text("second")
    page = await api.ok("GET", f"chats/{chat_id}/messages")
    assert page["queued_messages"] == [queued]
    after = await db_rows(app, chat_id)
    assert after["chat_messages"] == before["chat_messages"]
    assert (await api.ok("GET", f"chats/{chat_id}"))["status"] == "running"

    gate.release()
    messages = await wait_history(api, chat_id, ["user", "assistant"] * 2)
    assert [text_of(m) for m in messages] == ["first", "first", "second", "second"]


async def test_turn_end_promotes_queued_messages_in_fifo_order(api: Any, gate: TurnGate) -> None:
    chat_id = await busy_chat(api, gate)
    for word in ("second", "third", "fourth"):
        reply = await api.ok("POST", f"chats/{chat_id}/messages", {"content": text(word)})
        assert reply["queued"] is True
    gate.release()
    messages = await wait_history(api, chat_id, ["user", "assistant"] * 4)
    users = [text_of(m) for m in messages if m["role"] == "user"]
    assert users == ["first", "second", "third", "fourth"]
    # Each answer (the scripted model echoes) follows the message it answers.
    assert [text_of(m) for m in messages[1::2]] == users


async def test_queue_holds_at_most_20_messages(api: Any, app: Any, gate: TurnGate) -> None:
    chat_id = await busy_chat(api, gate)
    for i in range(20):
        reply = await api.ok("POST", f"chats/{chat_id}/messages", {"content": text(f"q{i}")})
        assert reply["queued"] is True
    before = await db_rows(app, chat_id)
    for busy_behavior in ("queue", "interrupt"):
        result = await api(
            "POST",
            f"chats/{chat_id}/messages",
            {"content": text("one too many"), "busy_behavior": busy_behavior},
        )
        assert_error(result, 429, "Message queue is full.", "Maximum 20 messages can be queued.")
    assert await db_rows(app, chat_id) == before
    assert (await api.ok("GET", f"chats/{chat_id}"))["status"] == "running"
    page = await api.ok("GET", f"chats/{chat_id}/messages")
    assert [text_of(q) for q in page["queued_messages"]] == [f"q{i}" for i in range(20)]


async def test_delete_queued_message_removes_only_it(api: Any, gate: TurnGate) -> None:
    chat_id = await busy_chat(api, gate)
    ids = []
    for word in ("a", "b", "c"):
        reply = await api.ok("POST", f"chats/{chat_id}/messages", {"content": text(word)})
        ids.append(reply["queued_message"]["id"])
    status, body = await api("DELETE", f"chats/{chat_id}/queue/{ids[1]}")
    assert (status, body) == (204, None)
    page = await api.ok("GET", f"chats/{chat_id}/messages")
    assert [q["id"] for q in page["queued_messages"]] == [ids[0], ids[2]]

    gate.release()
    messages = await wait_history(api, chat_id, ["user", "assistant"] * 3)
    assert [text_of(m) for m in messages if m["role"] == "user"] == ["first", "a", "c"]


QUEUE_ID_REFUSALS = [
    pytest.param("abc", 400, "Invalid queued message ID.", id="not-a-number"),
    pytest.param("0", 400, "Invalid queued message ID.", id="zero"),
    pytest.param("-3", 400, "Invalid queued message ID.", id="negative"),
    pytest.param("1.5", 400, "Invalid queued message ID.", id="fraction"),
    pytest.param("999999", 404, "Queued message not found.", id="unknown"),
    pytest.param("deleted", 404, "Queued message not found.", id="already-deleted"),
]


@pytest.mark.parametrize("action", ["delete", "promote"])
@pytest.mark.parametrize(("queued_id", "status", "message"), QUEUE_ID_REFUSALS)
async def test_queue_item_refuses_invalid_or_unknown_id(
    api: Any, app: Any, gate: TurnGate, action: str, queued_id: str, status: int, message: str
) -> None:
    """Upstream's anchor-era promote gives 500 for an unknown id; like its newer code, both
    delete and promote answer 404 (docs/api.md#messages-and-queue)."""
    chat_id = await busy_chat(api, gate)
    kept = await api.ok("POST", f"chats/{chat_id}/messages", {"content": text("kept")})
    if queued_id == "deleted":
        gone = await api.ok("POST", f"chats/{chat_id}/messages", {"content": text("gone")})
        queued_id = str(gone["queued_message"]["id"])
        assert (await api("DELETE", f"chats/{chat_id}/queue/{queued_id}"))[0] == 204
    before = await db_rows(app, chat_id)
    if action == "delete":
        result = await api("DELETE", f"chats/{chat_id}/queue/{queued_id}")
    else:
        result = await api("POST", f"chats/{chat_id}/queue/{queued_id}/promote")
    assert_error(result, status, message, None)
    assert await db_rows(app, chat_id) == before
    page = await api.ok("GET", f"chats/{chat_id}/messages")
    assert page["queued_messages"] == [kept["queued_message"]]
    assert (await api.ok("GET", f"chats/{chat_id}"))["status"] == "running"


async def test_queued_message_of_another_chat_is_not_found(api: Any, gate: TurnGate) -> None:
    chat_id = await busy_chat(api, gate)
    queued = await api.ok("POST", f"chats/{chat_id}/messages", {"content": text("mine")})
    other = await api.ok("POST", "chats", {"content": text("other")})
    qid = queued["queued_message"]["id"]
    for method, path in (("DELETE", "queue/{q}"), ("POST", "queue/{q}/promote")):
        result = await api(method, f"chats/{other['id']}/" + path.format(q=qid))
        assert_error(result, 404, "Queued message not found.", None)
    page = await api.ok("GET", f"chats/{chat_id}/messages")
    assert page["queued_messages"] == [queued["queued_message"]]


async def test_promote_runs_the_queued_message_now(api: Any, gate: TurnGate) -> None:
    chat_id = await busy_chat(api, gate)
    a = await api.ok("POST", f"chats/{chat_id}/messages", {"content": text("a")})
    b = await api.ok("POST", f"chats/{chat_id}/messages", {"content": text("b")})
    status, message = await api(
        "POST", f"chats/{chat_id}/queue/{b['queued_message']['id']}/promote"
    )
    assert status == 200, message
    assert message["role"] == "user"
    assert message["chat_id"] == chat_id
    assert message["content"] == text("b")
    assert isinstance(message["id"], int)
    page = await api.ok("GET", f"chats/{chat_id}/messages")
    assert page["queued_messages"] == [a["queued_message"]]
    # The promoted message is in history (its answer may already follow it).
    assert message in page["messages"]
    assert (await api.ok("GET", f"chats/{chat_id}"))["status"] in ("pending", "running")

    # The held turn was interrupted; "b" runs, then "a" is promoted when that turn ends.
    messages = await wait_history(api, chat_id, ["user", "user", "assistant", "user", "assistant"])
    assert [text_of(m) for m in messages] == ["first", "b", "b", "a", "a"]


async def test_busy_behavior_interrupt_keeps_partial_output_and_runs_the_message_next(
    api: Any, scripted: Any, open_stream: Any
) -> None:
    scripted.push({"text": "x" * 400, "chunk_size": 1, "chunk_delay": 0.01})
    chat = await api.ok("POST", "chats", {"content": text("first")})
    stream = await open_stream(chat["id"])
    await stream.until(lambda e: e["type"] == "message_part")
    reply = await api.ok(
        "POST",
        f"chats/{chat['id']}/messages",
        {"content": text("second"), "busy_behavior": "interrupt"},
    )
    assert reply["queued"] is True
    assert reply["queued_message"]["content"] == text("second")
    messages = await wait_history(api, chat["id"], ["user", "assistant"] * 2)
    partial = text_of(messages[1])
    assert 0 < len(partial) < 400
    assert partial == "x" * len(partial)
    assert [text_of(m) for m in messages[2:]] == ["second", "second"]


async def test_busy_behavior_interrupt_on_idle_chat_sends_normally(api: Any) -> None:
    chat = await api.ok("POST", "chats", {"content": text("first")})
    await api.wait_status(chat["id"], "waiting")
    reply = await api.ok(
        "POST",
        f"chats/{chat['id']}/messages",
        {"content": text("second"), "busy_behavior": "interrupt"},
    )
    assert reply["queued"] is False
    assert reply["message"]["role"] == "user"
    assert reply["message"]["content"] == text("second")
    messages = await wait_history(api, chat["id"], ["user", "assistant"] * 2)
    assert [text_of(m) for m in messages] == ["first", "first", "second", "second"]


async def test_interrupt_running_tool_call_gives_it_an_error_result(
    api: Any, scripted: Any, open_stream: Any
) -> None:
    scripted.push({"tool_calls": [{"id": "call_sleep", "name": "sleep", "args": {"seconds": 30}}]})
    chat = await api.ok("POST", "chats", {"content": text("sleep please")})
    stream = await open_stream(chat["id"])
    # The sleep tool streams a progress line each second: it is running.
    await stream.until(
        lambda e: e["type"] == "message_part" and "result_delta" in e["message_part"]["part"]
    )
    status, body = await api("POST", f"chats/{chat['id']}/interrupt")
    assert status == 200, body
    assert body["id"] == chat["id"]
    assert body["status"] == "waiting"
    messages = await wait_history(api, chat["id"], ["user", "assistant", "tool"])
    [call] = [p for p in messages[1]["content"] if p["type"] == "tool-call"]
    assert (call["tool_call_id"], call["tool_name"]) == ("call_sleep", "sleep")
    [result] = messages[2]["content"]
    assert result["type"] == "tool-result"
    assert result["tool_call_id"] == "call_sleep"
    assert result["result"] == INTERRUPTED_RESULT
    assert result["is_error"] is True


async def test_interrupt_during_text_keeps_the_partial_text(
    api: Any, scripted: Any, open_stream: Any
) -> None:
    scripted.push({"text": "y" * 400, "chunk_size": 1, "chunk_delay": 0.01})
    chat = await api.ok("POST", "chats", {"content": text("talk")})
    stream = await open_stream(chat["id"])
    await stream.until(lambda e: e["type"] == "message_part")
    body = await api.ok("POST", f"chats/{chat['id']}/interrupt")
    assert body["status"] == "waiting"
    messages = await wait_history(api, chat["id"], ["user", "assistant"])
    partial = text_of(messages[1])
    assert 0 < len(partial) < 400
    assert partial == "y" * len(partial)


# --- editing ---------------------------------------------------------------------------------


async def idle_exchange(api: Any, *words: str) -> tuple[str, list[dict[str, Any]]]:
    """A waiting chat in which each of ``words`` was sent and answered (echoed)."""
    chat = await api.ok("POST", "chats", {"content": text(words[0])})
    await api.wait_status(chat["id"], "waiting")
    for word in words[1:]:
        await api.ok("POST", f"chats/{chat['id']}/messages", {"content": text(word)})
        await api.wait_status(chat["id"], "waiting")
    return chat["id"], await wait_history(api, chat["id"], ["user", "assistant"] * len(words))


EDIT_REFUSALS = [
    pytest.param(
        "abc", 400, "Invalid chat message ID.", "Message ID must be a positive integer.", id="abc"
    ),
    pytest.param(
        "0", 400, "Invalid chat message ID.", "Message ID must be a positive integer.", id="zero"
    ),
    pytest.param(
        "-2", 400, "Invalid chat message ID.", "Message ID must be a positive integer.", id="neg"
    ),
    pytest.param(
        "999999",
        404,
        "Chat message not found.",
        "Message does not belong to this chat.",
        id="unknown",
    ),
    pytest.param(
        "assistant", 400, "Only user messages can be edited.", None, id="assistant-message"
    ),
]


@pytest.mark.parametrize(("message_id", "status", "message", "detail"), EDIT_REFUSALS)
async def test_edit_refuses_invalid_message_and_changes_nothing(
    api: Any, app: Any, message_id: str, status: int, message: str, detail: str | None
) -> None:
    chat_id, history = await idle_exchange(api, "first")
    if message_id == "assistant":
        message_id = str(history[1]["id"])
    before = await db_rows(app, chat_id)
    result = await api(
        "PATCH", f"chats/{chat_id}/messages/{message_id}", {"content": text("edited")}
    )
    assert_error(result, status, message, detail)
    assert await db_rows(app, chat_id) == before


@pytest.mark.parametrize(
    ("body", "message", "detail"),
    [
        pytest.param({}, "Content is required.", "Content cannot be empty.", id="no-content"),
        pytest.param(
            {"content": text(" ")},
            "Invalid input part.",
            "content[0].text cannot be empty.",
            id="blank-text",
        ),
    ],
)
async def test_edit_refuses_invalid_content_and_changes_nothing(
    api: Any, app: Any, body: dict[str, Any], message: str, detail: str
) -> None:
    chat_id, history = await idle_exchange(api, "first")
    before = await db_rows(app, chat_id)
    result = await api("PATCH", f"chats/{chat_id}/messages/{history[0]['id']}", body)
    assert_error(result, 400, message, detail)
    assert await db_rows(app, chat_id) == before


async def test_edit_of_busy_chat_truncates_history_clears_queue_and_answers_again(
    api: Any, gate: TurnGate
) -> None:
    chat_id = await busy_chat(api, gate)
    await api.ok("POST", f"chats/{chat_id}/messages", {"content": text("queued one")})
    await api.ok("POST", f"chats/{chat_id}/messages", {"content": text("queued two")})
    [original] = (await api.ok("GET", f"chats/{chat_id}/messages"))["messages"]
    status, reply = await api(
        "PATCH", f"chats/{chat_id}/messages/{original['id']}", {"content": text("edited")}
    )
    assert status == 200, reply
    edited = reply["message"]
    assert edited["role"] == "user"
    assert edited["content"] == text("edited")
    assert edited["id"] > original["id"]
    page = await api.ok("GET", f"chats/{chat_id}/messages")
    assert page["queued_messages"] == []
    assert page["messages"] == [edited]
    assert (await api.ok("GET", f"chats/{chat_id}"))["status"] in ("pending", "running")

    gate.release()
    messages = await wait_history(api, chat_id, ["user", "assistant"])
    assert messages[0] == edited
    assert text_of(messages[1]) == "edited"


async def test_edit_of_later_message_keeps_earlier_history(api: Any) -> None:
    chat_id, history = await idle_exchange(api, "first", "second", "third")
    reply = await api.ok(
        "PATCH", f"chats/{chat_id}/messages/{history[2]['id']}", {"content": text("changed")}
    )
    messages = await wait_history(api, chat_id, ["user", "assistant"] * 2)
    assert messages[:2] == history[:2]
    assert messages[2] == reply["message"]
    assert [text_of(m) for m in messages] == ["first", "first", "changed", "changed"]


# --- client tool results ---------------------------------------------------------------------


async def requires_action_chat(api: Any, scripted: Any, *call_ids: str) -> str:
    """A chat whose model called the dynamic tool ``pick_color`` once per id, then (after the
    results) answers "thanks"."""
    scripted.push(
        {"tool_calls": [{"id": c, "name": "pick_color", "args": {}} for c in call_ids]},
        {"text": "thanks"},
    )
    chat = await api.ok(
        "POST", "chats", {"content": text("pick colors"), "unsafe_dynamic_tools": [PICK_COLOR]}
    )
    await api.wait_status(chat["id"], "requires_action")
    return str(chat["id"])


def result(call_id: str, output: Any = "blue", is_error: bool = False) -> dict[str, Any]:
    return {"tool_call_id": call_id, "output": output, "is_error": is_error}


async def test_tool_results_on_chat_not_requiring_action_conflict(api: Any, app: Any) -> None:
    chat = await api.ok(
        "POST", "chats", {"content": text("hi"), "unsafe_dynamic_tools": [PICK_COLOR]}
    )
    await api.wait_status(chat["id"], "waiting")
    before = await db_rows(app, chat["id"])
    outcome = await api("POST", f"chats/{chat['id']}/tool-results", {"results": [result("call_1")]})
    assert_error(
        outcome,
        409,
        "Chat is not waiting for tool results.",
        'Chat status is "waiting", expected "requires_action".',
    )
    assert await db_rows(app, chat["id"]) == before


TOOL_RESULT_REFUSALS = [
    pytest.param({}, "At least one tool result is required.", None, id="no-results"),
    pytest.param(
        {"results": []}, "At least one tool result is required.", None, id="empty-results"
    ),
    pytest.param(
        {"results": "call_1"}, "At least one tool result is required.", None, id="not-a-list"
    ),
    pytest.param(
        {"results": [result("call_1"), result("call_1"), result("call_2")]},
        "Duplicate tool_call_id in results.",
        'Duplicate tool call ID "call_1".',
        id="duplicate-id",
    ),
    pytest.param(
        {"results": [result("call_1")]},
        "Missing tool result.",
        'Missing result for tool call "call_2".',
        id="one-of-two-answered",
    ),
    pytest.param(
        {"results": [result("call_1"), result("call_2"), result("call_3")]},
        "Unexpected tool result.",
        'No pending tool call with ID "call_3".',
        id="unexpected-id",
    ),
    pytest.param(
        {"results": [result("call_1"), {"tool_call_id": "call_2", "is_error": False}]},
        "Tool result output must be valid JSON.",
        'Output for tool call "call_2" is not valid JSON.',
        id="missing-output",
    ),
]


@pytest.mark.parametrize(("body", "message", "detail"), TOOL_RESULT_REFUSALS)
async def test_tool_results_refuses_invalid_results_and_changes_nothing(
    api: Any, app: Any, scripted: Any, body: dict[str, Any], message: str, detail: str | None
) -> None:
    chat_id = await requires_action_chat(api, scripted, "call_1", "call_2")
    before = await db_rows(app, chat_id)
    assert_error(await api("POST", f"chats/{chat_id}/tool-results", body), 400, message, detail)
    assert await db_rows(app, chat_id) == before
    assert (await api.ok("GET", f"chats/{chat_id}"))["status"] == "requires_action"


async def test_tool_results_resume_the_turn(api: Any, scripted: Any, open_stream: Any) -> None:
    chat_id = await requires_action_chat(api, scripted, "call_1", "call_2")
    stream = await open_stream(chat_id)
    await stream.until(lambda e: e["type"] == "status")
    status, body = await api(
        "POST",
        f"chats/{chat_id}/tool-results",
        {
            "results": [
                result("call_2", {"error": "no such color"}, is_error=True),
                result("call_1", {"color": "blue"}),
            ]
        },
    )
    assert (status, body) == (204, None)
    await stream.until(lambda e: e["type"] == "status" and e["status"] == "waiting")
    statuses = stream.statuses()
    assert statuses[0] == "requires_action"
    # "pending" may be skipped: the status event is read back after the daemon may have
    # acquired the chat already.
    assert statuses[-2:] == ["running", "waiting"]
    assert set(statuses[1:-2]) <= {"pending"}

    messages = await wait_history(api, chat_id, ["user", "assistant", "tool", "tool", "assistant"])
    calls = [p["tool_call_id"] for p in messages[1]["content"] if p["type"] == "tool-call"]
    assert calls == ["call_1", "call_2"]
    results = {m["content"][0]["tool_call_id"]: m["content"][0] for m in messages[2:4]}
    assert results["call_1"]["tool_name"] == "pick_color"
    assert results["call_1"]["result"] == {"color": "blue"}
    assert not results["call_1"].get("is_error")
    assert results["call_2"]["result"] == {"error": "no such color"}
    assert results["call_2"]["is_error"] is True
    assert text_of(messages[4]) == "thanks"
    # The model saw both results.
    last_request = scripted.requests[-1]
    seen = [
        (p.tool_call_id, p.result)
        for m in last_request.messages
        for p in m.content
        if p.type == "tool-result"
    ]
    assert sorted(seen) == [("call_1", {"color": "blue"}), ("call_2", {"error": "no such color"})]


async def test_tool_results_accepted_once(api: Any, app: Any, scripted: Any) -> None:
    chat_id = await requires_action_chat(api, scripted, "call_1")
    assert (await api("POST", f"chats/{chat_id}/tool-results", {"results": [result("call_1")]}))[
        0
    ] == 204
    await wait_history(api, chat_id, ["user", "assistant", "tool", "assistant"])
    before = await db_rows(app, chat_id)
    again = await api("POST", f"chats/{chat_id}/tool-results", {"results": [result("call_1")]})
    assert_error(
        again,
        409,
        "Chat is not waiting for tool results.",
        'Chat status is "waiting", expected "requires_action".',
    )
    assert await db_rows(app, chat_id) == before


async def test_interrupt_in_requires_action_answers_pending_calls_with_errors(
    api: Any, scripted: Any
) -> None:
    chat_id = await requires_action_chat(api, scripted, "call_1", "call_2")
    body = await api.ok("POST", f"chats/{chat_id}/interrupt")
    assert body["status"] == "waiting"
    messages = await wait_history(api, chat_id, ["user", "assistant", "tool", "tool"])
    results = [m["content"][0] for m in messages[2:]]
    assert [(r["tool_call_id"], r["result"], r["is_error"]) for r in results] == [
        ("call_1", INTERRUPTED_BY_USER, True),
        ("call_2", INTERRUPTED_BY_USER, True),
    ]
    outcome = await api("POST", f"chats/{chat_id}/tool-results", {"results": [result("call_1")]})
    assert_error(
        outcome,
        409,
        "Chat is not waiting for tool results.",
        'Chat status is "waiting", expected "requires_action".',
    )


async def test_send_to_chat_requiring_action_is_queued(api: Any, app: Any, scripted: Any) -> None:
    chat_id = await requires_action_chat(api, scripted, "call_1")
    before = await db_rows(app, chat_id)
    reply = await api.ok("POST", f"chats/{chat_id}/messages", {"content": text("more")})
    assert reply["queued"] is True
    after = await db_rows(app, chat_id)
    assert after["chat_messages"] == before["chat_messages"]
    assert (await api.ok("GET", f"chats/{chat_id}"))["status"] == "requires_action"
    page = await api.ok("GET", f"chats/{chat_id}/messages")
    assert page["queued_messages"] == [reply["queued_message"]]


async def test_busy_behavior_interrupt_in_requires_action_abandons_calls_and_runs_message(
    api: Any, scripted: Any
) -> None:
    chat_id = await requires_action_chat(api, scripted, "call_1")
    reply = await api.ok(
        "POST",
        f"chats/{chat_id}/messages",
        {"content": text("never mind"), "busy_behavior": "interrupt"},
    )
    # No turn is running, so the message is promoted at once rather than left queued.
    assert reply["queued"] is False
    assert reply["message"]["content"] == text("never mind")
    messages = await wait_history(api, chat_id, ["user", "assistant", "tool", "user", "assistant"])
    [abandoned] = messages[2]["content"]
    assert (abandoned["tool_call_id"], abandoned["result"], abandoned["is_error"]) == (
        "call_1",
        INTERRUPTED_BY_USER,
        True,
    )
    assert text_of(messages[3]) == "never mind"
    assert text_of(messages[4]) == "thanks"


async def test_archiving_busy_chat_stops_it_and_keeps_the_queue(api: Any, gate: TurnGate) -> None:
    chat_id = await busy_chat(api, gate)
    queued = await api.ok("POST", f"chats/{chat_id}/messages", {"content": text("later")})
    assert (await api("PATCH", f"chats/{chat_id}", {"archived": True}))[0] == 204
    chat = await api.wait_status(chat_id, "waiting")
    assert chat["archived"] is True
    page = await api.ok("GET", f"chats/{chat_id}/messages")
    # An archived chat promotes nothing ("the turn ends normally" in
    # docs/status-machine.md#transitions).
    assert page["queued_messages"] == [queued["queued_message"]]
    assert [text_of(m) for m in page["messages"]] == ["first"]


@pytest.fixture
def no_acquire(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon acquires nothing, so new chats stay ``pending``."""

    async def acquire() -> list[Any]:
        return []

    monkeypatch.setattr(app.services.daemon, "_acquire", acquire)


async def test_interrupt_leaves_pending_chat_pending(api: Any, app: Any, no_acquire: None) -> None:
    chat = await api.ok("POST", "chats", {"content": text("hello")})
    assert chat["status"] == "pending"
    body = await api.ok("POST", f"chats/{chat['id']}/interrupt")
    assert body["status"] == "pending"
    assert (await api.ok("GET", f"chats/{chat['id']}"))["status"] == "pending"


async def test_queued_messages_are_listed_only_without_a_cursor(api: Any, gate: TurnGate) -> None:
    chat_id = await busy_chat(api, gate)
    queued = await api.ok("POST", f"chats/{chat_id}/messages", {"content": text("later")})
    path = f"chats/{chat_id}/messages"
    assert (await api.ok("GET", path))["queued_messages"] == [queued["queued_message"]]
    assert (await api.ok("GET", path, params={"after_id": 0}))["queued_messages"] == []
    assert (await api.ok("GET", path, params={"before_id": 10**6}))["queued_messages"] == []


async def test_edited_away_message_can_no_longer_be_edited(api: Any, app: Any) -> None:
    chat_id, history = await idle_exchange(api, "first")
    await api.ok(
        "PATCH", f"chats/{chat_id}/messages/{history[0]['id']}", {"content": text("second try")}
    )
    await wait_history(api, chat_id, ["user", "assistant"])
    before = await db_rows(app, chat_id)
    for old in history:
        result = await api(
            "PATCH", f"chats/{chat_id}/messages/{old['id']}", {"content": text("third try")}
        )
        assert_error(
            result, 404, "Chat message not found.", "Message does not belong to this chat."
        )
    assert await db_rows(app, chat_id) == before


async def test_edit_during_running_tool_drops_the_interrupted_step(
    api: Any, scripted: Any, open_stream: Any
) -> None:
    scripted.push({"tool_calls": [{"id": "call_sleep", "name": "sleep", "args": {"seconds": 30}}]})
    chat = await api.ok("POST", "chats", {"content": text("sleep please")})
    stream = await open_stream(chat["id"])
    await stream.until(
        lambda e: e["type"] == "message_part" and "result_delta" in e["message_part"]["part"]
    )
    [original] = (await api.ok("GET", f"chats/{chat['id']}/messages"))["messages"]
    reply = await api.ok(
        "PATCH", f"chats/{chat['id']}/messages/{original['id']}", {"content": text("no sleep")}
    )
    messages = await wait_history(api, chat["id"], ["user", "assistant"])
    assert messages[0] == reply["message"]
    assert text_of(messages[1]) == "no sleep"
