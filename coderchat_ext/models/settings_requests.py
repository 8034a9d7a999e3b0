"""The request bodies of the provider, model-config and configuration endpoints
(docs/api.md#providers-and-models, docs/api.md#configuration); see :mod:`.requests` for how
they are checked."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar
from urllib.parse import urlparse

from pydantic import (
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from .config import ChatModelCallConfig
from .requests import MAX_ROW_ID, Request, Uuid, wrap
from .wire import parse_uuid, refusal, refused_as

MAX_PROMPT_BYTES = 131_072
"""The deployment and user prompts, in UTF-8 bytes once sanitized (docs/api.md#configuration)."""
MAX_API_KEY_BYTES = 10_240
ADVISOR_EFFORTS = ("", "low", "medium", "high")


# --- providers and model configs --------------------------------------------------------------


def _api_key(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    key = handler(value)
    if len(key.encode()) > MAX_API_KEY_BYTES:
        raise refusal("API key too large.")
    if not (key.isascii() and key.isprintable()):
        # It travels in an HTTP header, which holds printable ASCII only.
        raise refusal("Invalid request body.", "api_key must be printable ASCII.")
    return key.strip()


_API_KEY_TYPE = ("Invalid request body.", "api_key must be a string.")
ApiKey = Annotated[
    str | SkipJsonSchema[None],
    refused_as(*_API_KEY_TYPE, null=False),
    wrap(_api_key),
    Field(description=f"At most {MAX_API_KEY_BYTES} bytes; never returned."),
]


def _base_url(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    url = handler(value) or ""
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise refusal("Invalid provider base URL.")
    return url


BaseUrl = Annotated[
    str | None,
    refused_as("Invalid provider base URL."),
    wrap(_base_url),
    Field(description="http(s) URL or ''."),
]
_DISPLAY_NAME_TYPE = ("Invalid request body.", "display_name must be a string.")
DisplayName = Annotated[
    str, StringConstraints(strip_whitespace=True), refused_as(*_DISPLAY_NAME_TYPE)
]
OptionalDisplayName = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True)] | SkipJsonSchema[None],
    refused_as(*_DISPLAY_NAME_TYPE, null=False),
]


def _boolean(name: str, *, null: bool = True) -> Any:
    return refused_as("Invalid request body.", f"{name} must be a boolean.", null=null)


class UpdateProviderRequest(Request):
    """``PATCH providers/{id}``. Only the fields present change."""

    api_key: ApiKey = None
    base_url: BaseUrl = None
    display_name: OptionalDisplayName = None
    enabled: Annotated[bool | SkipJsonSchema[None], _boolean("enabled", null=False)] = None


class CreateProviderRequest(UpdateProviderRequest):
    """``POST providers``."""

    provider: Annotated[str, refused_as("Invalid provider.")] = Field(
        description="A known provider kind, e.g. anthropic, openai."
    )
    enabled: Annotated[bool | SkipJsonSchema[None], _boolean("enabled", null=False)] = True

    missing: ClassVar[dict[str, PydanticCustomError]] = {"provider": refusal("Invalid provider.")}


_MODEL_REQUIRED = ("Model is required.",)
_CONTEXT_LIMIT_TEXT = (
    "Context limit is required.",
    f"context_limit must be a positive integer of at most {MAX_ROW_ID}.",
)
_THRESHOLD_TEXT = (
    "Invalid compression threshold.",
    "compression_threshold must be an integer from 0 to 100.",
)
_Model = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_ContextLimit = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
_Threshold = Annotated[int, Field(ge=0, le=100)]


def _call_config(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return ChatModelCallConfig.model_validate(value or {})
    except ValidationError as exc:
        raise refusal("Invalid model config options.", str(exc)) from None


CallConfig = Annotated[ChatModelCallConfig | None, wrap(_call_config)]


class UpdateModelConfigRequest(Request):
    """``PATCH model-configs/{id}``. Only the fields present change."""

    model: Annotated[_Model | SkipJsonSchema[None], refused_as(*_MODEL_REQUIRED, null=False)] = None
    context_limit: Annotated[
        _ContextLimit | SkipJsonSchema[None], refused_as(*_CONTEXT_LIMIT_TEXT, null=False)
    ] = None
    compression_threshold: Annotated[
        _Threshold | SkipJsonSchema[None], refused_as(*_THRESHOLD_TEXT, null=False)
    ] = None
    enabled: Annotated[bool | SkipJsonSchema[None], _boolean("enabled", null=False)] = None
    is_default: Annotated[bool | SkipJsonSchema[None], _boolean("is_default", null=False)] = None
    display_name: OptionalDisplayName = None
    options: CallConfig = Field(None, alias="model_config")
    """The call options; null resets them."""


class CreateModelConfigRequest(Request):
    """``POST model-configs``; the first becomes the default. Fields are checked in the
    reference's order, the provider last."""

    model: Annotated[_Model, refused_as(*_MODEL_REQUIRED)]
    context_limit: Annotated[_ContextLimit, refused_as(*_CONTEXT_LIMIT_TEXT)]
    compression_threshold: Annotated[_Threshold, refused_as(*_THRESHOLD_TEXT)] = 70
    enabled: Annotated[bool, _boolean("enabled")] = True
    is_default: Annotated[bool, _boolean("is_default")] = False
    display_name: DisplayName = ""
    """Default: the model."""
    options: CallConfig = Field(None, alias="model_config")
    provider: Annotated[str, refused_as("Chat provider is not configured.")]
    """A configured, available provider."""

    missing: ClassVar[dict[str, PydanticCustomError]] = {
        "model": refusal("Model is required."),
        "context_limit": refusal(*_CONTEXT_LIMIT_TEXT),
        "provider": refusal("Chat provider is not configured."),
    }


# --- configuration ----------------------------------------------------------------------------


class SystemPromptRequest(Request):
    """``PUT config/system-prompt``."""

    system_prompt: str = Field(
        description=f"The deployment prompt; '' clears it. At most {MAX_PROMPT_BYTES} "
        "bytes once sanitized."
    )
    include_default_system_prompt: bool | None = None
    """Whether the built-in prompt comes first; null keeps the stored choice."""


class UserPromptRequest(Request):
    """``PUT config/user-prompt``."""

    custom_prompt: Annotated[
        str, refused_as("Invalid request body.", "custom_prompt must be a string.")
    ] = Field("", description=f"At most {MAX_PROMPT_BYTES} bytes once sanitized.")


_BAD_TEMPLATE_ID = refusal("Invalid template ID in allowlist.")
_NOT_AN_ARRAY = refusal("Invalid request body.", "template_ids must be an array.")


def _template_ids(value: Any, handler: ValidatorFunctionWrapHandler) -> list[str]:
    if not isinstance(value, list):
        raise _NOT_AN_ARRAY
    canonical: list[str] = []
    for item in value:
        cid = parse_uuid(item)
        if cid is None:
            raise _BAD_TEMPLATE_ID
        if cid not in canonical:
            canonical.append(cid)
    result: list[str] = handler(canonical)
    return result


class TemplateAllowlistRequest(Request):
    """``PUT config/template-allowlist``: the canonical, distinct template ids."""

    template_ids: Annotated[list[Uuid], wrap(_template_ids)]
    """Empty: every template is allowed."""

    missing: ClassVar[dict[str, PydanticCustomError]] = {"template_ids": _NOT_AN_ARRAY}


class AdvisorConfigRequest(Request):
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

    @field_validator("max_uses_per_run", "max_output_tokens")
    @classmethod
    def _non_negative(cls, value: int, info: Any) -> int:
        if value < 0:
            raise refusal(f"{info.field_name} {value} must be non-negative.")
        return value

    @field_validator("reasoning_effort")
    @classmethod
    def _effort(cls, value: str | None) -> str:
        if (value or "") not in ADVISOR_EFFORTS:
            raise refusal(
                f'reasoning_effort "{value}" is not valid; must be one of "", "low", '
                '"medium", or "high".'
            )
        return value or ""
