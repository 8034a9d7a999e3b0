"""The answer models of the endpoints without a wire type of their own: the server's models
(:mod:`coderchat_ext.models`, named after their schemas in the OpenAPI document), so client and
server read one definition. :class:`ApiInfo` is the ``ServerInfo`` schema (the client's
:class:`ServerInfo` says where a server is). Like every wire type they ignore fields this
client does not know, so a newer server does not break them.
"""

from __future__ import annotations

from ..models import (
    AdvisorConfig,
    DirectToolResult,
    ModelsProvider,
    ModelsResponse,
    ModelSummary,
    SystemPromptConfig,
    ToolResult,
)
from ..models import ServerInfo as ApiInfo

__all__ = [
    "AdvisorConfig",
    "ApiInfo",
    "DirectToolResult",
    "ModelSummary",
    "ModelsProvider",
    "ModelsResponse",
    "SystemPromptConfig",
    "ToolResult",
]
