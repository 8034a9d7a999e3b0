"""Chat endpoints: chats, messages, the queue, interrupts, tool results, direct tool runs and
titles (docs/api.md#chats, docs/api.md#messages-and-queue; ``server/handlers.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..models import Chat, ChatMessage, ChatQueuedMessage, DynamicTool
from ._transport import Transport, compact, content_parts, parse_list, segment
from ._types import UNSET, Content, MessagePage, SendResult, _Unset
from ._wire import DirectToolResult, ToolResult


def _chat_path(chat_id: str, *rest: str | int) -> str:
    return "/".join(["chats", segment(chat_id), *(segment(r) for r in rest)])


class ChatsApi(Transport):
    """The chat endpoints. Each raises :class:`ApiError` (``status``, ``message``,
    ``detail``, ``validations``) when the server refuses the call: 404 "Chat not found." for
    an unknown chat or another owner's, 400 with ``validations`` for a body it rejects."""

    async def list_chats(
        self,
        *,
        q: str | None = None,
        labels: Mapping[str, str] | None = None,
        archived: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Chat]:
        """``GET chats``: the caller's root chats (children embedded), newest activity first.
        ``q`` searches titles; ``labels`` requires every ``key: value``; ``archived`` keeps
        only archived (``True``) or unarchived (``False``) chats; ``limit`` is 1..200 and
        ``offset`` the number of chats to skip. 400 for a limit out of range."""
        params: list[tuple[str, Any]] = [
            ("q", q),
            ("archived", archived),
            ("limit", limit),
            ("offset", offset),
        ]
        params += [("label", f"{k}:{v}") for k, v in (labels or {}).items()]
        return parse_list(Chat, await self.request("GET", "chats", params=params))

    async def create_chat(
        self,
        content: Content,
        *,
        model_config_id: str | None = None,
        workspace_id: str | None = None,
        system_prompt: str | None = None,
        labels: Mapping[str, str] | None = None,
        organization_id: str | None = None,
        unsafe_dynamic_tools: Sequence[DynamicTool | Mapping[str, Any]] | None = None,
        client_type: Literal["ui", "api"] | None = None,
    ) -> Chat:
        """``POST chats`` -> the new :class:`Chat` (status ``pending``; its first turn starts
        on its own). ``model_config_id`` defaults to the default model config;
        ``unsafe_dynamic_tools`` are client-executed tools (docs/api.md#dynamic-tool-results) the
        model may call, answered with :meth:`submit_tool_results`. 400 "Content is required." for
        empty content, 400 for an unknown model config or workspace; 403 outside the
        organization."""
        tools = (
            [t.dump() if isinstance(t, DynamicTool) else dict(t) for t in unsafe_dynamic_tools]
            if unsafe_dynamic_tools is not None
            else None
        )
        body = {
            "content": content_parts(content),
            **compact(
                {
                    "model_config_id": model_config_id,
                    "workspace_id": workspace_id,
                    "system_prompt": system_prompt,
                    "labels": dict(labels) if labels is not None else None,
                    "organization_id": organization_id,
                    "unsafe_dynamic_tools": tools,
                    "client_type": client_type,
                }
            ),
        }
        return Chat.model_validate(await self.request("POST", "chats", body=body))

    async def get_chat(self, chat_id: str) -> Chat:
        """``GET chats/{id}`` -> :class:`Chat` with its children (404 "Chat not found.")."""
        return Chat.model_validate(await self.request("GET", _chat_path(chat_id)))

    async def update_chat(
        self,
        chat_id: str,
        *,
        title: str | _Unset = UNSET,
        archived: bool | _Unset = UNSET,
        workspace_id: str | _Unset | None = UNSET,
        pin_order: int | _Unset = UNSET,
        labels: Mapping[str, str] | _Unset = UNSET,
    ) -> None:
        """``PATCH chats/{id}``: change only the given fields (``workspace_id=None`` unbinds
        the workspace; ``pin_order=0`` unpins). Archiving cascades to the children and stops
        running turns. 400 when already (un)archived or for an invalid field; 409 while a
        title regeneration runs."""
        fields: dict[str, Any] = {
            "title": title,
            "archived": archived,
            "workspace_id": workspace_id,
            "pin_order": pin_order,
            "labels": dict(labels) if isinstance(labels, Mapping) else labels,
        }
        await self.request("PATCH", _chat_path(chat_id), body=compact(fields, UNSET))

    async def archive_chat(self, chat_id: str) -> None:
        """Archive a chat and its children (400 when it already is)."""
        await self.update_chat(chat_id, archived=True)

    async def unarchive_chat(self, chat_id: str) -> None:
        """Unarchive a chat and its children (400 when it is not archived)."""
        await self.update_chat(chat_id, archived=False)

    async def list_messages(
        self,
        chat_id: str,
        *,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        """``GET chats/{id}/messages`` -> :class:`MessagePage` of visible messages (newest
        first; oldest first when only ``after_id`` is given) with ids in (``after_id``,
        ``before_id``); ``limit`` is 1..200. 400 when ``after_id >= before_id``."""
        data = await self.request(
            "GET",
            _chat_path(chat_id, "messages"),
            params={"before_id": before_id, "after_id": after_id, "limit": limit},
        )
        return MessagePage(
            messages=parse_list(ChatMessage, data.get("messages") or []),
            queued_messages=parse_list(ChatQueuedMessage, data.get("queued_messages") or []),
            has_more=bool(data.get("has_more")),
        )

    async def send_message(
        self,
        chat_id: str,
        content: Content,
        *,
        model_config_id: str | None = None,
        busy_behavior: Literal["queue", "interrupt"] | None = None,
    ) -> SendResult:
        """``POST chats/{id}/messages`` -> :class:`SendResult`. An idle chat inserts the
        message and starts a turn; a busy one queues it (``busy_behavior="interrupt"`` also
        stops the running turn). 400 for empty content or an archived chat; 429 when 20
        messages are queued."""
        body = {
            "content": content_parts(content),
            **compact({"model_config_id": model_config_id, "busy_behavior": busy_behavior}),
        }
        data = await self.request("POST", _chat_path(chat_id, "messages"), body=body)
        message = data.get("message")
        queued = data.get("queued_message")
        return SendResult(
            queued=bool(data.get("queued")),
            message=ChatMessage.model_validate(message) if message else None,
            queued_message=ChatQueuedMessage.model_validate(queued) if queued else None,
        )

    async def edit_message(self, chat_id: str, message_id: int, content: Content) -> ChatMessage:
        """``PATCH chats/{id}/messages/{message_id}``: replace a user message, drop everything
        after it and the queue, restart the turn -> the new user message. Open streams of
        the chat close with 4001 (a ``reset`` marker). 400 for a message that is not the
        user's; 404 for an unknown message."""
        data = await self.request(
            "PATCH",
            _chat_path(chat_id, "messages", message_id),
            body={"content": content_parts(content)},
        )
        return ChatMessage.model_validate(data["message"])

    async def delete_queued_message(self, chat_id: str, queued_id: int) -> None:
        """``DELETE chats/{id}/queue/{queued_id}`` (404 for an unknown queued message)."""
        await self.request("DELETE", _chat_path(chat_id, "queue", queued_id))

    async def promote_queued_message(self, chat_id: str, queued_id: int) -> ChatMessage:
        """``POST chats/{id}/queue/{queued_id}/promote``: send a queued message now (a running
        turn is interrupted) -> the inserted user message. 400 for an archived chat."""
        data = await self.request("POST", _chat_path(chat_id, "queue", queued_id, "promote"))
        return ChatMessage.model_validate(data)

    async def interrupt(self, chat_id: str) -> Chat:
        """``POST chats/{id}/interrupt``: stop the turn (the partial step is kept,
        docs/loop.md#interrupts) -> the chat once the step is persisted."""
        return Chat.model_validate(await self.request("POST", _chat_path(chat_id, "interrupt")))

    async def submit_tool_results(
        self, chat_id: str, results: Sequence[ToolResult | Mapping[str, Any]]
    ) -> None:
        """``POST chats/{id}/tool-results``: answer every pending dynamic tool call of a
        ``requires_action`` chat at once; each result is a :class:`ToolResult` or a mapping
        ``{"tool_call_id", "output", "is_error"?}``. 400 for a missing, duplicate or
        unexpected ``tool_call_id``; 409 "Chat is not waiting for tool results."."""
        # A mapping goes as given, so the server's validation messages reach the caller.
        body = {
            "results": [
                r.model_dump(mode="json") if isinstance(r, ToolResult) else dict(r) for r in results
            ]
        }
        await self.request("POST", _chat_path(chat_id, "tool-results"), body=body)

    async def run_tool(
        self, chat_id: str, tool_name: str, args: Mapping[str, Any] | None = None
    ) -> DirectToolResult:
        """``POST chats/{id}/tools/{name}``: run one tool now in the chat's context (its
        workspace), without recording it in the chat -> :class:`DirectToolResult` (a tool
        that fails answers ``is_error=True``, not an exception). 400 for arguments the tool's
        schema refuses; 404 for an unknown tool; 409 for an archived chat."""
        data = await self.request(
            "POST", _chat_path(chat_id, "tools", tool_name), body={"args": dict(args or {})}
        )
        return DirectToolResult.model_validate(data)

    async def regenerate_title(self, chat_id: str) -> Chat:
        """``POST chats/{id}/title/regenerate`` -> the chat with a title made from its first
        user message. 400 without a user message; 409 while the chat runs or another
        regeneration is in progress."""
        data = await self.request("POST", _chat_path(chat_id, "title", "regenerate"))
        return Chat.model_validate(data)
