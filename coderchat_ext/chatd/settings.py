"""Deployment and user settings behind the config, provider, model-config and models
endpoints (docs/api.md#configuration, docs/api.md#providers-and-models)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from .. import errors as E
from ..models import (
    MAX_PROMPT_BYTES,
    AdvisorConfigRequest,
    ChatModelCallConfig,
    CreateModelConfigRequest,
    CreateProviderRequest,
    SystemPromptRequest,
    TemplateAllowlistRequest,
    UpdateModelConfigRequest,
    UpdateProviderRequest,
    UserPromptRequest,
    parse_uuid,
    utcnow,
)
from ..providers.known_models import known_models
from ..providers.registry import ProviderCatalog
from ..store import Database
from ..store import configs as store_configs
from ..store import models_config as store_models
from . import prompt
from .pubsub import PubSub
from .service import Actor

TemplateLookup = Callable[[list[str]], Awaitable[set[str]]]
"""``(template_ids)`` -> awaitable set of the ids that exist and are not deprecated."""


def _require_admin(actor: Actor, *, hide: bool = True) -> None:
    if not actor.is_admin:
        if hide:
            raise E.NotFound("Resource not found.")
        raise E.Forbidden("Only administrators can change this setting.")


class SettingsService:
    """Configuration endpoints. Writes publish ``{kind, entity_id}`` on channel ``config``
    (docs/providers.md#caching). ``template_lookup`` finds the templates an allowlist may name
    (None: none exist)."""

    def __init__(
        self,
        db: Database,
        catalog: ProviderCatalog,
        pubsub: PubSub,
        *,
        template_lookup: TemplateLookup | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.pubsub = pubsub
        self.template_lookup = template_lookup

    def _changed(self, kind: str, entity_id: str = "") -> None:
        self.pubsub.publish("config", {"kind": kind, "entity_id": entity_id})

    # --- prompts --------------------------------------------------------------------------

    async def get_system_prompt(self, actor: Actor) -> dict[str, Any]:
        _require_admin(actor)
        async with self.db.read() as conn:
            custom = await store_configs.get_site(conn, store_configs.SYSTEM_PROMPT) or ""
            include = await store_configs.get_site(
                conn, store_configs.INCLUDE_DEFAULT_SYSTEM_PROMPT
            )
        return {
            "system_prompt": custom,
            "include_default_system_prompt": (not custom) if include is None else include == "true",
            "default_system_prompt": prompt.DEFAULT_SYSTEM_PROMPT.strip(),
        }

    async def put_system_prompt(self, actor: Actor, body: SystemPromptRequest) -> None:
        """``PUT config/system-prompt``: 403 for non-administrators, 400 "System prompt
        exceeds maximum length." over ``MAX_PROMPT_BYTES`` once sanitized
        (docs/api.md#configuration)."""
        _require_admin(actor, hide=False)
        include = body.include_default_system_prompt
        text = prompt.sanitize_prompt(body.system_prompt)
        if len(text.encode()) > MAX_PROMPT_BYTES:
            raise E.BadRequest("System prompt exceeds maximum length.")
        async with self.db.tx() as conn:
            await store_configs.set_site(conn, store_configs.SYSTEM_PROMPT, text)
            if include is not None:
                await store_configs.set_site(
                    conn,
                    store_configs.INCLUDE_DEFAULT_SYSTEM_PROMPT,
                    "true" if include else "false",
                )
        self._changed("system_prompt")

    async def get_user_prompt(self, actor: Actor) -> dict[str, Any]:
        async with self.db.read() as conn:
            value = await store_configs.get_user(conn, actor.username, store_configs.USER_PROMPT)
        return {"custom_prompt": value or ""}

    async def put_user_prompt(self, actor: Actor, request: UserPromptRequest) -> dict[str, Any]:
        """``PUT config/user-prompt`` -> the stored (sanitized) prompt; 400 "Custom prompt
        exceeds maximum length." over ``MAX_PROMPT_BYTES`` once sanitized."""
        text = prompt.sanitize_prompt(request.custom_prompt)
        if len(text.encode()) > MAX_PROMPT_BYTES:
            raise E.BadRequest("Custom prompt exceeds maximum length.")
        async with self.db.tx() as conn:
            await store_configs.set_user(conn, actor.username, store_configs.USER_PROMPT, text)
        self._changed("user_prompt", actor.username)
        return {"custom_prompt": text}

    # --- template allowlist ---------------------------------------------------------------

    async def get_template_allowlist(self, actor: Actor) -> dict[str, Any]:
        _require_admin(actor)
        async with self.db.read() as conn:
            raw = await store_configs.get_site(conn, store_configs.TEMPLATE_ALLOWLIST)
        return {"template_ids": parse_allowlist(raw)}

    async def put_template_allowlist(self, actor: Actor, request: TemplateAllowlistRequest) -> None:
        """``PUT config/template-allowlist``: 404 for non-administrators, 400 "One or more
        templates not found or deprecated." for an id of no usable template."""
        _require_admin(actor)
        canonical = request.template_ids
        if canonical:
            known = set(await self.template_lookup(canonical)) if self.template_lookup else set()
            if set(canonical) - known:
                raise E.BadRequest("One or more templates not found or deprecated.")
        async with self.db.tx() as conn:
            await store_configs.set_site(
                conn, store_configs.TEMPLATE_ALLOWLIST, json.dumps(canonical)
            )
        self._changed("template_allowlist")

    # --- advisor --------------------------------------------------------------------------

    async def get_advisor(self, actor: Actor) -> dict[str, Any]:
        async with self.db.read() as conn:
            raw = await store_configs.get_site(conn, store_configs.ADVISOR_CONFIG)
        try:
            value = json.loads(raw or "{}")
            if not isinstance(value, dict):
                raise ValueError
        except ValueError:
            raise E.InternalError("Stored advisor configuration is invalid.") from None
        return {
            "enabled": bool(value.get("enabled", False)),
            "max_uses_per_run": max(0, int(value.get("max_uses_per_run", 0) or 0)),
            "max_output_tokens": max(0, int(value.get("max_output_tokens", 0) or 0)),
            "model_config_id": value.get("model_config_id") or "",
            "reasoning_effort": value.get("reasoning_effort") or "",
        }

    async def put_advisor(self, actor: Actor, body: AdvisorConfigRequest) -> None:
        """``PUT config/advisor``: 403 for non-administrators, 400 with upstream's messages for
        a negative count, an unknown effort or model config (docs/api.md#configuration)."""
        _require_admin(actor, hide=False)
        config_id = body.model_config_id or ""
        effort = body.reasoning_effort or ""
        if config_id:
            async with self.db.read() as conn:
                cid = parse_uuid(config_id)
                found = await store_models.get_model_config(conn, cid) if cid else None
            if found is None:
                raise E.BadRequest(
                    f'model_config_id "{config_id}" does not match any existing model config.'
                )
        stored = {**body.model_dump(), "model_config_id": config_id, "reasoning_effort": effort}
        async with self.db.tx() as conn:
            await store_configs.set_site(conn, store_configs.ADVISOR_CONFIG, json.dumps(stored))
        self._changed("advisor_config")

    # --- providers ------------------------------------------------------------------------

    async def list_providers(self, actor: Actor) -> list[dict[str, Any]]:
        _require_admin(actor)
        return [p.public().dump() for p in await self.catalog.resolve_all()]

    def _provider_fields(self, request: UpdateProviderRequest) -> dict[str, Any]:
        """The stored columns of the fields present in ``request`` (the key encrypted)."""
        out = request.model_dump(include=request.model_fields_set - {"provider"})
        if "api_key" in out:
            out["api_key"] = self.catalog.secrets.encrypt(out["api_key"] or "")
        if "base_url" in out:
            out["base_url"] = out["base_url"] or ""
        return out

    async def create_provider(self, actor: Actor, request: CreateProviderRequest) -> dict[str, Any]:
        """``POST providers`` -> 201 ``ChatProviderConfig`` (never the key); 400 "Invalid
        provider." for an unknown kind, 409 when it is stored already."""
        _require_admin(actor, hide=False)
        provider = request.provider
        if provider not in self.catalog.known:
            raise E.BadRequest("Invalid provider.")
        fields = self._provider_fields(request)
        async with self.db.tx() as conn:
            existing = [
                p for p in await store_models.list_providers(conn) if p.provider == provider
            ]
            if existing:
                raise E.Conflict("Chat provider already exists.")
            row = await store_models.insert_provider(
                conn,
                provider=str(provider),
                display_name=fields.get("display_name", ""),
                base_url=fields.get("base_url", ""),
                enabled=fields.get("enabled", True),
                api_key=fields.get("api_key", ""),
                created_by=actor.username,
            )
        self._changed("providers", row.id)
        await self.seed_model_configs()
        resolved = await self.catalog.resolve(str(provider))
        assert resolved is not None
        return resolved.public().dump()

    async def update_provider(
        self, actor: Actor, provider_id: str, request: UpdateProviderRequest
    ) -> dict[str, Any]:
        """``PATCH providers/{id}``: only the fields present change; 404 for an unknown id."""
        _require_admin(actor, hide=False)
        fields = self._provider_fields(request)
        async with self.db.tx() as conn:
            row = await store_models.get_provider(conn, provider_id)
            if row is None:
                raise E.NotFound("Chat provider not found.")
            if fields:
                await store_models.update_provider(conn, row.id, **fields)
        self._changed("providers", row.id)
        await self.seed_model_configs()
        resolved = await self.catalog.resolve(row.provider)
        assert resolved is not None
        return resolved.public().dump()

    async def delete_provider(self, actor: Actor, provider_id: str) -> None:
        _require_admin(actor, hide=False)
        async with self.db.tx() as conn:
            row = await store_models.get_provider(conn, provider_id)
            if row is None:
                raise E.NotFound("Chat provider not found.")
            await store_models.delete_provider(conn, row)
        self._changed("providers", provider_id)

    async def seed_model_configs(self) -> list[str]:
        """Create the known model configs (``providers.known_models``) of every available
        provider that has an adapter and was never seeded; returns the seeded providers.

        Each provider is seeded once, so configs an administrator deleted stay deleted. When the
        default was the offline demo model (or there was none), the first model of a newly
        seeded real provider becomes the default: adding a key switches new chats to it.
        """
        candidates = [
            p
            for p in await self.catalog.resolve_all()
            if p.available and self.catalog.has_adapter(p.provider) and known_models(p.provider)
        ]
        if not candidates:
            return []
        seeded: list[str] = []
        async with self.db.tx() as conn:
            raw = await store_configs.get_site(conn, store_configs.SEEDED_MODEL_PROVIDERS)
            done: list[str] = json.loads(raw) if raw else []
            for resolved in candidates:
                if resolved.provider in done:
                    continue
                default = await store_models.get_default_model_config(conn)
                take_default = resolved.provider != "demo" and (
                    default is None or default.provider == "demo"
                )
                for index, known in enumerate(known_models(resolved.provider)):
                    if await store_models.find_model_config(conn, known.provider, known.model):
                        continue
                    await store_models.insert_model_config(
                        conn,
                        provider=known.provider,
                        model=known.model,
                        display_name=known.display_name,
                        enabled=True,
                        is_default=take_default and index == 0,
                        context_limit=known.context_limit,
                        compression_threshold=70,
                        options=known.options(),
                        created_by=None,
                    )
                done.append(resolved.provider)
                seeded.append(resolved.provider)
            if seeded:
                await store_configs.set_site(
                    conn, store_configs.SEEDED_MODEL_PROVIDERS, json.dumps(done)
                )
        if seeded:
            self._changed("model_config")
        return seeded

    # --- model configs --------------------------------------------------------------------

    async def list_model_configs(self, actor: Actor) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            configs = await store_models.list_model_configs(conn, enabled_only=not actor.is_admin)
        return [c.dump() for c in configs]

    async def create_model_config(
        self, actor: Actor, request: CreateModelConfigRequest
    ) -> dict[str, Any]:
        """``POST model-configs`` -> 201 ``ChatModelConfig``; the first becomes the default.
        400 "Chat provider is not configured." unless the provider is available, 409 when the
        provider already has a config of that model."""
        _require_admin(actor, hide=False)
        resolved = await self.catalog.resolve(request.provider)
        if resolved is None or not resolved.available:
            raise E.BadRequest("Chat provider is not configured.")
        async with self.db.tx() as conn:
            if await store_models.find_model_config(conn, resolved.provider, request.model):
                raise E.Conflict("Chat model config already exists.")
            config_id = await store_models.insert_model_config(
                conn,
                provider=resolved.provider,
                model=request.model,
                display_name=request.display_name or request.model,
                enabled=request.enabled,
                is_default=request.is_default,
                context_limit=request.context_limit,
                compression_threshold=request.compression_threshold,
                options=request.options or ChatModelCallConfig(),
                created_by=actor.username,
            )
            config = await store_models.get_model_config(conn, config_id)
        assert config is not None
        self._changed("model_config", config_id)
        return config.dump()

    async def update_model_config(
        self, actor: Actor, config_id: str, request: UpdateModelConfigRequest
    ) -> dict[str, Any]:
        """``PATCH model-configs/{id}``: only the fields present change (null call options
        reset them); 404 for an unknown id, 409 when the new model clashes."""
        _require_admin(actor, hide=False)
        fields = request.model_dump(include=request.model_fields_set)
        if "options" in fields:
            fields["options"] = request.options or ChatModelCallConfig()
        async with self.db.tx() as conn:
            cid = parse_uuid(config_id)
            config = await store_models.get_model_config(conn, cid) if cid else None
            if config is None:
                raise E.NotFound("Chat model config not found.")
            if "model" in fields and fields["model"] != config.model:
                clash = await store_models.find_model_config(conn, config.provider, fields["model"])
                if clash is not None:
                    raise E.Conflict("Chat model config already exists.")
            if fields:
                await store_models.update_model_config(
                    conn, config.id, **fields, updated_by=actor.username
                )
            updated = await store_models.get_model_config(conn, config.id)
        assert updated is not None
        self._changed("model_config", config.id)
        return updated.dump()

    async def delete_model_config(self, actor: Actor, config_id: str) -> None:
        _require_admin(actor, hide=False)
        async with self.db.tx() as conn:
            cid = parse_uuid(config_id)
            config = await store_models.get_model_config(conn, cid) if cid else None
            if config is None:
                raise E.NotFound("Chat model config not found.")
            await store_models.delete_model_config(conn, config.id)
        self._changed("model_config", config_id)

    async def list_models(self, actor: Actor) -> dict[str, Any]:
        """``GET models``: each provider's availability and its enabled model configs."""
        async with self.db.read() as conn:
            configs = await store_models.list_model_configs(conn, enabled_only=True)
        out = []
        for resolved in await self.catalog.resolve_all():
            reason = resolved.unavailable_reason
            if reason is None and not self.catalog.has_adapter(resolved.provider):
                reason = "adapter_unavailable"
            entry: dict[str, Any] = {
                "provider": resolved.provider,
                "display_name": resolved.display_name,
                "available": reason is None,
                "models": [
                    {
                        "id": c.id,
                        "provider": c.provider,
                        "model": c.model,
                        "display_name": c.display_name,
                        "is_default": c.is_default,
                    }
                    for c in configs
                    if c.provider == resolved.provider
                ],
            }
            if reason:
                entry["unavailable_reason"] = reason
            out.append(entry)
        return {"providers": out}

    async def info(self, version: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            default = await store_models.get_default_model_config(conn)
        real = [
            p.provider
            for p in await self.catalog.resolve_all()
            if p.available
            and p.provider not in ("demo", "scripted")
            and self.catalog.has_adapter(p.provider)
        ]
        return {
            "version": version,
            "time": utcnow(),
            "features": ["chats", "streams", "queue", "dynamic_tools", "titles"],
            "default_model": default.dump() if default else None,
            "real_provider_configured": bool(real),
            "providers": sorted(self.catalog.factories),
        }


def parse_allowlist(raw: str | None) -> list[str]:
    """The stored allowlist (a JSON array of UUID strings); raises 500 when corrupt."""
    if not raw:
        return []
    try:
        value = json.loads(raw)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError
    except ValueError:
        raise E.InternalError("Stored template allowlist is corrupt.") from None
    return value
