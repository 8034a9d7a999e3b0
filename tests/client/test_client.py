"""The Python client and the ``coderchat`` CLI against a real Jupyter server running
coderchat_ext with the scripted model (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.client import (
    ApiError,
    AsyncChatClient,
    ChatClient,
    ServerNotFound,
    StreamItem,
    StreamMarker,
    discover_server,
)
from coderchat_ext.models import ChatStreamEvent
from tests.client.conftest import DEADLINE, text_of, wait_for_status

REPO = Path(__file__).resolve().parents[2]


# --- turns ---------------------------------------------------------------------------------


async def test_run_turn_creates_a_chat_and_returns_the_reply_with_usage(
    client: AsyncChatClient, scripted: Any
) -> None:
    scripted.push(
        {"text": "Hello there, human.", "usage": {"input_tokens": 12, "output_tokens": 5}}
    )
    seen: list[ChatStreamEvent | StreamMarker] = []

    result = await client.run_turn(None, "Say hello", on_event=seen.append, timeout=DEADLINE)

    assert result.status == "waiting"
    assert result.text == "Hello there, human."
    assert [m.role for m in result.messages] == ["user", "assistant"]
    assert result.user_message is not None
    assert text_of(result.user_message) == "Say hello"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (12, 5)
    assert result.usage.total_tokens == 17
    assert result.total_cost_micros == 12 * 3 + 5 * 15  # prices per million, in micro-dollars
    assert result.error is None
    assert not result.superseded
    streamed = "".join(
        e.message_part.part.text or ""
        for e in seen
        if isinstance(e, ChatStreamEvent)
        and e.type == "message_part"
        and e.message_part is not None
        and e.message_part.part.type == "text"
    )
    assert streamed in ("", "Hello there, human.")  # parts may predate the subscription
    chat = await client.get_chat(result.chat_id)
    assert chat.status == "waiting"
    assert chat.title == "Say hello"


async def test_run_turn_on_an_existing_chat_returns_only_the_new_turn(
    client: AsyncChatClient, scripted: Any
) -> None:
    first = await client.run_turn(None, "first question", timeout=DEADLINE)
    scripted.push({"text": "second answer"})
    seen: list[ChatStreamEvent | StreamMarker] = []

    second = await client.run_turn(
        first.chat_id, "second question", on_event=seen.append, timeout=DEADLINE
    )

    assert second.chat_id == first.chat_id
    assert second.status == "waiting"
    assert second.text == "second answer"
    assert [text_of(m) for m in second.messages] == ["second question", "second answer"]
    assert min(m.id for m in second.messages) > max(m.id for m in first.messages)
    deltas = [
        e.message_part.part.text
        for e in seen
        if isinstance(e, ChatStreamEvent) and e.message_part is not None
    ]
    assert "".join(d or "" for d in deltas) == "second answer"


async def test_two_step_turn_reports_the_tool_calls_and_results(
    client: AsyncChatClient, scripted: Any
) -> None:
    scripted.push({"tool_calls": [{"name": "echo", "args": {"text": "hi"}}]}, {"text": "done"})

    result = await client.run_turn(None, "use the echo tool", timeout=DEADLINE)

    assert result.status == "waiting"
    assert result.text == "done"
    assert [m.role for m in result.messages] == ["user", "assistant", "tool", "assistant"]
    assert [(c.tool_name, c.args) for c in result.tool_calls] == [("echo", {"text": "hi"})]
    assert [(r.tool_name, r.result) for r in result.tool_results] == [("echo", {"text": "hi"})]
    assert result.tool_results[0].tool_call_id == result.tool_calls[0].tool_call_id
    assert result.usage.input_tokens == 20  # summed over both model calls (10 each)


async def test_run_turn_reports_a_failed_turn(client: AsyncChatClient, scripted: Any) -> None:
    scripted.push({"error": {"status": 400, "message": "the prompt is malformed"}})

    result = await client.run_turn(None, "fail please", timeout=DEADLINE)

    assert result.status == "error"
    assert result.error is not None
    assert result.error.status_code == 400
    assert not result.error.retryable


async def test_run_turn_waits_for_a_queued_message_to_be_answered(
    client: AsyncChatClient, scripted: Any
) -> None:
    scripted.push(
        {"tool_calls": [{"name": "sleep", "args": {"seconds": 1}}]}, {"text": "first done"}
    )
    chat = await client.create_chat("take a nap")
    await wait_for_status(client, chat.id, "running")

    result = await client.run_turn(chat.id, "and then this", timeout=DEADLINE)

    assert result.status == "waiting"
    assert result.text == "and then this"  # the scripted model echoes once its turns run out
    assert [m.role for m in result.messages] == ["user", "assistant"]
    page = await client.list_messages(chat.id, limit=200)
    assert "first done" in [text_of(m) for m in page.messages]


async def test_run_turn_with_interrupt_stops_the_running_turn(
    client: AsyncChatClient, scripted: Any
) -> None:
    scripted.push({"tool_calls": [{"name": "sleep", "args": {"seconds": 60}}]})
    chat = await client.create_chat("take a long nap")
    await wait_for_status(client, chat.id, "running")

    result = await asyncio.wait_for(
        client.run_turn(chat.id, "wake up", busy_behavior="interrupt", timeout=DEADLINE),
        DEADLINE / 2,
    )

    assert result.status == "waiting"
    assert result.text == "wake up"
    assert result.user_message is not None
    assert text_of(result.user_message) == "wake up"


# --- errors --------------------------------------------------------------------------------


async def test_api_errors_carry_status_message_and_detail(client: AsyncChatClient) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(ApiError) as not_found:
        await client.get_chat(missing)
    assert not_found.value.status == 404
    assert not_found.value.message == "Chat not found."
    assert not_found.value.detail == f'No chat with ID "{missing}".'

    with pytest.raises(ApiError) as empty:
        await client.create_chat("")
    assert empty.value.status == 400
    assert empty.value.message == "Content is required."
    assert empty.value.detail == "Content cannot be empty."


async def test_streaming_an_unknown_chat_raises_not_found(client: AsyncChatClient) -> None:
    with pytest.raises(ApiError) as refused:
        async for _ in client.stream(str(uuid.uuid4())):
            pass
    assert refused.value.status == 404
    assert refused.value.message == "Chat not found."


# --- streams -------------------------------------------------------------------------------


async def collect_until(
    stream: Any, done: Any, on_item: Any = None, timeout: float = DEADLINE
) -> list[StreamItem]:
    """Items of ``stream`` until ``done(items)`` holds."""
    items: list[StreamItem] = []

    async def run() -> None:
        async for item in stream:
            items.append(item)
            if on_item is not None:
                on_item(item)
            if done(items):
                return

    await asyncio.wait_for(run(), timeout)
    return items


def events(items: list[StreamItem]) -> list[ChatStreamEvent]:
    return [e for item in items if not isinstance(item, StreamMarker) for e in item]


async def test_stream_reconnects_after_id_without_repeating_a_message(
    client: AsyncChatClient, scripted: Any, app: Any
) -> None:
    scripted.push(
        {"tool_calls": [{"name": "echo", "args": {"text": "a"}}]},
        {"text": "a slow final answer " * 4, "chunk_size": 4, "chunk_delay": 0.02},
    )
    chat = await client.create_chat("go")
    dropped: list[bool] = []

    def drop_after_first_tool_message(item: StreamItem) -> None:
        if dropped or isinstance(item, StreamMarker):
            return
        if any(e.message is not None and e.message.role == "tool" for e in item):
            dropped.append(True)
            app.services.hub.close_subscribers(chat.id, 4002, "test: too slow")

    def finished(items: list[StreamItem]) -> bool:
        last_assistant = [
            e for e in events(items) if e.message is not None and e.message.role == "assistant"
        ]
        return (
            len(last_assistant) == 2
            and events(items)[-1].type == "status"
            and events(items)[-1].status == "waiting"
        )

    stream = client.stream(chat.id)
    try:
        items = await collect_until(stream, finished, drop_after_first_tool_message)
    finally:
        await stream.aclose()

    markers = [i for i in items if isinstance(i, StreamMarker)]
    assert [(m.kind, m.code) for m in markers] == [("reconnect", 4002)]
    before = items[: items.index(markers[0])]
    assert markers[0].after_id == max(e.message.id for e in events(before) if e.message)
    ids = [e.message.id for e in events(items) if e.message is not None]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids)
    page = await client.list_messages(chat.id, limit=200)
    assert ids == sorted(m.id for m in page.messages)


async def test_stream_restarts_from_the_beginning_when_history_changes(
    client: AsyncChatClient,
) -> None:
    first = await client.run_turn(None, "original question", timeout=DEADLINE)
    user = first.user_message
    assert user is not None
    newest = max(m.id for m in first.messages)
    stream = client.stream(first.chat_id, after_id=newest)

    def answered_edit(items: list[StreamItem]) -> bool:
        return any(
            e.message is not None
            and e.message.role == "assistant"
            and text_of(e.message) == "edited"
            for e in events(items)
        )

    async def edit_when_connected() -> None:
        await client.edit_message(first.chat_id, user.id, "edited")

    try:
        first_frame = await asyncio.wait_for(stream.__anext__(), DEADLINE)
        assert not isinstance(first_frame, StreamMarker)
        assert [e.status for e in first_frame] == ["waiting"]
        await edit_when_connected()
        items = await collect_until(stream, answered_edit)
    finally:
        await stream.aclose()

    marker = items[0]
    assert isinstance(marker, StreamMarker)
    assert (marker.kind, marker.code, marker.after_id) == ("reset", 4001, 0)
    texts = [(e.message.role, text_of(e.message)) for e in events(items) if e.message is not None]
    assert texts == [("user", "edited"), ("assistant", "edited")]


async def test_watch_reports_a_created_chat(client: AsyncChatClient, app: Any) -> None:
    watch = client.watch()

    async def first_created() -> Any:
        async for event in watch:
            if not isinstance(event, StreamMarker) and event.kind == "created":
                return event
        return None

    waiter = asyncio.ensure_future(first_created())
    try:
        # The watch feed has no snapshot: wait until the server counts the subscriber.
        deadline = time.monotonic() + DEADLINE
        while not app.services.hub._watchers:
            assert time.monotonic() < deadline, "the watch socket never opened"
            await asyncio.sleep(0.02)
        chat = await client.create_chat("watch me")
        event = await asyncio.wait_for(waiter, DEADLINE)
    finally:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        await watch.aclose()
    assert event.chat.id == chat.id


# --- the other endpoints -------------------------------------------------------------------


async def test_chat_endpoints_round_trip(client: AsyncChatClient, scripted: Any) -> None:
    result = await client.run_turn(None, "a chat to manage", timeout=DEADLINE)
    chat_id = result.chat_id

    await client.update_chat(chat_id, title="Renamed", labels={"team": "data"})
    chat = await client.get_chat(chat_id)
    assert (chat.title, chat.labels) == ("Renamed", {"team": "data"})
    assert [c.id for c in await client.list_chats(labels={"team": "data"})] == [chat_id]
    assert [c.id for c in await client.list_chats(q="Renamed")] == [chat_id]

    titled = await client.regenerate_title(chat_id)
    assert titled.title == "a chat to manage"  # the scripted title model echoes

    interrupted = await client.interrupt(chat_id)
    assert interrupted.status == "waiting"
    with pytest.raises(ApiError) as not_waiting:
        await client.submit_tool_results(chat_id, [{"tool_call_id": "x", "output": 1}])
    assert not_waiting.value.status == 409

    await client.archive_chat(chat_id)
    assert chat_id not in [c.id for c in await client.list_chats(archived=False)]
    assert chat_id in [c.id for c in await client.list_chats(archived=True)]
    await client.unarchive_chat(chat_id)
    assert not (await client.get_chat(chat_id)).archived


async def test_queue_endpoints_round_trip(client: AsyncChatClient, scripted: Any) -> None:
    scripted.push({"tool_calls": [{"name": "sleep", "args": {"seconds": 2}}]}, {"text": "slept"})
    chat = await client.create_chat("sleep first")
    await wait_for_status(client, chat.id, "running")

    first = await client.send_message(chat.id, "queued one")
    second = await client.send_message(chat.id, "queued two")
    assert first.queued
    assert second.queued
    assert first.queued_message is not None
    assert second.queued_message is not None
    page = await client.list_messages(chat.id)
    assert [q.id for q in page.queued_messages] == [
        first.queued_message.id,
        second.queued_message.id,
    ]

    await client.delete_queued_message(chat.id, first.queued_message.id)
    promoted = await client.promote_queued_message(chat.id, second.queued_message.id)
    assert (promoted.role, text_of(promoted)) == ("user", "queued two")
    assert (await client.list_messages(chat.id)).queued_messages == []
    await wait_for_status(client, chat.id, "waiting")


async def test_settings_endpoints_round_trip(client: AsyncChatClient) -> None:
    models = await client.list_models()
    scripted_entry = next(p for p in models.providers if p.provider == "scripted")
    assert scripted_entry.available
    assert [m.model for m in scripted_entry.models] == ["scripted-1"]

    config = await client.create_model_config("scripted", "scripted-2", context_limit=8000)
    assert (config.model, config.context_limit) == ("scripted-2", 8000)
    updated = await client.update_model_config(config.id, display_name="Second")
    assert updated.display_name == "Second"
    assert "scripted-2" in [c.model for c in await client.list_model_configs()]
    await client.delete_model_config(config.id)
    assert "scripted-2" not in [c.model for c in await client.list_model_configs()]

    providers = await client.list_providers()
    assert "scripted" in [p.provider for p in providers]

    await client.set_system_prompt("Be brief.")
    assert (await client.get_system_prompt()).system_prompt == "Be brief."
    assert await client.set_user_prompt("Call me Al.") == "Call me Al."
    assert await client.get_user_prompt() == "Call me Al."
    assert await client.get_template_allowlist() == []
    advisor = await client.get_advisor_config()
    await client.set_advisor_config(advisor)
    assert await client.get_advisor_config() == advisor

    info = await client.info()
    assert info.default_model is not None
    assert info.default_model.model == "scripted-1"
    assert (await client.openapi())["openapi"].startswith("3.1")


# --- the blocking client -------------------------------------------------------------------


async def test_blocking_client_works_from_a_thread_and_inside_a_running_loop(
    base_url: str, token: str, scripted: Any, app: Any
) -> None:
    scripted.push({"text": "answer from the server"})

    def use_blocking_client() -> tuple[Any, Any, Any, Any]:
        with ChatClient(base_url, token) as chat_client:
            result = chat_client.run_turn(None, "hello from a thread", timeout=DEADLINE)
            listed = chat_client.list_chats()
            live = chat_client.stream(result.chat_id)
            snapshot = next(live)

            async def like_a_kernel_cell() -> str:
                # A kernel's thread runs an event loop; blocking calls must still work.
                return chat_client.get_chat(result.chat_id).status

            status = asyncio.run(like_a_kernel_cell())
        # Closing the client closed the open stream too.
        with pytest.raises(RuntimeError, match="closed"):
            next(live)
        return result, listed, snapshot, status

    result, listed, snapshot, status = await asyncio.wait_for(
        asyncio.to_thread(use_blocking_client), DEADLINE
    )
    deadline = time.monotonic() + DEADLINE
    while app.services.hub._subscribers:
        assert time.monotonic() < deadline, "the stream socket stayed open"
        await asyncio.sleep(0.02)
    assert result.text == "answer from the server"
    assert result.chat_id in [c.id for c in listed]
    assert not isinstance(snapshot, StreamMarker)
    assert [m.message.id for m in snapshot if m.message] == [m.id for m in result.messages]
    assert status == "waiting"


# --- discovery -----------------------------------------------------------------------------


def test_discovery_prefers_the_environment_then_the_parent_then_the_only_server() -> None:
    servers = [
        {"url": "http://127.0.0.1:1111/", "token": "one", "pid": 11},
        {"url": "http://127.0.0.1:2222/x/", "token": "two", "pid": 22},
    ]
    env = {"CODERCHAT_URL": "http://host:9/base", "CODERCHAT_TOKEN": "t"}
    assert discover_server(env, servers).url == "http://host:9/base/"
    assert discover_server(env, servers).token == "t"

    by_parent = discover_server({"JPY_PARENT_PID": "22"}, servers)
    assert (by_parent.url, by_parent.token, by_parent.source) == (
        "http://127.0.0.1:2222/x/",
        "two",
        "parent",
    )
    only = discover_server({}, servers[:1])
    assert (only.url, only.source) == ("http://127.0.0.1:1111/", "single")
    with pytest.raises(ServerNotFound, match="2 Jupyter servers"):
        discover_server({}, servers)
    with pytest.raises(ServerNotFound, match="CODERCHAT_URL"):
        discover_server({}, [])


# --- the CLI -------------------------------------------------------------------------------


async def run_cli(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODERCHAT_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coderchat_ext.cli",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), DEADLINE)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_chat_streams_the_reply_and_exits_zero(
    base_url: str, token: str, scripted: Any
) -> None:
    code, out, err = await run_cli("chat", "--url", base_url, "--token", token, "hello")

    assert code == 0, err
    assert out == "hello\n"  # the scripted model echoes the message
    assert err.startswith("chat: ")


async def test_cli_chat_shows_tool_calls_and_continues_a_chat(
    client: AsyncChatClient, base_url: str, token: str, scripted: Any
) -> None:
    first = await client.run_turn(None, "start", timeout=DEADLINE)
    scripted.push({"tool_calls": [{"name": "echo", "args": {"text": "hi"}}]}, {"text": "done"})

    code, out, err = await run_cli(
        "chat", "--url", base_url, "--token", token, "--chat", first.chat_id, "use", "echo"
    )

    assert code == 0, err
    assert out.splitlines() == [
        '[tool call] echo {"text": "hi"}',
        '[tool result] echo: {"text": "hi"}',
        "done",
    ]
    assert err == ""
    page = await client.list_messages(first.chat_id, limit=200)
    assert "use echo" in [text_of(m) for m in page.messages]


async def test_cli_chat_exits_one_when_the_turn_fails(
    base_url: str, token: str, scripted: Any
) -> None:
    scripted.push({"error": {"status": 400, "message": "the prompt is malformed"}})

    code, _, err = await run_cli("chat", "--url", base_url, "--token", token, "hello")

    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("coderchat: error:")]
    assert len(errors) == 1
    assert "[HTTP 400]" in errors[0]


async def test_cli_lists_chats_and_models(
    client: AsyncChatClient, base_url: str, token: str
) -> None:
    chat = (await client.run_turn(None, "list me", timeout=DEADLINE)).chat_id

    code, out, err = await run_cli("chats", "--url", base_url, "--token", token)
    assert code == 0, err
    assert f"{chat}  waiting          list me" in out.splitlines()

    code, out, err = await run_cli("models", "--url", base_url, "--token", token)
    assert code == 0, err
    assert "scripted-1" in out


async def test_cli_reports_api_errors(base_url: str, token: str) -> None:
    code, _, err = await run_cli(
        "chat", "--url", base_url, "--token", token, "--chat", str(uuid.uuid4()), "hi"
    )
    assert code == 1
    assert "404: Chat not found." in err


async def test_cli_serve_starts_a_server_the_chat_command_can_use(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text('{"default": {"text": "served by the scripted model"}}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODERCHAT_")}
    for name in ("RUNTIME", "CONFIG", "DATA"):
        env[f"JUPYTER_{name}_DIR"] = str(tmp_path / name.lower())
    argv = ["serve", "--port", "0", "--db", str(tmp_path / "chat.db"), "--token", "secret"]
    argv += ["--scripted-model", str(script), f"--ServerApp.root_dir={tmp_path}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    with (tmp_path / "serve.log").open("wb") as log:
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coderchat_ext.cli",
            *argv,
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        try:
            assert server.stdout is not None
            line = (await asyncio.wait_for(server.stdout.readline(), DEADLINE)).decode()
            assert line.startswith("coderchat serving at http"), line
            url = line.split(" at ", 1)[1].strip().split("?", 1)[0]
            assert line.strip().endswith("?token=secret")

            code, out, err = await run_cli(
                "chat", "--url", url, "--token", "secret", "--model", "scripted-1", "hi"
            )
            assert code == 0, err
            assert out == "served by the scripted model\n"
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), DEADLINE)
    assert "Shutting down 1 extension" in (tmp_path / "serve.log").read_text()
