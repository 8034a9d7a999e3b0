"""Providers and model configs with their call options (docs/api.md#providers-and-models,
docs/data-model.md#call-options)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from .wire import Wire


class ModelCost(Wire):
    """Prices in USD per million tokens (docs/data-model.md#call-options); all must be >= 0."""

    input_price_per_million_tokens: float | None = Field(default=None, ge=0)
    output_price_per_million_tokens: float | None = Field(default=None, ge=0)
    cache_read_price_per_million_tokens: float | None = Field(default=None, ge=0)
    cache_write_price_per_million_tokens: float | None = Field(default=None, ge=0)


class AnthropicThinking(Wire):
    """Extended thinking: ``budget_tokens`` (>= 1024) the model may spend thinking."""

    budget_tokens: int | None = Field(default=None, ge=1024)


class AnthropicProviderOptions(Wire):
    """``provider_options.anthropic`` (docs/data-model.md#call-options). ``send_reasoning``
    false leaves thinking blocks out of the history sent back; ``allowed_domains`` and
    ``blocked_domains`` (for ``web_search``) are mutually exclusive."""

    send_reasoning: bool | None = None
    thinking: AnthropicThinking | None = None
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    disable_parallel_tool_use: bool | None = None
    web_search_enabled: bool | None = None
    allowed_domains: list[str] | None = None
    blocked_domains: list[str] | None = None


class OpenAIProviderOptions(Wire):
    """``provider_options.openai`` (docs/data-model.md#call-options), used by the Responses API
    adapter.
    ``store`` true lets OpenAI keep responses (default false here: nothing is kept)."""

    include: list[str] | None = None
    instructions: str | None = None
    max_tool_calls: int | None = Field(default=None, gt=0)
    parallel_tool_calls: bool | None = None
    user: str | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    reasoning_summary: Literal["auto", "concise", "detailed"] | None = None
    max_completion_tokens: int | None = Field(default=None, gt=0)
    text_verbosity: Literal["low", "medium", "high"] | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    web_search_enabled: bool | None = None
    search_context_size: Literal["low", "medium", "high"] | None = None
    allowed_domains: list[str] | None = None


class OpenAICompatProviderOptions(Wire):
    """``provider_options.openaicompat`` (docs/data-model.md#call-options), for Chat Completions
    endpoints."""

    user: str | None = None
    reasoning_effort: str | None = None


class ChatModelCallConfig(Wire):
    """A model config's call options (``ChatModelCallConfig``, docs/data-model.md#call-options).

    ``provider_options`` is kept as stored JSON; :meth:`anthropic_options`,
    :meth:`openai_options` and :meth:`openai_compat_options` read the typed views (raising
    ``pydantic.ValidationError`` for invalid values).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    max_output_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = None
    top_k: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    cost: ModelCost | None = None
    provider_options: dict[str, dict[str, Any]] | None = None

    def _provider_option(self, key: str) -> dict[str, Any]:
        return (self.provider_options or {}).get(key) or {}

    def anthropic_options(self) -> AnthropicProviderOptions:
        return AnthropicProviderOptions.model_validate(self._provider_option("anthropic"))

    def openai_options(self) -> OpenAIProviderOptions:
        return OpenAIProviderOptions.model_validate(self._provider_option("openai"))

    def openai_compat_options(self) -> OpenAICompatProviderOptions:
        return OpenAICompatProviderOptions.model_validate(self._provider_option("openaicompat"))


DEFAULT_MAX_OUTPUT_TOKENS = 32000
"""Default ``max_output_tokens`` when a model config sets none (docs/data-model.md#call-options)."""


class ChatModelConfig(Wire):
    """A model config as the API returns it (docs/api.md#providers-and-models)."""

    id: str
    provider: str
    model: str
    display_name: str
    enabled: bool = True
    is_default: bool = False
    context_limit: int
    compression_threshold: int = 70
    model_config_: ChatModelCallConfig | None = Field(default=None, alias="model_config")
    created_at: str
    updated_at: str

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class ChatProviderConfig(Wire):
    """A provider as the API returns it; never carries the key
    (docs/api.md#providers-and-models)."""

    id: str
    provider: str
    display_name: str
    enabled: bool = True
    has_api_key: bool = False
    base_url: str | None = None
    source: Literal["database", "config", "env", "supported"] = "database"
    created_at: str | None = None
    updated_at: str | None = None
