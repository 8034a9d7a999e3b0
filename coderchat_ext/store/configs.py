"""Site and user configuration key/values, and organizations
(docs/data-model.md#configuration-keys)."""

from __future__ import annotations

from collections.abc import Iterable

from ..models import new_id, utcnow
from .db import Conn

# site_configs keys (docs/data-model.md#configuration-keys).
SYSTEM_PROMPT = "agents_chat_system_prompt"
INCLUDE_DEFAULT_SYSTEM_PROMPT = "agents_chat_include_default_system_prompt"
TEMPLATE_ALLOWLIST = "agents_template_allowlist"
ADVISOR_CONFIG = "agents_advisor_config"
# user_configs key of the user's custom prompt (the upstream key name was not seen).
USER_PROMPT = "agents_chat_custom_prompt"
# Providers whose known model configs were created once (JSON array; see providers.known_models).
SEEDED_MODEL_PROVIDERS = "coderchat_seeded_model_providers"

DEFAULT_ORGANIZATION = "default"


async def get_site(conn: Conn, key: str) -> str | None:
    return await conn.fetchval("SELECT value FROM site_configs WHERE key = ?", (key,))


async def set_site(conn: Conn, key: str, value: str) -> None:
    await conn.execute(
        "INSERT INTO site_configs (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


async def get_user(conn: Conn, owner: str, key: str) -> str | None:
    return await conn.fetchval(
        "SELECT value FROM user_configs WHERE owner = ? AND key = ?", (owner, key)
    )


async def set_user(conn: Conn, owner: str, key: str, value: str) -> None:
    await conn.execute(
        "INSERT INTO user_configs (owner, key, value) VALUES (?, ?, ?)"
        " ON CONFLICT (owner, key) DO UPDATE SET value = excluded.value",
        (owner, key, value),
    )


async def sync_organizations(
    conn: Conn, organizations: dict[str, Iterable[str] | None]
) -> dict[str, str]:
    """Make the ``organizations`` table match the configuration; returns name -> id.

    ``organizations`` maps an organization name to its members (``None`` or ``["*"]``: every
    user). The ``default`` organization always exists and admits everyone. Members of an
    organization are replaced by the configured list.
    """
    wanted = {DEFAULT_ORGANIZATION: None, **organizations}
    ids: dict[str, str] = {}
    for name, members in wanted.items():
        org_id = await conn.fetchval("SELECT id FROM organizations WHERE name = ?", (name,))
        if org_id is None:
            org_id = new_id()
            await conn.execute(
                "INSERT INTO organizations (id, name, display_name, created_at)"
                " VALUES (?, ?, ?, ?)",
                (org_id, name, name, utcnow()),
            )
        ids[name] = org_id
        await conn.execute("DELETE FROM organization_members WHERE organization_id = ?", (org_id,))
        await conn.executemany(
            "INSERT INTO organization_members (organization_id, username) VALUES (?, ?)",
            [(org_id, m) for m in (members if members is not None else ["*"])],
        )
    return ids


async def is_member(conn: Conn, organization_id: str, username: str) -> bool | None:
    """Whether ``username`` belongs to the organization; None when the organization is unknown."""
    exists = await conn.fetchval("SELECT 1 FROM organizations WHERE id = ?", (organization_id,))
    if not exists:
        return None
    row = await conn.fetchone(
        "SELECT 1 FROM organization_members WHERE organization_id = ? AND username IN (?, '*')",
        (organization_id, username),
    )
    return row is not None


async def member_organizations(conn: Conn, username: str) -> list[str]:
    """The ids of the organizations ``username`` belongs to (``*`` members admit everyone)."""
    rows = await conn.fetchall(
        "SELECT DISTINCT organization_id FROM organization_members WHERE username IN (?, '*')",
        (username,),
    )
    return [r[0] for r in rows]


async def organization_ids(conn: Conn) -> dict[str, str]:
    """Organization name -> id."""
    rows = await conn.fetchall("SELECT id, name FROM organizations")
    return {r["name"]: r["id"] for r in rows}
