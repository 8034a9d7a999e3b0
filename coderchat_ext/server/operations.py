"""The operation table of the API: one :class:`Operation` per route and method of
``handlers.rest_handlers()`` and ``ws.ws_handlers()`` (``tests/server/test_openapi.py`` checks
that the two stay in step), with the pydantic models of its query, body, answer and frames.
``openapi.py`` builds the document from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import models as M
from ..chatd.stream import CLOSE_HISTORY_CHANGED, CLOSE_SHUTDOWN, CLOSE_TOO_SLOW
from ..store.messages import MAX_QUEUE_SIZE
from .base import MAX_PAGE_LIMIT

Schema = dict[str, Any]


class Query(BaseModel):
    """Query parameters of an operation; each field is one (its description from its
    docstring). The handlers read them with ``int_arg``/``limit_arg`` under these names."""

    model_config = ConfigDict(use_attribute_docstrings=True)


Limit = Annotated[int, Field(ge=1, le=MAX_PAGE_LIMIT)]


class ListChatsQuery(Query):
    q: str | None = None
    """Search in titles."""
    label: list[Annotated[str, Field(pattern="^[^:]+:.+$")]] | None = None
    """Label filter `key:value`; repeat to require several."""
    archived: bool | None = None
    """Only archived (true) or unarchived (false) chats; also 1/0, yes/no."""
    limit: Limit = Field(50, description=f"Page size (1-{MAX_PAGE_LIMIT}).")
    offset: Annotated[int, Field(ge=0, le=M.MAX_ROW_ID)] = 0
    """Chats to skip."""


class ListMessagesQuery(Query):
    before_id: Annotated[int, Field(ge=1, le=M.MAX_ROW_ID)] | None = None
    """Only messages with a smaller ID."""
    after_id: Annotated[int, Field(ge=0, le=M.MAX_ROW_ID)] | None = None
    """Only messages with a larger ID."""
    limit: Limit = Field(50, description=f"Page size (1-{MAX_PAGE_LIMIT}).")


class StreamQuery(Query):
    after_id: Annotated[int, Field(ge=0, le=M.MAX_ROW_ID)] = 0
    """Replay visible messages with a larger ID first."""


class JobLogsQuery(Query):
    after: Annotated[int, Field(ge=0, le=M.MAX_ROW_ID)] = 0
    """Only logs with a larger ID."""
    follow: Literal["1", "true"] | None = None
    """Upgrade to a WebSocket: the logs so far, then each new one; closed with 1000 when the
    job has ended."""


PATH_PARAMS: dict[str, tuple[Schema, str]] = {
    "chat_id": ({"type": "string", "format": "uuid"}, "The chat."),
    "message_id": ({"type": "integer", "minimum": 1}, "A message of the chat."),
    "queued_id": ({"type": "integer", "minimum": 1}, "A queued message of the chat."),
    "provider_id": ({"type": "string"}, "The provider's ID."),
    "config_id": ({"type": "string", "format": "uuid"}, "The model config."),
    "template_id": ({"type": "string", "format": "uuid"}, "The template."),
    "workspace_id": ({"type": "string", "format": "uuid"}, "The workspace."),
    "tool_name": ({"type": "string"}, "A tool's name (``read_file``, ``execute``, ...)."),
    "job_id": (
        {"type": "string", "format": "uuid"},
        "A provisioner job (a workspace build's ``job.id``).",
    ),
}


@dataclass(frozen=True)
class Operation:
    """One route and method.

    ``path`` is relative to the server URL with ``{name}`` parameters (see
    :data:`PATH_PARAMS`); ``status`` is the success status and ``response`` the type of its
    body (a model, ``list[Model]``, a named alias or a raw schema; ``None`` for no body);
    ``request`` is the body's model and ``query`` the query parameters' model; ``errors``
    maps each error status the service returns for it to a description (403 for refused
    credentials and 503 while the extension starts are added to every operation, 413 to
    every operation with a body); ``frame`` is the type of a WebSocket frame and makes the
    operation a WebSocket upgrade.
    """

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    status: int = 200
    response: Any = None
    request: type[BaseModel] | None = None
    query: type[Query] | None = None
    errors: Mapping[int, str] = field(default_factory=dict)
    description: str = ""
    frame: Any = None


_CHAT_NOT_FOUND = "Chat not found (also when another user owns it)."
_ADMIN_ONLY = "The caller is not an administrator."
_HIDDEN = "Resource not found: the caller is not an administrator."
_NOT_A_HANDSHAKE = (
    "A plain GET (no `Upgrade: websocket` and `Connection: Upgrade`) is not a WebSocket handshake."
)
_CROSS_ORIGIN = "An upgrade from another origin (`Origin` is not the server's host)."
_WS_UPGRADE = (
    "A WebSocket upgrade: send `GET` with `Connection: Upgrade` and `Upgrade: websocket`; the "
    "server answers `101 Switching Protocols`, or an HTTP error with the usual JSON body "
    "before the upgrade. Credentials are those of the REST endpoints (the token header, "
    "`?token=`, or the login cookie with a matching `Origin`). The server sends text frames "
    "holding JSON and ignores what the client sends. Close codes: "
    f"{CLOSE_HISTORY_CHANGED} history changed (reload), {CLOSE_TOO_SLOW} the client fell behind "
    f"(reconnect with `after_id`), {CLOSE_SHUTDOWN} server shutting down, 1011 internal error."
)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get",
        "/chats",
        "listChats",
        "List the caller's root chats, children embedded, newest first",
        "chats",
        response=list[M.Chat],
        query=ListChatsQuery,
        errors={400: "Invalid limit, offset, archived or label parameter."},
    ),
    Operation(
        "post",
        "/chats",
        "createChat",
        "Create a chat with its first user message; the turn starts (docs/api.md#chats)",
        "chats",
        status=201,
        response=M.Chat,
        request=M.CreateChatRequest,
        errors={
            400: "Invalid body: content, labels, dynamic tools, client_type, system prompt "
            "length, organization, workspace or model config.",
            403: "Not a member of the organization.",
        },
    ),
    Operation(
        "get",
        "/chats/{chat_id}",
        "getChat",
        "Get a chat with its children",
        "chats",
        response=M.Chat,
        errors={404: _CHAT_NOT_FOUND},
    ),
    Operation(
        "patch",
        "/chats/{chat_id}",
        "updateChat",
        "Rename, archive, pin, relabel or rebind a chat (docs/api.md#chats)",
        "chats",
        status=204,
        request=M.UpdateChatRequest,
        errors={
            400: "Invalid field; already (un)archived; pinning an archived or child chat.",
            404: _CHAT_NOT_FOUND,
            409: "Title regeneration already in progress for this chat.",
        },
        description="Archiving cascades to the chat's children and stops running turns.",
    ),
    Operation(
        "get",
        "/chats/{chat_id}/messages",
        "listChatMessages",
        "Page through a chat's visible messages, newest first",
        "chats",
        response=M.ChatMessagesPage,
        query=ListMessagesQuery,
        errors={
            400: "Invalid limit, before_id or after_id; after_id must be less than before_id.",
            404: _CHAT_NOT_FOUND,
        },
    ),
    Operation(
        "post",
        "/chats/{chat_id}/messages",
        "createChatMessage",
        "Send a message: inserted when the chat is idle, queued when it is busy",
        "chats",
        response=M.CreateChatMessageResponse,
        request=M.CreateChatMessageRequest,
        errors={
            400: "Invalid content, busy_behavior or model config; the chat is archived.",
            404: _CHAT_NOT_FOUND,
            429: f"Message queue is full ({MAX_QUEUE_SIZE} queued).",
        },
    ),
    Operation(
        "patch",
        "/chats/{chat_id}/messages/{message_id}",
        "editChatMessage",
        "Edit a user message: later messages and the queue are dropped, the turn restarts",
        "chats",
        response=M.EditMessageResponse,
        request=M.EditMessageRequest,
        errors={
            400: "Invalid message ID or content; not a user message; the chat is archived.",
            404: "Chat or message not found.",
        },
        description="Stream subscribers of the chat are closed with code "
        f"{CLOSE_HISTORY_CHANGED} (history changed).",
    ),
    Operation(
        "delete",
        "/chats/{chat_id}/queue/{queued_id}",
        "deleteQueuedMessage",
        "Remove a queued message",
        "chats",
        status=204,
        errors={400: "Invalid queued message ID.", 404: "Chat or queued message not found."},
    ),
    Operation(
        "post",
        "/chats/{chat_id}/queue/{queued_id}/promote",
        "promoteQueuedMessage",
        "Send a queued message now, interrupting the running turn",
        "chats",
        response=M.ChatMessage,
        errors={
            400: "Invalid queued message ID; the chat is archived.",
            404: "Chat or queued message not found.",
        },
    ),
    Operation(
        "post",
        "/chats/{chat_id}/interrupt",
        "interruptChat",
        "Stop the running turn, keeping the partial step (docs/status-machine.md)",
        "chats",
        response=M.Chat,
        errors={404: _CHAT_NOT_FOUND},
    ),
    Operation(
        "post",
        "/chats/{chat_id}/tool-results",
        "submitToolResults",
        "Answer every pending dynamic tool call at once (docs/status-machine.md#requires_action)",
        "chats",
        status=204,
        request=M.SubmitToolResultsRequest,
        errors={
            400: "No results; missing, duplicate or unexpected tool_call_id; no output; "
            "the chat is archived.",
            404: _CHAT_NOT_FOUND,
            409: "Chat is not waiting for tool results.",
        },
    ),
    Operation(
        "post",
        "/chats/{chat_id}/tools/{tool_name}",
        "runChatTool",
        "Run one tool in the chat's context (its workspace) without recording it in the chat",
        "chats",
        response=M.DirectToolResult,
        request=M.RunToolRequest,
        errors={
            400: "Arguments the tool's schema refuses.",
            404: "Chat or tool not found.",
            409: "Chat is archived.",
        },
    ),
    Operation(
        "post",
        "/chats/{chat_id}/title/regenerate",
        "regenerateChatTitle",
        "Generate a new title from the first user message",
        "chats",
        response=M.Chat,
        errors={
            400: "Chat has no user message to title; no model config or provider to title with.",
            404: _CHAT_NOT_FOUND,
            409: "A regeneration is in progress, or the chat is running.",
            500: "Failed to regenerate chat title.",
        },
    ),
    Operation(
        "get",
        "/chats/watch",
        "watchChats",
        "WebSocket: the caller's chat events, one ChatWatchEvent per frame",
        "streams",
        status=101,
        frame=M.ChatWatchEvent,
        errors={400: _NOT_A_HANDSHAKE, 403: _CROSS_ORIGIN},
        description=_WS_UPGRADE,
    ),
    Operation(
        "get",
        "/chats/{chat_id}/stream",
        "streamChat",
        "WebSocket: a chat's events, a JSON array of ChatStreamEvent per frame",
        "streams",
        status=101,
        frame=M.ChatStreamFrame,
        query=StreamQuery,
        errors={
            400: f"Invalid after_id parameter. {_NOT_A_HANDSHAKE}",
            403: _CROSS_ORIGIN,
            404: _CHAT_NOT_FOUND,
        },
        description=_WS_UPGRADE
        + f" Each frame is an array of 1-{M.STREAM_FRAME_MAX_EVENTS} events. On connect: the "
        "current `status`, every visible message with `id > after_id`, the parts of the step "
        "in flight, then `queue_update` when the queue is non-empty; then live events "
        "(docs/stream-protocol.md).",
    ),
    Operation(
        "get",
        "/models",
        "listModels",
        "Each provider's availability and its enabled model configs",
        "models",
        response=M.ModelsResponse,
    ),
    Operation(
        "get",
        "/providers",
        "listProviders",
        "List providers (administrators)",
        "models",
        response=list[M.ChatProviderConfig],
        errors={404: _HIDDEN},
    ),
    Operation(
        "post",
        "/providers",
        "createProvider",
        "Store a provider's settings (administrators)",
        "models",
        status=201,
        response=M.ChatProviderConfig,
        request=M.CreateProviderRequest,
        errors={
            400: "Invalid provider, API key, base URL or field.",
            403: _ADMIN_ONLY,
            409: "Chat provider already exists.",
        },
    ),
    Operation(
        "patch",
        "/providers/{provider_id}",
        "updateProvider",
        "Change a stored provider (administrators)",
        "models",
        response=M.ChatProviderConfig,
        request=M.UpdateProviderRequest,
        errors={
            400: "Invalid API key, base URL or field.",
            403: _ADMIN_ONLY,
            404: "Chat provider not found.",
        },
    ),
    Operation(
        "delete",
        "/providers/{provider_id}",
        "deleteProvider",
        "Delete a stored provider (administrators)",
        "models",
        status=204,
        errors={403: _ADMIN_ONLY, 404: "Chat provider not found."},
    ),
    Operation(
        "get",
        "/model-configs",
        "listModelConfigs",
        "List model configs (enabled ones only for non-administrators)",
        "models",
        response=list[M.ChatModelConfig],
    ),
    Operation(
        "post",
        "/model-configs",
        "createModelConfig",
        "Create a model config (administrators)",
        "models",
        status=201,
        response=M.ChatModelConfig,
        request=M.CreateModelConfigRequest,
        errors={
            400: "Missing model or context limit; invalid field; provider not configured.",
            403: _ADMIN_ONLY,
            409: "Chat model config already exists.",
        },
    ),
    Operation(
        "patch",
        "/model-configs/{config_id}",
        "updateModelConfig",
        "Change a model config (administrators)",
        "models",
        response=M.ChatModelConfig,
        request=M.UpdateModelConfigRequest,
        errors={
            400: "Invalid field.",
            403: _ADMIN_ONLY,
            404: "Chat model config not found.",
            409: "Chat model config already exists.",
        },
    ),
    Operation(
        "delete",
        "/model-configs/{config_id}",
        "deleteModelConfig",
        "Delete a model config (administrators)",
        "models",
        status=204,
        errors={403: _ADMIN_ONLY, 404: "Chat model config not found."},
    ),
    Operation(
        "get",
        "/config/system-prompt",
        "getSystemPrompt",
        "The deployment system prompt (administrators)",
        "config",
        response=M.SystemPromptConfig,
        errors={404: _HIDDEN},
    ),
    Operation(
        "put",
        "/config/system-prompt",
        "putSystemPrompt",
        "Set the deployment system prompt (administrators)",
        "config",
        status=204,
        request=M.SystemPromptRequest,
        errors={400: "Invalid body; system prompt exceeds maximum length.", 403: _ADMIN_ONLY},
    ),
    Operation(
        "get",
        "/config/user-prompt",
        "getUserPrompt",
        "The caller's custom prompt",
        "config",
        response=M.UserPromptConfig,
    ),
    Operation(
        "put",
        "/config/user-prompt",
        "putUserPrompt",
        "Set the caller's custom prompt",
        "config",
        response=M.UserPromptConfig,
        request=M.UserPromptRequest,
        errors={400: "Invalid body; custom prompt exceeds maximum length."},
    ),
    Operation(
        "get",
        "/config/template-allowlist",
        "getTemplateAllowlist",
        "The workspace templates chats may use (administrators)",
        "config",
        response=M.TemplateAllowlist,
        errors={404: _HIDDEN, 500: "Stored template allowlist is corrupt."},
    ),
    Operation(
        "put",
        "/config/template-allowlist",
        "putTemplateAllowlist",
        "Set the workspace templates chats may use (administrators)",
        "config",
        status=204,
        request=M.TemplateAllowlistRequest,
        errors={
            400: "Invalid template ID; templates not found or deprecated.",
            404: _HIDDEN,
        },
    ),
    Operation(
        "get",
        "/config/advisor",
        "getAdvisorConfig",
        "The advisor settings",
        "config",
        response=M.AdvisorConfig,
        errors={500: "Stored advisor configuration is invalid."},
    ),
    Operation(
        "put",
        "/config/advisor",
        "putAdvisorConfig",
        "Set the advisor settings (administrators)",
        "config",
        status=204,
        request=M.AdvisorConfigRequest,
        errors={
            400: "Invalid field, reasoning effort or model config ID.",
            403: _ADMIN_ONLY,
        },
    ),
    Operation(
        "get",
        "/templates",
        "listTemplates",
        "Templates of the caller's organizations that chats may use (administrators: all, "
        "with allowlisted)",
        "workspaces",
        response=list[M.Template],
        errors={500: "Stored template allowlist is corrupt."},
    ),
    Operation(
        "get",
        "/templates/{template_id}",
        "getTemplate",
        "A template with its active version's parameters, presets and agents",
        "workspaces",
        response=M.TemplateDetail,
        errors={404: "Template not found (or not allowlisted, or of another organization)."},
    ),
    Operation(
        "get",
        "/workspaces",
        "listWorkspaces",
        "The caller's workspaces with their latest build, most recently updated first",
        "workspaces",
        response=list[M.Workspace],
    ),
    Operation(
        "post",
        "/workspaces",
        "createWorkspace",
        "Create a workspace; its first start build runs in the background",
        "workspaces",
        status=201,
        response=M.Workspace,
        request=M.CreateWorkspaceRequest,
        errors={
            400: "Invalid name or parameter values (with validations); unknown preset; the "
            "template is not on the allowlist.",
            404: "Template not found.",
            409: "The workspace name (or its folder) is taken.",
        },
    ),
    Operation(
        "get",
        "/workspaces/{workspace_id}",
        "getWorkspace",
        "A workspace with its latest build, job and agents (deleted ones too)",
        "workspaces",
        response=M.Workspace,
        errors={404: "Workspace not found (also when another user owns it)."},
    ),
    Operation(
        "post",
        "/workspaces/{workspace_id}/builds",
        "createWorkspaceBuild",
        "Start, stop or delete a workspace; the build runs in the background",
        "workspaces",
        status=201,
        response=M.WorkspaceBuild,
        request=M.CreateWorkspaceBuildRequest,
        errors={
            400: "Invalid transition or parameter values (with validations).",
            404: "Workspace not found.",
            409: "A build is in progress; the workspace is deleted, already running or "
            "already stopped.",
        },
        description="A start that does not fit the owner's quota fails its job with "
        f"error_code {M.INSUFFICIENT_QUOTA}.",
    ),
    Operation(
        "post",
        "/workspaces/{workspace_id}/attach",
        "attachWorkspaceKernel",
        "Make a running kernel the external agent of a workspace",
        "workspaces",
        response=M.WorkspaceAgent,
        request=M.AttachKernelRequest,
        errors={
            400: "No kernel_id; no such kernel; the workspace has no external agent.",
            404: "Workspace not found.",
            409: "The workspace is not running or was deleted.",
        },
    ),
    Operation(
        "get",
        "/jobs/{job_id}/logs",
        "getJobLogs",
        "A build's logs; with follow=1 a WebSocket of ProvisionerJobLog frames",
        "workspaces",
        response=list[M.ProvisionerJobLog],
        frame=M.ProvisionerJobLog,
        query=JobLogsQuery,
        errors={
            400: f"Invalid after parameter. With follow: {_NOT_A_HANDSHAKE}",
            403: f"With follow: {_CROSS_ORIGIN}",
            404: "Provisioner job not found.",
        },
        description="Without `follow`, a plain JSON answer. With `follow=1`: " + _WS_UPGRADE,
    ),
    Operation(
        "get",
        "/info",
        "getInfo",
        "Version, features, default model and whether a real provider is configured",
        "server",
        response=M.ServerInfo,
    ),
    Operation(
        "get",
        "/openapi.json",
        "getOpenAPIDocument",
        "This document",
        "server",
        response={"type": "object", "description": "An OpenAPI 3.1 document."},
    ),
)
