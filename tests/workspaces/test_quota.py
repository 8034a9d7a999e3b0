"""Quota: budgets from groups, credits held by the latest start build of each workspace, the
commit of a start build, and the exact payload of a refused build (docs/workspaces.md#quota)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from coderchat_ext.store import Database
from coderchat_ext.store import configs as store_configs
from coderchat_ext.store import templates as store_templates
from coderchat_ext.store import workspaces as store_workspaces
from coderchat_ext.store.db import Conn
from coderchat_ext.workspaces.quota import (
    Quota,
    QuotaExceeded,
    QuotaUsage,
    insufficient_quota_payload,
    parse_groups,
)

GROUPS = {
    "staff": {"members": ["ada", "bob"], "budget": 5},
    "everyone": {"members": ["*"], "budget": 1},
}


def test_a_users_budget_is_the_sum_of_their_groups_and_no_group_means_no_limit() -> None:
    quota = Quota(GROUPS)
    assert quota.budget("ada") == 6
    assert quota.budget("carol") == 1
    assert Quota({"staff": {"members": ["ada"], "budget": 3}}).budget("carol") is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"g": []}, "groups['g'] must be {members: [...], budget: N}"),
        ({"g": {"members": "ada"}}, "groups['g'].members must be a list of usernames"),
        ({"g": {"budget": -1}}, "groups['g'].budget must be a non-negative integer"),
        ({"g": {"budget": True}}, "groups['g'].budget must be a non-negative integer"),
    ],
)
def test_a_bad_groups_config_is_refused(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_groups(config)


def test_the_quota_payload_has_the_references_fields_and_texts() -> None:
    usage = QuotaUsage(credits_consumed=4, budget=5)
    assert insufficient_quota_payload(
        "create", error="insufficient quota", build_id="b1", usage=usage
    ) == {
        "error_code": "INSUFFICIENT_QUOTA",
        "error": "insufficient quota",
        "title": "Workspace quota reached",
        "message": (
            "The Jupyter server could not create this workspace because your workspace quota "
            "is full."
        ),
        "next_steps": [
            "Delete a workspace you no longer need to free quota.",
            "Ask an administrator to raise your group quota allowance.",
        ],
        "build_id": "b1",
        "quota": {"credits_consumed": 4, "budget": 5},
    }
    start = insufficient_quota_payload("start", error="e", build_id=None, usage=None)
    assert start["message"] == (
        "The Jupyter server could not start this workspace because your workspace quota is full."
    )
    assert "quota" not in start
    assert "build_id" not in start


@asynccontextmanager
async def opened(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "coderchat.db")
    await database.open()
    try:
        async with database.tx() as conn:
            ids = await store_configs.sync_organizations(conn, {})
            await store_templates.upsert_template(
                conn,
                template_id="t",
                organization_id=ids["default"],
                name="t",
                display_name="",
                description="",
                icon="",
                daily_cost=2,
                source="",
            )
            version = await store_templates.insert_version(
                conn,
                template_id="t",
                content_hash="h",
                manifest={"name": "t"},
                has_external_agent=False,
                files=[],
            )
            await store_templates.set_active_version(conn, "t", version)
        yield database
    finally:
        await database.close()


async def new_workspace(conn: Conn, owner: str, name: str) -> tuple[str, str]:
    org = await conn.fetchval("SELECT id FROM organizations WHERE name = 'default'")
    version = await conn.fetchval("SELECT active_version_id FROM templates WHERE id = 't'")
    workspace_id = await store_workspaces.insert_workspace(
        conn, organization_id=org, owner=owner, template_id="t", name=name, directory=name
    )
    build = await store_workspaces.insert_build(
        conn,
        workspace_id=workspace_id,
        transition="start",
        template_version_id=version,
        preset_id=None,
        parameters={},
        initiator=owner,
    )
    return workspace_id, build.id


async def test_a_start_over_budget_is_refused_and_charges_nothing(tmp_path: Path) -> None:
    quota = Quota({"staff": {"members": ["ada"], "budget": 5}})
    async with opened(tmp_path) as db, db.tx() as conn:
        first, first_build = await new_workspace(conn, "ada", "one")
        await quota.commit(
            conn, owner="ada", workspace_id=first, build_id=first_build, daily_cost=3
        )
        second, second_build = await new_workspace(conn, "ada", "two")
        with pytest.raises(QuotaExceeded) as refused:
            await quota.commit(
                conn, owner="ada", workspace_id=second, build_id=second_build, daily_cost=3
            )
        assert refused.value.usage == QuotaUsage(credits_consumed=3, budget=5)
        assert str(refused.value) == (
            "insufficient quota: this workspace costs 3 credits per day and 3 of your 5 "
            "credits are in use"
        )
        assert await quota.usage(conn, "ada") == QuotaUsage(3, 5)
        # Exactly filling the budget is allowed; another user's workspaces do not count.
        await quota.commit(
            conn, owner="ada", workspace_id=second, build_id=second_build, daily_cost=2
        )
        assert await quota.usage(conn, "ada") == QuotaUsage(5, 5)
        assert await quota.usage(conn, "bob") == QuotaUsage(0, None)


async def test_a_restart_of_the_same_workspace_does_not_count_it_twice(tmp_path: Path) -> None:
    quota = Quota({"staff": {"members": ["ada"], "budget": 3}})
    async with opened(tmp_path) as db, db.tx() as conn:
        workspace, build = await new_workspace(conn, "ada", "one")
        await quota.commit(conn, owner="ada", workspace_id=workspace, build_id=build, daily_cost=3)
        version = await conn.fetchval("SELECT active_version_id FROM templates WHERE id = 't'")
        again = await store_workspaces.insert_build(
            conn,
            workspace_id=workspace,
            transition="start",
            template_version_id=version,
            preset_id=None,
            parameters={},
            initiator="ada",
        )
        await quota.commit(
            conn, owner="ada", workspace_id=workspace, build_id=again.id, daily_cost=3
        )
        # The restart holds the workspace's 3 credits once: the budget is full, not overdrawn.
        assert await quota.usage(conn, "ada") == QuotaUsage(3, 3)
        other, other_build = await new_workspace(conn, "ada", "two")
        with pytest.raises(QuotaExceeded) as refused:
            await quota.commit(
                conn, owner="ada", workspace_id=other, build_id=other_build, daily_cost=1
            )
        assert refused.value.usage == QuotaUsage(credits_consumed=3, budget=3)


async def test_stopped_and_deleted_workspaces_hold_no_credits(tmp_path: Path) -> None:
    quota = Quota({"staff": {"members": ["ada"], "budget": 10}})
    async with opened(tmp_path) as db, db.tx() as conn:
        stopped, build = await new_workspace(conn, "ada", "one")
        await quota.commit(conn, owner="ada", workspace_id=stopped, build_id=build, daily_cost=4)
        deleted, build = await new_workspace(conn, "ada", "two")
        await quota.commit(conn, owner="ada", workspace_id=deleted, build_id=build, daily_cost=4)
        assert (await quota.usage(conn, "ada")).credits_consumed == 8
        version = await conn.fetchval("SELECT active_version_id FROM templates WHERE id = 't'")
        await store_workspaces.insert_build(
            conn,
            workspace_id=stopped,
            transition="stop",
            template_version_id=version,
            preset_id=None,
            parameters={},
            initiator="ada",
        )
        await store_workspaces.mark_deleted(conn, deleted)
        assert (await quota.usage(conn, "ada")).credits_consumed == 0
