"""Persistence: aiosqlite with numbered migrations; one module per aggregate
(docs/data-model.md)."""

from __future__ import annotations

from .db import Conn, Database, StoreError

__all__ = ["Conn", "Database", "StoreError"]
