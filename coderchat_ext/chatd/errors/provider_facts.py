"""Provider facts for error classification: what providers and their HTTP stacks say about a
failure besides its wording (docs/loop.md#error-classification).

Owns the per-provider names (display names, hints in error text, aliases), the HTTP statuses
that are transient, the text patterns of the rule table, the shapes of provider error bodies
(``{"error": {"message", "type", "code"}}`` and the in-stream ones), ``Retry-After`` headers,
h2 stream resets, and which exception types are an SDK's or a transport failure.

Exceptions of the official ``anthropic`` and ``openai`` SDKs (and our own
``providers.base.ProviderError``) are read by duck typing: ``status_code``, ``body`` (the parsed
JSON error body, or its text), ``response.headers`` (or ``headers``) and ``request.url``. Importing
this module imports neither SDK.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import email.utils
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PROVIDER_DISPLAY_NAMES: Mapping[str, str] = {
    "anthropic": "Anthropic",
    "azure": "Azure OpenAI",
    "bedrock": "AWS Bedrock",
    "google": "Google",
    "openai": "OpenAI",
    "openai-compat": "OpenAI Compatible",
    "openrouter": "OpenRouter",
    "vercel": "Vercel AI Gateway",
    "demo": "Offline demo model",
    "scripted": "Scripted model",
}
"""Provider display names used in messages (docs/loop.md#error-classification, plus our ``demo`` and
``scripted``)."""


_PROVIDER_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("openai-compat", ("openai-compat", "openai compatible")),
    ("azure", ("azure openai", "azure-openai")),
    ("openrouter", ("openrouter",)),
    ("bedrock", ("aws bedrock", "bedrock")),
    ("vercel", ("vercel ai gateway", "vercel")),
    ("anthropic", ("anthropic", "claude")),
    ("google", ("google", "gemini", "vertex")),
    ("openai", ("openai",)),
)
_PROVIDER_ALIASES = {
    "azure openai": "azure",
    "azure-openai": "azure",
    "openai compat": "openai-compat",
    "openai compatible": "openai-compat",
    "openai_compat": "openai-compat",
}

# Patterns of the rule table, matched against lowercased error text and body signals.
OVERLOADED_PATTERNS = ("overloaded",)
USAGE_LIMIT_PATTERNS = ("quota", "billing", "payment required")
# A hard usage exhaustion code that wins at any status, even 429.
USAGE_LIMIT_ANY_STATUS_PATTERNS = ("insufficient_quota",)
AUTH_STRONG_PATTERNS = ("authentication", "unauthorized", "invalid api key", "invalid_api_key")
AUTH_WEAK_PATTERNS = ("forbidden",)
RATE_LIMIT_PATTERNS = (
    "rate limit",
    "rate_limit",
    "rate limited",
    "rate-limited",
    "too many requests",
)
PROVIDER_DISABLED_PATTERNS = ("provider_disabled",)
TIMEOUT_PATTERNS = (
    "timeout",
    "timed out",
    "service unavailable",
    "unavailable",
    "connection reset",
    "connection refused",
    "eof",
    "broken pipe",
    "bad gateway",
    "gateway timeout",
    "client conn",
    "goaway",
    "http2: stream closed",
    "use of closed network connection",
    "internal_error; received from peer",
    "refused_stream; received from peer",
    "cancel; received from peer",
    "enhance_your_calm; received from peer",
    "no_error; received from peer",
    # httpx/httpcore wordings of the same transport failures (dropped keep-alive connection,
    # truncated body, h2 GOAWAY).
    "server disconnected",
    "peer closed connection",
    "connectionterminated",
)
CONFIG_PATTERNS = (
    "invalid model",
    "model not found",
    "model_not_found",
    "unsupported model",
    "context length exceeded",
    "context_exceeded",
    "maximum context length",
    # The providers' own wordings of the same (Responses: "exceeds the context window" with code
    # context_length_exceeded; Anthropic: "prompt is too long: N tokens > M maximum").
    "context_length_exceeded",
    "exceeds the context window",
    "prompt is too long",
    "malformed config",
    "malformed configuration",
)
GENERIC_RETRYABLE_PATTERNS = ("server error", "internal server error")

STREAM_INCOMPLETE = (
    ("anthropic stream closed before message_stop", "anthropic"),
    ("openai responses stream closed before terminal event", "openai"),
)

_STATUS_TEXT = re.compile(r"(?:status(?:\s+code)?|http)\s*[:=]?\s*(\d{3})")
_STANDALONE_STATUS = re.compile(r"\b(?:401|403|408|429|500|502|503|504|529)\b")
# str() of an h2 StreamReset event. The code prints as a name before Python 3.11 and as a number
# after; older h2 releases leave out remote_reset, and such a reset is taken as the peer's.
_H2_STREAM_RESET = re.compile(
    r"<streamreset stream_id:\d+, error_code:(?:errorcodes\.)?(\w+)"
    r"(?:, remote_reset:(true|false))?>"
)
# Peer resets worth retrying, by name and by number.
_H2_RETRYABLE_CODES = frozenset(
    {
        *("no_error", "0"),
        *("internal_error", "2"),
        *("refused_stream", "7"),
        *("cancel", "8"),
        *("enhance_your_calm", "11"),
    }
)
# Go HTTP client / SDK wrapper `METHOD "URL": <status> ...` around a provider's JSON body.
_TRANSPORT_WRAPPER = re.compile(r'^[A-Z]+ "[^"]+": \d{3} ')

_RETRYABLE_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504, 529})


def status_code_retryable(code: int) -> bool:
    """Whether an HTTP status is transient: 408, 429, 500, 502, 503, 504 and 529 (the legacy
    ``StatusCodeRetryable``, docs/loop.md#retries)."""
    return code in _RETRYABLE_STATUS_CODES


@dataclass(frozen=True)
class ProviderFacts:
    """What a provider error object says besides its text."""

    status_code: int = 0
    detail: str = ""
    retry_after: float | None = None
    # The body's error type and code (or its text when it is not JSON): matched like the text.
    signals: str = ""
    host: str = ""
    # Read from an SDK exception, whose text is not read (see ``classification._classify``).
    from_library: bool = False


def contains_any(text: str, patterns: Iterable[str]) -> bool:
    """Whether any of ``patterns`` occurs in ``text`` (both lowercase)."""
    return any(pattern in text for pattern in patterns)


def detect_provider(lower: str) -> str:
    """The provider kind named in lowercased error text or host ("claude" → ``"anthropic"``),
    else ``""``."""
    for provider, patterns in _PROVIDER_HINTS:
        if contains_any(lower, patterns):
            return provider
    return ""


def normalize_provider(provider: str | None) -> str:
    """A provider kind as the messages know it: lowercased, aliases resolved ("Azure OpenAI" →
    ``"azure"``); ``""`` for none."""
    normalized = (provider or "").strip().lower()
    return _PROVIDER_ALIASES.get(normalized, normalized)


def status_from_text(lower: str) -> int:
    """A status from "status 429" / "http 503" text, else the first standalone well-known code
    that is neither a port ("host:503") nor an HTTP/2 stream id ("stream ID 401")."""
    match = _STATUS_TEXT.search(lower)
    if match:
        return int(match.group(1))
    for match in _STANDALONE_STATUS.finditer(lower):
        start = match.start()
        if start > 0 and lower[start - 1] == ":":
            continue
        prefix = lower[:start].rstrip(" \t\r\n").rstrip(":=").rstrip(" \t\r\n")
        if prefix.endswith("stream id"):
            continue
        return int(match.group(0))
    return 0


def h2_stream_reset(lower: str) -> bool | None:
    """``None`` without an h2 stream reset; else whether it is a peer reset worth retrying."""
    match = _H2_STREAM_RESET.search(lower)
    if match is None:
        return None
    code, remote = match.groups()
    return remote != "false" and code in _H2_RETRYABLE_CODES


def _is_deadline(err: BaseException) -> bool:
    return isinstance(err, (TimeoutError, asyncio.TimeoutError)) and not str(err).strip()


_SDK_MODULES = frozenset({"anthropic", "openai"})
_WIRE_MODULES = frozenset({"httpx", "httpx2", "httpcore", "httpcore2", "h11", "h2", "anyio"})
# Base classes of transport failures, by top-level module: the SDKs' wrapper of any of them
# (APITimeoutError is a subclass) and the errors of the HTTP stacks the SDKs run on (httpx is
# 0.x and httpx2 2.x of one library; httpcore likewise).
_TRANSPORT_BASES = frozenset(
    {
        ("anthropic", "APIConnectionError"),
        ("openai", "APIConnectionError"),
        *((m, "TransportError") for m in ("httpx", "httpx2")),
        *(
            (m, name)
            for m in ("httpcore", "httpcore2")
            for name in ("TimeoutException", "NetworkError", "ProtocolError")
        ),
        ("h11", "ProtocolError"),
    }
)


def _module_root(cls: type) -> str:
    return cls.__module__.split(".", 1)[0]


def is_library_error(err: BaseException) -> bool:
    """Raised by a provider SDK or the HTTP stack under it (whose wording is theirs)."""
    return _module_root(type(err)) in _SDK_MODULES | _WIRE_MODULES


def is_wire_error(err: BaseException) -> bool:
    return _module_root(type(err)) in _WIRE_MODULES or isinstance(err, OSError)


def _is_transport(err: BaseException) -> bool:
    """A connection, protocol or read failure, by type: the builtin ``ConnectionError`` family,
    a socket ``TimeoutError`` (one with text), or a class of :data:`_TRANSPORT_BASES`."""
    if isinstance(err, ConnectionError) or (
        isinstance(err, TimeoutError) and not _is_deadline(err)
    ):
        return True
    return any((_module_root(cls), cls.__name__) in _TRANSPORT_BASES for cls in type(err).__mro__)


def typed_failure(chain: Iterable[BaseException]) -> str | None:
    """``"transport"`` or ``"deadline"`` (a bare ``TimeoutError``, as ``asyncio.timeout``
    raises it), whichever the chain reaches first from the outside; ``None`` for neither.
    The SDKs' own read timeouts wrap such a bare ``TimeoutError`` of anyio's: the transport
    error around it decides."""
    for link in chain:
        if _is_transport(link):
            return "transport"
        if _is_deadline(link):
            return "deadline"
    return None


def _attr(obj: object, name: str) -> Any:
    # httpx raises RuntimeError, not AttributeError, for an unset `.request`.
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def read_provider_facts(chain: Iterable[BaseException]) -> ProviderFacts:
    """Status, detail, Retry-After and body signals of the first provider error in the chain: an
    exception with an HTTP ``status_code`` or a ``body`` (the SDKs' ``APIStatusError`` and
    in-stream ``APIError``, our ``ProviderError``, ``httpx.HTTPStatusError``)."""
    host = ""
    for link in chain:
        response = _attr(link, "response")
        request = _attr(link, "request") or _attr(response, "request")
        host = host or str(_attr(_attr(request, "url"), "host") or "").lower()
        status = _attr(link, "status_code")
        if not isinstance(status, int):
            status = _attr(response, "status_code")
        body = _attr(link, "body")
        if not isinstance(status, int) or isinstance(status, bool) or status < 400:
            status = 0
        if not status and body is None:
            continue
        detail, signals = _body_message(body)
        if not detail:
            fallback = _attr(link, "message")
            detail = fallback.strip() if isinstance(fallback, str) else ""
        headers = _attr(response, "headers") or _attr(link, "headers")
        return ProviderFacts(
            status_code=status,
            detail=detail,
            retry_after=_retry_after(headers),
            signals=" ".join(signals).lower(),
            host=host,
            from_library=is_library_error(link),
        )
    return ProviderFacts(host=host)


def _body_message(body: object) -> tuple[str, list[str]]:
    """The human-readable message of an error body and its machine-readable type/code strings.

    Understands ``{"error": {"message", "type", "code"}}`` (OpenAI, Anthropic), a top-level
    ``{"message", "type", "code"}`` (in-stream errors) and plain text, also inside a
    ``METHOD "URL": 400 ...`` wrapper.
    """
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        text = body.strip()
        try:
            body = json.loads(text)
        except ValueError:
            return _unwrap_transport_message(text), [text] if text else []
    if not isinstance(body, Mapping):
        return "", []
    error = body.get("error")
    if isinstance(error, str):
        return error.strip(), []
    fields = error if isinstance(error, Mapping) else body
    details = fields.get("details")
    values = [fields.get("type"), fields.get("code")]
    if isinstance(details, Mapping):
        values.append(details.get("error_code"))
    signals = [str(v) for v in values if isinstance(v, (str, int)) and not isinstance(v, bool)]
    message = fields.get("message")
    return (_unwrap_transport_message(message.strip()) if isinstance(message, str) else ""), signals


def _unwrap_transport_message(message: str) -> str:
    if not _TRANSPORT_WRAPPER.match(message) or "{" not in message:
        return message
    inner, _ = _body_message(message[message.index("{") :])
    return inner or message


def _retry_after(headers: object) -> float | None:
    """Seconds from ``retry-after-ms`` (preferred) or ``retry-after`` (seconds or an HTTP date);
    ``None`` when absent, invalid or not in the future."""
    items = _attr(headers, "items")
    if not callable(items):
        return None
    values = {str(k).lower(): str(v).strip() for k, v in items()}
    try:
        millis = float(values.get("retry-after-ms", ""))
    except ValueError:
        millis = 0.0
    if millis > 0 and math.isfinite(millis):
        return millis / 1000
    value = values.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            retry_at = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if retry_at.tzinfo is None:
            retry_at = retry_at.replace(tzinfo=_dt.timezone.utc)
        seconds = (retry_at - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
    return seconds if seconds > 0 and math.isfinite(seconds) else None
