"""Chat operations behind the API: the checks that need the database (with upstream's
messages), transactions, events (docs/api.md, docs/status-machine.md#transitions).

Handlers parse the body into its request model (``coderchat_ext.models``: the body's own checks)
and authorize, then call one method here with an :class:`Actor` and that typed request. Every
method checks before it writes, so a refused request changes nothing. A chat of another owner is
"not found" (404), never "forbidden".
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .. import errors as E
from ..models import (
    MAX_ROW_ID,
    NIL_UUID,
    Chat,
    ChatMessage,
    ChatMessagePart,
    ChatQueuedMessage,
    CreateChatMessageRequest,
    CreateChatRequest,
    EditMessageRequest,
    RunToolRequest,
    SubmitToolResultsRequest,
    UpdateChatRequest,
    parse_uuid,
)
from ..providers.registry import NoAdapter
from ..store import Database
from ..store import chats as store_chats
from ..store import configs as store_configs
from ..store import messages as store_messages
from ..store import models_config as store_models
from ..store.db import Conn
from ..store.messages import MAX_QUEUE_SIZE, NewMessage
from ..tools.base import ToolResult
from . import prompt
from .daemon import ChatDaemon, pending_dynamic_calls, promote_next
from .errors import ClassifiedError
from .stream import CLOSE_HISTORY_CHANGED, Event, Subscription
from .title import TITLE_TIMEOUT, generate_title

INTERRUPTED_BY_USER = "Tool execution interrupted by user"
"""Synthetic result for dynamic calls of an interrupted ``requires_action`` chat
(docs/status-machine.md#requires_action)."""
INTERRUPT_SETTLE_TIMEOUT = 10.0
"""Seconds ``interrupt`` waits for the interrupted step to be persisted before answering."""


@dataclass(frozen=True)
class Actor:
    """Who is calling: the chat owner name and whether they may change deployment settings."""

    username: str
    is_admin: bool = False


WorkspaceCheck = Callable[[Conn, Actor, str, str], Awaitable[None]]
"""``(conn, actor, workspace_id, organization_id)`` -> awaitable raising :class:`E.ApiError`
when the workspace may not be bound (``WorkspaceService.workspace_check``)."""


def parse_positive_int(value: Any) -> int | None:
    """``value`` (an int or a string of ASCII digits) when it is in ``1..MAX_ROW_ID``, else
    None."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= MAX_ROW_ID else None


class ChatService:
    """The operations of the chat endpoints, for one daemon and database. ``workspace_check``
    says whether a chat may be bound to a workspace (None: no workspace may be bound)."""

    def __init__(
        self, db: Database, daemon: ChatDaemon, *, workspace_check: WorkspaceCheck | None = None
    ) -> None:
        self.db = db
        self.daemon = daemon
        self.hub = daemon.hub
        self.workspace_check = workspace_check
        self._title_locks: set[str] = set()

    # --- helpers --------------------------------------------------------------------------

    async def _owned(self, conn: Conn, actor: Actor, chat_id: str) -> Chat:
        chat = await store_chats.get_chat(conn, chat_id) if parse_uuid(chat_id) else None
        if chat is None or chat.owner != actor.username:
            raise E.NotFound("Chat not found.", f'No chat with ID "{chat_id}".')
        return chat

    async def get_chat(self, actor: Actor, chat_id: str) -> Chat:
        async with self.db.read() as conn:
            chat = await self._owned(conn, actor, chat_id)
            chat.children = await store_chats.list_children(conn, [chat.id]) or None
        return chat

    async def _check_workspace(
        self, conn: Conn, actor: Actor, workspace_id: Any, organization_id: str
    ) -> str:
        ws = parse_uuid(workspace_id)
        if ws is None or self.workspace_check is None:
            raise E.BadRequest("Workspace not found or you do not have access to this resource")
        await self.workspace_check(conn, actor, ws, organization_id)
        return ws

    def _publish_queue(self, chat_id: str, queue: list[ChatQueuedMessage]) -> None:
        self.hub.publish(
            chat_id,
            {
                "type": "queue_update",
                "chat_id": chat_id,
                "queued_messages": [q.dump() for q in queue],
            },
        )

    # --- chats ----------------------------------------------------------------------------

    async def create_chat(self, actor: Actor, request: CreateChatRequest) -> Chat:
        """``POST chats`` (docs/api.md#chats; the body's own checks are the request model's)
        -> the new chat, ``pending``. 400/403 for an unknown organization or one the caller is
        not a member of, a workspace it may not bind, an unknown or disabled model config."""
        async with self.db.read() as conn:
            org_id = await self._organization(conn, actor, request.organization_id)
        content = request.message_parts()
        system_prompt = request.system_prompt
        client_type = request.client_type
        labels = request.labels or {}
        dynamic = request.unsafe_dynamic_tools or []
        chat_id = str(uuid.uuid4())
        async with self.db.tx() as conn:
            workspace_id = None
            if request.workspace_id is not None:
                workspace_id = await self._check_workspace(
                    conn, actor, request.workspace_id, org_id
                )
            config_id = await self._model_config_id(conn, request.model_config_id)
            site_prompt = await store_configs.get_site(conn, store_configs.SYSTEM_PROMPT)
            include = await store_configs.get_site(
                conn, store_configs.INCLUDE_DEFAULT_SYSTEM_PROMPT
            )
            await store_chats.insert_chat(
                conn,
                chat_id=chat_id,
                organization_id=org_id,
                owner=actor.username,
                title=prompt.initial_title(content),
                model_config_id=config_id,
                workspace_id=workspace_id,
                root_chat_id=chat_id,
                client_type=client_type,
                labels=labels,
                dynamic_tools=dynamic,
            )
            rows = []
            deployment = prompt.deployment_system_prompt(
                site_prompt, None if include is None else include == "true"
            )
            if deployment:
                rows.append(
                    NewMessage(
                        role="system", visibility="model", content=[prompt.text_part(deployment)]
                    )
                )
            if system_prompt and prompt.sanitize_prompt(system_prompt):
                rows.append(
                    NewMessage(
                        role="system",
                        visibility="model",
                        content=[prompt.text_part(prompt.sanitize_prompt(system_prompt))],
                    )
                )
            rows.append(
                NewMessage(
                    role="system",
                    visibility="model",
                    content=[prompt.text_part(prompt.workspace_note(workspace_id is not None))],
                )
            )
            rows.append(
                NewMessage(
                    role="user",
                    content=content,
                    created_by=actor.username,
                    model_config_id=config_id,
                )
            )
            await store_messages.insert_messages(conn, chat_id, rows)
            chat = await store_chats.get_chat(conn, chat_id)
        assert chat is not None
        self.daemon.publish_watch(chat, "created")
        self.daemon.wake()
        return chat

    async def _organization(self, conn: Conn, actor: Actor, value: Any) -> str:
        if value is None or value == "":
            org_id = await conn.fetchval(
                "SELECT id FROM organizations WHERE name = ?", (store_configs.DEFAULT_ORGANIZATION,)
            )
        else:
            org_id = await conn.fetchval(
                "SELECT id FROM organizations WHERE id = ? OR name = ?", (value, value)
            )
            if org_id is None:
                raise E.BadRequest("Organization not found.", f'No organization "{value}".')
        if not await store_configs.is_member(conn, org_id, actor.username):
            raise E.Forbidden("You are not a member of the specified organization.")
        return str(org_id)

    async def _model_config_id(self, conn: Conn, value: Any) -> str:
        if value is not None and value != "":
            config_id = parse_uuid(value)
            config = await store_models.get_model_config(conn, config_id) if config_id else None
            if config is None or not config.enabled:
                raise E.BadRequest("Invalid model config ID.")
            return config.id
        default = await store_models.get_default_model_config(conn)
        if default is None:
            raise E.BadRequest("No default chat model config is configured.")
        return default.id

    async def list_chats(
        self,
        actor: Actor,
        *,
        query: str | None,
        labels: list[str],
        archived: bool | None,
        limit: int,
        offset: int,
    ) -> list[Chat]:
        """``GET chats``: root chats with their children embedded (docs/api.md#chats)."""
        label_filter: dict[str, str] = {}
        for item in labels:
            key, sep, value = item.partition(":")
            if not sep or not key or not value:
                raise E.BadRequest(
                    f'Invalid label filter: "{item}" (expected format key:value, both must be'
                    " non-empty)"
                )
            label_filter[key] = value
        async with self.db.read() as conn:
            chats = await store_chats.list_chats(
                conn,
                owner=actor.username,
                query=query,
                labels=label_filter,
                archived=archived,
                limit=limit,
                offset=offset,
            )
            children = await store_chats.list_children(conn, [c.id for c in chats])
        by_parent: dict[str, list[Chat]] = {}
        for child in children:
            by_parent.setdefault(child.parent_chat_id or "", []).append(child)
        for chat in chats:
            chat.children = by_parent.get(chat.id)
        return chats

    async def update_chat(self, actor: Actor, chat_id: str, request: UpdateChatRequest) -> None:
        """``PATCH chats/{id}`` (docs/api.md#chats): title, archived, workspace_id, pin_order,
        labels; only the fields present change."""
        given = request.model_fields_set
        fields: dict[str, Any] = {}
        if "title" in given:
            fields["title"] = request.title
        if "labels" in given:
            fields["labels"] = request.labels or {}
        archived = request.archived
        pin = request.pin_order
        cancelled: list[str] = []
        watch: list[tuple[str, str]] = []
        async with self.db.tx() as conn:
            chat = await self._owned(conn, actor, chat_id)
            if chat.id in self._title_locks and "title" in fields:
                raise E.Conflict("Title regeneration already in progress for this chat.")
            if archived is not None:
                if archived == chat.archived:
                    raise E.BadRequest(
                        "Chat is already archived." if archived else "Chat is already not archived."
                    )
                if chat.parent_chat_id and not archived:
                    parent = await store_chats.get_chat(conn, chat.parent_chat_id)
                    if parent is not None and parent.archived:
                        raise E.BadRequest(
                            "Cannot unarchive a child chat while its parent is archived. "
                            "Unarchive the parent chat to cascade."
                        )
            if pin is not None and pin > 0:
                if chat.archived or archived:
                    raise E.BadRequest("Cannot pin an archived chat.")
                if chat.parent_chat_id:
                    raise E.BadRequest("Cannot pin a child chat.")
            if "workspace_id" in given:
                value = request.workspace_id
                if value is None or value in ("", NIL_UUID):
                    fields.update(workspace_id=None, build_id=None, agent_id=None)
                else:
                    ws = await self._check_workspace(conn, actor, value, chat.organization_id)
                    fields.update(workspace_id=ws, build_id=None, agent_id=None)
            if fields:
                await store_chats.update_chat(conn, chat.id, **fields)
            if archived is not None:
                family = (
                    await store_chats.family_ids(conn, chat.id)
                    if not chat.parent_chat_id
                    else [chat.id]
                )
                for member_id in family:
                    member = await store_chats.get_chat(conn, member_id)
                    if member is None or member.archived == archived:
                        continue
                    await store_chats.update_chat(conn, member_id, archived=archived, pin_order=0)
                    if archived and member.status in ("pending", "running"):
                        await store_chats.set_status(conn, member_id, "waiting")
                        cancelled.append(member_id)
                    watch.append((member_id, "deleted" if archived else "created"))
                if archived and chat.pin_order:
                    await store_chats.renumber_pins(conn, chat.owner, chat.id, 0)
            if pin is not None:
                await store_chats.renumber_pins(conn, chat.owner, chat.id, pin)
            updated = {c: await store_chats.get_chat(conn, c) for c, _ in watch}
            current = await store_chats.get_chat(conn, chat.id)
        for member_id in cancelled:
            self.daemon.cancel_run(member_id, "interrupt")
            self.hub.publish(
                member_id, {"type": "status", "chat_id": member_id, "status": "waiting"}
            )
        for member_id, kind in watch:
            member = updated[member_id]
            if member is not None:
                self.daemon.publish_watch(member, kind)  # type: ignore[arg-type]
        if current is not None and "title" in fields:
            self.daemon.publish_watch(current, "title_change")
        elif current is not None and "workspace_id" in fields:
            self.daemon.publish_watch(current, "status_change")

    # --- messages -------------------------------------------------------------------------

    async def list_messages(
        self,
        actor: Actor,
        chat_id: str,
        *,
        before_id: int | None,
        after_id: int | None,
        limit: int,
    ) -> dict[str, Any]:
        """``GET chats/{id}/messages`` -> ``{messages, queued_messages, has_more}``."""
        if before_id is not None and after_id is not None and after_id >= before_id:
            raise E.BadRequest("after_id must be less than before_id.")
        async with self.db.read() as conn:
            chat = await self._owned(conn, actor, chat_id)
            rows = await store_messages.list_visible(
                conn, chat.id, after_id=after_id, before_id=before_id, limit=limit + 1
            )
            queued = (
                await store_messages.list_queue(conn, chat.id)
                if before_id is None and after_id is None
                else []
            )
        return {
            "messages": [m.public().dump() for m in rows[:limit]],
            "queued_messages": [q.dump() for q in queued],
            "has_more": len(rows) > limit,
        }

    async def send_message(
        self, actor: Actor, chat_id: str, request: CreateChatMessageRequest
    ) -> dict[str, Any]:
        """``POST chats/{id}/messages`` (docs/api.md#messages-and-queue) ->
        ``{queued, message?, queued_message?}`` (``CreateChatMessageResponse``)."""
        busy = request.busy_behavior or "queue"
        content = request.message_parts()
        interrupt_run = False
        queue: list[ChatQueuedMessage] | None = None
        inserted: list[ChatMessage] = []
        queued_message: ChatQueuedMessage | None = None
        async with self.db.tx() as conn:
            chat = await self._owned(conn, actor, chat_id)
            if chat.archived:
                raise E.BadRequest("Cannot send messages to an archived chat.")
            requested = request.model_config_id
            config_id = (
                chat.last_model_config_id
                if requested is None or requested == ""
                else await self._model_config_id(conn, requested)
            )
            backlog = await store_messages.queue_size(conn, chat.id)
            busy_now = chat.status in ("running", "pending", "requires_action")
            if busy_now or backlog:
                if backlog >= MAX_QUEUE_SIZE:
                    raise E.TooManyRequests(
                        "Message queue is full.", "Maximum 20 messages can be queued."
                    )
                queued_message = await store_messages.enqueue(conn, chat.id, content, config_id)
                if busy == "interrupt" and chat.status == "running":
                    await store_chats.set_status(conn, chat.id, "waiting")
                    interrupt_run = True
                elif busy == "interrupt" and chat.status == "requires_action":
                    inserted += await self.daemon.answer_dynamic_calls(
                        conn, chat.id, INTERRUPTED_BY_USER, actor.username
                    )
                    inserted += await promote_next(conn, chat)
                    await store_chats.set_status(conn, chat.id, "pending")
                queue = await store_messages.list_queue(conn, chat.id)
            else:
                inserted = [
                    await store_messages.insert_user_message(
                        conn,
                        chat.id,
                        content,
                        created_by=actor.username,
                        model_config_id=config_id,
                    )
                ]
                await store_chats.set_status(conn, chat.id, "pending")
        self.daemon.publish_messages(chat.id, inserted)
        if queue is not None:
            self._publish_queue(chat.id, queue)
        if interrupt_run:
            self.daemon.cancel_run(chat.id, "interrupt")
            await self.daemon.finish_orphan(chat)
        if inserted or interrupt_run:
            await self.daemon.publish_status(chat.id)
            self.daemon.wake()
        if queued_message is not None and queued_message.id in {q.id for q in queue or []}:
            return {"queued": True, "queued_message": queued_message.dump()}
        user = next((m for m in inserted if m.role == "user"), None)
        return {"queued": False, "message": user.public().dump() if user else None}

    async def edit_message(
        self, actor: Actor, chat_id: str, message_id: Any, request: EditMessageRequest
    ) -> dict[str, Any]:
        """``PATCH chats/{id}/messages/{message_id}``: soft-delete the message and everything
        after it, insert the edited one, drop the queue, restart the turn
        (docs/status-machine.md#transitions)."""
        mid = parse_positive_int(message_id)
        async with self.db.tx() as conn:
            chat = await self._owned(conn, actor, chat_id)
            if chat.archived:
                raise E.BadRequest("Cannot edit messages in an archived chat.")
            if mid is None:
                raise E.BadRequest(
                    "Invalid chat message ID.", "Message ID must be a positive integer."
                )
            original = await store_messages.get_message(conn, chat.id, mid)
            if original is None or original.visibility == "model":
                raise E.NotFound("Chat message not found.", "Message does not belong to this chat.")
            if original.role != "user":
                raise E.BadRequest("Only user messages can be edited.")
            content = request.message_parts()
            await store_messages.soft_delete_from(conn, chat.id, mid)
            await store_messages.clear_queue(conn, chat.id)
            message = await store_messages.insert_user_message(
                conn,
                chat.id,
                content,
                created_by=actor.username,
                model_config_id=original.model_config_id,
            )
            await store_chats.set_status(conn, chat.id, "pending")
        self.daemon.cancel_run(chat.id, "interrupt")
        self.hub.close_subscribers(chat.id, CLOSE_HISTORY_CHANGED, "history changed; reload")
        await self.daemon.publish_status(chat.id)
        self.daemon.wake()
        return {"message": message.public().dump()}

    async def delete_queued(self, actor: Actor, chat_id: str, queued_id: Any) -> None:
        qid = parse_positive_int(queued_id)
        async with self.db.tx() as conn:
            chat = await self._owned(conn, actor, chat_id)
            if qid is None:
                raise E.BadRequest("Invalid queued message ID.")
            row = await conn.fetchval(
                "SELECT id FROM chat_queued_messages WHERE chat_id = ? AND id = ?", (chat.id, qid)
            )
            if row is None:
                raise E.NotFound("Queued message not found.")
            await conn.execute("DELETE FROM chat_queued_messages WHERE id = ?", (qid,))
            queue = await store_messages.list_queue(conn, chat.id)
        self._publish_queue(chat.id, queue)

    async def promote_queued(self, actor: Actor, chat_id: str, queued_id: Any) -> dict[str, Any]:
        """Insert a queued message now and make the chat ``pending`` (a running turn is
        interrupted) -> the new ``ChatMessage``."""
        qid = parse_positive_int(queued_id)
        async with self.db.tx() as conn:
            chat = await self._owned(conn, actor, chat_id)
            if chat.archived:
                raise E.BadRequest("Cannot promote queued messages in an archived chat.")
            if qid is None:
                raise E.BadRequest("Invalid queued message ID.")
            inserted = []
            if chat.status == "requires_action":
                inserted += await self.daemon.answer_dynamic_calls(
                    conn, chat.id, INTERRUPTED_BY_USER, actor.username
                )
            promoted = await promote_next(conn, chat, qid)
            if not promoted:
                raise E.NotFound("Queued message not found.")
            inserted += promoted
            await store_chats.set_status(conn, chat.id, "pending")
            queue = await store_messages.list_queue(conn, chat.id)
        self.daemon.cancel_run(chat.id, "interrupt")
        self.daemon.publish_messages(chat.id, inserted)
        self._publish_queue(chat.id, queue)
        await self.daemon.publish_status(chat.id)
        self.daemon.wake()
        return promoted[0].public().dump()

    async def interrupt(self, actor: Actor, chat_id: str) -> Chat:
        """``POST chats/{id}/interrupt``: stop the turn; the partial step is kept
        (docs/status-machine.md#interrupt-vs-shutdown). Answers once the interrupted step is
        persisted (at most ``INTERRUPT_SETTLE_TIMEOUT``). A ``pending`` chat stays pending: a
        message sent just before the interrupt still gets its answer ("pending wins",
        docs/status-machine.md#transitions)."""
        inserted: list[ChatMessage] = []
        async with self.db.tx() as conn:
            chat = await self._owned(conn, actor, chat_id)
            if chat.status == "requires_action":
                inserted = await self.daemon.answer_dynamic_calls(
                    conn, chat.id, INTERRUPTED_BY_USER, actor.username
                )
            if chat.status in ("running", "requires_action"):
                await store_chats.set_status(conn, chat.id, "waiting")
        self.daemon.publish_messages(chat.id, inserted)
        if chat.status in ("running", "requires_action"):
            self.daemon.cancel_run(chat.id, "interrupt")
            await self.daemon.finish_orphan(chat)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.daemon.wait_idle(chat.id), INTERRUPT_SETTLE_TIMEOUT)
            if not self.daemon.is_running(chat.id):
                await self.daemon.publish_status(chat.id)
        return await self.get_chat(actor, chat.id)

    async def run_tool(
        self, actor: Actor, chat_id: str, name: str, request: RunToolRequest
    ) -> dict[str, Any]:
        """``POST chats/{id}/tools/{name}`` {args}: run one registered tool in the chat's
        context (its workspace, organization and services), as the model would, without
        recording anything in the chat -> ``{tool_call_id, tool_name, args, result,
        is_error}`` (a ``ToolResult``; output the tool streams is collected into the result
        only). 404 for an unknown chat or tool, 400 for arguments the tool's schema refuses,
        409 for an archived chat. A tool that raises gives ``is_error`` "tool failed: ..." as
        in the loop (docs/loop.md#tool-execution)."""
        async with self.db.read() as conn:
            chat = await self._owned(conn, actor, chat_id)
        tool = self.daemon.tools.get(name)
        if tool is None:
            raise E.NotFound("Tool not found.", f'No tool named "{name}".')
        if chat.archived:
            raise E.Conflict("Chat is archived.")
        try:
            args = tool.parse(request.args or {})
        except ValueError as exc:
            raise E.BadRequest(
                "Invalid tool arguments.", str(exc), validations=[("args", str(exc))]
            ) from None
        call_id = f"direct_{uuid.uuid4().hex[:16]}"

        async def emit(delta: str) -> None:
            # The call is not part of the chat's history, so nothing is published.
            return None

        ctx = self.daemon.tool_context(chat, call_id, emit)
        try:
            result = await tool.run(args, ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            result = ToolResult(f"tool failed: {exc}", is_error=True)
        if not isinstance(result, ToolResult):
            result = ToolResult(result)
        return {
            "tool_call_id": call_id,
            "tool_name": name,
            "args": args.model_dump(exclude_none=True),
            "result": result.result,
            "is_error": result.is_error,
        }

    async def submit_tool_results(
        self, actor: Actor, chat_id: str, request: SubmitToolResultsRequest
    ) -> None:
        """``POST chats/{id}/tool-results`` (docs/status-machine.md#requires_action): answer every
        pending dynamic call at once. 400 for an archived chat and, in the reference's order, a
        duplicate, missing or unexpected ``tool_call_id``; 409 unless ``requires_action``."""
        results = request.results
        async with self.db.tx() as conn:
            chat = await self._owned(conn, actor, chat_id)
            if chat.archived:
                raise E.BadRequest("Cannot submit tool results to an archived chat.")
            if chat.status != "requires_action":
                raise E.Conflict(
                    "Chat is not waiting for tool results.",
                    f'Chat status is "{chat.status}", expected "requires_action".',
                )
            pending = {c.tool_call_id: c for c in await pending_dynamic_calls(conn, chat.id)}
            seen: set[str] = set()
            for item in results:
                if item.tool_call_id in seen:
                    raise E.BadRequest(
                        "Duplicate tool_call_id in results.",
                        f'Duplicate tool call ID "{item.tool_call_id}".',
                    )
                seen.add(item.tool_call_id)
            for call_id in pending:
                if call_id not in seen:
                    raise E.BadRequest(
                        "Missing tool result.", f'Missing result for tool call "{call_id}".'
                    )
            for item in results:
                if item.tool_call_id not in pending:
                    raise E.BadRequest(
                        "Unexpected tool result.",
                        f'No pending tool call with ID "{item.tool_call_id}".',
                    )
            inserted = await store_messages.insert_messages(
                conn,
                chat.id,
                [
                    NewMessage(
                        role="tool",
                        created_by=actor.username,
                        model_config_id=chat.last_model_config_id,
                        content=[
                            ChatMessagePart.tool_result(
                                item.tool_call_id,
                                pending[item.tool_call_id].tool_name,
                                item.output,
                                is_error=bool(item.is_error),
                            )
                        ],
                    )
                    for item in results
                ],
            )
            await store_chats.set_status(conn, chat.id, "pending")
        self.daemon.publish_messages(chat.id, inserted)
        await self.daemon.publish_status(chat.id)
        self.daemon.wake()

    async def regenerate_title(self, actor: Actor, chat_id: str) -> Chat:
        """``POST chats/{id}/title/regenerate``: a new LLM title from the first user message.

        Errors: 404 unknown chat; 409 in progress or running; 400 "Chat has no user message to
        title.", "No default chat model config is configured." (the chat's config is gone and
        there is no default) or "Chat provider is not configured." (its provider is unknown or
        has no adapter); 500 "Failed to regenerate chat title." when the model fails
        (docs/api.md#chats)."""
        async with self.db.read() as conn:
            chat = await self._owned(conn, actor, chat_id)
            if chat.id in self._title_locks:
                raise E.Conflict("Title regeneration already in progress for this chat.")
            if chat.status in ("pending", "running"):
                raise E.Conflict("Cannot regenerate the title while the chat is running.")
            visible = await store_messages.list_visible(conn, chat.id, limit=None)
            try:
                config = await self.daemon.resolve_model_config(conn, chat)
            except ClassifiedError as exc:
                raise E.BadRequest(
                    "No default chat model config is configured.", exc.error.message
                ) from None
        first = next((m for m in visible if m.role == "user"), None)
        text = "".join(p.text or "" for p in first.content if p.type == "text") if first else ""
        if not text:
            raise E.BadRequest("Chat has no user message to title.")
        try:
            model, _ = await self.daemon.catalog.model_for(config, purpose="title")
        except (NoAdapter, LookupError):
            raise E.BadRequest(
                "Chat provider is not configured.",
                f'No model adapter is available for provider "{config.provider}".',
            ) from None
        self._title_locks.add(chat.id)
        try:
            title = await asyncio.wait_for(generate_title(model, text), TITLE_TIMEOUT)
        except Exception as exc:
            raise E.InternalError("Failed to regenerate chat title.", str(exc)) from exc
        finally:
            self._title_locks.discard(chat.id)
        if not title:
            raise E.InternalError("Failed to regenerate chat title.", "The model gave no title.")
        async with self.db.tx() as conn:
            await store_chats.update_chat(conn, chat.id, title=title)
            updated = await store_chats.get_chat(conn, chat.id)
        assert updated is not None
        self.daemon.publish_watch(updated, "title_change")
        return updated

    # --- streams --------------------------------------------------------------------------

    async def open_stream(
        self, actor: Actor, chat_id: str, after_id: int
    ) -> tuple[Subscription, list[Event]]:
        """Subscribe, then read: returns the live subscription and the connect snapshot —
        ``status``, every visible message with ``id > after_id``, the subscriber's events that
        arrived meanwhile, the parts of the step in flight, then ``queue_update`` if the queue
        is non-empty (docs/stream-protocol.md#on-connect-replay). Messages come before in-flight
        parts so a client can treat every assistant ``message`` as "the step in flight is done"."""
        sub = self.hub.subscribe(chat_id)
        try:
            async with self.db.read() as conn:
                chat = await self._owned(conn, actor, chat_id)
                messages = await store_messages.list_visible(conn, chat.id, after_id=after_id)
                queue = await store_messages.list_queue(conn, chat.id)
            async with self.db.tx() as conn:
                await store_chats.mark_read(conn, chat.id)
        except BaseException:
            sub.close(1000, "closed")
            raise
        queued, parts = self.hub.take_in_flight(chat_id, sub)
        sub.last_message_id = after_id
        snapshot: list[Event] = [{"type": "status", "chat_id": chat_id, "status": chat.status}]
        snapshot += [
            {"type": "message", "chat_id": chat_id, "message": m.public().dump()} for m in messages
        ]
        snapshot += queued
        snapshot = sub.deliverable(snapshot)
        snapshot += parts
        if queue:
            snapshot.append(
                {
                    "type": "queue_update",
                    "chat_id": chat_id,
                    "queued_messages": [q.dump() for q in queue],
                }
            )
        return sub, snapshot

    async def open_watch(self, actor: Actor) -> Subscription:
        return self.hub.subscribe_watch(actor.username)
