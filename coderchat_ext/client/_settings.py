"""Model, provider, model-config, configuration and server endpoints (docs/api.md#configuration,
docs/api.md#providers-and-models; ``server/handlers.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..models import ChatModelCallConfig, ChatModelConfig, ChatProviderConfig
from ._transport import Transport, compact, parse_list, segment
from ._types import UNSET, _Unset
from ._wire import AdvisorConfig, ApiInfo, ModelsResponse, SystemPromptConfig


def _call_config(value: ChatModelCallConfig | Mapping[str, Any] | _Unset | None) -> Any:
    if isinstance(value, ChatModelCallConfig):
        return value.dump()
    return dict(value) if isinstance(value, Mapping) else value


class SettingsApi(Transport):
    """Providers, model configs and settings. The administrator-only endpoints answer 403
    "Forbidden." (writes) or 404 (reads, which hide that they exist) to other callers, as
    :class:`ApiError`; 400 carries ``validations`` for invalid fields."""

    async def list_models(self) -> ModelsResponse:
        """``GET models`` -> each provider's availability (``unavailable_reason`` when chats
        cannot use it) and its enabled model configs."""
        return ModelsResponse.model_validate(await self.request("GET", "models"))

    async def list_providers(self) -> list[ChatProviderConfig]:
        """``GET providers`` (administrators; 404 otherwise). Keys are never returned:
        ``has_api_key`` says whether one is stored."""
        return parse_list(ChatProviderConfig, await self.request("GET", "providers"))

    async def create_provider(
        self,
        provider: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        display_name: str | None = None,
        enabled: bool | None = None,
    ) -> ChatProviderConfig:
        """``POST providers`` (administrators): store a provider kind's settings
        (``api_key`` at most 10 KiB, ``base_url`` an http(s) URL or ``""``). 400 for an
        unknown kind or an invalid field; 409 "Chat provider already exists."."""
        body = compact(
            {
                "provider": provider,
                "api_key": api_key,
                "base_url": base_url,
                "display_name": display_name,
                "enabled": enabled,
            }
        )
        return ChatProviderConfig.model_validate(await self.request("POST", "providers", body=body))

    async def update_provider(
        self,
        provider_id: str,
        *,
        api_key: str | _Unset = UNSET,
        base_url: str | _Unset | None = UNSET,
        display_name: str | _Unset = UNSET,
        enabled: bool | _Unset = UNSET,
    ) -> ChatProviderConfig:
        """``PATCH providers/{id}`` (administrators): change only the given fields. 404
        "Chat provider not found."."""
        body = compact(
            {
                "api_key": api_key,
                "base_url": base_url,
                "display_name": display_name,
                "enabled": enabled,
            },
            UNSET,
        )
        data = await self.request("PATCH", f"providers/{segment(provider_id)}", body=body)
        return ChatProviderConfig.model_validate(data)

    async def delete_provider(self, provider_id: str) -> None:
        """``DELETE providers/{id}`` (administrators; 404 for an unknown one)."""
        await self.request("DELETE", f"providers/{segment(provider_id)}")

    async def list_model_configs(self) -> list[ChatModelConfig]:
        """``GET model-configs`` (enabled ones only unless the caller is an administrator)."""
        return parse_list(ChatModelConfig, await self.request("GET", "model-configs"))

    async def create_model_config(
        self,
        provider: str,
        model: str,
        *,
        context_limit: int,
        display_name: str | None = None,
        enabled: bool | None = None,
        is_default: bool | None = None,
        compression_threshold: int | None = None,
        model_config: ChatModelCallConfig | Mapping[str, Any] | None = None,
    ) -> ChatModelConfig:
        """``POST model-configs`` (administrators). ``context_limit`` is in tokens (>= 1),
        ``compression_threshold`` a percentage of it (0..100, default 70); ``model_config``
        holds the call options (temperature, cost, provider options). 400 for a provider
        that is not configured or an invalid field; 409 when it exists."""
        body = {
            "provider": provider,
            "model": model,
            "context_limit": context_limit,
            **compact(
                {
                    "display_name": display_name,
                    "enabled": enabled,
                    "is_default": is_default,
                    "compression_threshold": compression_threshold,
                    "model_config": _call_config(model_config),
                }
            ),
        }
        data = await self.request("POST", "model-configs", body=body)
        return ChatModelConfig.model_validate(data)

    async def update_model_config(
        self,
        config_id: str,
        *,
        model: str | _Unset = UNSET,
        display_name: str | _Unset = UNSET,
        context_limit: int | _Unset = UNSET,
        compression_threshold: int | _Unset = UNSET,
        enabled: bool | _Unset = UNSET,
        is_default: bool | _Unset = UNSET,
        model_config: ChatModelCallConfig | Mapping[str, Any] | _Unset | None = UNSET,
    ) -> ChatModelConfig:
        """``PATCH model-configs/{id}`` (administrators): change only the given fields (units
        as :meth:`create_model_config`). 404 "Chat model config not found."."""
        body = compact(
            {
                "model": model,
                "display_name": display_name,
                "context_limit": context_limit,
                "compression_threshold": compression_threshold,
                "enabled": enabled,
                "is_default": is_default,
                "model_config": _call_config(model_config),
            },
            UNSET,
        )
        data = await self.request("PATCH", f"model-configs/{segment(config_id)}", body=body)
        return ChatModelConfig.model_validate(data)

    async def delete_model_config(self, config_id: str) -> None:
        """``DELETE model-configs/{id}`` (administrators; 404 for an unknown one)."""
        await self.request("DELETE", f"model-configs/{segment(config_id)}")

    # --- configuration --------------------------------------------------------------------

    async def get_system_prompt(self) -> SystemPromptConfig:
        """``GET config/system-prompt`` (administrators; 404 otherwise)."""
        data = await self.request("GET", "config/system-prompt")
        return SystemPromptConfig.model_validate(data)

    async def set_system_prompt(
        self, system_prompt: str, *, include_default_system_prompt: bool | None = None
    ) -> None:
        """``PUT config/system-prompt`` (administrators): the deployment prompt (at most
        128 KiB once sanitized) and whether the built-in prompt precedes it. 400 when too
        long."""
        body = {
            "system_prompt": system_prompt,
            **compact({"include_default_system_prompt": include_default_system_prompt}),
        }
        await self.request("PUT", "config/system-prompt", body=body)

    async def get_user_prompt(self) -> str:
        """``GET config/user-prompt`` -> the caller's custom prompt (``""`` when unset)."""
        data = await self.request("GET", "config/user-prompt")
        return str(data.get("custom_prompt") or "")

    async def set_user_prompt(self, custom_prompt: str) -> str:
        """``PUT config/user-prompt`` -> the stored (sanitized) prompt. 400 when too long."""
        data = await self.request(
            "PUT", "config/user-prompt", body={"custom_prompt": custom_prompt}
        )
        return str((data or {}).get("custom_prompt", custom_prompt))

    async def get_template_allowlist(self) -> list[str]:
        """``GET config/template-allowlist`` (administrators) -> the template ids chats may
        use (``[]``: every template)."""
        data = await self.request("GET", "config/template-allowlist")
        return [str(i) for i in data.get("template_ids") or []]

    async def set_template_allowlist(self, template_ids: Sequence[str]) -> None:
        """``PUT config/template-allowlist`` (administrators). 400 "One or more templates not
        found or deprecated." for an id that is not a current template."""
        await self.request(
            "PUT", "config/template-allowlist", body={"template_ids": list(template_ids)}
        )

    async def get_advisor_config(self) -> AdvisorConfig:
        """``GET config/advisor``."""
        return AdvisorConfig.model_validate(await self.request("GET", "config/advisor"))

    async def set_advisor_config(self, config: AdvisorConfig | Mapping[str, Any]) -> None:
        """``PUT config/advisor`` (administrators): the whole advisor configuration (fields a
        mapping leaves out take their defaults). 400 for an unknown reasoning effort or model
        config."""
        body = config.model_dump(mode="json") if isinstance(config, AdvisorConfig) else config
        await self.request("PUT", "config/advisor", body=dict(body))

    async def info(self) -> ApiInfo:
        """``GET info`` -> version, features, default model and providers."""
        return ApiInfo.model_validate(await self.request("GET", "info"))

    async def openapi(self) -> dict[str, Any]:
        """``GET openapi.json``: the OpenAPI 3.1 document of the API, as a dict."""
        return dict(await self.request("GET", "openapi.json"))
