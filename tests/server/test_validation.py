"""Request validation of the chat endpoints: status codes and exact ``message``/``detail`` of
refused requests (docs/api.md#chats, docs/api.md#messages-and-queue,
docs/api.md#dynamic-tool-results), and that a refused request changes nothing in the database."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

UNKNOWN_ID = str(uuid.uuid4())
ANY = object()
"""An expected ``detail`` that is not pinned down (upstream gives none)."""


async def db_rows(app: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the chat tables, to compare before and after a refused request."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with app.services.db.read() as conn:
        for table in ("chats", "chat_messages", "chat_queued_messages"):
            rows = await conn.fetchall(f"SELECT * FROM {table} ORDER BY 1")
            out[table] = [tuple(r) for r in rows]
    return out


def assert_error(result: tuple[int, Any], status: int, message: str, detail: Any = None) -> None:
    """``detail`` None means the body must have no detail; ``ANY`` skips the check."""
    code, body = result
    assert code == status, body
    assert body["message"] == message
    if detail is not ANY:
        assert body.get("detail") == detail


async def idle_chat(api: Any, text: str = "hello there", **extra: Any) -> dict[str, Any]:
    """A chat whose first turn has finished (``waiting``)."""
    chat = await api.ok("POST", "chats", {"content": [{"type": "text", "text": text}], **extra})
    return await api.wait_status(chat["id"], "waiting")


def text(value: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": value}]


# --- POST chats ------------------------------------------------------------------------------

TOOL = {"name": "pick_color", "input_schema": {"type": "object"}}

CREATE_REFUSALS = [
    pytest.param({"raw": b"{nope"}, 400, "Invalid JSON body.", ANY, id="malformed-json"),
    pytest.param(
        {"raw": b"[1, 2]"},
        400,
        "Invalid JSON body.",
        "The body must be a JSON object.",
        id="json-array-body",
    ),
    pytest.param(
        {"raw": json.dumps({"content": text("x" * (256 * 1024))}).encode()},
        413,
        "Request body too large.",
        ANY,
        id="body-over-256KiB",
    ),
    pytest.param(
        {"body": {}}, 400, "Content is required.", "Content cannot be empty.", id="no-content"
    ),
    pytest.param(
        {"body": {"content": []}},
        400,
        "Content is required.",
        "Content cannot be empty.",
        id="empty-content",
    ),
    pytest.param(
        {"body": {"content": 42}}, 400, "Invalid input part.", ANY, id="content-is-a-number"
    ),
    pytest.param(
        {"body": {"content": text("   ")}},
        400,
        "Invalid input part.",
        "content[0].text cannot be empty.",
        id="blank-text-part",
    ),
    pytest.param(
        {"body": {"content": [*text("ok"), {"type": "text", "text": ""}]}},
        400,
        "Invalid input part.",
        "content[1].text cannot be empty.",
        id="blank-second-text-part",
    ),
    pytest.param(
        {"body": {"content": [{"type": "x"}]}},
        400,
        "Invalid input part.",
        'content[0].type "x" is not supported.',
        id="unknown-part-type",
    ),
    pytest.param(
        {"body": {"content": [*text("see"), {"type": "file-reference", "start_line": 1}]}},
        400,
        "Invalid input part.",
        ANY,
        id="file-reference-without-file-name",
    ),
    pytest.param(
        {"body": {"content": [{"type": "file-reference", "file_name": "a.py"}]}},
        400,
        "Invalid input part.",
        "content must include at least one text or file part.",
        id="no-text-or-file-part",
    ),
    pytest.param(
        {"body": {"content": [{"type": "file"}]}},
        400,
        "Invalid input part.",
        "content[0].file_id is required for file parts.",
        id="file-part-without-file-id",
    ),
    pytest.param(
        {"body": {"content": text("hi"), "system_prompt": "p" * 10_001}},
        400,
        "System prompt exceeds maximum length.",
        "System prompt must be at most 10000 characters, got 10001.",
        id="system-prompt-over-10000",
    ),
    pytest.param(
        # The system prompt is checked before the content (upstream's order, docs/api.md#chats).
        {"body": {"content": [], "system_prompt": "p" * 12_345}},
        400,
        "System prompt exceeds maximum length.",
        "System prompt must be at most 10000 characters, got 12345.",
        id="system-prompt-checked-before-content",
    ),
    pytest.param(
        {"body": {"content": text("hi"), "labels": ["a", "b"]}},
        400,
        "Invalid labels.",
        ANY,
        id="labels-as-list",
    ),
    pytest.param(
        {"body": {"content": text("hi"), "labels": {"team": ""}}},
        400,
        "Invalid labels.",
        ANY,
        id="label-empty-value",
    ),
    pytest.param(
        {"body": {"content": text("hi"), "labels": {"team": 5}}},
        400,
        "Invalid labels.",
        ANY,
        id="label-non-string-value",
    ),
    pytest.param(
        {"body": {"content": text("hi"), "labels": {"bad key!": "v"}}},
        400,
        "Invalid labels.",
        ANY,
        id="label-invalid-key",
    ),
    pytest.param(
        {"body": {"content": text("hi"), "labels": {f"k{i}": "v" for i in range(51)}}},
        400,
        "Invalid labels.",
        ANY,
        id="too-many-labels",
    ),
    pytest.param(
        {
            "body": {
                "content": text("hi"),
                "unsafe_dynamic_tools": [{"name": f"t{i}"} for i in range(251)],
            }
        },
        400,
        "Too many dynamic tools.",
        "Maximum 250 dynamic tools per chat.",
        id="251-dynamic-tools",
    ),
    pytest.param(
        {"body": {"content": text("hi"), "unsafe_dynamic_tools": [TOOL, TOOL]}},
        400,
        "Duplicate dynamic tool name.",
        'Tool "pick_color" appears more than once.',
        id="duplicate-dynamic-tool",
    ),
    pytest.param(
        {"body": {"content": text("hi"), "unsafe_dynamic_tools": [{"name": ""}]}},
        400,
        "Dynamic tool name must not be empty.",
        None,
        id="empty-dynamic-tool-name",
    ),
    pytest.param(
        {"body": {"content": text("hi"), "unsafe_dynamic_tools": [{"input_schema": {}}]}},
        400,
        "Dynamic tool name must not be empty.",
        None,
        id="missing-dynamic-tool-name",
    ),
    pytest.param(
        {"body": {"content": text("hi"), "client_type": "cli"}},
        400,
        "Invalid client_type.",
        ANY,
        id="invalid-client-type",
    ),
    pytest.param(
        {"body": {"content": text("hi"), "model_config_id": "not-a-uuid"}},
        400,
        "Invalid model config ID.",
        None,
        id="model-config-id-not-a-uuid",
    ),
    pytest.param(
        {"body": {"content": text("hi"), "model_config_id": UNKNOWN_ID}},
        400,
        "Invalid model config ID.",
        None,
        id="unknown-model-config-id",
    ),
]


@pytest.mark.parametrize(("request_kw", "status", "message", "detail"), CREATE_REFUSALS)
async def test_create_chat_refuses_invalid_request_and_creates_nothing(
    api: Any, app: Any, request_kw: dict[str, Any], status: int, message: str, detail: Any
) -> None:
    before = await db_rows(app)
    result = await api("POST", "chats", request_kw.get("body"), raw=request_kw.get("raw"))
    assert_error(result, status, message, detail)
    assert await db_rows(app) == before
    assert await api.ok("GET", "chats") == []


async def test_create_chat_accepts_the_limits(api: Any, scripted: Any) -> None:
    """Exactly 10000 system prompt characters and 250 dynamic tools are allowed."""
    status, chat = await api(
        "POST",
        "chats",
        {
            "content": text("hello"),
            "system_prompt": "p" * 10_000,
            "unsafe_dynamic_tools": [{"name": f"t{i}"} for i in range(250)],
            "labels": {"team": "core"},
            "client_type": "ui",
        },
    )
    assert status == 201, chat
    assert chat["client_type"] == "ui"
    assert chat["labels"] == {"team": "core"}
    assert len(chat["dynamic_tools"]) == 250


# --- unknown and foreign ids -----------------------------------------------------------------

ID_ENDPOINTS = [
    pytest.param("GET", "chats/{id}", None, id="get"),
    pytest.param("PATCH", "chats/{id}", {"title": "new"}, id="patch"),
    pytest.param("GET", "chats/{id}/messages", None, id="list-messages"),
    pytest.param("POST", "chats/{id}/messages", {"content": text("hi")}, id="send"),
    pytest.param("PATCH", "chats/{id}/messages/1", {"content": text("hi")}, id="edit"),
    pytest.param("DELETE", "chats/{id}/queue/1", None, id="delete-queued"),
    pytest.param("POST", "chats/{id}/queue/1/promote", None, id="promote"),
    pytest.param("POST", "chats/{id}/interrupt", None, id="interrupt"),
    pytest.param(
        "POST",
        "chats/{id}/tool-results",
        {"results": [{"tool_call_id": "c", "output": 1}]},
        id="tool-results",
    ),
]


@pytest.mark.parametrize("chat_id", [UNKNOWN_ID, "not-a-uuid", "0"])
@pytest.mark.parametrize(("method", "path", "body"), ID_ENDPOINTS)
async def test_unknown_chat_id_is_not_found(
    api: Any, app: Any, method: str, path: str, body: Any, chat_id: str
) -> None:
    await idle_chat(api)
    before = await db_rows(app)
    code, error = await api(method, path.format(id=chat_id), body)
    assert code == 404, error
    assert error["message"] == "Chat not found."
    assert await db_rows(app) == before


@pytest.mark.parametrize("chat_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_stream_of_unknown_chat_is_refused_before_upgrade(
    jp_ws_fetch: Any, api: Any, chat_id: str
) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await jp_ws_fetch("api", "coderchat", "chats", chat_id, "stream")
    assert caught.value.code == 404
    assert caught.value.response is not None
    assert json.loads(caught.value.response.body)["message"] == "Chat not found."


async def test_stream_refuses_invalid_after_id(jp_ws_fetch: Any, api: Any) -> None:
    chat = await idle_chat(api)
    with pytest.raises(HTTPClientError) as caught:
        await jp_ws_fetch(
            "api", "coderchat", "chats", chat["id"], "stream", params={"after_id": "abc"}
        )
    assert caught.value.code == 400
    assert caught.value.response is not None
    assert json.loads(caught.value.response.body)["message"] == "Invalid after_id parameter."


async def test_message_id_of_another_chat_is_not_found(api: Any, app: Any) -> None:
    first = await idle_chat(api, "first chat")
    second = await idle_chat(api, "second chat")
    [user, _] = await api.messages(first["id"])
    before = await db_rows(app)
    result = await api(
        "PATCH", f"chats/{second['id']}/messages/{user['id']}", {"content": text("edited")}
    )
    assert_error(result, 404, "Chat message not found.", "Message does not belong to this chat.")
    assert await db_rows(app) == before


# --- message cursors -------------------------------------------------------------------------

CURSOR_REFUSALS = [
    pytest.param({"limit": 0}, "Invalid limit parameter (1-200).", id="limit-0"),
    pytest.param({"limit": 201}, "Invalid limit parameter (1-200).", id="limit-201"),
    pytest.param({"limit": "abc"}, "Invalid limit parameter (1-200).", id="limit-not-an-integer"),
    pytest.param({"limit": -1}, "Invalid limit parameter (1-200).", id="limit-negative"),
    pytest.param({"before_id": "abc"}, "Invalid before_id parameter.", id="before-id-not-int"),
    pytest.param({"before_id": 0}, "Invalid before_id parameter.", id="before-id-0"),
    pytest.param({"after_id": "x1"}, "Invalid after_id parameter.", id="after-id-not-int"),
    pytest.param({"after_id": -5}, "Invalid after_id parameter.", id="after-id-negative"),
    pytest.param(
        {"after_id": 5, "before_id": 5}, "after_id must be less than before_id.", id="equal"
    ),
    pytest.param(
        {"after_id": 9, "before_id": 3}, "after_id must be less than before_id.", id="reversed"
    ),
]


@pytest.mark.parametrize(("params", "message"), CURSOR_REFUSALS)
async def test_list_messages_refuses_invalid_cursor(
    api: Any, params: dict[str, Any], message: str
) -> None:
    chat = await idle_chat(api)
    result = await api("GET", f"chats/{chat['id']}/messages", params=params)
    assert_error(result, 400, message, ANY)
    if "less than" not in message:
        [name] = params
        assert [v["field"] for v in result[1]["validations"]] == [name]


async def test_list_messages_pages_with_has_more_in_both_directions(api: Any) -> None:
    chat = await idle_chat(api, "one")
    for word in ("two", "three"):
        await api.ok("POST", f"chats/{chat['id']}/messages", {"content": text(word)})
        await api.wait_status(chat["id"], "waiting")
    path = f"chats/{chat['id']}/messages"
    everything = await api.ok("GET", path, params={"limit": 200})
    ids = [m["id"] for m in everything["messages"]]
    assert [m["role"] for m in everything["messages"]] == ["assistant", "user"] * 3
    assert ids == sorted(ids, reverse=True)
    assert everything["has_more"] is False
    assert everything["queued_messages"] == []

    newest = await api.ok("GET", path, params={"limit": 4})
    assert [m["id"] for m in newest["messages"]] == ids[:4]
    assert newest["has_more"] is True
    older = await api.ok("GET", path, params={"limit": 4, "before_id": ids[3]})
    assert [m["id"] for m in older["messages"]] == ids[4:]
    assert older["has_more"] is False

    ascending = ids[::-1]
    forward = await api.ok("GET", path, params={"limit": 2, "after_id": ascending[0]})
    assert [m["id"] for m in forward["messages"]] == ascending[1:3]
    assert forward["has_more"] is True
    tail = await api.ok("GET", path, params={"limit": 5, "after_id": ascending[2]})
    assert [m["id"] for m in tail["messages"]] == ascending[3:]
    assert tail["has_more"] is False

    window = await api.ok("GET", path, params={"after_id": ascending[0], "before_id": ascending[4]})
    assert [m["id"] for m in window["messages"]] == [ascending[3], ascending[2], ascending[1]]
    assert window["has_more"] is False


# --- PATCH chats/{id} ------------------------------------------------------------------------

PATCH_REFUSALS = [
    pytest.param({"title": ""}, "Title cannot be empty.", None, id="empty-title"),
    pytest.param({"title": "   "}, "Title cannot be empty.", None, id="blank-title"),
    pytest.param({"title": 7}, "Title cannot be empty.", None, id="title-not-a-string"),
    pytest.param(
        {"title": "t" * 201}, "Title must be at most 200 characters.", None, id="title-201"
    ),
    pytest.param({"archived": "yes"}, "Invalid request body.", ANY, id="archived-not-bool"),
    pytest.param({"pin_order": "x"}, "Invalid request body.", ANY, id="pin-order-not-int"),
    pytest.param({"pin_order": True}, "Invalid request body.", ANY, id="pin-order-bool"),
    pytest.param({"pin_order": -1}, "Pin order must be non-negative.", None, id="pin-negative"),
    pytest.param({"labels": ["a"]}, "Invalid labels.", ANY, id="labels-as-list"),
    pytest.param({"archived": False}, "Chat is already not archived.", None, id="not-archived"),
]


@pytest.mark.parametrize(("body", "message", "detail"), PATCH_REFUSALS)
async def test_patch_chat_refuses_invalid_update_and_changes_nothing(
    api: Any, app: Any, body: dict[str, Any], message: str, detail: Any
) -> None:
    chat = await idle_chat(api)
    before = await db_rows(app)
    assert_error(await api("PATCH", f"chats/{chat['id']}", body), 400, message, detail)
    assert await db_rows(app) == before


@pytest.mark.parametrize(
    "raw",
    [pytest.param(b"{nope", id="malformed"), pytest.param(b'"title"', id="json-string")],
)
async def test_patch_chat_refuses_body_that_is_not_an_object(
    api: Any, app: Any, raw: bytes
) -> None:
    chat = await idle_chat(api)
    before = await db_rows(app)
    assert_error(await api("PATCH", f"chats/{chat['id']}", raw=raw), 400, "Invalid JSON body.", ANY)
    assert await db_rows(app) == before


@pytest.mark.parametrize(
    ("title", "stored"),
    [
        pytest.param("Renamed chat", "Renamed chat", id="plain"),
        pytest.param("  padded title  ", "padded title", id="trimmed"),
        pytest.param("t" * 200, "t" * 200, id="200-chars"),
        pytest.param("é" * 200, "é" * 200, id="200-non-ascii-chars"),
    ],
)
async def test_patch_title_sets_the_trimmed_title(api: Any, title: str, stored: str) -> None:
    chat = await idle_chat(api)
    status, body = await api("PATCH", f"chats/{chat['id']}", {"title": title})
    assert (status, body) == (204, None)
    assert (await api.ok("GET", f"chats/{chat['id']}"))["title"] == stored


# --- POST chats/{id}/messages body -----------------------------------------------------------

SEND_REFUSALS = [
    pytest.param(
        {"content": text("hi"), "busy_behavior": "later"},
        "Invalid busy_behavior value.",
        'Must be "queue" or "interrupt".',
        id="busy-behavior-later",
    ),
    pytest.param({"content": []}, "Content is required.", "Content cannot be empty.", id="empty"),
    pytest.param({"content": 3}, "Invalid input part.", ANY, id="content-number"),
    pytest.param(
        {"content": [{"type": "x"}]},
        "Invalid input part.",
        'content[0].type "x" is not supported.',
        id="unknown-part-type",
    ),
    pytest.param(
        {"content": text("hi"), "model_config_id": UNKNOWN_ID},
        "Invalid model config ID.",
        None,
        id="unknown-model-config",
    ),
]


@pytest.mark.parametrize(("body", "message", "detail"), SEND_REFUSALS)
async def test_send_message_refuses_invalid_request_and_changes_nothing(
    api: Any, app: Any, body: dict[str, Any], message: str, detail: Any
) -> None:
    chat = await idle_chat(api)
    before = await db_rows(app)
    result = await api("POST", f"chats/{chat['id']}/messages", body)
    assert_error(result, 400, message, detail)
    assert await db_rows(app) == before
    assert (await api.ok("GET", f"chats/{chat['id']}"))["status"] == "waiting"


async def test_interrupt_of_idle_chat_returns_it_unchanged(api: Any, app: Any) -> None:
    chat = await idle_chat(api)
    before = await db_rows(app)
    status, body = await api("POST", f"chats/{chat['id']}/interrupt")
    assert status == 200, body
    assert body["id"] == chat["id"]
    assert body["status"] == "waiting"
    assert await db_rows(app) == before


# --- archived chats --------------------------------------------------------------------------

ARCHIVED_REFUSALS = [
    pytest.param(
        "POST",
        "chats/{id}/messages",
        {"content": text("more")},
        "Cannot send messages to an archived chat.",
        id="send",
    ),
    pytest.param(
        "POST",
        "chats/{id}/messages",
        {"content": text("more"), "busy_behavior": "interrupt"},
        "Cannot send messages to an archived chat.",
        id="send-interrupt",
    ),
    pytest.param(
        "PATCH",
        "chats/{id}/messages/{mid}",
        {"content": text("edited")},
        "Cannot edit messages in an archived chat.",
        id="edit",
    ),
    pytest.param(
        "PATCH",
        "chats/{id}/messages/abc",
        {"content": text("edited")},
        "Cannot edit messages in an archived chat.",
        id="edit-checks-archived-before-id",
    ),
    pytest.param(
        "POST",
        "chats/{id}/queue/1/promote",
        None,
        "Cannot promote queued messages in an archived chat.",
        id="promote",
    ),
    pytest.param(
        "POST",
        "chats/{id}/tool-results",
        {"results": [{"tool_call_id": "call_1", "output": "x"}]},
        "Cannot submit tool results to an archived chat.",
        id="tool-results",
    ),
    pytest.param(
        "PATCH", "chats/{id}", {"archived": True}, "Chat is already archived.", id="archive-again"
    ),
    pytest.param("PATCH", "chats/{id}", {"pin_order": 1}, "Cannot pin an archived chat.", id="pin"),
]


@pytest.mark.parametrize(("method", "path", "body", "message"), ARCHIVED_REFUSALS)
async def test_archived_chat_refuses_changes(
    api: Any, app: Any, method: str, path: str, body: Any, message: str
) -> None:
    chat = await idle_chat(api)
    [user, _] = await api.messages(chat["id"])
    assert (await api("PATCH", f"chats/{chat['id']}", {"archived": True}))[0] == 204
    before = await db_rows(app)
    result = await api(method, path.format(id=chat["id"], mid=user["id"]), body)
    assert_error(result, 400, message, None)
    assert await db_rows(app) == before
    after = await api.ok("GET", f"chats/{chat['id']}")
    assert after["archived"] is True
    assert after["status"] == "waiting"


async def test_unarchive_restores_chat_with_its_status(api: Any) -> None:
    chat = await idle_chat(api)
    path = f"chats/{chat['id']}"
    assert (await api("PATCH", path, {"archived": True}))[0] == 204
    assert [c["id"] for c in await api.ok("GET", "chats", params={"archived": "true"})] == [
        chat["id"]
    ]
    assert await api.ok("GET", "chats", params={"archived": "false"}) == []
    assert (await api("PATCH", path, {"archived": False}))[0] == 204
    after = await api.ok("GET", path)
    assert after["archived"] is False
    assert after["status"] == chat["status"] == "waiting"
    assert [c["id"] for c in await api.ok("GET", "chats", params={"archived": "false"})] == [
        chat["id"]
    ]
    reply = await api.ok("POST", f"{path}/messages", {"content": text("again")})
    assert reply["queued"] is False
    await api.wait_status(chat["id"], "waiting")
    assert [m["role"] for m in await api.messages(chat["id"])] == ["user", "assistant"] * 2


async def test_archiving_a_running_chat_stops_it_as_waiting(api: Any, scripted: Any) -> None:
    scripted.push({"tool_calls": [{"name": "sleep", "args": {"seconds": 30}}]})
    chat = await api.ok("POST", "chats", {"content": text("sleep please")})
    await api.wait_status(chat["id"], "running")
    assert (await api("PATCH", f"chats/{chat['id']}", {"archived": True}))[0] == 204
    after = await api.ok("GET", f"chats/{chat['id']}")
    assert after["archived"] is True
    assert after["status"] == "waiting"
