"""The daemon: interrupts keep partial work, shutdown leaves chats pending and a restart resumes
them, stale recovery, heartbeat ownership, two daemons on one database, titles and the watch
feed (docs/status-machine.md, docs/loop.md#titles)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from coderchat_ext.chatd.daemon import ChatDaemon, DaemonConfig
from coderchat_ext.chatd.pubsub import MemoryPubSub
from coderchat_ext.chatd.service import Actor, ChatService
from coderchat_ext.chatd.stream import StreamHub
from coderchat_ext.models import ChatModelCallConfig, CreateChatRequest
from coderchat_ext.providers.registry import ProviderCatalog
from coderchat_ext.providers.scripted import ScriptedModel
from coderchat_ext.store import Database
from coderchat_ext.store import chats as store_chats
from coderchat_ext.store import configs as store_configs
from coderchat_ext.store import models_config as store_models
from coderchat_ext.store.secrets import SecretBox
from coderchat_ext.tools.base import ToolRegistry
from coderchat_ext.tools.testing import testing_tools
from tests.helpers import wait_for


async def test_interrupt_mid_stream_keeps_the_partial_text(api: Any, scripted: Any) -> None:
    scripted.push(
        {"reasoning": "thinking hard", "text": "word " * 200, "chunk_size": 5, "chunk_delay": 0.02}
    )
    chat = await api.ok("POST", "chats", {"content": "write a lot"})
    await api.wait_status(chat["id"], "running")
    await asyncio.sleep(0.3)  # let some text stream before interrupting
    interrupted = await api.ok("POST", f"chats/{chat['id']}/interrupt")
    assert interrupted["status"] == "waiting"
    messages = await api.messages(chat["id"])
    assert [m["role"] for m in messages] == ["user", "assistant"]
    parts = messages[1]["content"]
    assert parts[0] == {
        "type": "reasoning",
        "text": "thinking hard",
        "signature": parts[0]["signature"],
    }
    text = parts[1]["text"]
    assert text.startswith("word word")
    assert len(text) < len("word " * 200)
    chat_now = await api.ok("GET", f"chats/{chat['id']}")
    assert chat_now.get("last_error") is None


async def test_interrupt_during_tools_gives_unanswered_calls_the_synthetic_result(
    api: Any, scripted: Any
) -> None:
    scripted.push(
        {
            "tool_calls": [
                {"id": "fast", "name": "echo", "args": {"text": "x"}},
                {"id": "slow", "name": "sleep", "args": {"seconds": 30}},
            ]
        }
    )
    chat = await api.ok("POST", "chats", {"content": "go"})

    async def sleeping() -> bool:
        return bool(scripted.requests)

    await wait_for(sleeping, "sleeping")
    await asyncio.sleep(0.2)
    await api.ok("POST", f"chats/{chat['id']}/interrupt")
    messages = await api.messages(chat["id"])
    results = {
        m["content"][0]["tool_call_id"]: m["content"][0] for m in messages if m["role"] == "tool"
    }
    assert results["fast"]["result"] == {"text": "x"}
    assert results["slow"]["result"] == "tool call was interrupted before it produced a result"
    assert results["slow"]["is_error"] is True
    assert (await api.ok("GET", f"chats/{chat['id']}"))["status"] == "waiting"


def make_daemon(db: Database, tmp: Path, model: ScriptedModel, **config: Any) -> ChatDaemon:
    catalog = ProviderCatalog(
        db,
        SecretBox(tmp / "key"),
        configured={"scripted": {}},
        extra_providers=("scripted",),
        environ={},
    )
    titles = ScriptedModel()
    catalog.factories["scripted"] = lambda c, r, purpose: titles if purpose == "title" else model
    return ChatDaemon(
        db,
        StreamHub(MemoryPubSub()),
        catalog,
        ToolRegistry(testing_tools()),
        DaemonConfig(acquire_interval=0.02, **config),
    )


async def seed(db: Database) -> None:
    async with db.tx() as conn:
        await store_configs.sync_organizations(conn, {})
        await store_models.insert_model_config(
            conn,
            provider="scripted",
            model="s",
            display_name="s",
            enabled=True,
            is_default=True,
            context_limit=1000,
            compression_threshold=70,
            options=ChatModelCallConfig(),
            created_by=None,
        )


async def status_of(db: Database, chat_id: str) -> str:
    async with db.read() as conn:
        chat = await store_chats.get_chat(conn, chat_id)
    assert chat is not None
    return chat.status


async def test_shutdown_leaves_the_chat_pending_and_the_next_start_resumes_it(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "chat.db")
    await db.open()
    await seed(db)
    model = ScriptedModel(
        {
            "turns": [
                {"tool_calls": [{"id": "a", "name": "echo", "args": {"text": "1"}}]},
                {"tool_calls": [{"id": "b", "name": "sleep", "args": {"seconds": 30}}]},
            ]
        }
    )
    first = make_daemon(db, tmp_path, model)
    await first.start()
    chat = await ChatService(db, first).create_chat(
        Actor("u"), CreateChatRequest.model_validate({"content": "go"})
    )

    async def second_step_running() -> bool:
        return len(model.requests) == 2

    await wait_for(second_step_running, "second step running")
    await first.stop()
    assert await status_of(db, chat.id) == "pending"
    await db.close()

    db = Database(tmp_path / "chat.db")
    await db.open()
    resumed = ScriptedModel({"turns": [{"text": "resumed and finished"}]})
    second = make_daemon(db, tmp_path, resumed)
    await second.start()

    async def finished() -> bool:
        return await status_of(db, chat.id) == "waiting"

    await wait_for(finished, "finished")
    await second.stop()
    async with db.read() as conn:
        from coderchat_ext.store import messages as store_messages

        history = await store_messages.list_visible(conn, chat.id)
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[-1].content[0].text == "resumed and finished"
    # The resumed step saw the first, completed step; the cut-off step was redone, not kept.
    assert [m.role for m in resumed.requests[0].messages][-2:] == ["assistant", "tool"]
    await db.close()


async def test_stale_running_chats_become_pending_and_run_again(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db")
    await db.open()
    await seed(db)
    idle = make_daemon(db, tmp_path, ScriptedModel())
    chat = await ChatService(db, idle).create_chat(
        Actor("u"), CreateChatRequest.model_validate({"content": "hello"})
    )
    async with db.tx() as conn:
        await conn.execute(
            "UPDATE chats SET status = 'running', worker_id = 'dead-worker',"
            " heartbeat_at = '2020-01-01T00:00:00.000000Z' WHERE id = ?",
            (chat.id,),
        )
    model = ScriptedModel({"turns": [{"text": "recovered"}]})
    daemon = make_daemon(db, tmp_path, model)
    await daemon.start()  # stale recovery runs at start

    async def done() -> bool:
        return await status_of(db, chat.id) == "waiting"

    await wait_for(done, "done")
    await daemon.stop()
    await db.close()


async def test_two_daemons_on_one_database_never_run_the_same_chat(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    db_a, db_b = Database(path), Database(path)
    await db_a.open()
    await db_b.open()
    await seed(db_a)
    model_a = ScriptedModel({"default": {"text": "a", "chunk_delay": 0.001}})
    model_b = ScriptedModel({"default": {"text": "b", "chunk_delay": 0.001}})
    daemon_a = make_daemon(db_a, tmp_path, model_a, max_chats_per_acquire=3)
    daemon_b = make_daemon(db_b, tmp_path, model_b, max_chats_per_acquire=3)
    service = ChatService(db_a, daemon_a)
    chat_ids = [
        (await service.create_chat(Actor("u"), CreateChatRequest(content=f"chat {i}"))).id
        for i in range(30)
    ]
    await asyncio.gather(daemon_a.start(), daemon_b.start())

    async def all_done() -> bool:
        async with db_a.read() as conn:
            count = await conn.fetchval("SELECT COUNT(*) FROM chats WHERE status = 'waiting'")
        return count == len(chat_ids)

    await wait_for(all_done, "all done", timeout=20)
    await asyncio.gather(daemon_a.stop(), daemon_b.stop())
    # One model call per chat in total: no chat was run by both daemons.
    assert len(model_a.requests) + len(model_b.requests) == len(chat_ids)
    async with db_a.read() as conn:
        replies = await conn.fetchval("SELECT COUNT(*) FROM chat_messages WHERE role = 'assistant'")
    assert replies == len(chat_ids)
    await db_a.close()
    await db_b.close()


async def test_heartbeat_interrupts_a_run_this_worker_no_longer_owns(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db")
    await db.open()
    await seed(db)
    model = ScriptedModel(
        {"turns": [{"tool_calls": [{"id": "s", "name": "sleep", "args": {"seconds": 30}}]}]}
    )
    daemon = make_daemon(db, tmp_path, model)
    await daemon.start()
    chat = await ChatService(db, daemon).create_chat(
        Actor("u"), CreateChatRequest.model_validate({"content": "go"})
    )

    async def running() -> bool:
        return bool(model.requests)

    await wait_for(running, "running")
    async with db.tx() as conn:
        await conn.execute("UPDATE chats SET worker_id = 'someone-else' WHERE id = ?", (chat.id,))
    await daemon.heartbeat()

    async def stopped() -> bool:
        return not daemon.is_running(chat.id)

    await wait_for(stopped, "stopped", timeout=5)
    assert await status_of(db, chat.id) == "running"  # left to its new owner
    await daemon.stop()
    await db.close()


async def test_title_starts_as_six_words_then_an_llm_title_arrives_on_the_watch_feed(
    api: Any, jp_ws_fetch: Any
) -> None:
    watch = await jp_ws_fetch("api", "coderchat", "chats", "watch")
    text = "please refactor the parser module into smaller functions"
    chat = await api.ok("POST", "chats", {"content": text})
    assert chat["title"] == "please refactor the parser module into…"
    kinds = []
    deadline = time.monotonic() + 10
    while True:
        frame = await asyncio.wait_for(watch.read_message(), deadline - time.monotonic())
        event = json.loads(frame)
        assert event["chat"]["id"] == chat["id"]
        kinds.append(event["kind"])
        if event["kind"] == "title_change":
            break
    watch.close()
    assert kinds[0] == "created"
    assert "status_change" in kinds
    # The scripted title model echoes the message (eight words: accepted as a title).
    assert event["chat"]["title"] == text
    assert (await api.ok("GET", f"chats/{chat['id']}"))["title"] == text
