"""Messages of classified errors: what a user reads (docs/loop.md#error-classification).

Owns the message templates per error kind, for the terminal ``error`` event and ``last_error``
and for the shorter ``retry`` event, the fixed texts (a cancelled request, the OpenAI Responses
continuity diagnostics), and the normalization every :class:`~coderchat_ext.models.ChatError`
goes through before it leaves the daemon: secrets redacted, ``detail`` cut to
:data:`MAX_DETAIL_RUNES`, an empty ``message`` filled from ``kind`` and ``provider``.
"""

from __future__ import annotations

import re

from ...models import ChatError, ChatErrorKind
from .provider_facts import PROVIDER_DISPLAY_NAMES, normalize_provider

MAX_DETAIL_RUNES = 500
"""Longest ``detail`` kept; longer ones end with "…" (docs/loop.md#error-classification)."""

CANCELED_MESSAGE = "The request was canceled before it completed."
"""The message of an interrupted or cancelled request."""

CONTINUITY_MESSAGE = (
    "The chat continuation failed due to an internal state mismatch. "
    "This is not a configuration or billing issue."
)
# Fixed details: the provider's text carries item ids that must not reach clients.
CONTINUITY_DIAGNOSTICS = (
    (
        "no tool output found for function call",
        "OpenAI Responses API request continuity diagnostic: match=function_call_output_missing.",
    ),
    (
        "was provided without its required 'reasoning' item",
        "OpenAI Responses API request continuity diagnostic: match=web_search_reasoning_missing.",
    ),
)

_TERMINAL_TEMPLATES: dict[str, str] = {
    "overloaded": "{subject} is temporarily overloaded.",
    "timeout": "{subject} is temporarily unavailable.",
    "rate_limit": "{subject} is rate limiting requests.",
    "startup_timeout": "{subject} did not start responding in time.",
    "usage_limit": (
        "The usage quota for {subject} has been exceeded. "
        "Check the billing and quota settings for the provider account."
    ),
    "auth": "Authentication with {subject} failed. Check the API key and permissions.",
    "config": (
        "{subject} rejected the model configuration. "
        "Check the selected model and provider settings."
    ),
    "missing_key": (
        "This conversation was started with an API key that is no longer available. "
        "Send your message again to continue."
    ),
    "provider_disabled": (
        "The {name} provider has been disabled. Contact your Jupyter server administrator."
    ),
    # Ours, not upstream's: a write refused by a full disk (store.StorageFull).
    "storage": (
        "The server's disk is full, so the chat could not be saved. "
        "Free disk space on the server, then send your message again."
    ),
}
_RETRY_TEMPLATES: dict[str, str] = {
    "overloaded": "{subject} is temporarily overloaded.",
    "timeout": "{subject} is temporarily unavailable.",
    "rate_limit": "{subject} is rate limiting requests.",
    "startup_timeout": "{subject} did not start responding in time.",
    "usage_limit": "The usage quota for {subject} has been exceeded.",
    "auth": "Authentication with {subject} failed.",
    "config": "{subject} rejected the model configuration.",
    "missing_key": "The API key for this conversation is no longer available.",
    "provider_disabled": "The {name} provider has been disabled by an administrator.",
    "storage": "The server's disk is full.",
}


def terminal_message(
    kind: ChatErrorKind, provider: str | None, retryable: bool, status_code: int | None
) -> str:
    """The standard message of an error of ``kind`` from ``provider`` (``error`` event and
    ``last_error``), remediation advice included."""
    if kind in ("timeout", "generic") and not retryable and not status_code:
        if kind == "timeout":
            return "The request timed out before it completed."
        return "The chat request failed unexpectedly."
    template = _TERMINAL_TEMPLATES.get(kind, "{subject} returned an unexpected error.")
    return _format(template, provider)


def stream_incomplete_message(provider: str | None) -> str:
    """The message of a provider stream that closed before its terminal event."""
    return _format("{subject} stream closed unexpectedly before the response completed.", provider)


def _format(template: str, provider: str | None) -> str:
    """``template`` with ``{subject}`` ("Anthropic", else "the AI provider") and ``{name}``
    ("Anthropic", else "AI"), capitalized at the start."""
    known = PROVIDER_DISPLAY_NAMES.get(provider or "")
    text = template.format(subject=known or "the AI provider", name=known or "AI")
    return text[:1].upper() + text[1:]


def retry_text(error: ChatError) -> str:
    """The short text of a ``retry`` event for ``error`` (normalized): its message when it is
    retryable, else the kind's message without remediation advice."""
    if error.retryable and error.message:
        return error.message
    template = _RETRY_TEMPLATES.get(error.kind, "{subject} returned an unexpected error.")
    return _format(template, error.provider)


def normalize_error(e: ChatError) -> ChatError:
    """``e`` as it may leave the daemon: provider kind normalized, empty fields ``None``,
    secrets redacted from ``message`` and ``detail``, ``detail`` at most
    :data:`MAX_DETAIL_RUNES` characters, an empty ``message`` filled from ``kind`` and
    ``provider``."""
    provider = normalize_provider(e.provider) or None
    status_code = e.status_code or None
    detail = _truncate_detail(redact_secrets(e.detail or "")) or None
    message = redact_secrets(e.message.strip()) or terminal_message(
        e.kind, provider, e.retryable, status_code
    )
    return ChatError(
        message=message,
        detail=detail,
        kind=e.kind,
        provider=provider,
        retryable=e.retryable,
        status_code=status_code,
    )


_SECRET_PATTERNS = (
    # Provider API keys (Anthropic sk-ant-…, OpenAI sk-…/sk-proj-…, OpenRouter sk-or-…), Google
    # API keys, and bearer tokens: a provider may quote the key it rejected in its error body.
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{8,}=*"),
)


def redact_secrets(text: str) -> str:
    """``text`` with anything shaped like an API key or bearer token replaced by
    ``[redacted]``; errors reach clients and logs, keys never may."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text


def _truncate_detail(detail: str) -> str:
    detail = detail.strip()
    if len(detail) <= MAX_DETAIL_RUNES:
        return detail
    return detail[: MAX_DETAIL_RUNES - 1] + "…"


def fallback_detail(structured: str, message: str) -> str:
    """The structured provider detail, else the raw error text unless it holds a URL."""
    if structured.strip():
        return structured
    if "://" in message:
        return ""
    return " ".join(message.split())
