"""Providers and model configs (docs/data-model.md#providers-and-model-configs,
docs/api.md#providers-and-models)."""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from ..models import ChatModelCallConfig, ChatModelConfig, new_id, utcnow
from .db import Conn, StoreRow, row_data


class ProviderRow(StoreRow):
    """A stored provider; ``api_key`` is the encrypted token, never sent to a client."""

    id: str
    provider: str
    display_name: str
    base_url: str
    enabled: bool
    api_key: str
    created_at: str
    updated_at: str


def _provider_from_row(row: aiosqlite.Row) -> ProviderRow:
    return ProviderRow.model_validate(row_data(row))


async def list_providers(conn: Conn) -> list[ProviderRow]:
    rows = await conn.fetchall("SELECT * FROM chat_providers ORDER BY provider")
    return [_provider_from_row(r) for r in rows]


async def get_provider(conn: Conn, provider_id: str) -> ProviderRow | None:
    row = await conn.fetchone("SELECT * FROM chat_providers WHERE id = ?", (provider_id,))
    return None if row is None else _provider_from_row(row)


async def insert_provider(
    conn: Conn,
    *,
    provider: str,
    display_name: str,
    base_url: str,
    enabled: bool,
    api_key: str,
    created_by: str,
) -> ProviderRow:
    now = utcnow()
    row = ProviderRow(
        id=new_id(),
        provider=provider,
        display_name=display_name,
        base_url=base_url,
        enabled=enabled,
        api_key=api_key,
        created_at=now,
        updated_at=now,
    )
    await conn.execute(
        "INSERT INTO chat_providers (id, provider, display_name, base_url, enabled, api_key,"
        " created_by, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (row.id, provider, display_name, base_url, int(enabled), api_key, created_by, now, now),
    )
    return row


async def update_provider(conn: Conn, provider_id: str, **fields: Any) -> None:
    allowed = {"display_name", "base_url", "enabled", "api_key"}
    if set(fields) - allowed:
        raise ValueError(f"not updatable: {sorted(set(fields) - allowed)}")
    sets = [f"{k} = ?" for k in fields] + ["updated_at = ?"]
    values = [int(v) if isinstance(v, bool) else v for v in fields.values()]
    await conn.execute(
        f"UPDATE chat_providers SET {', '.join(sets)} WHERE id = ?",
        [*values, utcnow(), provider_id],
    )


async def delete_provider(conn: Conn, row: ProviderRow) -> None:
    """Delete a provider, soft-delete its model configs and re-pick the default."""
    await conn.execute("DELETE FROM chat_providers WHERE id = ?", (row.id,))
    await conn.execute(
        "UPDATE chat_model_configs SET deleted = 1, is_default = 0, updated_at = ?"
        " WHERE provider = ? AND deleted = 0",
        (utcnow(), row.provider),
    )
    await ensure_default(conn)


def model_config_from_row(row: aiosqlite.Row) -> ChatModelConfig:
    """A ``chat_model_configs`` row as a :class:`ChatModelConfig`: the ``options`` column is
    its call config (``{}`` when NULL), the model name its display name when that is empty."""
    data = row_data(row, "options")
    data["model_config"] = data.pop("options") or {}
    data["display_name"] = data["display_name"] or data["model"]
    return ChatModelConfig.model_validate(data)


async def list_model_configs(conn: Conn, *, enabled_only: bool = False) -> list[ChatModelConfig]:
    sql = "SELECT * FROM chat_model_configs WHERE deleted = 0"
    if enabled_only:
        sql += " AND enabled = 1"
    rows = await conn.fetchall(sql + " ORDER BY provider, model")
    return [model_config_from_row(r) for r in rows]


async def get_model_config(
    conn: Conn, config_id: str, *, include_deleted: bool = False
) -> ChatModelConfig | None:
    sql = "SELECT * FROM chat_model_configs WHERE id = ?"
    if not include_deleted:
        sql += " AND deleted = 0"
    row = await conn.fetchone(sql, (config_id,))
    return None if row is None else model_config_from_row(row)


async def get_default_model_config(conn: Conn) -> ChatModelConfig | None:
    row = await conn.fetchone(
        "SELECT * FROM chat_model_configs WHERE deleted = 0 AND is_default = 1"
    )
    return None if row is None else model_config_from_row(row)


async def find_model_config(conn: Conn, provider: str, model: str) -> ChatModelConfig | None:
    row = await conn.fetchone(
        "SELECT * FROM chat_model_configs WHERE deleted = 0 AND provider = ? AND model = ?",
        (provider, model),
    )
    return None if row is None else model_config_from_row(row)


async def insert_model_config(
    conn: Conn,
    *,
    provider: str,
    model: str,
    display_name: str,
    enabled: bool,
    is_default: bool,
    context_limit: int,
    compression_threshold: int,
    options: ChatModelCallConfig,
    created_by: str | None,
) -> str:
    """Insert a model config; the first one, or one with ``is_default``, becomes the default."""
    config_id = new_id()
    now = utcnow()
    has_default = await get_default_model_config(conn) is not None
    if is_default:
        await conn.execute("UPDATE chat_model_configs SET is_default = 0 WHERE is_default = 1")
    await conn.execute(
        "INSERT INTO chat_model_configs (id, provider, model, display_name, enabled, is_default,"
        " context_limit, compression_threshold, options, created_by, updated_by, created_at,"
        " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            config_id,
            provider,
            model,
            display_name,
            int(enabled),
            int(is_default or not has_default),
            context_limit,
            compression_threshold,
            json.dumps(options.model_dump(mode="json", exclude_none=True)),
            created_by,
            created_by,
            now,
            now,
        ),
    )
    return config_id


async def update_model_config(conn: Conn, config_id: str, **fields: Any) -> None:
    allowed = {
        "model",
        "display_name",
        "enabled",
        "is_default",
        "context_limit",
        "compression_threshold",
        "options",
        "updated_by",
    }
    if set(fields) - allowed:
        raise ValueError(f"not updatable: {sorted(set(fields) - allowed)}")
    if fields.get("is_default"):
        await conn.execute("UPDATE chat_model_configs SET is_default = 0 WHERE is_default = 1")
    encoded: list[Any] = []
    for key, value in fields.items():
        if key == "options":
            encoded.append(json.dumps(value.model_dump(mode="json", exclude_none=True)))
        elif isinstance(value, bool):
            encoded.append(int(value))
        else:
            encoded.append(value)
    sets = [f"{k} = ?" for k in fields] + ["updated_at = ?"]
    await conn.execute(
        f"UPDATE chat_model_configs SET {', '.join(sets)} WHERE id = ?",
        [*encoded, utcnow(), config_id],
    )
    await ensure_default(conn)


async def delete_model_config(conn: Conn, config_id: str) -> None:
    await conn.execute(
        "UPDATE chat_model_configs SET deleted = 1, is_default = 0, updated_at = ? WHERE id = ?",
        (utcnow(), config_id),
    )
    await ensure_default(conn)


async def ensure_default(conn: Conn) -> None:
    """When no live config is the default, make the first remaining one the default."""
    if await get_default_model_config(conn) is None:
        await conn.execute(
            "UPDATE chat_model_configs SET is_default = 1 WHERE id = (SELECT id FROM"
            " chat_model_configs WHERE deleted = 0 ORDER BY created_at, id LIMIT 1)"
        )
