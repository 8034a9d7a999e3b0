"""The ``chats`` table: creation, reads, listing, status transitions, ownership
(docs/data-model.md#chats, docs/status-machine.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiosqlite

from ..models import Chat, ChatError, ChatStatus, DynamicTool, utcnow
from .db import Conn, row_data

_HAS_UNREAD = (
    "(SELECT MAX(m.id) FROM chat_messages m WHERE m.chat_id = c.id AND m.deleted = 0"
    " AND m.role = 'assistant') AS last_assistant_id"
)
_SELECT = f"SELECT c.*, {_HAS_UNREAD} FROM chats c"

# Columns a PATCH or the daemon may set through update_chat().
_UPDATABLE = {
    "title",
    "archived",
    "workspace_id",
    "build_id",
    "agent_id",
    "pin_order",
    "labels",
    "last_read_message_id",
    "last_model_config_id",
    "last_injected_context",
    "status",
    "last_error",
}


def chat_from_row(row: aiosqlite.Row) -> Chat:
    """A ``chats`` row (with ``last_assistant_id`` when selected through ``_SELECT``, for
    ``has_unread``) as a :class:`Chat`."""
    data = row_data(row, "labels", "dynamic_tools", "last_error", "last_injected_context")
    data["labels"] = data["labels"] or {}
    last_assistant = data.get("last_assistant_id")
    data["has_unread"] = bool(
        last_assistant and last_assistant > (data["last_read_message_id"] or 0)
    )
    return Chat.model_validate(data)


async def insert_chat(
    conn: Conn,
    *,
    chat_id: str,
    organization_id: str,
    owner: str,
    title: str,
    model_config_id: str,
    status: ChatStatus = "pending",
    workspace_id: str | None = None,
    parent_chat_id: str | None = None,
    root_chat_id: str | None = None,
    mode: str | None = None,
    client_type: str = "api",
    labels: dict[str, str] | None = None,
    dynamic_tools: Sequence[DynamicTool] | None = None,
) -> None:
    now = utcnow()
    await conn.execute(
        "INSERT INTO chats (id, organization_id, owner, workspace_id, parent_chat_id,"
        " root_chat_id, last_model_config_id, title, status, created_at, updated_at, mode,"
        " client_type, labels, dynamic_tools) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            chat_id,
            organization_id,
            owner,
            workspace_id,
            parent_chat_id,
            root_chat_id,
            model_config_id,
            title,
            status,
            now,
            now,
            mode,
            client_type,
            json.dumps(labels or {}),
            json.dumps([t.dump() for t in dynamic_tools]) if dynamic_tools else None,
        ),
    )


async def get_chat(conn: Conn, chat_id: str) -> Chat | None:
    row = await conn.fetchone(f"{_SELECT} WHERE c.id = ?", (chat_id,))
    return None if row is None else chat_from_row(row)


async def list_chats(
    conn: Conn,
    *,
    owner: str,
    query: str | None = None,
    labels: dict[str, str] | None = None,
    archived: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Chat]:
    """Root chats of ``owner``, pinned first, then newest ``updated_at`` (docs/api.md#chats)."""
    where = ["c.owner = ?", "c.parent_chat_id IS NULL"]
    params: list[Any] = [owner]
    if archived is not None:
        where.append("c.archived = ?")
        params.append(int(archived))
    if query:
        where.append("c.title LIKE ? ESCAPE '\\'")
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(f"%{escaped}%")
    for key, value in (labels or {}).items():
        where.append("json_extract(c.labels, ?) = ?")
        params.extend([f'$."{key}"', value])
    rows = await conn.fetchall(
        f"{_SELECT} WHERE {' AND '.join(where)}"
        " ORDER BY (c.pin_order = 0), c.pin_order, c.updated_at DESC, c.id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [chat_from_row(r) for r in rows]


async def list_children(conn: Conn, parent_ids: Sequence[str]) -> list[Chat]:
    if not parent_ids:
        return []
    marks = ",".join("?" * len(parent_ids))
    rows = await conn.fetchall(
        f"{_SELECT} WHERE c.parent_chat_id IN ({marks}) ORDER BY c.created_at", list(parent_ids)
    )
    return [chat_from_row(r) for r in rows]


def _encode(column: str, value: Any) -> Any:
    if column == "labels":
        return json.dumps(value or {})
    if column == "last_error":
        return (
            None
            if value is None
            else ChatError.model_validate(value).model_dump_json(exclude_none=True)
        )
    if column == "last_injected_context":
        return None if value is None else json.dumps(value)
    if column == "archived":
        return int(value)
    return value


async def update_chat(conn: Conn, chat_id: str, **fields: Any) -> None:
    """Set columns of one chat (names in ``_UPDATABLE``) and bump ``updated_at``."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    sets = [f"{k} = ?" for k in fields] + ["updated_at = ?"]
    values = [_encode(k, v) for k, v in fields.items()] + [utcnow()]
    await conn.execute(f"UPDATE chats SET {', '.join(sets)} WHERE id = ?", [*values, chat_id])


async def set_status(
    conn: Conn, chat_id: str, status: ChatStatus, *, last_error: ChatError | None = None
) -> None:
    """Move a chat to ``status`` and release worker ownership (docs/status-machine.md#finishing)."""
    await conn.execute(
        "UPDATE chats SET status = ?, worker_id = NULL, started_at = NULL, heartbeat_at = NULL,"
        " last_error = ?, updated_at = ? WHERE id = ?",
        (
            status,
            last_error.model_dump_json(exclude_none=True) if last_error else None,
            utcnow(),
            chat_id,
        ),
    )


async def acquire_pending(conn: Conn, worker_id: str, limit: int) -> list[Chat]:
    """Claim up to ``limit`` pending, unarchived chats, oldest ``updated_at`` first
    (docs/status-machine.md#acquisition). Must run inside a ``BEGIN IMMEDIATE`` transaction."""
    now = utcnow()
    rows = await conn.fetchall(
        "UPDATE chats SET status = 'running', worker_id = ?, started_at = ?, heartbeat_at = ?,"
        " updated_at = ? WHERE id IN (SELECT id FROM chats WHERE status = 'pending'"
        " AND archived = 0 ORDER BY updated_at, id LIMIT ?) RETURNING *",
        (worker_id, now, now, now, limit),
    )
    return [chat_from_row(r) for r in rows]


async def heartbeat(conn: Conn, worker_id: str, chat_ids: Sequence[str]) -> set[str]:
    """Bump ``heartbeat_at`` of the chats this worker still owns; returns their ids
    (docs/status-machine.md#heartbeats)."""
    if not chat_ids:
        return set()
    marks = ",".join("?" * len(chat_ids))
    rows = await conn.fetchall(
        f"UPDATE chats SET heartbeat_at = ? WHERE id IN ({marks}) AND worker_id = ?"
        " AND status = 'running' RETURNING id",
        [utcnow(), *chat_ids, worker_id],
    )
    return {r[0] for r in rows}


async def stale_running(conn: Conn, before: str, orphaned_by: Sequence[str] = ()) -> list[str]:
    """Ids of ``running`` chats with no heartbeat since ``before`` (RFC 3339), or whose
    ``worker_id`` is in ``orphaned_by`` (workers known to be gone, whatever their heartbeat)."""
    marks = ",".join("?" * len(orphaned_by)) or "NULL"
    rows = await conn.fetchall(
        "SELECT id FROM chats WHERE status = 'running' AND (heartbeat_at IS NULL"
        f" OR heartbeat_at < ? OR worker_id IN ({marks}))",
        (before, *orphaned_by),
    )
    return [r[0] for r in rows]


async def running_workers(conn: Conn) -> set[str]:
    """The worker ids that own a ``running`` chat."""
    rows = await conn.fetchall(
        "SELECT DISTINCT worker_id FROM chats WHERE status = 'running' AND worker_id IS NOT NULL"
    )
    return {r[0] for r in rows}


async def stale_requires_action(conn: Conn, before: str) -> list[str]:
    rows = await conn.fetchall(
        "SELECT id FROM chats WHERE status = 'requires_action' AND updated_at < ?", (before,)
    )
    return [r[0] for r in rows]


async def release_worker(conn: Conn, worker_id: str, status: ChatStatus) -> list[str]:
    """Set every chat this worker runs to ``status`` (shutdown: ``pending``)."""
    rows = await conn.fetchall(
        "UPDATE chats SET status = ?, worker_id = NULL, started_at = NULL, heartbeat_at = NULL,"
        " updated_at = ? WHERE worker_id = ? AND status = 'running' RETURNING id",
        (status, utcnow(), worker_id),
    )
    return [r[0] for r in rows]


async def family_ids(conn: Conn, root_id: str) -> list[str]:
    rows = await conn.fetchall(
        "SELECT id FROM chats WHERE id = ? OR root_chat_id = ? OR parent_chat_id = ?",
        (root_id, root_id, root_id),
    )
    return [r[0] for r in rows]


async def mark_read(conn: Conn, chat_id: str) -> None:
    """Record the newest assistant message as read (drives ``has_unread``)."""
    await conn.execute(
        "UPDATE chats SET last_read_message_id = (SELECT MAX(id) FROM chat_messages"
        " WHERE chat_id = ? AND role = 'assistant' AND deleted = 0) WHERE id = ?",
        (chat_id, chat_id),
    )


async def count_pinned(conn: Conn, owner: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT COUNT(*) FROM chats WHERE owner = ? AND pin_order > 0 AND archived = 0",
            (owner,),
        )
    )


async def renumber_pins(conn: Conn, owner: str, chat_id: str, position: int) -> None:
    """Place ``chat_id`` at pin ``position`` (0 unpins) and keep pins numbered 1..n
    (``pin_order`` in docs/api.md#chats)."""
    rows = await conn.fetchall(
        "SELECT id FROM chats WHERE owner = ? AND pin_order > 0 AND archived = 0 AND id != ?"
        " ORDER BY pin_order",
        (owner, chat_id),
    )
    order = [r[0] for r in rows]
    if position > 0:
        order.insert(min(position, len(order) + 1) - 1, chat_id)
    else:
        await conn.execute("UPDATE chats SET pin_order = 0 WHERE id = ?", (chat_id,))
    await conn.executemany(
        "UPDATE chats SET pin_order = ? WHERE id = ?",
        [(i + 1, cid) for i, cid in enumerate(order)],
    )
