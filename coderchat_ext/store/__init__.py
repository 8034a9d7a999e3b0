"""Persistence: aiosqlite with numbered migrations; one module per aggregate
(docs/data-model.md)."""

from __future__ import annotations

from .db import Conn, Database, StorageFull, StoreError, is_storage_full

__all__ = ["Conn", "Database", "StorageFull", "StoreError", "is_storage_full"]
