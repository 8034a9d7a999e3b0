"""The stream hub and the chat stream WebSocket (docs/stream-protocol.md): batching, the connect
snapshot, ``after_id`` reconnects without gaps or duplicates, the part buffer."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from coderchat_ext.chatd.pubsub import MemoryPubSub
from coderchat_ext.chatd.stream import (
    CLOSE_HISTORY_CHANGED,
    CLOSE_TOO_SLOW,
    MAX_BATCH,
    PART_BUFFER_CAP,
    SUBSCRIBER_QUEUE_CAP,
    StreamClosed,
    StreamHub,
)


def part(text: str) -> dict[str, Any]:
    return {
        "type": "message_part",
        "chat_id": "c",
        "message_part": {"role": "assistant", "part": {"type": "text", "text": text}},
    }


def message(message_id: int) -> dict[str, Any]:
    return {"type": "message", "chat_id": "c", "message": {"id": message_id}}


async def test_batches_hold_at_most_256_events() -> None:
    hub = StreamHub(MemoryPubSub())
    sub = hub.subscribe("c")
    for i in range(600):
        hub.publish("c", part(str(i)))
    sizes = [len(await sub.next_batch()) for _ in range(3)]
    assert sizes == [MAX_BATCH, MAX_BATCH, 600 - 2 * MAX_BATCH]


async def test_part_buffer_keeps_the_newest_parts_and_clears_on_retry() -> None:
    hub = StreamHub(MemoryPubSub())
    hub.publish("c", part("dropped: not buffering"))
    hub.start_buffering("c")
    for i in range(PART_BUFFER_CAP + 5):
        hub.publish("c", part(str(i)))
    sub = hub.subscribe("c")
    _, parts = hub.take_in_flight("c", sub)
    assert len(parts) == PART_BUFFER_CAP
    assert parts[0]["message_part"]["part"]["text"] == "5"
    hub.clear_parts("c")
    assert hub.take_in_flight("c", sub)[1] == []


async def test_message_ids_are_never_delivered_twice() -> None:
    hub = StreamHub(MemoryPubSub())
    sub = hub.subscribe("c")
    sub.last_message_id = 2
    for mid in (1, 2, 3, 3, 4):
        hub.publish("c", message(mid))
    batch = await sub.next_batch()
    assert [e["message"]["id"] for e in batch] == [3, 4]


async def test_a_subscriber_that_falls_behind_is_closed_not_silently_skipped() -> None:
    hub = StreamHub(MemoryPubSub())
    sub = hub.subscribe("c")
    for i in range(SUBSCRIBER_QUEUE_CAP + 1):
        hub.publish("c", part(str(i)))
    assert sub.closed
    drained: list[dict[str, Any]] = []

    async def drain() -> None:
        while True:
            drained.extend(await sub.next_batch())

    with pytest.raises(StreamClosed) as closed:
        await drain()
    assert closed.value.code == CLOSE_TOO_SLOW
    assert len(drained) == SUBSCRIBER_QUEUE_CAP


async def read_until(ws: Any, predicate: Any, timeout: float = 10) -> list[dict[str, Any]]:
    """Read frames until ``predicate(events_so_far)``; every frame must be a JSON array."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not predicate(events):
        frame = await asyncio.wait_for(ws.read_message(), max(0.01, deadline - time.monotonic()))
        assert frame is not None, "socket closed"
        batch = json.loads(frame)
        assert isinstance(batch, list)
        assert 0 < len(batch) <= MAX_BATCH
        events.extend(batch)
    return events


def final_status(events: list[dict[str, Any]], status: str = "waiting") -> bool:
    statuses = [e["status"] for e in events if e["type"] == "status"]
    return bool(statuses) and statuses[-1] == status and "running" in statuses


async def stream(jp_ws_fetch: Any, chat_id: str, after_id: int = 0) -> Any:
    return await jp_ws_fetch(
        "api", "coderchat", "chats", chat_id, "stream", params={"after_id": str(after_id)}
    )


async def test_stream_shows_a_turn_live_then_persisted(
    api: Any, scripted: Any, jp_ws_fetch: Any
) -> None:
    scripted.push(
        {"text": "streamed reply", "chunk_size": 3, "delay_first": 0.3}, {"text": "second turn"}
    )
    chat = await api.ok("POST", "chats", {"content": "hi"})
    ws = await stream(jp_ws_fetch, chat["id"])
    events = await read_until(ws, final_status)
    assert events[0]["type"] == "status"
    texts = [e["message_part"]["part"]["text"] for e in events if e["type"] == "message_part"]
    assert "".join(texts) == "streamed reply"
    messages = [e["message"] for e in events if e["type"] == "message"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    first_assistant = next(
        i
        for i, e in enumerate(events)
        if e["type"] == "message" and e["message"]["role"] == "assistant"
    )
    first_part = next(i for i, e in enumerate(events) if e["type"] == "message_part")
    assert first_part < first_assistant
    ws.close()


async def test_reconnect_with_after_id_has_no_gaps_and_no_duplicates(
    api: Any, scripted: Any, jp_ws_fetch: Any
) -> None:
    scripted.push(
        {"tool_calls": [{"id": "s1", "name": "sleep", "args": {"seconds": 0.5}}]},
        {"tool_calls": [{"id": "s2", "name": "echo", "args": {"text": "x"}}]},
        {"text": "done", "chunk_size": 1, "chunk_delay": 0.01},
    )
    chat = await api.ok("POST", "chats", {"content": "work"})
    ws = await stream(jp_ws_fetch, chat["id"])
    first = await read_until(
        ws,
        lambda ev: any(e["type"] == "message" and e["message"]["role"] == "assistant" for e in ev),
    )
    ws.close()
    seen = [e["message"]["id"] for e in first if e["type"] == "message"]
    ws = await stream(jp_ws_fetch, chat["id"], after_id=max(seen))
    rest = await read_until(ws, final_status)
    ws.close()
    again = [e["message"]["id"] for e in rest if e["type"] == "message"]
    assert not set(seen) & set(again)
    everything = [m["id"] for m in await api.messages(chat["id"])]
    assert sorted(seen + again) == everything


async def test_connect_snapshot_replays_history_and_queue(
    api: Any, scripted: Any, jp_ws_fetch: Any
) -> None:
    scripted.push({"tool_calls": [{"id": "s", "name": "sleep", "args": {"seconds": 30}}]})
    chat = await api.ok("POST", "chats", {"content": "long job"})
    await api.wait_status(chat["id"], "running")
    await api.ok("POST", f"chats/{chat['id']}/messages", {"content": "later"})
    ws = await stream(jp_ws_fetch, chat["id"])
    snapshot = await read_until(ws, lambda ev: any(e["type"] == "queue_update" for e in ev))
    ws.close()
    assert snapshot[0] == {"type": "status", "chat_id": chat["id"], "status": "running"}
    assert snapshot[1]["type"] == "message"
    assert snapshot[1]["message"]["role"] == "user"
    assert snapshot[-1]["queued_messages"][0]["content"][0]["text"] == "later"
    await api.ok("POST", f"chats/{chat['id']}/interrupt")


async def test_an_edit_closes_streams_so_clients_reload(
    api: Any, scripted: Any, jp_ws_fetch: Any
) -> None:
    chat = await api.ok("POST", "chats", {"content": "original"})
    await api.wait_status(chat["id"], "waiting")
    ws = await stream(jp_ws_fetch, chat["id"])
    await read_until(ws, lambda ev: len(ev) >= 3)
    user = (await api.messages(chat["id"]))[0]
    await api.ok("PATCH", f"chats/{chat['id']}/messages/{user['id']}", {"content": "edited"})
    deadline = time.monotonic() + 5
    while await asyncio.wait_for(ws.read_message(), deadline - time.monotonic()) is not None:
        pass
    assert ws.close_code == CLOSE_HISTORY_CHANGED
    await api.wait_status(chat["id"], "waiting")
    texts = [m["content"][0]["text"] for m in await api.messages(chat["id"])]
    assert texts == ["edited", "edited"]
