"""Model configs created for a provider the first time it becomes available (``chat_model_configs``,
docs/providers.md#the-provider-catalog), so a user who only sets ``ANTHROPIC_API_KEY`` gets working
models.

Context limits are in tokens; prices are USD per million tokens as the providers publish them
(anthropic.com/pricing, openai.com/api/pricing). An administrator can edit or delete any of them
through ``model-configs``; a deleted one is not created again.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import ChatModelCallConfig, ModelCost


@dataclass(frozen=True)
class KnownModel:
    """A model offered by default: ``provider``/``model`` names, ``context_limit`` in tokens,
    prices in USD per million tokens."""

    provider: str
    model: str
    display_name: str
    context_limit: int
    input_price: float
    output_price: float
    cache_read_price: float | None = None
    cache_write_price: float | None = None
    max_output_tokens: int | None = None

    def options(self) -> ChatModelCallConfig:
        return ChatModelCallConfig(
            max_output_tokens=self.max_output_tokens,
            cost=ModelCost(
                input_price_per_million_tokens=self.input_price,
                output_price_per_million_tokens=self.output_price,
                cache_read_price_per_million_tokens=self.cache_read_price,
                cache_write_price_per_million_tokens=self.cache_write_price,
            ),
        )


DEMO_MODEL = "coderchat-demo"
"""The model name of the offline demo provider."""

KNOWN_MODELS: tuple[KnownModel, ...] = (
    # Anthropic (platform.claude.com/docs/en/about-claude/models, November 2026): 5-minute cache
    # writes cost 1.25x input, cache reads 0.1x.
    KnownModel(
        "anthropic", "claude-sonnet-5-5", "Claude Sonnet 5.5", 1_000_000, 2, 10, 0.2, 2.5, 128_000
    ),
    KnownModel(
        "anthropic", "claude-opus-5-5", "Claude Opus 5.5", 1_000_000, 4, 20, 0.4, 5, 128_000
    ),
    KnownModel(
        "anthropic",
        "claude-haiku-5-5",
        "Claude Haiku 5.5",
        1_000_000,
        0.1,
        0.5,
        0.01,
        0.125,
        128_000,
    ),
    # OpenAI (developers.openai.com/api/docs/pricing, November 2026): cached input 0.05-0.1x;
    # prices are those of prompts up to 272K tokens.
    KnownModel("openai", "gpt-6.2-sol", "GPT-6.2 Sol", 1_050_000, 2, 10, 0.1, None, 128_000),
    KnownModel("openai", "gpt-6.2-astra", "GPT-6.2 Astra", 1_050_000, 8, 40, 0.4, None, 128_000),
    KnownModel("openai", "gpt-6-luna", "GPT-6 Luna", 1_050_000, 0.1, 0.5, 0.01, None, 128_000),
    KnownModel("demo", DEMO_MODEL, "Offline demo model", 200_000, 0, 0, 0, 0, 4_096),
)
"""The first model of each provider becomes the default when that provider is seeded."""


def known_models(provider: str) -> list[KnownModel]:
    """The default models of ``provider`` (empty for providers whose models vary, such as
    ``openai-compat``)."""
    return [m for m in KNOWN_MODELS if m.provider == provider]
