"""Python client of the coderchat API (docs/api.md, docs/stream-protocol.md, docs/client.md), used
by ``Chat``, the magics, the widget, the CLI and the tests.

:class:`AsyncChatClient` (httpx + websockets) and its blocking twin :class:`ChatClient` (the
async client on a private loop thread, safe inside a Jupyter kernel) cover every endpoint:
chats, messages, the queue, tool results and direct tool runs, models, providers, model
configs, settings, templates, workspaces, builds, build logs (also followed live) and kernel
attach. They follow chat streams with reconnects (:class:`StreamMarker`) and run whole turns
(:class:`TurnResult`). Answers are pydantic models (:mod:`coderchat_ext.models`, and
:class:`ModelsResponse`, :class:`SystemPromptConfig`, :class:`AdvisorConfig`,
:class:`ApiInfo`, :class:`DirectToolResult` here). Server discovery: :func:`discover_server`.
Errors: :class:`ApiError` (the server refused), :class:`ServerNotFound`,
:class:`TurnTimeout`, :class:`BuildTimeout`, all :class:`ChatClientError`.
"""

from __future__ import annotations

from ._async import AsyncChatClient
from ._discovery import ServerInfo, discover_server
from ._errors import ApiError, BuildTimeout, ChatClientError, ServerNotFound, TurnTimeout
from ._sync import ChatClient
from ._turn import OnEvent, TurnResult
from ._types import UNSET, Content, MessagePage, SendResult, StreamItem, StreamMarker, WatchItem
from ._wire import (
    AdvisorConfig,
    ApiInfo,
    DirectToolResult,
    ModelsProvider,
    ModelsResponse,
    ModelSummary,
    SystemPromptConfig,
    ToolResult,
)
from ._workspaces import ParameterValue

__all__ = [
    "UNSET",
    "AdvisorConfig",
    "ApiError",
    "ApiInfo",
    "AsyncChatClient",
    "BuildTimeout",
    "ChatClient",
    "ChatClientError",
    "Content",
    "DirectToolResult",
    "MessagePage",
    "ModelSummary",
    "ModelsProvider",
    "ModelsResponse",
    "OnEvent",
    "ParameterValue",
    "SendResult",
    "ServerInfo",
    "ServerNotFound",
    "StreamItem",
    "StreamMarker",
    "SystemPromptConfig",
    "ToolResult",
    "TurnResult",
    "TurnTimeout",
    "WatchItem",
    "discover_server",
]
