"""The database: numbered migrations recorded in the file, upgrades of older files, WAL and
foreign keys, and transactions that roll back cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.store import Database, StoreError
from coderchat_ext.store import db as store_db
from coderchat_ext.store import messages as store_messages


async def test_a_database_written_by_an_older_migration_set_opens_and_upgrades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = store_db.migration_files()
    assert len(every) >= 2
    monkeypatch.setattr(store_db, "migration_files", lambda: every[:1])
    old = Database(tmp_path / "chat.db")
    await old.open()
    assert await old.schema_version() == 1
    async with old.tx() as conn:
        await conn.execute(
            "INSERT INTO organizations (id, name, created_at) VALUES ('o', 'default', 'now')"
        )
        await conn.execute(
            "INSERT INTO chats (id, organization_id, owner, title, status, created_at,"
            " updated_at) VALUES ('c', 'o', 'u', 'kept', 'waiting', 'now', 'now')"
        )
    await old.close()

    monkeypatch.setattr(store_db, "migration_files", lambda: every)
    new = Database(tmp_path / "chat.db")
    await new.open()
    assert await new.schema_version() == len(every)
    async with new.read() as conn:
        assert await conn.fetchval("SELECT title FROM chats WHERE id = 'c'") == "kept"
        names = [r[0] for r in await conn.fetchall("SELECT name FROM schema_migrations")]
        indexes = [
            r[0] for r in await conn.fetchall("SELECT name FROM sqlite_master WHERE type = 'index'")
        ]
    assert names == [name for _, name, _ in every]
    assert "chat_messages_cost" in indexes
    await new.close()


async def test_a_database_from_a_newer_version_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(tmp_path / "chat.db")
    await db.open()
    async with db.tx() as conn:
        await conn.execute("INSERT INTO schema_migrations VALUES (99, '0099_future.sql', 'now')")
    await db.close()
    with pytest.raises(StoreError, match="newer than this"):
        await Database(tmp_path / "chat.db").open()


async def test_wal_and_foreign_keys_are_on(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db")
    await db.open()
    async with db.read() as conn:
        assert await conn.fetchval("PRAGMA journal_mode") == "wal"
        assert await conn.fetchval("PRAGMA foreign_keys") == 1
    with pytest.raises(Exception, match="FOREIGN KEY"):
        async with db.tx() as conn:
            await store_messages.insert_messages(
                conn, "no-such-chat", [store_messages.NewMessage(role="user", content=[])]
            )
    await db.close()


async def test_a_failed_or_cancelled_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db")
    await db.open()

    async def write_then(error: BaseException) -> None:
        async with db.tx() as conn:
            await conn.execute(
                "INSERT INTO site_configs (key, value) VALUES (?, 'x')", (repr(error),)
            )
            raise error

    with pytest.raises(ValueError, match="boom"):
        await write_then(ValueError("boom"))
    blocked = asyncio.Event()

    async def hang() -> None:
        async with db.tx() as conn:
            await conn.execute("INSERT INTO site_configs (key, value) VALUES ('hang', 'x')")
            blocked.set()
            await asyncio.Event().wait()

    task = asyncio.ensure_future(hang())
    await blocked.wait()
    task.cancel()
    results: list[Any] = await asyncio.gather(task, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    async with db.tx() as conn:  # a new transaction starts: nothing was left open
        assert await conn.fetchval("SELECT COUNT(*) FROM site_configs") == 0
    await db.close()
