"""Registering the SDK adapters: lazy factories per provider (the SDKs load on first use), and
the cost of an adapter's usage priced once per token kind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.chatd.loop import cost_micros
from coderchat_ext.models import ChatMessageUsage, ChatModelConfig
from coderchat_ext.providers.anthropic import AnthropicModel
from coderchat_ext.providers.openai_chat import OpenAIChatModel
from coderchat_ext.providers.openai_responses import OpenAIResponsesModel
from coderchat_ext.providers.registry import ProviderCatalog, ResolvedProvider, register_adapters

REPO = Path(__file__).resolve().parents[2]


def _config(provider: str, model: str, **options: Any) -> ChatModelConfig:
    return ChatModelConfig.model_validate(
        {
            "id": "cfg",
            "provider": provider,
            "model": model,
            "display_name": model,
            "context_limit": 200_000,
            "model_config": options,
            "created_at": "",
            "updated_at": "",
        }
    )


def test_registering_adapters_imports_no_sdk_until_a_model_is_made() -> None:
    code = """
import sys
import coderchat_ext.app
from coderchat_ext.models import ChatModelConfig
from coderchat_ext.providers.registry import ProviderCatalog, ResolvedProvider, register_adapters

def sdks():
    return sorted({m.split('.')[0] for m in sys.modules} & {'anthropic', 'openai'})

catalog = ProviderCatalog(None, None)
register_adapters(catalog)
print(sdks())
config = ChatModelConfig(id='c', provider='anthropic', model='m', display_name='m',
                         context_limit=1, created_at='', updated_at='')
resolved = ResolvedProvider('anthropic', 'Anthropic', True, 'k', '', 'env')
catalog.factories['anthropic'](config, resolved, 'chat')
print(sdks())
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split("\n")
    assert out[:2] == ["[]", "['anthropic']"]


@pytest.mark.parametrize(
    ("provider", "model_class"),
    [
        ("anthropic", AnthropicModel),
        ("openai", OpenAIResponsesModel),
        ("openai-compat", OpenAIChatModel),
    ],
)
def test_each_provider_gets_its_adapter_with_the_resolved_key_and_base_url(
    provider: str, model_class: type
) -> None:
    catalog = ProviderCatalog(None, None)
    register_adapters(catalog)
    resolved = ResolvedProvider(provider, provider, True, "key-1", "http://endpoint/v1", "config")

    model = catalog.factories[provider](_config(provider, "some-model"), resolved, "chat")

    assert isinstance(model, model_class)
    assert (model.provider, model.model) == (provider, "some-model")
    assert model.base_url == "http://endpoint/v1"
    assert model._api_key == "key-1"


def test_registering_keeps_factories_already_installed() -> None:
    catalog = ProviderCatalog(None, None)
    mine = catalog.factories["openai"] = lambda config, resolved, purpose: None

    register_adapters(catalog)

    assert catalog.factories["openai"] is mine
    assert set(catalog.factories) == {"anthropic", "openai", "openai-compat"}


def test_cost_prices_uncached_input_cache_reads_and_writes_once_each() -> None:
    # Usage of the recorded cache_usage.sse stream (Anthropic counts input without the cache).
    usage = ChatMessageUsage(
        input_tokens=6, output_tokens=198, cache_creation_tokens=3337, cache_read_tokens=6289
    )
    config = _config(
        "anthropic",
        "claude-sonnet-5",
        cost={
            "input_price_per_million_tokens": 3,
            "output_price_per_million_tokens": 15,
            "cache_read_price_per_million_tokens": 0.3,
            "cache_write_price_per_million_tokens": 3.75,
        },
    )

    # 6·3 + 198·15 + 6289·0.3 + 3337·3.75 = 17388.45 micro-dollars
    assert cost_micros(usage, config) == 17388
