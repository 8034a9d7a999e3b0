"""Workspace quota: groups with budgets, templates with a ``daily_cost`` (docs/workspaces.md#quota).

``CoderChatApp.groups`` is ``{name: {"members": [usernames or "*"], "budget": credits}}``. A
user's budget is the sum of the budgets of the groups they belong to; a user in no group has no
limit. Credits consumed are the ``daily_cost`` committed by the latest build of each of the
user's workspaces. A start build commits its template's cost; it is refused when the new total
would exceed the budget (Coder's ``CommitQuota``), and the tools answer with
:func:`insufficient_quota_payload` (docs/workspaces.md#quota).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..models import INSUFFICIENT_QUOTA
from ..store import workspaces as store_workspaces
from ..store.db import Conn

QUOTA_TITLE = "Workspace quota reached"
QUOTA_MESSAGES = {
    "create": (
        "The Jupyter server could not create this workspace because your workspace quota is full."
    ),
    "start": (
        "The Jupyter server could not start this workspace because your workspace quota is full."
    ),
}
QUOTA_NEXT_STEPS = (
    "Delete a workspace you no longer need to free quota.",
    "Ask an administrator to raise your group quota allowance.",
)
"""The quota payload's fixed texts, upstream's (docs/workspaces.md#quota), naming the Jupyter
server where upstream names itself."""


@dataclass(frozen=True)
class QuotaGroup:
    name: str
    members: frozenset[str]
    budget: int


@dataclass(frozen=True)
class QuotaUsage:
    """``credits_consumed`` of ``budget``; ``budget`` None means no limit."""

    credits_consumed: int
    budget: int | None

    def payload(self) -> dict[str, int] | None:
        if self.budget is None:
            return None
        return {"credits_consumed": self.credits_consumed, "budget": self.budget}


class QuotaExceeded(Exception):
    """A start build's cost does not fit the owner's budget; ``usage`` is before the build."""

    def __init__(self, cost: int, usage: QuotaUsage) -> None:
        super().__init__(
            f"insufficient quota: this workspace costs {cost} credits per day and "
            f"{usage.credits_consumed} of your {usage.budget} credits are in use"
        )
        self.cost = cost
        self.usage = usage


def parse_groups(config: Mapping[str, Any]) -> list[QuotaGroup]:
    """Check the ``groups`` trait. Raises ``ValueError`` naming the bad entry."""
    groups = []
    for name, value in config.items():
        if not isinstance(value, Mapping):
            raise ValueError(f"groups[{name!r}] must be {{members: [...], budget: N}}")
        members = value.get("members", [])
        budget = value.get("budget", 0)
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ValueError(f"groups[{name!r}].members must be a list of usernames")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
            raise ValueError(f"groups[{name!r}].budget must be a non-negative integer")
        groups.append(QuotaGroup(name=str(name), members=frozenset(members), budget=budget))
    return groups


class Quota:
    """Budgets from the configured groups and the commit of a start build's cost."""

    def __init__(self, groups: Mapping[str, Any]) -> None:
        self.groups = parse_groups(groups)

    def budget(self, username: str) -> int | None:
        """The sum of the budgets of ``username``'s groups (``"*"`` matches everyone); None
        when the user is in no group (no limit)."""
        mine = [g for g in self.groups if username in g.members or "*" in g.members]
        return sum(g.budget for g in mine) if mine else None

    async def usage(self, conn: Conn, username: str) -> QuotaUsage:
        consumed = await store_workspaces.quota_consumed(conn, username)
        return QuotaUsage(credits_consumed=consumed, budget=self.budget(username))

    async def commit(
        self, conn: Conn, *, owner: str, workspace_id: str, build_id: str, daily_cost: int
    ) -> None:
        """Charge ``daily_cost`` to the start build ``build_id``. Run inside the transaction
        that moves the build's job on, so concurrent starts see each other's charges. Raises
        :class:`QuotaExceeded` (nothing charged) when it does not fit."""
        budget = self.budget(owner)
        if budget is not None and daily_cost > 0:
            consumed = await store_workspaces.quota_consumed(
                conn, owner, exclude_workspace=workspace_id
            )
            if consumed + daily_cost > budget:
                raise QuotaExceeded(daily_cost, QuotaUsage(consumed, budget))
        await store_workspaces.set_build_cost(conn, build_id, daily_cost)


def insufficient_quota_payload(
    action: Literal["create", "start"],
    *,
    error: str,
    build_id: str | None,
    usage: QuotaUsage | None,
) -> dict[str, Any]:
    """The non-error tool result of a build refused for quota (docs/workspaces.md#quota);
    ``quota`` is left out when the usage is unknown."""
    payload: dict[str, Any] = {
        "error_code": INSUFFICIENT_QUOTA,
        "error": error,
        "title": QUOTA_TITLE,
        "message": QUOTA_MESSAGES[action],
        "next_steps": list(QUOTA_NEXT_STEPS),
    }
    if build_id:
        payload["build_id"] = build_id
    quota = usage.payload() if usage is not None else None
    if quota is not None:
        payload["quota"] = quota
    return payload
