"""Persistence: aiosqlite with numbered migrations; one module per aggregate (DESIGN §3)."""

from __future__ import annotations

from .db import Conn, Database, StorageFull, StoreError, is_storage_full

__all__ = ["Conn", "Database", "StorageFull", "StoreError", "is_storage_full"]
