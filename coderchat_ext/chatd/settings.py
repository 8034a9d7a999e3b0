"""Deployment and user settings behind the config, provider, model-config and models
endpoints (docs/api.md#configuration, docs/api.md#providers-and-models)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

from .. import errors as E
from ..models import ChatModelCallConfig, parse_uuid, utcnow
from ..providers.known_models import known_models
from ..providers.registry import MAX_API_KEY_BYTES, ProviderCatalog
from ..store import Database
from ..store import configs as store_configs
from ..store import models_config as store_models
from . import prompt
from .pubsub import PubSub
from .service import MAX_ROW_ID, Actor

ADVISOR_EFFORTS = ("", "low", "medium", "high")
TemplateLookup = Callable[[list[str]], Awaitable[set[str]]]
"""``(template_ids)`` -> awaitable set of the ids that exist and are not deprecated."""


class _Request(BaseModel):
    """A request body: JSON types exactly (no coercion), unknown fields ignored."""

    model_config = ConfigDict(
        strict=True, extra="ignore", protected_namespaces=(), use_attribute_docstrings=True
    )


class SystemPromptRequest(_Request):
    """``PUT config/system-prompt``."""

    system_prompt: str = Field(
        description=f"The deployment prompt; '' clears it. At most {prompt.MAX_PROMPT_BYTES} "
        "bytes once sanitized."
    )
    include_default_system_prompt: bool | None = None
    """Whether the built-in prompt comes first; null keeps the stored choice."""


class AdvisorConfigRequest(_Request):
    """``PUT config/advisor`` (docs/api.md#configuration); fields left out take their default."""

    enabled: bool = False
    max_uses_per_run: int = Field(0, json_schema_extra={"minimum": 0})
    """Advisor calls per run; 0 is unlimited."""
    max_output_tokens: int = Field(0, json_schema_extra={"minimum": 0})
    """0 uses the default (16384)."""
    model_config_id: str | None = None
    """A model config UUID; null or '' reuses the chat's model."""
    reasoning_effort: str | None = Field(None, json_schema_extra={"enum": [*ADVISOR_EFFORTS, None]})
    """One of "", "low", "medium", "high"; null is ""."""


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
        if len(text.encode()) > prompt.MAX_PROMPT_BYTES:
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

    async def put_user_prompt(self, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
        text = body.get("custom_prompt", "")
        if not isinstance(text, str):
            raise E.BadRequest("Invalid request body.", "custom_prompt must be a string.")
        text = prompt.sanitize_prompt(text)
        if len(text.encode()) > prompt.MAX_PROMPT_BYTES:
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

    async def put_template_allowlist(self, actor: Actor, body: dict[str, Any]) -> None:
        _require_admin(actor)
        ids = body.get("template_ids")
        if not isinstance(ids, list):
            raise E.BadRequest("Invalid request body.", "template_ids must be an array.")
        canonical: list[str] = []
        for value in ids:
            cid = parse_uuid(value)
            if cid is None:
                raise E.BadRequest("Invalid template ID in allowlist.")
            if cid not in canonical:
                canonical.append(cid)
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
        counts = (
            ("max_uses_per_run", body.max_uses_per_run),
            ("max_output_tokens", body.max_output_tokens),
        )
        for key, value in counts:
            if value < 0:
                raise E.BadRequest(f"{key} {value} must be non-negative.")
        if effort not in ADVISOR_EFFORTS:
            raise E.BadRequest(
                f'reasoning_effort "{effort}" is not valid; must be one of "", "low", '
                '"medium", or "high".'
            )
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

    def _validate_provider_fields(self, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "api_key" in body:
            key = body["api_key"]
            if not isinstance(key, str):
                raise E.BadRequest("Invalid request body.", "api_key must be a string.")
            if len(key.encode()) > MAX_API_KEY_BYTES:
                raise E.BadRequest("API key too large.")
            if not (key.isascii() and key.isprintable()):
                # It travels in an HTTP header, which holds printable ASCII only.
                raise E.BadRequest("Invalid request body.", "api_key must be printable ASCII.")
            out["api_key"] = self.catalog.secrets.encrypt(key.strip())
        if "base_url" in body:
            url = body["base_url"] or ""
            if not isinstance(url, str):
                raise E.BadRequest("Invalid provider base URL.")
            if url:
                parsed = urlparse(url)
                if parsed.scheme not in ("http", "https") or not parsed.netloc:
                    raise E.BadRequest("Invalid provider base URL.")
            out["base_url"] = url
        if "display_name" in body:
            if not isinstance(body["display_name"], str):
                raise E.BadRequest("Invalid request body.", "display_name must be a string.")
            out["display_name"] = body["display_name"].strip()
        if "enabled" in body:
            if not isinstance(body["enabled"], bool):
                raise E.BadRequest("Invalid request body.", "enabled must be a boolean.")
            out["enabled"] = body["enabled"]
        return out

    async def create_provider(self, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
        """``POST providers`` -> 201 ``ChatProviderConfig`` (never the key)."""
        _require_admin(actor, hide=False)
        provider = body.get("provider")
        if provider not in self.catalog.known:
            raise E.BadRequest("Invalid provider.")
        fields = self._validate_provider_fields(body)
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
        self, actor: Actor, provider_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        _require_admin(actor, hide=False)
        fields = self._validate_provider_fields(body)
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

    def _validate_config_fields(self, body: dict[str, Any], *, create: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if create or "model" in body:
            model = body.get("model")
            if not isinstance(model, str) or not model.strip():
                raise E.BadRequest("Model is required.")
            out["model"] = model.strip()
        if create or "context_limit" in body:
            limit = body.get("context_limit")
            if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= MAX_ROW_ID:
                raise E.BadRequest(
                    "Context limit is required.",
                    f"context_limit must be a positive integer of at most {MAX_ROW_ID}.",
                )
            out["context_limit"] = limit
        if "compression_threshold" in body or create:
            threshold = body.get("compression_threshold", 70)
            if (
                not isinstance(threshold, int)
                or isinstance(threshold, bool)
                or not (0 <= threshold <= 100)
            ):
                raise E.BadRequest(
                    "Invalid compression threshold.",
                    "compression_threshold must be an integer from 0 to 100.",
                )
            out["compression_threshold"] = threshold
        for key in ("enabled", "is_default"):
            if key in body:
                if not isinstance(body[key], bool):
                    raise E.BadRequest("Invalid request body.", f"{key} must be a boolean.")
                out[key] = body[key]
        if "display_name" in body:
            if not isinstance(body["display_name"], str):
                raise E.BadRequest("Invalid request body.", "display_name must be a string.")
            out["display_name"] = body["display_name"].strip()
        if "model_config" in body or create:
            try:
                out["options"] = ChatModelCallConfig.model_validate(body.get("model_config") or {})
            except ValueError as exc:
                raise E.BadRequest("Invalid model config options.", str(exc)) from None
        return out

    async def create_model_config(self, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
        """``POST model-configs`` -> 201 ``ChatModelConfig``; the first becomes the default."""
        _require_admin(actor, hide=False)
        fields = self._validate_config_fields(body, create=True)
        provider = body.get("provider")
        resolved = await self.catalog.resolve(provider) if isinstance(provider, str) else None
        if resolved is None or not resolved.available:
            raise E.BadRequest("Chat provider is not configured.")
        async with self.db.tx() as conn:
            if await store_models.find_model_config(conn, resolved.provider, fields["model"]):
                raise E.Conflict("Chat model config already exists.")
            config_id = await store_models.insert_model_config(
                conn,
                provider=resolved.provider,
                model=fields["model"],
                display_name=fields.get("display_name") or fields["model"],
                enabled=fields.get("enabled", True),
                is_default=fields.get("is_default", False),
                context_limit=fields["context_limit"],
                compression_threshold=fields["compression_threshold"],
                options=fields["options"],
                created_by=actor.username,
            )
            config = await store_models.get_model_config(conn, config_id)
        assert config is not None
        self._changed("model_config", config_id)
        return config.dump()

    async def update_model_config(
        self, actor: Actor, config_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        _require_admin(actor, hide=False)
        fields = self._validate_config_fields(body, create=False)
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
