"""The OpenAPI 3.1 document served at ``GET api/coderchat/openapi.json`` (docs/api.md).

The document is built from :data:`OPERATIONS`, one row per route and method of
``handlers.rest_handlers()`` and ``ws.ws_handlers()``; ``tests/server/test_openapi.py`` checks
that the two stay in step. Wire types come from the pydantic models of
:mod:`coderchat_ext.models`; the request bodies and the few endpoint-specific responses are
described here because the services read plain JSON objects (``chatd/service.py``,
``chatd/settings.py``). Limits are imported from where they are enforced.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from .. import models as M
from .._version import __version__
from ..chatd.prompt import MAX_CHAT_SYSTEM_PROMPT_CHARS, MAX_PROMPT_BYTES
from ..chatd.service import _LABEL_KEY, MAX_DYNAMIC_TOOLS, MAX_LABELS, MAX_TITLE_CHARS
from ..chatd.settings import ADVISOR_EFFORTS, AdvisorConfigRequest, SystemPromptRequest
from ..chatd.stream import CLOSE_HISTORY_CHANGED, CLOSE_SHUTDOWN, CLOSE_TOO_SLOW
from ..chatd.stream import MAX_BATCH as STREAM_FRAME_MAX_EVENTS
from ..models import MAX_PAGE_LIMIT
from ..providers.registry import MAX_API_KEY_BYTES
from ..store.messages import MAX_QUEUE_SIZE
from ..workspaces.service import WORKSPACE_NAME, WORKSPACE_NAME_MAX
from .base import MAX_BODY_BYTES

Schema = dict[str, Any]


_WIRE_MODELS: tuple[type[BaseModel], ...] = (
    M.ApiErrorBody,
    M.Chat,
    M.ChatMessage,
    M.ChatQueuedMessage,
    M.ChatStreamEvent,
    M.ChatWatchEvent,
    M.ChatModelConfig,
    M.ChatModelCallConfig,
    M.ChatProviderConfig,
    M.DynamicTool,
    M.Template,
    M.TemplateDetail,
    M.Workspace,
    M.WorkspaceAgent,
    M.WorkspaceBuild,
    M.ProvisionerJobLog,
)
_REQUEST_MODELS: tuple[type[BaseModel], ...] = (AdvisorConfigRequest, SystemPromptRequest)
"""Request bodies that are pydantic models (their validation schemas); the rest are
:data:`BODY_SCHEMAS` until the services read models too."""


# --- schema helpers -------------------------------------------------------------------------


def ref(name: str) -> Schema:
    """A reference to ``#/components/schemas/<name>``."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: Mapping[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    """An object schema; ``extra`` adds keywords such as ``description``."""
    schema: Schema = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    return {**schema, **extra}


def array(items: Schema, **extra: Any) -> Schema:
    """An array schema of ``items``."""
    return {"type": "array", "items": items, **extra}


def string(**extra: Any) -> Schema:
    """A string schema."""
    return {"type": "string", **extra}


def integer(**extra: Any) -> Schema:
    """An integer schema."""
    return {"type": "integer", **extra}


def boolean(**extra: Any) -> Schema:
    """A boolean schema."""
    return {"type": "boolean", **extra}


def nullable(schema: Schema) -> Schema:
    """``schema`` or ``null``."""
    return {"anyOf": [schema, {"type": "null"}]}


UUID = string(format="uuid")

_LABELS: Schema = {
    "type": "object",
    "maxProperties": MAX_LABELS,
    "propertyNames": {"pattern": _LABEL_KEY.pattern},
    "additionalProperties": string(minLength=1, maxLength=256),
    "description": "Labels as key: value strings.",
}
_CONTENT: Schema = {
    "oneOf": [
        string(minLength=1, description="Shorthand for one text part."),
        array(ref("ChatInputPart"), minItems=1),
    ],
    "description": "The user input; must include at least one text or file part.",
}


# --- endpoint-specific schemas (what service.py / settings.py read and return) -----------------

BODY_SCHEMAS: dict[str, Schema] = {
    "ChatInputTextPart": obj(
        {"type": {"const": "text"}, "text": string(minLength=1)}, ("type", "text")
    ),
    "ChatInputFilePart": obj(
        {"type": {"const": "file"}, "file_id": UUID},
        ("type", "file_id"),
        description="An uploaded file (uploads are not supported yet: always 400).",
    ),
    "ChatInputFileReferencePart": obj(
        {
            "type": {"const": "file-reference"},
            "file_name": string(minLength=1),
            "start_line": integer(minimum=1),
            "end_line": integer(minimum=1),
            "content": string(),
        },
        ("type", "file_name"),
    ),
    "ChatInputPart": {
        "oneOf": [
            ref("ChatInputTextPart"),
            ref("ChatInputFilePart"),
            ref("ChatInputFileReferencePart"),
        ],
        "discriminator": {
            "propertyName": "type",
            "mapping": {
                "text": "#/components/schemas/ChatInputTextPart",
                "file": "#/components/schemas/ChatInputFilePart",
                "file-reference": "#/components/schemas/ChatInputFileReferencePart",
            },
        },
    },
    "CreateChatRequest": obj(
        {
            "content": _CONTENT,
            "model_config_id": {**UUID, "description": "Default: the default model config."},
            "workspace_id": nullable(UUID),
            "system_prompt": nullable(string(maxLength=MAX_CHAT_SYSTEM_PROMPT_CHARS)),
            "labels": nullable(_LABELS),
            "organization_id": nullable(
                string(description="Organization ID or name. Default: 'default'.")
            ),
            "unsafe_dynamic_tools": nullable(array(ref("DynamicTool"), maxItems=MAX_DYNAMIC_TOOLS)),
            "client_type": string(enum=["ui", "api"], default="api"),
        },
        ("content",),
    ),
    "UpdateChatRequest": obj(
        {
            "title": string(minLength=1, maxLength=MAX_TITLE_CHARS),
            "archived": nullable(boolean()),
            "workspace_id": nullable(
                string(description="A workspace UUID; null, '' or the nil UUID unbinds.")
            ),
            "pin_order": nullable(integer(minimum=0, description="0 unpins.")),
            "labels": nullable(_LABELS),
        },
        description="Only the fields present change.",
    ),
    "CreateChatMessageRequest": obj(
        {
            "content": _CONTENT,
            "model_config_id": nullable(UUID),
            "busy_behavior": nullable(
                string(
                    enum=["queue", "interrupt"],
                    default="queue",
                    description="When the chat is busy: queue the message, or queue it and "
                    "interrupt the running turn.",
                )
            ),
        },
        ("content",),
    ),
    "CreateChatMessageResponse": obj(
        {
            "queued": boolean(),
            "message": nullable(ref("ChatMessage")),
            "queued_message": ref("ChatQueuedMessage"),
        },
        ("queued",),
        description="``message`` when it was inserted, ``queued_message`` when it was queued.",
    ),
    "EditMessageRequest": obj({"content": _CONTENT}, ("content",)),
    "EditMessageResponse": obj({"message": ref("ChatMessage")}, ("message",)),
    "ChatMessagesPage": obj(
        {
            "messages": array(ref("ChatMessage"), description="Newest first."),
            "queued_messages": array(
                ref("ChatQueuedMessage"),
                description="The queue; empty when before_id or after_id is given.",
            ),
            "has_more": boolean(),
        },
        ("messages", "queued_messages", "has_more"),
    ),
    "ToolResult": obj(
        {
            "tool_call_id": string(),
            "output": {"description": "Any JSON value."},
            "is_error": boolean(),
        },
        ("tool_call_id", "output"),
    ),
    "RunToolRequest": obj(
        {
            "args": {
                "type": "object",
                "description": "The tool's arguments (its JSON schema is the model's).",
            }
        },
        (),
    ),
    "DirectToolResult": obj(
        {
            "tool_call_id": string(),
            "tool_name": string(),
            "args": {"type": "object", "description": "The validated arguments."},
            "result": {"description": "Any JSON value."},
            "is_error": boolean(),
        },
        ("tool_call_id", "tool_name", "args", "result", "is_error"),
    ),
    "SubmitToolResultsRequest": obj(
        {
            "results": array(
                ref("ToolResult"),
                minItems=1,
                description="One result for every pending dynamic tool call.",
            )
        },
        ("results",),
    ),
    "ModelSummary": obj(
        {
            "id": UUID,
            "provider": string(),
            "model": string(),
            "display_name": string(),
            "is_default": boolean(),
        },
        ("id", "provider", "model", "display_name", "is_default"),
    ),
    "ModelsProvider": obj(
        {
            "provider": string(),
            "display_name": string(),
            "available": boolean(),
            "unavailable_reason": string(),
            "models": array(ref("ModelSummary")),
        },
        ("provider", "display_name", "available", "models"),
    ),
    "ModelsResponse": obj({"providers": array(ref("ModelsProvider"))}, ("providers",)),
    "CreateProviderRequest": obj(
        {
            "provider": string(description="A known provider kind, e.g. anthropic, openai."),
            "api_key": string(description=f"At most {MAX_API_KEY_BYTES} bytes; never returned."),
            "base_url": string(format="uri", description="http(s) URL or ''."),
            "display_name": string(),
            "enabled": boolean(default=True),
        },
        ("provider",),
    ),
    "UpdateProviderRequest": obj(
        {
            "api_key": string(description=f"At most {MAX_API_KEY_BYTES} bytes; never returned."),
            "base_url": nullable(string(description="http(s) URL or ''.")),
            "display_name": string(),
            "enabled": boolean(),
        },
        description="Only the fields present change.",
    ),
    "CreateModelConfigRequest": obj(
        {
            "provider": string(description="A configured, available provider."),
            "model": string(minLength=1),
            "display_name": string(description="Default: the model."),
            "context_limit": integer(minimum=1),
            "compression_threshold": integer(minimum=0, maximum=100, default=70),
            "enabled": boolean(default=True),
            "is_default": boolean(default=False),
            "model_config": nullable(ref("ChatModelCallConfig")),
        },
        ("provider", "model", "context_limit"),
    ),
    "UpdateModelConfigRequest": obj(
        {
            "model": string(minLength=1),
            "display_name": string(),
            "context_limit": integer(minimum=1),
            "compression_threshold": integer(minimum=0, maximum=100),
            "enabled": boolean(),
            "is_default": boolean(),
            "model_config": nullable(ref("ChatModelCallConfig")),
        },
        description="Only the fields present change.",
    ),
    "SystemPromptConfig": obj(
        {
            "system_prompt": string(),
            "include_default_system_prompt": boolean(),
            "default_system_prompt": string(),
        },
        ("system_prompt", "include_default_system_prompt", "default_system_prompt"),
    ),
    "UserPromptConfig": obj(
        {
            "custom_prompt": string(
                default="", description=f"At most {MAX_PROMPT_BYTES} bytes once sanitized."
            )
        },
        ("custom_prompt",),
    ),
    "TemplateAllowlist": obj(
        {"template_ids": array(UUID, description="Empty: every template is allowed.")},
        ("template_ids",),
    ),
    "AdvisorConfig": obj(
        {
            "enabled": boolean(default=False),
            "max_uses_per_run": integer(minimum=0, default=0),
            "max_output_tokens": integer(minimum=0, default=0),
            "model_config_id": string(description="A model config UUID or ''.", default=""),
            "reasoning_effort": string(enum=list(ADVISOR_EFFORTS), default=""),
        },
        ("enabled", "max_uses_per_run", "max_output_tokens", "model_config_id", "reasoning_effort"),
    ),
    "ServerInfo": obj(
        {
            "version": string(),
            "time": string(format="date-time"),
            "features": array(string()),
            "default_model": nullable(ref("ChatModelConfig")),
            "real_provider_configured": boolean(),
            "providers": array(string()),
        },
        ("version", "time", "features", "default_model", "real_provider_configured", "providers"),
    ),
    "ChatStreamFrame": array(ref("ChatStreamEvent"), minItems=1, maxItems=STREAM_FRAME_MAX_EVENTS),
    "ParameterValues": {
        "type": "object",
        "additionalProperties": {
            "anyOf": [string(), {"type": "number"}, boolean(), array(string())]
        },
        "description": "Parameter values by name; numbers, booleans and string lists are "
        "stored as strings (decimal, true/false, a JSON array).",
    },
    "CreateWorkspaceRequest": obj(
        {
            "template_id": UUID,
            "name": string(
                pattern=WORKSPACE_NAME.pattern,
                maxLength=WORKSPACE_NAME_MAX,
                description="Default: the template name and 4 random hex digits. Unique on "
                "the server (it names the workspace folder).",
            ),
            "parameters": ref("ParameterValues"),
            "preset_id": string(
                description="A preset ID (or name) of the template. Default: its default preset."
            ),
        },
        ("template_id",),
    ),
    "CreateWorkspaceBuildRequest": obj(
        {
            "transition": string(enum=["start", "stop", "delete"]),
            "parameters": ref("ParameterValues"),
            "preset_id": string(description="A preset ID (or name); start builds only."),
        },
        ("transition",),
        description="A start uses the template's active version and the previous build's "
        "values for parameters not given.",
    ),
    "AttachKernelRequest": obj(
        {
            "kernel_id": string(description="A running kernel of this Jupyter server."),
            "agent": string(description="The external agent's name. Default: the first."),
        },
        ("kernel_id",),
    ),
}


# --- the operation table ----------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A query parameter: ``name``, its schema and what it does."""

    name: str
    schema: Schema
    description: str
    explode: bool = False


PATH_PARAMS: dict[str, tuple[Schema, str]] = {
    "chat_id": (UUID, "The chat."),
    "message_id": (integer(minimum=1), "A message of the chat."),
    "queued_id": (integer(minimum=1), "A queued message of the chat."),
    "provider_id": (string(), "The provider's ID."),
    "config_id": (UUID, "The model config."),
    "template_id": (UUID, "The template."),
    "workspace_id": (UUID, "The workspace."),
    "tool_name": (string(), "A tool's name (``read_file``, ``execute``, ...)."),
    "job_id": (UUID, "A provisioner job (a workspace build's ``job.id``)."),
}

_LIMIT = Param(
    "limit",
    integer(minimum=1, maximum=MAX_PAGE_LIMIT, default=50),
    f"Page size (1-{MAX_PAGE_LIMIT}).",
)


@dataclass(frozen=True)
class Operation:
    """One route and method.

    ``path`` is relative to the server URL with ``{name}`` parameters (see
    :data:`PATH_PARAMS`); ``status`` is the success status and ``response`` its body schema
    (``None`` for no body); ``request`` names the JSON body schema; ``errors`` maps each error
    status the service returns for it to a description (403 for refused credentials and 503
    while the extension starts are added to every operation, 413 to every operation with a
    body); ``frame`` is the schema of a WebSocket frame and makes the operation a WebSocket
    upgrade.
    """

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    status: int = 200
    response: Schema | None = None
    request: str | None = None
    query: tuple[Param, ...] = ()
    errors: Mapping[int, str] = field(default_factory=dict)
    description: str = ""
    frame: Schema | None = None


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
        response=array(ref("Chat")),
        query=(
            Param("q", string(), "Search in titles."),
            Param(
                "label",
                array(string(pattern="^[^:]+:.+$")),
                "Label filter `key:value`; repeat to require several.",
                explode=True,
            ),
            Param(
                "archived",
                boolean(),
                "Only archived (true) or unarchived (false) chats; also 1/0, yes/no.",
            ),
            _LIMIT,
            Param("offset", integer(minimum=0, default=0), "Chats to skip."),
        ),
        errors={400: "Invalid limit, offset, archived or label parameter."},
    ),
    Operation(
        "post",
        "/chats",
        "createChat",
        "Create a chat with its first user message; the turn starts (docs/api.md#chats)",
        "chats",
        status=201,
        response=ref("Chat"),
        request="CreateChatRequest",
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
        response=ref("Chat"),
        errors={404: _CHAT_NOT_FOUND},
    ),
    Operation(
        "patch",
        "/chats/{chat_id}",
        "updateChat",
        "Rename, archive, pin, relabel or rebind a chat (docs/api.md#chats)",
        "chats",
        status=204,
        request="UpdateChatRequest",
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
        response=ref("ChatMessagesPage"),
        query=(
            Param("before_id", integer(minimum=1), "Only messages with a smaller ID."),
            Param("after_id", integer(minimum=0), "Only messages with a larger ID."),
            _LIMIT,
        ),
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
        response=ref("CreateChatMessageResponse"),
        request="CreateChatMessageRequest",
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
        response=ref("EditMessageResponse"),
        request="EditMessageRequest",
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
        response=ref("ChatMessage"),
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
        response=ref("Chat"),
        errors={404: _CHAT_NOT_FOUND},
    ),
    Operation(
        "post",
        "/chats/{chat_id}/tool-results",
        "submitToolResults",
        "Answer every pending dynamic tool call at once (docs/status-machine.md#requires_action)",
        "chats",
        status=204,
        request="SubmitToolResultsRequest",
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
        response=ref("DirectToolResult"),
        request="RunToolRequest",
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
        response=ref("Chat"),
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
        frame=ref("ChatWatchEvent"),
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
        frame=ref("ChatStreamFrame"),
        query=(
            Param(
                "after_id",
                integer(minimum=0, default=0),
                "Replay visible messages with a larger ID first.",
            ),
        ),
        errors={
            400: f"Invalid after_id parameter. {_NOT_A_HANDSHAKE}",
            403: _CROSS_ORIGIN,
            404: _CHAT_NOT_FOUND,
        },
        description=_WS_UPGRADE
        + f" Each frame is an array of 1-{STREAM_FRAME_MAX_EVENTS} events. On connect: the "
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
        response=ref("ModelsResponse"),
    ),
    Operation(
        "get",
        "/providers",
        "listProviders",
        "List providers (administrators)",
        "models",
        response=array(ref("ChatProviderConfig")),
        errors={404: _HIDDEN},
    ),
    Operation(
        "post",
        "/providers",
        "createProvider",
        "Store a provider's settings (administrators)",
        "models",
        status=201,
        response=ref("ChatProviderConfig"),
        request="CreateProviderRequest",
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
        response=ref("ChatProviderConfig"),
        request="UpdateProviderRequest",
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
        response=array(ref("ChatModelConfig")),
    ),
    Operation(
        "post",
        "/model-configs",
        "createModelConfig",
        "Create a model config (administrators)",
        "models",
        status=201,
        response=ref("ChatModelConfig"),
        request="CreateModelConfigRequest",
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
        response=ref("ChatModelConfig"),
        request="UpdateModelConfigRequest",
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
        response=ref("SystemPromptConfig"),
        errors={404: _HIDDEN},
    ),
    Operation(
        "put",
        "/config/system-prompt",
        "putSystemPrompt",
        "Set the deployment system prompt (administrators)",
        "config",
        status=204,
        request="SystemPromptRequest",
        errors={400: "Invalid body; system prompt exceeds maximum length.", 403: _ADMIN_ONLY},
    ),
    Operation(
        "get",
        "/config/user-prompt",
        "getUserPrompt",
        "The caller's custom prompt",
        "config",
        response=ref("UserPromptConfig"),
    ),
    Operation(
        "put",
        "/config/user-prompt",
        "putUserPrompt",
        "Set the caller's custom prompt",
        "config",
        response=ref("UserPromptConfig"),
        request="UserPromptConfig",
        errors={400: "Invalid body; custom prompt exceeds maximum length."},
    ),
    Operation(
        "get",
        "/config/template-allowlist",
        "getTemplateAllowlist",
        "The workspace templates chats may use (administrators)",
        "config",
        response=ref("TemplateAllowlist"),
        errors={404: _HIDDEN, 500: "Stored template allowlist is corrupt."},
    ),
    Operation(
        "put",
        "/config/template-allowlist",
        "putTemplateAllowlist",
        "Set the workspace templates chats may use (administrators)",
        "config",
        status=204,
        request="TemplateAllowlist",
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
        response=ref("AdvisorConfig"),
        errors={500: "Stored advisor configuration is invalid."},
    ),
    Operation(
        "put",
        "/config/advisor",
        "putAdvisorConfig",
        "Set the advisor settings (administrators)",
        "config",
        status=204,
        request="AdvisorConfigRequest",
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
        response=array(ref("Template")),
        errors={500: "Stored template allowlist is corrupt."},
    ),
    Operation(
        "get",
        "/templates/{template_id}",
        "getTemplate",
        "A template with its active version's parameters, presets and agents",
        "workspaces",
        response=ref("TemplateDetail"),
        errors={404: "Template not found (or not allowlisted, or of another organization)."},
    ),
    Operation(
        "get",
        "/workspaces",
        "listWorkspaces",
        "The caller's workspaces with their latest build, most recently updated first",
        "workspaces",
        response=array(ref("Workspace")),
    ),
    Operation(
        "post",
        "/workspaces",
        "createWorkspace",
        "Create a workspace; its first start build runs in the background",
        "workspaces",
        status=201,
        response=ref("Workspace"),
        request="CreateWorkspaceRequest",
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
        response=ref("Workspace"),
        errors={404: "Workspace not found (also when another user owns it)."},
    ),
    Operation(
        "post",
        "/workspaces/{workspace_id}/builds",
        "createWorkspaceBuild",
        "Start, stop or delete a workspace; the build runs in the background",
        "workspaces",
        status=201,
        response=ref("WorkspaceBuild"),
        request="CreateWorkspaceBuildRequest",
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
        response=ref("WorkspaceAgent"),
        request="AttachKernelRequest",
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
        response=array(ref("ProvisionerJobLog")),
        frame=ref("ProvisionerJobLog"),
        query=(
            Param("after", integer(minimum=0, default=0), "Only logs with a larger ID."),
            Param(
                "follow",
                string(enum=["1", "true"]),
                "Upgrade to a WebSocket: the logs so far, then each new one; closed with "
                "1000 when the job has ended.",
            ),
        ),
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
        response=ref("ServerInfo"),
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


# --- building the document --------------------------------------------------------------------

_STATUS_TEXT = {
    101: "Switching Protocols: the WebSocket is open.",
    200: "OK.",
    201: "Created.",
    204: "No content.",
    400: "Bad request.",
    403: "Forbidden.",
    404: "Not found.",
    409: "Conflict.",
    413: f"Request body too large (over {MAX_BODY_BYTES // 1024} KiB).",
    429: "Too many requests.",
    500: "Internal error.",
    503: "coderchat_ext is starting; try again in a moment.",
}
_REFUSED = (
    "Missing or invalid credentials, a failed XSRF check (cookie auth without the "
    "X-XSRFToken header), or the authorizer refused the action on resource `coderchat`."
)
_PATH_PARAM = re.compile(r"\{(\w+)\}")
_TAGS = (
    ("chats", "Chats, their messages and their queue (docs/api.md#chats)."),
    ("streams", "WebSocket feeds (docs/stream-protocol.md)."),
    ("models", "Providers, model configs and the models a chat may use."),
    ("config", "Deployment and user settings (docs/api.md#configuration)."),
    ("workspaces", "Templates, workspaces, builds, build logs and agents (docs/workspaces.md)."),
    ("server", "About this server."),
)


def component_schemas() -> dict[str, Schema]:
    """``components.schemas``: the wire models (serialization schemas, with their ``$defs``
    merged in) and :data:`BODY_SCHEMAS`. Raises ``ValueError`` when two schemas claim one
    name."""
    schemas: dict[str, Schema] = {}

    def add(name: str, schema: Schema) -> None:
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas named {name}")

    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        *((m, "serialization") for m in _WIRE_MODELS),
        *((m, "validation") for m in _REQUEST_MODELS),
    ]
    for model, mode in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
        for name, definition in schema.pop("$defs", {}).items():
            add(name, definition)
        if set(schema) != {"$ref"}:
            add(model.__name__, schema)
    for name, schema in BODY_SCHEMAS.items():
        add(name, schema)
    return dict(sorted(schemas.items()))


def _error(description: str) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": ref("ApiErrorBody")}},
    }


def _responses(op: Operation) -> dict[str, Schema]:
    ok: Schema = {"description": _STATUS_TEXT[op.status]}
    if op.response is not None:
        ok["content"] = {"application/json": {"schema": op.response}}
    errors: dict[int, str] = {403: "", 503: ""}
    if op.request is not None:
        errors[413] = ""
    errors.update(op.errors)
    out = {str(op.status): ok}
    if op.frame is not None and op.status != 101:
        out["101"] = {"description": _STATUS_TEXT[101]}
    for status in sorted(errors):
        detail = errors[status]
        if status == 403:
            detail = f"{_REFUSED} {detail}".strip()
        out[str(status)] = _error(detail or _STATUS_TEXT[status])
    return out


def _parameters(op: Operation) -> list[Schema]:
    params: list[Schema] = []
    for name in _PATH_PARAM.findall(op.path):
        schema, description = PATH_PARAMS[name]
        params.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": schema,
                "description": description,
            }
        )
    for query in op.query:
        param: Schema = {
            "name": query.name,
            "in": "query",
            "required": False,
            "schema": query.schema,
            "description": query.description,
        }
        if query.explode:
            param.update(style="form", explode=True)
        params.append(param)
    return params


def _security(method: str) -> list[dict[str, list[str]]]:
    # Jupyter skips the XSRF check for token-authenticated and for GET requests.
    if method in ("get", "head"):
        return [{"token": []}, {"cookie": []}]
    return [{"token": []}, {"cookie": [], "xsrf": []}]


def _operation(op: Operation) -> Schema:
    out: Schema = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        out["description"] = op.description
    params = _parameters(op)
    if params:
        out["parameters"] = params
    if op.request is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(op.request)}},
        }
    out["responses"] = _responses(op)
    out["security"] = _security(op.method)
    if op.frame is not None:
        out["x-websocket"] = {"frame": op.frame}
    return out


@functools.lru_cache(maxsize=8)
def _build(base_url: str) -> Schema:
    paths: dict[str, dict[str, Schema]] = {}
    for op in OPERATIONS:
        item = paths.setdefault(op.path, {})
        if op.method in item:
            raise ValueError(f"{op.method.upper()} {op.path} is listed twice")
        item[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "coderchat_ext",
            "version": __version__,
            "description": "The agent chat API of the coderchat_ext Jupyter server extension "
            "(docs/api.md). JSON everywhere; errors are `{message, detail?, validations?}`.",
        },
        "servers": [{"url": f"{base_url.rstrip('/')}/api/coderchat"}],
        "tags": [{"name": name, "description": text} for name, text in _TAGS],
        "paths": paths,
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Authorization: token <server token>` (the server's "
                    "token or `?token=` in the URL).",
                },
                "cookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "username-<host>-<port>",
                    "description": "The Jupyter login cookie (its name depends on the "
                    "server's host and port unless IdentityProvider.cookie_name is set).",
                },
                "xsrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-XSRFToken",
                    "description": "The value of the `_xsrf` cookie; required with cookie "
                    "authentication for every method but GET.",
                },
            },
        },
    }


def openapi_document(base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API under ``<base_url>api/coderchat``.

    Built once per ``base_url`` and shared: callers must not mutate the result.
    """
    return _build(base_url)


if __name__ == "__main__":  # `python -m coderchat_ext.server.openapi`: the document at "/"
    import json
    import sys

    json.dump(openapi_document("/"), sys.stdout, indent=1, sort_keys=True)
