"""Error classification, a port of Coder's ``chaterror`` (docs/loop.md#error-classification).

:func:`classify` turns any exception, or bare error text, into a :class:`Classification`: the
user-facing :class:`~coderchat_ext.models.ChatError` (``message``, ``detail``, ``kind``,
``provider``, ``retryable``, ``status_code``; docs/stream-protocol.md#event-types) plus the
provider's ``Retry-After`` in seconds. The retry loop (``chatd.retry``) retries what is retryable;
the loop publishes the rest as the ``error`` event and persists it as ``last_error``.

Exceptions of the official ``anthropic`` and ``openai`` SDKs (and our own
``providers.base.ProviderError``) are read by duck typing: ``status_code``, ``body`` (the parsed
JSON error body, or its text), ``response.headers`` (or ``headers``) and ``request.url``. Importing
this module imports neither SDK.

How the Go rules map onto Python:

- A wrapped error is one reached through ``__cause__`` (``raise ... from err``), else
  ``__context__`` (raised while handling it), the analogue of ``%w``; the texts of the chain are
  joined with ``": "`` the way Go prints wrapped errors.
- Only our own errors' text is matched: what an SDK or its HTTP library words into an exception
  changes between releases, so an SDK error counts by its type, its HTTP status and the
  provider's error body.
- ``asyncio.CancelledError`` plays ``context.Canceled``. A ``TimeoutError`` without text (what
  ``asyncio.timeout`` and ``asyncio.wait_for`` raise) plays ``context.DeadlineExceeded``, unless
  a transport error wraps it (anyio's, under an SDK read timeout).
- A transport failure is one by type: the SDKs' ``APIConnectionError`` (``APITimeoutError``
  included), httpx/httpcore/h11 transport errors, the builtin ``ConnectionError`` family and a
  socket ``TimeoutError``, like Go's transport patterns.
- An h2 ``StreamReset`` event, as httpcore raises it inside ``RemoteProtocolError``, plays Go's
  typed ``http2.StreamError``: a peer reset with a transient code is retryable, any other reset is
  not, whatever the surrounding text says.
- A 2xx status (an error event inside a streamed 200 response) counts as no status.
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
from typing import Any, overload

from ..models import ChatError, ChatErrorKind

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

CHAT_INTERRUPTED = "chat interrupted"
"""Error text for a turn the user interrupted: classifies as generic, not retryable."""

PROVIDER_TRANSPORT_RESET = "provider transport reset"
"""Error text for a provider stream cancelled while the chat itself is still alive: classifies as
a retryable timeout unless a status code says otherwise (Go's ``ErrProviderTransportReset``)."""

MAX_DETAIL_RUNES = 500
"""Longest ``detail`` kept; longer ones end with "…" (docs/loop.md#error-classification)."""

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

_INTERRUPTED_PATTERNS = (CHAT_INTERRUPTED, "request interrupted", "operation interrupted")
_OVERLOADED_PATTERNS = ("overloaded",)
_USAGE_LIMIT_PATTERNS = ("quota", "billing", "payment required")
# A hard usage exhaustion code that wins at any status, even 429.
_USAGE_LIMIT_ANY_STATUS_PATTERNS = ("insufficient_quota",)
_AUTH_STRONG_PATTERNS = ("authentication", "unauthorized", "invalid api key", "invalid_api_key")
_AUTH_WEAK_PATTERNS = ("forbidden",)
_RATE_LIMIT_PATTERNS = (
    "rate limit",
    "rate_limit",
    "rate limited",
    "rate-limited",
    "too many requests",
)
_PROVIDER_DISABLED_PATTERNS = ("provider_disabled",)
_TIMEOUT_PATTERNS = (
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
_CONFIG_PATTERNS = (
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
_GENERIC_RETRYABLE_PATTERNS = ("server error", "internal server error")

_CONTINUITY_MESSAGE = (
    "The chat continuation failed due to an internal state mismatch. "
    "This is not a configuration or billing issue."
)
# Fixed details: the provider's text carries item ids that must not reach clients.
_CONTINUITY_DIAGNOSTICS = (
    (
        "no tool output found for function call",
        "OpenAI Responses API request continuity diagnostic: match=function_call_output_missing.",
    ),
    (
        "was provided without its required 'reasoning' item",
        "OpenAI Responses API request continuity diagnostic: match=web_search_reasoning_missing.",
    ),
)
_STREAM_INCOMPLETE = (
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


@dataclass(frozen=True)
class Classification:
    """A classified error: the user-facing ``error`` and the provider's ``retry_after`` in seconds
    (``None`` when the provider gave none). Always normalized: ``message`` is set, ``detail`` is at
    most 500 characters, empty fields are ``None`` (docs/loop.md#error-classification)."""

    error: ChatError
    retry_after: float | None = None


class ClassifiedError(Exception):
    """An error that carries its classification, which :func:`classify` returns as is
    (precedence rule 1 of docs/loop.md#error-classification; Go's ``WithClassification``).

    ``str(exc)`` is ``message``, the original error text. ``error`` is normalized on the way in,
    so an empty ``error.message`` is filled from ``kind`` and ``provider``. ``retry_after`` is in
    seconds.
    """

    def __init__(self, message: str, error: ChatError, retry_after: float | None = None) -> None:
        super().__init__(message)
        normalized = _normalize(Classification(error, retry_after))
        self.error = normalized.error
        self.retry_after = normalized.retry_after

    @property
    def classification(self) -> Classification:
        """The attached classification."""
        return Classification(self.error, self.retry_after)


def status_code_retryable(code: int) -> bool:
    """Whether an HTTP status is transient: 408, 429, 500, 502, 503, 504 and 529 (the legacy
    ``StatusCodeRetryable``, docs/loop.md#retries)."""
    return code in _RETRYABLE_STATUS_CODES


@overload
def classify(err: None, *, provider: str | None = None) -> None: ...
@overload
def classify(err: BaseException | str, *, provider: str | None = None) -> Classification: ...
@overload
def classify(
    err: BaseException | str | None, *, provider: str | None = None
) -> Classification | None: ...
def classify(
    err: BaseException | str | None, *, provider: str | None = None
) -> Classification | None:
    """Classify ``err`` (an exception, or error text) by the precedence of
    docs/loop.md#error-classification.

    1. a :class:`ClassifiedError` in the ``__cause__`` chain wins;
    2. interrupted → generic, not retryable, "The request was canceled before it completed.";
    3. OpenAI Responses continuity errors → generic, not retryable, a fixed detail;
    4. a stream closed before its terminal event → timeout, retryable;
    5. "previous response with id … not found" → generic, retryable;
    6. the rule table: overloaded, usage_limit, auth, rate_limit, provider_disabled, timeout,
       config, retryable generic (config beats rate_limit, timeout and weak auth);
    7. a cancellation → generic, not retryable;
    8. anything else → generic, not retryable, "The chat request failed unexpectedly."

    ``provider`` (a provider kind such as ``"anthropic"``) is applied with :func:`with_provider`.
    Returns ``None`` only for ``None``; never raises.
    """
    if err is None:
        return None
    classified = _classify(err)
    return with_provider(classified, provider) if provider else classified


def with_provider(c: Classification, provider: str) -> Classification:
    """``c`` with an explicit provider, trusted over the one guessed from the error text
    (Go's ``WithProvider``, docs/loop.md#error-classification).

    A message derived from the provider is recomputed for the new one ("OpenAI is rate limiting
    requests." → "Azure OpenAI is rate limiting requests.", likewise the stream-closed message);
    any other (the continuity diagnostic, "The request was canceled before it completed.") is
    kept, where Go would replace it by the kind's standard message. ``retry_after`` is kept.
    """
    c = _normalize(c)
    hint = _normalize_provider(provider)
    old = c.error
    if not hint or old.provider == hint:
        return c
    message = old.message
    if message == _terminal_message(old.kind, old.provider, old.retryable, old.status_code):
        message = ""
    elif message == _stream_incomplete_message(old.provider):
        message = _stream_incomplete_message(hint)
    updated = old.model_copy(update={"provider": hint, "message": message})
    return _normalize(Classification(updated, c.retry_after))


def retry_message(c: Classification) -> str:
    """The short text of a ``retry`` event: the message without remediation advice, e.g.
    "Authentication with Anthropic failed." (docs/loop.md#error-classification). A retryable error
    keeps its message."""
    e = c.error
    if e.retryable and e.message:
        return e.message
    template = _RETRY_TEMPLATES.get(e.kind, "{subject} returned an unexpected error.")
    return _format(template, e.provider)


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


def _terminal_message(
    kind: ChatErrorKind, provider: str | None, retryable: bool, status_code: int | None
) -> str:
    if kind in ("timeout", "generic") and not retryable and not status_code:
        if kind == "timeout":
            return "The request timed out before it completed."
        return "The chat request failed unexpectedly."
    template = _TERMINAL_TEMPLATES.get(kind, "{subject} returned an unexpected error.")
    return _format(template, provider)


def _stream_incomplete_message(provider: str | None) -> str:
    return _format("{subject} stream closed unexpectedly before the response completed.", provider)


def _format(template: str, provider: str | None) -> str:
    """``template`` with ``{subject}`` ("Anthropic", else "the AI provider") and ``{name}``
    ("Anthropic", else "AI"), capitalized at the start."""
    known = PROVIDER_DISPLAY_NAMES.get(provider or "")
    text = template.format(subject=known or "the AI provider", name=known or "AI")
    return text[:1].upper() + text[1:]


def _normalize_provider(provider: str | None) -> str:
    normalized = (provider or "").strip().lower()
    return _PROVIDER_ALIASES.get(normalized, normalized)


def _normalize(c: Classification) -> Classification:
    e = c.error
    provider = _normalize_provider(e.provider) or None
    status_code = e.status_code or None
    detail = _truncate_detail(redact_secrets(e.detail or "")) or None
    message = redact_secrets(e.message.strip()) or _terminal_message(
        e.kind, provider, e.retryable, status_code
    )
    retry_after = c.retry_after if c.retry_after is not None and c.retry_after > 0 else None
    return Classification(
        ChatError(
            message=message,
            detail=detail,
            kind=e.kind,
            provider=provider,
            retryable=e.retryable,
            status_code=status_code,
        ),
        retry_after,
    )


def _build(
    kind: ChatErrorKind,
    provider: str,
    facts: _ProviderFacts,
    status_code: int,
    *,
    retryable: bool = False,
    message: str = "",
    detail: str = "",
) -> Classification:
    error = ChatError(
        message=message,
        detail=detail,
        kind=kind,
        provider=provider,
        retryable=retryable,
        status_code=status_code,
    )
    return _normalize(Classification(error, facts.retry_after))


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


def _fallback_detail(structured: str, message: str) -> str:
    """The structured provider detail, else the raw error text unless it holds a URL."""
    if structured.strip():
        return structured
    if "://" in message:
        return ""
    return " ".join(message.split())


@dataclass(frozen=True)
class _ProviderFacts:
    """What a provider error object says besides its text."""

    status_code: int = 0
    detail: str = ""
    retry_after: float | None = None
    # The body's error type and code (or its text when it is not JSON): matched like the text.
    signals: str = ""
    host: str = ""
    # Read from an SDK exception, whose text is not read (see _classify).
    from_library: bool = False


def _classify(err: BaseException | str) -> Classification:
    chain = _cause_chain(err) if isinstance(err, BaseException) else []
    for link in chain:
        if isinstance(link, ClassifiedError):
            return _normalize(link.classification)

    facts = _provider_facts(chain)
    if isinstance(err, str):
        message = own = err.strip()
    else:
        message = _chain_text(chain)
        # What an SDK or HTTP library renders into its exception text changes between releases,
        # so only our own errors' text is read; the provider's body stands in for the SDK's
        # rendering of it.
        own = _chain_text(link for link in chain if not _is_library_error(link))
        if facts.from_library and facts.detail:
            own = f"{own}\n{facts.detail}" if own else facts.detail
    lower = own.lower()
    text = f"{lower}\n{facts.signals}" if facts.signals else lower
    status = facts.status_code or _status_from_text(lower)
    provider = _detect_provider(f"{text}\n{facts.host}")

    canceled_message = "The request was canceled before it completed."
    if _contains_any(text, _INTERRUPTED_PATTERNS):
        return _build(
            "generic", provider, facts, status, message=canceled_message, detail=facts.detail
        )
    lower_detail = facts.detail.lower()
    for pattern, diagnostic in _CONTINUITY_DIAGNOSTICS:
        if pattern in text or pattern in lower_detail:
            return _build(
                "generic", provider, facts, status, message=_CONTINUITY_MESSAGE, detail=diagnostic
            )
    for pattern, stream_provider in _STREAM_INCOMPLETE:
        if pattern in text:
            return _build(
                "timeout",
                provider or stream_provider,
                facts,
                status,
                retryable=True,
                message=_stream_incomplete_message(provider or stream_provider),
                detail=facts.detail,
            )
    if "previous response with id" in text and "not found" in text:
        # Only OpenAI has been seen to lose a previous_response_id.
        return _build(
            "generic", provider or "openai", facts, status, retryable=True, detail=facts.detail
        )

    # httpcore renders h2's StreamReset event into its exception text: the nearest thing to
    # Go's typed http2.StreamError there is.
    h2_reset_retryable = _h2_stream_reset(
        " ".join(str(link) for link in chain).lower() if chain else lower
    )
    failure = _typed_failure(chain)
    deadline = "context deadline exceeded" in text or failure == "deadline"
    transport = failure == "transport" or _contains_any(text, _TIMEOUT_PATTERNS)
    if h2_reset_retryable is False:
        # The reset code is the better witness: protocol bugs must not retry.
        transport = False
    usage_text = f"{text}\n{lower_detail}"
    config = _contains_any(text, _CONFIG_PATTERNS)
    timeout = (
        (PROVIDER_TRANSPORT_RESET in text and not status)
        or deadline
        or status in (408, 502, 503, 504)
        or bool(h2_reset_retryable)
        or transport
    )
    rules: tuple[tuple[bool, ChatErrorKind, bool], ...] = (
        (status == 529 or _contains_any(text, _OVERLOADED_PATTERNS), "overloaded", True),
        (
            _contains_any(usage_text, _USAGE_LIMIT_ANY_STATUS_PATTERNS)
            or (status != 429 and _contains_any(usage_text, _USAGE_LIMIT_PATTERNS)),
            "usage_limit",
            False,
        ),
        (status == 401 or _contains_any(text, _AUTH_STRONG_PATTERNS), "auth", False),
        (
            (status == 403 or _contains_any(text, _AUTH_WEAK_PATTERNS)) and not config,
            "auth",
            False,
        ),
        (
            (status == 429 or _contains_any(text, _RATE_LIMIT_PATTERNS)) and not config,
            "rate_limit",
            True,
        ),
        (_contains_any(text, _PROVIDER_DISABLED_PATTERNS), "provider_disabled", False),
        (timeout and not config, "timeout", not deadline),
        (config, "config", False),
        (status == 500 or _contains_any(text, _GENERIC_RETRYABLE_PATTERNS), "generic", True),
    )
    for matched, kind, retryable in rules:
        if matched:
            # Raw error text can echo credentials, so auth keeps only the provider's own words.
            detail = facts.detail if kind == "auth" else _fallback_detail(facts.detail, message)
            return _build(kind, provider, facts, status, retryable=retryable, detail=detail)

    if any(isinstance(e, asyncio.CancelledError) for e in chain):
        return _build(
            "generic", provider, facts, status, message=canceled_message, detail=facts.detail
        )
    return _build(
        "generic", provider, facts, status, detail=_fallback_detail(facts.detail, message)
    )


def _cause_chain(err: BaseException) -> list[BaseException]:
    """``err`` and what it wraps, outermost first: ``__cause__`` (``raise ... from``), else
    ``__context__`` (raised while handling it) unless suppressed, as tracebacks print them."""
    chain: list[BaseException] = []
    link: BaseException | None = err
    while link is not None and all(link is not seen for seen in chain):
        chain.append(link)
        link = link.__cause__ if link.__suppress_context__ else link.__context__
    return chain


def _chain_text(chain: Iterable[BaseException]) -> str:
    parts: list[str] = []
    for link in chain:
        text = str(link).strip()
        # `raise X(f"...: {err}") from err` already carries the cause's text.
        if text and not any(text in part for part in parts):
            parts.append(text)
        if _is_wire_error(link):
            # Below the first transport error lie its library's internals (h11 states, anyio
            # cancel scopes), not news for a reader.
            break
    return ": ".join(parts)


def _contains_any(text: str, patterns: Iterable[str]) -> bool:
    return any(pattern in text for pattern in patterns)


def _detect_provider(lower: str) -> str:
    for provider, patterns in _PROVIDER_HINTS:
        if _contains_any(lower, patterns):
            return provider
    return ""


def _status_from_text(lower: str) -> int:
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


def _h2_stream_reset(lower: str) -> bool | None:
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


def _is_library_error(err: BaseException) -> bool:
    """Raised by a provider SDK or the HTTP stack under it (whose wording is theirs)."""
    return _module_root(type(err)) in _SDK_MODULES | _WIRE_MODULES


def _is_wire_error(err: BaseException) -> bool:
    return _module_root(type(err)) in _WIRE_MODULES or isinstance(err, OSError)


def _is_transport(err: BaseException) -> bool:
    """A connection, protocol or read failure, by type: the builtin ``ConnectionError`` family,
    a socket ``TimeoutError`` (one with text), or a class of :data:`_TRANSPORT_BASES`."""
    if isinstance(err, ConnectionError) or (
        isinstance(err, TimeoutError) and not _is_deadline(err)
    ):
        return True
    return any((_module_root(cls), cls.__name__) in _TRANSPORT_BASES for cls in type(err).__mro__)


def _typed_failure(chain: Iterable[BaseException]) -> str | None:
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


def _provider_facts(chain: Iterable[BaseException]) -> _ProviderFacts:
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
        return _ProviderFacts(
            status_code=status,
            detail=detail,
            retry_after=_retry_after(headers),
            signals=" ".join(signals).lower(),
            host=host,
            from_library=_is_library_error(link),
        )
    return _ProviderFacts(host=host)


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
