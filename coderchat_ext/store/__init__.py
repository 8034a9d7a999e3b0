"""Persistence: aiosqlite with numbered migrations; one module per aggregate (DESIGN §3)."""

from __future__ import annotations

from .db import Conn, Database, StoreError

__all__ = ["Conn", "Database", "StoreError"]
