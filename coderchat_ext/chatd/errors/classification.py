"""Error classification, a port of Coder's ``chaterror`` (docs/loop.md#error-classification).

:func:`classify` turns any exception, or bare error text, into a :class:`Classification`: the
user-facing :class:`~coderchat_ext.models.ChatError` (``message``, ``detail``, ``kind``,
``provider``, ``retryable``, ``status_code``; docs/stream-protocol.md#event-types) plus the
provider's ``Retry-After`` in seconds. The retry loop (``chatd.retry``) retries what is retryable;
the loop publishes the rest as the ``error`` event and persists it as ``last_error``.

This module owns the precedence and the rule table; what providers say (statuses, bodies,
names, patterns) is in :mod:`.provider_facts`, what the user reads in :mod:`.messages`.

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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import overload

from ...models import ChatError, ChatErrorKind
from .messages import (
    CANCELED_MESSAGE,
    CONTINUITY_DIAGNOSTICS,
    CONTINUITY_MESSAGE,
    fallback_detail,
    normalize_error,
    retry_text,
    stream_incomplete_message,
    terminal_message,
)
from .provider_facts import (
    AUTH_STRONG_PATTERNS,
    AUTH_WEAK_PATTERNS,
    CONFIG_PATTERNS,
    GENERIC_RETRYABLE_PATTERNS,
    OVERLOADED_PATTERNS,
    PROVIDER_DISABLED_PATTERNS,
    RATE_LIMIT_PATTERNS,
    STREAM_INCOMPLETE,
    TIMEOUT_PATTERNS,
    USAGE_LIMIT_ANY_STATUS_PATTERNS,
    USAGE_LIMIT_PATTERNS,
    ProviderFacts,
    contains_any,
    detect_provider,
    h2_stream_reset,
    is_library_error,
    is_wire_error,
    normalize_provider,
    read_provider_facts,
    status_from_text,
    typed_failure,
)

CHAT_INTERRUPTED = "chat interrupted"
"""Error text for a turn the user interrupted: classifies as generic, not retryable."""

PROVIDER_TRANSPORT_RESET = "provider transport reset"
"""Error text for a provider stream cancelled while the chat itself is still alive: classifies as
a retryable timeout unless a status code says otherwise (Go's ``ErrProviderTransportReset``)."""

_INTERRUPTED_PATTERNS = (CHAT_INTERRUPTED, "request interrupted", "operation interrupted")


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
    hint = normalize_provider(provider)
    old = c.error
    if not hint or old.provider == hint:
        return c
    message = old.message
    if message == terminal_message(old.kind, old.provider, old.retryable, old.status_code):
        message = ""
    elif message == stream_incomplete_message(old.provider):
        message = stream_incomplete_message(hint)
    updated = old.model_copy(update={"provider": hint, "message": message})
    return _normalize(Classification(updated, c.retry_after))


def retry_message(c: Classification) -> str:
    """The short text of a ``retry`` event: the message without remediation advice, e.g.
    "Authentication with Anthropic failed." (docs/loop.md#error-classification). A retryable error
    keeps its message."""
    return retry_text(c.error)


def _normalize(c: Classification) -> Classification:
    retry_after = c.retry_after if c.retry_after is not None and c.retry_after > 0 else None
    return Classification(normalize_error(c.error), retry_after)


def _build(
    kind: ChatErrorKind,
    provider: str,
    facts: ProviderFacts,
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


def _classify(err: BaseException | str) -> Classification:
    chain = _cause_chain(err) if isinstance(err, BaseException) else []
    for link in chain:
        if isinstance(link, ClassifiedError):
            return _normalize(link.classification)

    facts = read_provider_facts(chain)
    if isinstance(err, str):
        message = own = err.strip()
    else:
        message = _chain_text(chain)
        # What an SDK or HTTP library renders into its exception text changes between releases,
        # so only our own errors' text is read; the provider's body stands in for the SDK's
        # rendering of it.
        own = _chain_text(link for link in chain if not is_library_error(link))
        if facts.from_library and facts.detail:
            own = f"{own}\n{facts.detail}" if own else facts.detail
    lower = own.lower()
    text = f"{lower}\n{facts.signals}" if facts.signals else lower
    status = facts.status_code or status_from_text(lower)
    provider = detect_provider(f"{text}\n{facts.host}")

    if contains_any(text, _INTERRUPTED_PATTERNS):
        return _build(
            "generic", provider, facts, status, message=CANCELED_MESSAGE, detail=facts.detail
        )
    lower_detail = facts.detail.lower()
    for pattern, diagnostic in CONTINUITY_DIAGNOSTICS:
        if pattern in text or pattern in lower_detail:
            return _build(
                "generic", provider, facts, status, message=CONTINUITY_MESSAGE, detail=diagnostic
            )
    for pattern, stream_provider in STREAM_INCOMPLETE:
        if pattern in text:
            return _build(
                "timeout",
                provider or stream_provider,
                facts,
                status,
                retryable=True,
                message=stream_incomplete_message(provider or stream_provider),
                detail=facts.detail,
            )
    if "previous response with id" in text and "not found" in text:
        # Only OpenAI has been seen to lose a previous_response_id.
        return _build(
            "generic", provider or "openai", facts, status, retryable=True, detail=facts.detail
        )

    # httpcore renders h2's StreamReset event into its exception text: the nearest thing to
    # Go's typed http2.StreamError there is.
    h2_reset_retryable = h2_stream_reset(
        " ".join(str(link) for link in chain).lower() if chain else lower
    )
    failure = typed_failure(chain)
    deadline = "context deadline exceeded" in text or failure == "deadline"
    transport = failure == "transport" or contains_any(text, TIMEOUT_PATTERNS)
    if h2_reset_retryable is False:
        # The reset code is the better witness: protocol bugs must not retry.
        transport = False
    usage_text = f"{text}\n{lower_detail}"
    config = contains_any(text, CONFIG_PATTERNS)
    timeout = (
        (PROVIDER_TRANSPORT_RESET in text and not status)
        or deadline
        or status in (408, 502, 503, 504)
        or bool(h2_reset_retryable)
        or transport
    )
    rules: tuple[tuple[bool, ChatErrorKind, bool], ...] = (
        (status == 529 or contains_any(text, OVERLOADED_PATTERNS), "overloaded", True),
        (
            contains_any(usage_text, USAGE_LIMIT_ANY_STATUS_PATTERNS)
            or (status != 429 and contains_any(usage_text, USAGE_LIMIT_PATTERNS)),
            "usage_limit",
            False,
        ),
        (status == 401 or contains_any(text, AUTH_STRONG_PATTERNS), "auth", False),
        (
            (status == 403 or contains_any(text, AUTH_WEAK_PATTERNS)) and not config,
            "auth",
            False,
        ),
        (
            (status == 429 or contains_any(text, RATE_LIMIT_PATTERNS)) and not config,
            "rate_limit",
            True,
        ),
        (contains_any(text, PROVIDER_DISABLED_PATTERNS), "provider_disabled", False),
        (timeout and not config, "timeout", not deadline),
        (config, "config", False),
        (status == 500 or contains_any(text, GENERIC_RETRYABLE_PATTERNS), "generic", True),
    )
    for matched, kind, retryable in rules:
        if matched:
            # Raw error text can echo credentials, so auth keeps only the provider's own words.
            detail = facts.detail if kind == "auth" else fallback_detail(facts.detail, message)
            return _build(kind, provider, facts, status, retryable=retryable, detail=detail)

    if any(isinstance(e, asyncio.CancelledError) for e in chain):
        return _build(
            "generic", provider, facts, status, message=CANCELED_MESSAGE, detail=facts.detail
        )
    return _build("generic", provider, facts, status, detail=fallback_detail(facts.detail, message))


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
        if is_wire_error(link):
            # Below the first transport error lie its library's internals (h11 states, anyio
            # cancel scopes), not news for a reader.
            break
    return ": ".join(parts)
