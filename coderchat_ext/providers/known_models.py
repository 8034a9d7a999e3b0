"""Model configs created for a provider the first time it becomes available (DESIGN §3
``chat_model_configs``), so a user who only sets ``ANTHROPIC_API_KEY`` gets working models.

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
    # Anthropic: cache writes cost 1.25x input, cache reads 0.1x (5-minute cache).
    KnownModel(
        "anthropic", "claude-sonnet-4-5", "Claude Sonnet 4.5", 200_000, 3, 15, 0.3, 3.75, 64_000
    ),
    KnownModel(
        "anthropic", "claude-opus-4-5", "Claude Opus 4.5", 200_000, 5, 25, 0.5, 6.25, 64_000
    ),
    KnownModel(
        "anthropic", "claude-haiku-4-5", "Claude Haiku 4.5", 200_000, 1, 5, 0.1, 1.25, 64_000
    ),
    # OpenAI: cached input costs 0.1x input; no separate cache-write price.
    KnownModel("openai", "gpt-5.1", "GPT-5.1", 400_000, 1.25, 10, 0.125, None, 128_000),
    KnownModel("openai", "gpt-5-mini", "GPT-5 mini", 400_000, 0.25, 2, 0.025, None, 128_000),
    KnownModel("openai", "gpt-5-nano", "GPT-5 nano", 400_000, 0.05, 0.4, 0.005, None, 128_000),
    KnownModel("demo", DEMO_MODEL, "Offline demo model", 200_000, 0, 0, 0, 0, 4_096),
)
"""The first model of each provider becomes the default when that provider is seeded."""


def known_models(provider: str) -> list[KnownModel]:
    """The default models of ``provider`` (empty for providers whose models vary, such as
    ``openai-compat``)."""
    return [m for m in KNOWN_MODELS if m.provider == provider]
