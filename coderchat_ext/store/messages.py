"""Chat messages and the per-chat message queue (docs/data-model.md#messages,
docs/data-model.md#queued-messages, docs/data-model.md#visibility)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from ..models import (
    ChatMessage,
    ChatMessagePart,
    ChatMessageUsage,
    ChatQueuedMessage,
    MessageRole,
    Visibility,
    utcnow,
)
from .db import Conn, row_data

MAX_QUEUE_SIZE = 20
"""At most this many queued messages per chat (``MaxQueueSize``,
docs/data-model.md#queued-messages)."""

_USAGE_FIELDS = tuple(ChatMessageUsage.model_fields)


@dataclass
class NewMessage:
    """A message to insert; ``usage`` zeros are stored as NULL."""

    role: MessageRole
    content: list[ChatMessagePart]
    visibility: Visibility = "both"
    created_by: str | None = None
    model_config_id: str | None = None
    usage: ChatMessageUsage | None = None
    total_cost_micros: int | None = None
    runtime_ms: int | None = None
    provider_response_id: str | None = None
    compressed: bool = False
    created_at: str = field(default_factory=utcnow)


def dump_parts(parts: Sequence[ChatMessagePart]) -> str:
    """Parts as the JSON text stored in ``content`` (stream-only deltas never stored)."""
    return json.dumps(
        [
            p.model_dump(mode="json", exclude_none=True, exclude={"args_delta", "result_delta"})
            for p in parts
        ],
        separators=(",", ":"),
    )


def load_parts(text: str) -> list[ChatMessagePart]:
    return [ChatMessagePart.model_validate(p) for p in json.loads(text)]


def message_from_row(row: aiosqlite.Row) -> ChatMessage:
    """A ``chat_messages`` row as a :class:`ChatMessage`; the usage columns (zeros stored as
    NULL) make its ``usage``, None when all are NULL."""
    data = row_data(row, "content")
    data["usage"] = {k: data[k] for k in _USAGE_FIELDS if data[k]} or None
    return ChatMessage.model_validate(data)


async def insert_messages(
    conn: Conn, chat_id: str, messages: Sequence[NewMessage]
) -> list[ChatMessage]:
    """Insert messages in order and return them with their ids.

    Like Coder's ``InsertChatMessages``, a message whose ``model_config_id`` differs from the
    chat's ``last_model_config_id`` updates it; the chat's ``updated_at`` is bumped.
    """
    out: list[ChatMessage] = []
    last_config: str | None = None
    for m in messages:
        usage = m.usage.model_dump() if m.usage else {}
        values: list[Any] = [
            chat_id,
            m.created_by,
            m.model_config_id,
            m.created_at,
            m.role,
            dump_parts(m.content),
            m.visibility,
            *[usage.get(k) or None for k in _USAGE_FIELDS],
            int(m.compressed),
            m.total_cost_micros,
            m.runtime_ms,
            m.provider_response_id,
        ]
        rowid = await conn.execute(
            "INSERT INTO chat_messages (chat_id, created_by, model_config_id, created_at, role,"
            " content, visibility, input_tokens, output_tokens, total_tokens, reasoning_tokens,"
            " cache_creation_tokens, cache_read_tokens, context_limit, compressed,"
            " total_cost_micros, runtime_ms, provider_response_id)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            values,
        )
        out.append(
            ChatMessage(
                id=rowid,
                chat_id=chat_id,
                created_by=m.created_by,
                model_config_id=m.model_config_id,
                created_at=m.created_at,
                role=m.role,
                content=[
                    p.model_copy(update={"args_delta": None, "result_delta": None})
                    for p in m.content
                ],
                visibility=m.visibility,
                usage=m.usage if usage and any(usage.values()) else None,
                total_cost_micros=m.total_cost_micros,
                runtime_ms=m.runtime_ms,
                provider_response_id=m.provider_response_id,
            )
        )
        if m.model_config_id:
            last_config = m.model_config_id
    if out:
        if last_config:
            await conn.execute(
                "UPDATE chats SET updated_at = ?, last_model_config_id = ? WHERE id = ?",
                (utcnow(), last_config, chat_id),
            )
        else:
            await conn.execute("UPDATE chats SET updated_at = ? WHERE id = ?", (utcnow(), chat_id))
    return out


async def insert_user_message(
    conn: Conn,
    chat_id: str,
    content: list[ChatMessagePart],
    *,
    created_by: str | None,
    model_config_id: str | None,
) -> ChatMessage:
    """Insert one user message (a sent, edited or promoted message) and return it; the chat is
    updated as by :func:`insert_messages`."""
    [message] = await insert_messages(
        conn,
        chat_id,
        [
            NewMessage(
                role="user",
                content=content,
                created_by=created_by,
                model_config_id=model_config_id,
            )
        ],
    )
    return message


async def list_visible(
    conn: Conn,
    chat_id: str,
    *,
    after_id: int | None = None,
    before_id: int | None = None,
    limit: int | None = None,
) -> list[ChatMessage]:
    """Messages the UI sees (visibility ``user``/``both``, not deleted;
    docs/data-model.md#visibility).

    With only ``after_id`` (or no cursor and no limit) the order is ascending by id; otherwise
    descending. ``limit`` None means all.
    """
    where = ["chat_id = ?", "deleted = 0", "visibility IN ('user', 'both')"]
    params: list[Any] = [chat_id]
    if after_id is not None:
        where.append("id > ?")
        params.append(after_id)
    if before_id is not None:
        where.append("id < ?")
        params.append(before_id)
    ascending = before_id is None and (after_id is not None or limit is None)
    sql = (
        f"SELECT * FROM chat_messages WHERE {' AND '.join(where)}"
        f" ORDER BY id {'ASC' if ascending else 'DESC'}"
    )
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [message_from_row(r) for r in await conn.fetchall(sql, params)]


async def list_for_prompt(conn: Conn, chat_id: str) -> list[ChatMessage]:
    """The messages sent to the model (docs/data-model.md#visibility).

    Without compaction: every non-deleted message with visibility ``model``/``both``. After
    compaction: every non-compressed system message, the newest compressed ``model`` message
    (the summary) and the non-compressed messages after it.
    """
    summary_id = await conn.fetchval(
        "SELECT MAX(id) FROM chat_messages WHERE chat_id = ? AND deleted = 0"
        " AND compressed = 1 AND visibility = 'model'",
        (chat_id,),
    )
    if summary_id is None:
        rows = await conn.fetchall(
            "SELECT * FROM chat_messages WHERE chat_id = ? AND deleted = 0"
            " AND visibility IN ('model', 'both') ORDER BY created_at, id",
            (chat_id,),
        )
    else:
        rows = await conn.fetchall(
            "SELECT * FROM chat_messages WHERE chat_id = ? AND deleted = 0"
            " AND visibility IN ('model', 'both') AND ("
            "  (role = 'system' AND compressed = 0) OR id = ? OR (id > ? AND compressed = 0))"
            " ORDER BY created_at, id",
            (chat_id, summary_id, summary_id),
        )
    return [message_from_row(r) for r in rows]


async def get_message(conn: Conn, chat_id: str, message_id: int) -> ChatMessage | None:
    row = await conn.fetchone(
        "SELECT * FROM chat_messages WHERE chat_id = ? AND id = ? AND deleted = 0",
        (chat_id, message_id),
    )
    return None if row is None else message_from_row(row)


async def last_assistant(conn: Conn, chat_id: str) -> ChatMessage | None:
    row = await conn.fetchone(
        "SELECT * FROM chat_messages WHERE chat_id = ? AND deleted = 0 AND role = 'assistant'"
        " ORDER BY id DESC LIMIT 1",
        (chat_id,),
    )
    return None if row is None else message_from_row(row)


async def latest_context(conn: Conn, chat_id: str) -> list[ChatMessagePart] | None:
    """The parts of the chat's newest workspace-context message (``context-file`` and
    ``skill`` parts, docs/workspaces.md#context-files-and-skills); None when there is none."""
    row = await conn.fetchone(
        "SELECT content FROM chat_messages WHERE chat_id = ? AND deleted = 0 AND role = 'user'"
        """ AND (content LIKE '%"type":"context-file"%' OR content LIKE '%"type":"skill"%')"""
        " ORDER BY id DESC LIMIT 1",
        (chat_id,),
    )
    return None if row is None else load_parts(row["content"])


async def messages_after(conn: Conn, chat_id: str, message_id: int) -> list[ChatMessage]:
    rows = await conn.fetchall(
        "SELECT * FROM chat_messages WHERE chat_id = ? AND deleted = 0 AND id > ? ORDER BY id",
        (chat_id, message_id),
    )
    return [message_from_row(r) for r in rows]


async def soft_delete_from(conn: Conn, chat_id: str, message_id: int) -> None:
    """Soft-delete a message and every message after it (an edit,
    docs/status-machine.md#transitions)."""
    await conn.execute(
        "UPDATE chat_messages SET deleted = 1 WHERE chat_id = ? AND id >= ?",
        (chat_id, message_id),
    )


async def max_message_id(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT COALESCE(MAX(id), 0) FROM chat_messages") or 0)


# --- queue -------------------------------------------------------------------------------


def _queued_from_row(row: aiosqlite.Row) -> ChatQueuedMessage:
    return ChatQueuedMessage.model_validate(row_data(row, "content"))


async def list_queue(conn: Conn, chat_id: str) -> list[ChatQueuedMessage]:
    rows = await conn.fetchall(
        "SELECT * FROM chat_queued_messages WHERE chat_id = ? ORDER BY id", (chat_id,)
    )
    return [_queued_from_row(r) for r in rows]


async def queue_size(conn: Conn, chat_id: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT COUNT(*) FROM chat_queued_messages WHERE chat_id = ?", (chat_id,)
        )
    )


async def enqueue(
    conn: Conn, chat_id: str, content: list[ChatMessagePart], model_config_id: str | None
) -> ChatQueuedMessage:
    now = utcnow()
    rowid = await conn.execute(
        "INSERT INTO chat_queued_messages (chat_id, content, model_config_id, created_at)"
        " VALUES (?, ?, ?, ?)",
        (chat_id, dump_parts(content), model_config_id, now),
    )
    return ChatQueuedMessage(
        id=rowid,
        chat_id=chat_id,
        model_config_id=model_config_id,
        content=content,
        created_at=now,
    )


async def take_queued(
    conn: Conn, chat_id: str, queued_id: int | None = None
) -> ChatQueuedMessage | None:
    """Remove and return one queued message: ``queued_id``, or the oldest (FIFO) when None."""
    if queued_id is None:
        row = await conn.fetchone(
            "SELECT * FROM chat_queued_messages WHERE chat_id = ? ORDER BY id LIMIT 1",
            (chat_id,),
        )
    else:
        row = await conn.fetchone(
            "SELECT * FROM chat_queued_messages WHERE chat_id = ? AND id = ?",
            (chat_id, queued_id),
        )
    if row is None:
        return None
    await conn.execute("DELETE FROM chat_queued_messages WHERE id = ?", (row["id"],))
    return _queued_from_row(row)


async def clear_queue(conn: Conn, chat_id: str) -> None:
    await conn.execute("DELETE FROM chat_queued_messages WHERE chat_id = ?", (chat_id,))
