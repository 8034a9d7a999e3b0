"""The ``templates``, ``template_versions`` and ``template_version_files`` tables
(docs/data-model.md#workspace-tables).

A template is identified by ``(organization_id, name)``; each distinct content (manifest plus
``files/``) of its folder is a template version, found again by its content hash. The version
whose content is on disk is the template's ``active_version_id``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from ..models import Template, new_id, utcnow
from .db import Conn, StoreRow, row_data

_ACTIVE_DEVELOPERS = (
    "(SELECT COUNT(DISTINCT w.owner) FROM workspaces w WHERE w.template_id = t.id"
    " AND w.deleted = 0) AS active_developers"
)
_HAS_EXTERNAL = (
    "(SELECT v.has_external_agent FROM template_versions v WHERE v.id = t.active_version_id)"
    " AS has_external_agent"
)
_SELECT = f"SELECT t.*, {_ACTIVE_DEVELOPERS}, {_HAS_EXTERNAL} FROM templates t"


class TemplateVersionRow(StoreRow):
    """A template version: ``manifest`` is the parsed ``template.toml`` as stored (JSON)."""

    id: str
    template_id: str
    content_hash: str
    manifest: dict[str, Any]
    has_external_agent: bool
    created_at: str


@dataclass(frozen=True)
class TemplateFile:
    """One file of a version's ``files/`` tree; ``path`` is relative and uses ``/``."""

    path: str
    content: bytes
    executable: bool = False


def template_from_row(row: aiosqlite.Row) -> Template:
    """A ``templates`` row selected through ``_SELECT`` as a :class:`Template`: ``external``
    from its active version, ``active_developers`` counted."""
    data = row_data(row)
    data["active_version_id"] = data["active_version_id"] or ""
    data["external"] = bool(data["has_external_agent"])
    data["active_developers"] = data["active_developers"] or 0
    return Template.model_validate(data)


def _version_from_row(row: aiosqlite.Row) -> TemplateVersionRow:
    return TemplateVersionRow.model_validate(row_data(row, "manifest"))


async def get_template(conn: Conn, template_id: str) -> Template | None:
    """A template by id, deprecated ones included (workspaces built from them still work)."""
    row = await conn.fetchone(f"{_SELECT} WHERE t.id = ?", (template_id,))
    return None if row is None else template_from_row(row)


async def is_deprecated(conn: Conn, template_id: str) -> bool:
    return bool(
        await conn.fetchval("SELECT deprecated FROM templates WHERE id = ?", (template_id,))
    )


async def list_templates(conn: Conn, organization_ids: Sequence[str]) -> list[Template]:
    """Non-deprecated templates of the given organizations, most active developers first,
    then by name (docs/workspaces.md#tools ``list_templates``)."""
    if not organization_ids:
        return []
    marks = ",".join("?" * len(organization_ids))
    rows = await conn.fetchall(
        f"{_SELECT} WHERE t.deprecated = 0 AND t.active_version_id IS NOT NULL"
        f" AND t.organization_id IN ({marks}) ORDER BY active_developers DESC, t.name, t.id",
        list(organization_ids),
    )
    return [template_from_row(r) for r in rows]


async def existing_ids(conn: Conn, template_ids: Iterable[str]) -> set[str]:
    """The ids among ``template_ids`` of templates that exist and are not deprecated."""
    ids = list(template_ids)
    if not ids:
        return set()
    marks = ",".join("?" * len(ids))
    rows = await conn.fetchall(
        f"SELECT id FROM templates WHERE deprecated = 0 AND id IN ({marks})", ids
    )
    return {r[0] for r in rows}


async def upsert_template(
    conn: Conn,
    *,
    template_id: str,
    organization_id: str,
    name: str,
    display_name: str,
    description: str,
    icon: str,
    daily_cost: int,
    source: str,
) -> None:
    """Create the template or refresh its descriptive columns; un-deprecates it."""
    now = utcnow()
    await conn.execute(
        "INSERT INTO templates (id, organization_id, name, display_name, description, icon,"
        " daily_cost, source, deprecated, created_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,0,?,?) ON CONFLICT (id) DO UPDATE SET"
        " display_name = excluded.display_name, description = excluded.description,"
        " icon = excluded.icon, daily_cost = excluded.daily_cost, source = excluded.source,"
        " deprecated = 0, updated_at = excluded.updated_at"
        " WHERE templates.display_name != excluded.display_name"
        " OR templates.description != excluded.description OR templates.icon != excluded.icon"
        " OR templates.daily_cost != excluded.daily_cost OR templates.source != excluded.source"
        " OR templates.deprecated != 0",
        (
            template_id,
            organization_id,
            name,
            display_name,
            description,
            icon,
            daily_cost,
            source,
            now,
            now,
        ),
    )


async def deprecate_missing(conn: Conn, keep: Iterable[str]) -> list[str]:
    """Mark every template not in ``keep`` deprecated; returns the ids newly deprecated."""
    keep_ids = list(keep)
    marks = ",".join("?" * len(keep_ids))
    rows = await conn.fetchall(
        "UPDATE templates SET deprecated = 1, updated_at = ? WHERE deprecated = 0"
        + (f" AND id NOT IN ({marks})" if keep_ids else "")
        + " RETURNING id",
        [utcnow(), *keep_ids],
    )
    return [r[0] for r in rows]


async def find_version(conn: Conn, template_id: str, content_hash: str) -> str | None:
    value = await conn.fetchval(
        "SELECT id FROM template_versions WHERE template_id = ? AND content_hash = ?",
        (template_id, content_hash),
    )
    return None if value is None else str(value)


async def insert_version(
    conn: Conn,
    *,
    template_id: str,
    content_hash: str,
    manifest: dict[str, Any],
    has_external_agent: bool,
    files: Sequence[TemplateFile],
) -> str:
    version_id = new_id()
    await conn.execute(
        "INSERT INTO template_versions (id, template_id, content_hash, manifest,"
        " has_external_agent, created_at) VALUES (?,?,?,?,?,?)",
        (
            version_id,
            template_id,
            content_hash,
            json.dumps(manifest),
            int(has_external_agent),
            utcnow(),
        ),
    )
    await conn.executemany(
        "INSERT INTO template_version_files (version_id, path, content, executable)"
        " VALUES (?,?,?,?)",
        [(version_id, f.path, f.content, int(f.executable)) for f in files],
    )
    return version_id


async def set_active_version(conn: Conn, template_id: str, version_id: str) -> None:
    await conn.execute(
        "UPDATE templates SET active_version_id = ?, updated_at = ? WHERE id = ?"
        " AND (active_version_id IS NULL OR active_version_id != ?)",
        (version_id, utcnow(), template_id, version_id),
    )


async def get_version(conn: Conn, version_id: str) -> TemplateVersionRow | None:
    row = await conn.fetchone("SELECT * FROM template_versions WHERE id = ?", (version_id,))
    return None if row is None else _version_from_row(row)


async def version_files(conn: Conn, version_id: str) -> list[TemplateFile]:
    rows = await conn.fetchall(
        "SELECT path, content, executable FROM template_version_files WHERE version_id = ?"
        " ORDER BY path",
        (version_id,),
    )
    return [TemplateFile(r["path"], bytes(r["content"]), bool(r["executable"])) for r in rows]
