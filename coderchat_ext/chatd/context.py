"""Workspace context: instruction files and skills read from the chat's agent
(docs/workspaces.md#context-files-and-skills).

Every turn of a chat with a workspace reads ``AGENTS.md`` and the skills index through the
agent's ``context`` operation (bounded by :data:`CONTEXT_TIMEOUT`). The daemon persists the
parts when they differ from the last ones it stored and renders them as system blocks
(``prompt.context_blocks``); when the agent cannot be reached it uses the last stored parts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..models import Chat, ChatMessagePart
from ..workspaces.agents import NO_WORKSPACE, AgentError, AgentUnavailable

CONTEXT_TIMEOUT = 5.0
"""Seconds to resolve the agent and read its context
(docs/workspaces.md#context-files-and-skills)."""


class ContextUnavailable(Exception):
    """The chat has a workspace but its agent could not be read (use the stored context)."""


def context_parts(agent_id: str, context: dict[str, Any]) -> list[ChatMessagePart]:
    """The ``context-file`` and ``skill`` parts of a runtime ``context`` result; a blank
    ``context-file`` marker carrying the agent id when there is nothing
    (docs/workspaces.md#context-files-and-skills)."""
    os_name = context.get("os") or None
    directory = context.get("directory") or None
    parts = [
        ChatMessagePart(
            type="context-file",
            context_file_path=f.get("path"),
            context_file_content=f.get("content") or "",
            context_file_truncated=bool(f.get("truncated")) or None,
            context_file_agent_id=agent_id,
            context_file_os=os_name,
            context_file_directory=directory,
        )
        for f in context.get("files") or []
    ]
    parts += [
        ChatMessagePart(
            type="skill",
            skill_name=s.get("name"),
            skill_description=s.get("description") or None,
            skill_dir=s.get("dir"),
            context_file_skill_meta_file=s.get("meta_file"),
            context_file_agent_id=agent_id,
        )
        for s in context.get("skills") or []
        if s.get("name")
    ]
    if not parts:
        parts = [ChatMessagePart(type="context-file", context_file_agent_id=agent_id)]
    return parts


async def read_context(
    resolver: Any, chat: Chat, timeout: float = CONTEXT_TIMEOUT
) -> list[ChatMessagePart] | None:
    """The chat's workspace context now; None when the chat has no workspace. Raises
    :class:`ContextUnavailable` when its agent cannot be reached or read in ``timeout``."""

    async def read() -> list[ChatMessagePart] | None:
        try:
            handle = await resolver.agent_for_chat(chat)
        except AgentUnavailable as exc:
            if exc.message == NO_WORKSPACE:
                return None
            raise ContextUnavailable(exc.message) from exc
        try:
            result = await handle.call("context", {}, timeout=timeout)
        except (AgentUnavailable, AgentError) as exc:
            raise ContextUnavailable(exc.message) from exc
        return context_parts(handle.agent_id, result if isinstance(result, dict) else {})

    try:
        return await asyncio.wait_for(read(), timeout)
    except asyncio.TimeoutError:
        raise ContextUnavailable("reading the workspace context timed out") from None


def is_context(message_parts: list[ChatMessagePart]) -> bool:
    """Whether a message holds injected workspace context."""
    return any(p.type in ("context-file", "skill") for p in message_parts)
