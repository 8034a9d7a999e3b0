"""Typed answers of the endpoints whose bodies have no model in :mod:`coderchat_ext.models`.

Each model is named after its schema in the OpenAPI document (``server/openapi.py``
``BODY_SCHEMAS``), except :class:`ApiInfo` (schema ``ServerInfo``; the client's
:class:`ServerInfo` says where a server is). Like every wire type they ignore fields this
client does not know, so a newer server does not break them.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..models import ChatModelConfig, Wire


class ModelSummary(Wire):
    """An enabled model config as ``GET models`` lists it; ``id`` is the model config id."""

    id: str
    provider: str
    model: str
    display_name: str
    is_default: bool = False


class ModelsProvider(Wire):
    """One provider of ``GET models``: whether chats can use it now (``unavailable_reason``
    says why not, e.g. no API key) and its enabled model configs."""

    provider: str
    display_name: str
    available: bool
    unavailable_reason: str | None = None
    models: list[ModelSummary] = Field(default_factory=list)


class ModelsResponse(Wire):
    """``GET models``: every provider, with its models."""

    providers: list[ModelsProvider] = Field(default_factory=list)


class SystemPromptConfig(Wire):
    """``GET config/system-prompt``: the deployment prompt, whether the built-in default
    prompt is sent before it, and that default's text."""

    system_prompt: str = ""
    include_default_system_prompt: bool = True
    default_system_prompt: str = ""


class AdvisorConfig(Wire):
    """``GET``/``PUT config/advisor``. ``max_uses_per_run`` and ``max_output_tokens`` are
    counts (0: no limit); ``model_config_id`` is a model config UUID or ``""`` (the chat's
    model); ``reasoning_effort`` is ``""`` or an effort the server accepts."""

    enabled: bool = False
    max_uses_per_run: int = 0
    max_output_tokens: int = 0
    model_config_id: str = ""
    reasoning_effort: str = ""


class ApiInfo(Wire):
    """``GET info``: the extension's ``version``, the server ``time`` (RFC 3339 UTC), the
    ``features`` it offers, the default model config (``None`` when there is none), whether
    a real (not demo) provider is configured, and the configured provider names."""

    version: str
    time: str
    features: list[str] = Field(default_factory=list)
    default_model: ChatModelConfig | None = None
    real_provider_configured: bool = False
    providers: list[str] = Field(default_factory=list)


class ToolResult(Wire):
    """One answer of ``POST chats/{id}/tool-results``: the ``output`` (any JSON value) of
    the pending dynamic tool call ``tool_call_id``."""

    tool_call_id: str
    output: Any = None
    is_error: bool = False


class DirectToolResult(Wire):
    """``POST chats/{id}/tools/{name}``: the tool run now, outside the chat's history.
    ``args`` are the validated arguments, ``result`` the tool's output (any JSON value;
    workspace tools answer an object with ``output``)."""

    tool_call_id: str
    tool_name: str
    args: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    is_error: bool = False
