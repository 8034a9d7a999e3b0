"""Which providers exist, where their keys come from, and how a model config becomes a
:class:`~coderchat_ext.providers.base.Model` (docs/providers.md#the-provider-catalog).

Keys are looked up, first match wins, in: the providers table (encrypted), traitlets config
(``c.CoderChatApp.providers``), the environment (``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``,
``OPENAI_BASE_URL``). A key is never returned by any method meant for the API, and the
environment's OpenAI key is never paired with a base URL from another source (a custom endpoint
never receives the default key; simonw/llm does the same).
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..models import NIL_UUID, ChatModelConfig, ChatProviderConfig
from ..store import Database
from ..store import models_config as store_models
from ..store.secrets import SecretBox
from .base import Model

SUPPORTED_PROVIDERS = ("anthropic", "openai", "openai-compat", "demo")
"""Providers the API accepts (docs/data-model.md#providers-and-model-configs)."""

DISPLAY_NAMES = {
    "anthropic": "Anthropic",
    "openai": "OpenAI",
    "openai-compat": "OpenAI Compatible",
    "demo": "Offline demo model",
    "scripted": "Scripted model",
}

KEYLESS_PROVIDERS = {"openai-compat", "demo", "scripted"}
"""Providers that work without an API key (local endpoints such as Ollama need none)."""

PROVIDER_CACHE_TTL = 10.0
"""Seconds enabled providers are cached (docs/providers.md#caching)."""


@dataclass
class ResolvedProvider:
    """A provider with its effective settings. ``api_key`` is the plain key: keep it inside."""

    provider: str
    display_name: str
    enabled: bool
    api_key: str
    base_url: str
    source: str
    id: str = NIL_UUID
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None

    @property
    def unavailable_reason(self) -> str | None:
        """Why the provider cannot be used: ``provider_disabled``, ``missing_base_url`` (an
        OpenAI-compatible endpoint needs one), ``missing_api_key``; None when it can."""
        if not self.enabled:
            return "provider_disabled"
        if self.provider == "openai-compat" and not self.base_url:
            return "missing_base_url"
        if not self.api_key and self.provider not in KEYLESS_PROVIDERS:
            return "missing_api_key"
        return None

    def public(self) -> ChatProviderConfig:
        return ChatProviderConfig(
            id=self.id,
            provider=self.provider,
            display_name=self.display_name,
            enabled=self.enabled,
            has_api_key=bool(self.api_key),
            base_url=self.base_url or None,
            source=self.source,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


ModelFactory = Callable[[ChatModelConfig, ResolvedProvider, str], Model]
"""``(config, provider, purpose)`` -> model; ``purpose`` is ``chat`` or ``title`` (a provider
may answer titles with a cheaper model, docs/providers.md#title-models)."""


class NoAdapter(Exception):
    """No model factory is registered for a provider."""


class ProviderCatalog:
    """Resolves providers and builds models. ``factories`` maps a provider kind to a function
    making a :class:`Model` from a model config and the resolved provider; adapters register
    there (imported lazily, so loading the extension never imports a provider SDK)."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        *,
        configured: Mapping[str, Mapping[str, Any]] | None = None,
        environ: Mapping[str, str] | None = None,
        extra_providers: tuple[str, ...] = (),
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.configured = dict(configured or {})
        self.environ = dict(os.environ if environ is None else environ)
        self.extra_providers = extra_providers
        self.factories: dict[str, ModelFactory] = {}
        self._cache: list[ResolvedProvider] | None = None
        self._cached_at = 0.0
        self._generation = 0

    def invalidate(self) -> None:
        """Forget the cached providers (a provider was written; docs/providers.md#caching)."""
        self._cache = None
        self._generation += 1

    @property
    def known(self) -> tuple[str, ...]:
        return SUPPORTED_PROVIDERS + self.extra_providers

    def _from_config(self, provider: str) -> ResolvedProvider | None:
        entry = self.configured.get(provider)
        if entry is None:
            return None
        return ResolvedProvider(
            provider=provider,
            display_name=str(entry.get("display_name") or DISPLAY_NAMES.get(provider, provider)),
            enabled=bool(entry.get("enabled", True)),
            api_key=str(entry.get("api_key") or ""),
            base_url=str(entry.get("base_url") or ""),
            source="config",
        )

    def _from_env(self, provider: str) -> ResolvedProvider | None:
        if provider == "anthropic" and self.environ.get("ANTHROPIC_API_KEY"):
            key, base = self.environ["ANTHROPIC_API_KEY"], self.environ.get("ANTHROPIC_BASE_URL")
        elif provider == "openai" and self.environ.get("OPENAI_API_KEY"):
            key, base = self.environ["OPENAI_API_KEY"], self.environ.get("OPENAI_BASE_URL")
        elif (
            provider == "openai-compat"
            and self.environ.get("OPENAI_BASE_URL")
            and not (self.environ.get("OPENAI_API_KEY"))
        ):
            key, base = "", self.environ["OPENAI_BASE_URL"]
        else:
            return None
        return ResolvedProvider(
            provider=provider,
            display_name=DISPLAY_NAMES.get(provider, provider),
            enabled=True,
            api_key=key,
            base_url=base or "",
            source="env",
        )

    async def resolve_all(self) -> list[ResolvedProvider]:
        """Every known provider with its effective settings, stored rows first.

        Cached for ``PROVIDER_CACHE_TTL`` seconds; :meth:`invalidate` drops the cache, and a
        fill that started before an invalidation is not kept (the generation counters of
        docs/providers.md#caching).
        """
        now = time.monotonic()
        if self._cache is not None and now - self._cached_at < PROVIDER_CACHE_TTL:
            return self._cache
        generation = self._generation
        resolved = await self._load()
        if generation == self._generation:
            self._cache, self._cached_at = resolved, now
        return resolved

    async def _load(self) -> list[ResolvedProvider]:
        async with self.db.read() as conn:
            rows = {r.provider: r for r in await store_models.list_providers(conn)}
        out = []
        for provider in self.known:
            row = rows.get(provider)
            if row is not None:
                out.append(
                    ResolvedProvider(
                        id=row.id,
                        provider=provider,
                        display_name=row.display_name or DISPLAY_NAMES.get(provider, provider),
                        enabled=row.enabled,
                        api_key=self.secrets.decrypt(row.api_key),
                        base_url=row.base_url,
                        source="database",
                        created_at=row.created_at,
                        updated_at=row.updated_at,
                    )
                )
                continue
            resolved = self._from_config(provider) or self._from_env(provider)
            if resolved is None:
                resolved = ResolvedProvider(
                    provider=provider,
                    display_name=DISPLAY_NAMES.get(provider, provider),
                    enabled=True,
                    api_key="",
                    base_url="",
                    source="supported",
                )
            out.append(resolved)
        return out

    async def resolve(self, provider: str) -> ResolvedProvider | None:
        for resolved in await self.resolve_all():
            if resolved.provider == provider:
                return resolved
        return None

    def has_adapter(self, provider: str) -> bool:
        return provider in self.factories

    async def model_for(
        self, config: ChatModelConfig, purpose: str = "chat"
    ) -> tuple[Model, ResolvedProvider]:
        """The model for ``config`` and ``purpose``. Raises :class:`NoAdapter` when no adapter
        is registered, ``LookupError`` when the provider is unknown."""
        resolved = await self.resolve(config.provider)
        if resolved is None:
            raise LookupError(config.provider)
        factory = self.factories.get(config.provider)
        if factory is None:
            raise NoAdapter(config.provider)
        return factory(config, resolved, purpose), resolved


ADAPTER_MODULES = {
    "anthropic": "anthropic",
    "openai": "openai_responses",
    "openai-compat": "openai_chat",
}
"""Provider kind → the adapter module in this package (each has ``make_model``)."""


def _lazy_factory(module: str) -> ModelFactory:
    def factory(config: ChatModelConfig, resolved: ResolvedProvider, purpose: str) -> Model:
        # Imported on first use: loading the extension must not import a provider SDK.
        adapter = importlib.import_module(f"{__package__}.{module}")
        model: Model = adapter.make_model(config, resolved, purpose)
        return model

    return factory


def register_adapters(catalog: ProviderCatalog) -> None:
    """Install the SDK adapters' factories (``anthropic``, ``openai``, ``openai-compat``) in
    ``catalog.factories``, leaving factories that are already registered in place."""
    for provider, module in ADAPTER_MODULES.items():
        catalog.factories.setdefault(provider, _lazy_factory(module))
