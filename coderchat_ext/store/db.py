"""The SQLite connection: pragmas, numbered migrations and serialized transactions.

One aiosqlite connection per :class:`Database`. Every use takes an asyncio lock, so statements of
concurrent coroutines never interleave inside another's transaction. Writes use
``BEGIN IMMEDIATE`` so that two processes on one database file serialize their read-modify-write
sequences (two daemons never run the same chat: docs/status-machine.md#acquisition).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.resources
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from pydantic import BaseModel, ConfigDict

from ..models import utcnow

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

BUSY_TIMEOUT_MS = 10_000


def row_data(row: aiosqlite.Row, *json_columns: str) -> dict[str, Any]:
    """``row`` as a column → value dict for ``Model.model_validate`` (columns the model does
    not have are ignored; 0/1 integers validate as booleans), with each of ``json_columns``
    decoded from its JSON text (NULL or empty as None). Raises ``json.JSONDecodeError`` for a
    JSON column that does not parse."""
    data = dict(row)
    for name in json_columns:
        text = data[name]
        data[name] = json.loads(text) if text else None
    return data


class StoreRow(BaseModel):
    """Base of the rows the store returns that never travel to a client: validated from
    :func:`row_data`, immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class StoreError(Exception):
    """A database problem that is not the caller's fault (corruption, a newer schema, ...)."""


class StorageFull(StoreError):
    """A write was refused because the disk holding the database is full; the transaction was
    rolled back, so nothing of it was stored and everything committed before is intact. It
    succeeds again once space is freed (the API answers 507, a turn ends with kind
    ``storage``)."""


_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = "database or disk is full"


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from or while handling, says the disk is
    full: :class:`StorageFull`, SQLite's ``SQLITE_FULL`` ("database or disk is full") or an
    ``OSError`` with ``ENOSPC``/``EDQUOT``. The one place that recognizes a full disk."""
    seen: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and all(link is not s for s in seen):
        seen.append(link)
        if isinstance(link, StorageFull):
            return True
        if isinstance(link, sqlite3.Error) and (
            getattr(link, "sqlite_errorname", None) == "SQLITE_FULL" or _SQLITE_FULL in str(link)
        ):
            return True
        if isinstance(link, OSError) and link.errno in _FULL_ERRNOS:
            return True
        link = link.__cause__ or link.__context__
    return False


def migration_files() -> list[tuple[int, str, str]]:
    """The packaged migrations as ``(number, name, sql)``, ordered by number."""
    found = []
    for entry in importlib.resources.files("coderchat_ext.store.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise StoreError(f"migrations must be numbered 1..n without gaps, found {numbers}")
    return found


class Conn:
    """A thin wrapper over the aiosqlite connection that counts statements.

    Only valid inside :meth:`Database.read` or :meth:`Database.tx`.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the last inserted row id (0 when none)."""
        self._db.statements += 1
        cursor = await self._db.raw.execute(sql, params)
        rowid = cursor.lastrowid or 0
        await cursor.close()
        return rowid

    async def execute_rowcount(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        self._db.statements += 1
        cursor = await self._db.raw.execute(sql, params)
        count = cursor.rowcount
        await cursor.close()
        return count

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._db.statements += 1
        await self._db.raw.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        # Run, fetch and finish the statement in one hop to aiosqlite's thread: a task cancelled
        # between an execute and its fetch would leave the statement in progress, and the next
        # COMMIT would fail ("cannot commit transaction - SQL statements in progress").
        self._db.statements += 1
        return list(await self._db.raw.execute_fetchall(sql, params))

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


class Database:
    """An open SQLite database file with the schema migrated to the newest version.

    ``statements`` counts every SQL statement run through it (the benchmark reads it).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._raw: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self.statements = 0

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` succeeded and :meth:`close` has not run since."""
        return self._raw is not None

    @property
    def raw(self) -> aiosqlite.Connection:
        if self._raw is None:
            raise StoreError("database is not open")
        return self._raw

    async def open(self) -> None:
        """Open the file (creating its folder), set WAL/foreign keys/busy timeout, migrate.

        Raises :class:`StoreError` when the database was written by a newer migration set.
        """
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._raw = await aiosqlite.connect(self.path, isolation_level=None)
        self._raw.row_factory = aiosqlite.Row
        await self._raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await self._raw.execute("PRAGMA journal_mode = WAL")
        await self._raw.execute("PRAGMA synchronous = NORMAL")
        await self._raw.execute("PRAGMA foreign_keys = ON")
        await self._migrate()

    async def close(self) -> None:
        if self._raw is not None:
            async with self._lock:
                await self._raw.close()
                self._raw = None

    async def _migrate(self) -> None:
        await self.raw.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        migrations = migration_files()
        async with self._lock:
            await self.raw.execute("BEGIN IMMEDIATE")
            try:
                cursor = await self.raw.execute("SELECT MAX(version) FROM schema_migrations")
                row = await cursor.fetchone()
                current = (row[0] if row else None) or 0
                await self.raw.execute("COMMIT")
            except BaseException:
                await self.raw.execute("ROLLBACK")
                raise
            if current > len(migrations):
                raise StoreError(
                    f"database {self.path} has schema version {current}, newer than this "
                    f"coderchat_ext ({len(migrations)}); upgrade coderchat_ext"
                )
            for number, name, sql in migrations[current:]:
                # executescript commits first, so the migration and its record go in one
                # explicit transaction.
                try:
                    await self.raw.executescript(
                        "BEGIN IMMEDIATE;\n"
                        f"{sql}\n"
                        "INSERT INTO schema_migrations (version, name, applied_at) "
                        f"VALUES ({number}, '{name}', '{utcnow()}');\n"
                        "COMMIT;"
                    )
                except Exception as exc:
                    if self.raw.in_transaction:
                        await self.raw.execute("ROLLBACK")
                    raise StoreError(f"migration {name} failed: {exc}") from exc

    async def schema_version(self) -> int:
        async with self.read() as conn:
            return int(await conn.fetchval("SELECT MAX(version) FROM schema_migrations") or 0)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        """Serialized access for reads (no transaction: each statement sees committed data).

        Raises :class:`StorageFull` when SQLite reports a full disk."""
        async with self._lock:
            try:
                yield Conn(self)
            except sqlite3.Error as exc:
                if is_storage_full(exc):
                    raise StorageFull(str(exc)) from exc
                raise

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[Conn]:
        """A ``BEGIN IMMEDIATE`` transaction: committed on exit, rolled back on any exception.

        Raises :class:`StorageFull` (rolled back) when the disk is full, whether a statement or
        the ``COMMIT`` hit it. Cancellation-safe: aiosqlite runs statements in order on its
        thread, so a cancelled ``BEGIN`` or body is followed by a queued ``ROLLBACK``; a started
        ``COMMIT`` finishes.
        """
        async with self._lock:
            raw = self.raw
            try:
                await raw.execute("BEGIN IMMEDIATE")
                self.statements += 1
                yield Conn(self)
                await asyncio.shield(raw.execute("COMMIT"))
                self.statements += 1
            except BaseException as exc:
                # A failed COMMIT (SQLITE_FULL, SQLITE_IOERR) may leave the transaction open:
                # without this ROLLBACK every later BEGIN on this connection would fail.
                await asyncio.shield(self._rollback())
                if isinstance(exc, sqlite3.Error) and is_storage_full(exc):
                    raise StorageFull(str(exc)) from exc
                raise

    async def _rollback(self) -> None:
        # When BEGIN failed, or SQLite already rolled back, there is no transaction left.
        with contextlib.suppress(sqlite3.Error):
            await self.raw.execute("ROLLBACK")
