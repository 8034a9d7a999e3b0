"""Retrying transient provider errors, a port of Coder's ``chatretry`` (docs/loop.md#retries).

Only errors that :func:`~coderchat_ext.chatd.errors.classify` calls retryable are retried, with
exponential backoff from :data:`INITIAL_DELAY` doubling up to :data:`MAX_DELAY`, at most
:data:`MAX_ATTEMPTS` calls. Like upstream, the delay ignores the provider's ``Retry-After``
(docs/loop.md#retries); it stays available on the classification.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .errors import Classification, ClassifiedError, classify

# docs/loop.md#retries.
INITIAL_DELAY = 1.0
"""Seconds before the first retry."""
MAX_DELAY = 60.0
"""Upper bound of the backoff, in seconds."""
MAX_ATTEMPTS = 25
"""Calls before giving up (about 25 minutes of retrying at the cap)."""

T = TypeVar("T")

OnRetry = Callable[[int, BaseException, Classification, float], "Awaitable[None] | None"]
"""``on_retry(attempt, err, classification, delay)``: ``attempt`` is 1-based, ``delay`` in
seconds. May be a coroutine function."""


def delay(attempt: int) -> float:
    """The backoff in seconds before retry ``attempt`` (0-based): min(1 s · 2^attempt, 60 s),
    that is 1, 2, 4, 8, 16, 32, 60, 60, … (docs/loop.md#retries)."""
    seconds = INITIAL_DELAY
    for _ in range(attempt):
        seconds *= 2
        if seconds >= MAX_DELAY:
            return MAX_DELAY
    return seconds


def is_retryable(err: BaseException | str | None) -> bool:
    """Whether :func:`~coderchat_ext.chatd.errors.classify` calls ``err`` retryable; ``None`` is
    not."""
    classified = classify(err)
    return classified is not None and classified.error.retryable


async def retry(
    fn: Callable[[], Awaitable[T]],
    *,
    on_retry: OnRetry | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    provider: str | None = None,
) -> T:
    """Await ``fn()`` until it returns, retrying retryable errors (docs/loop.md#retries).

    Before each retry, ``on_retry(attempt, err, classification, delay)`` is called (and awaited
    when it returns an awaitable), then ``sleep(delay)``; cancelling the task cancels the wait.
    ``classification`` carries ``provider`` (see ``errors.with_provider``) when given.

    Returns what ``fn`` returns. Raises :class:`~coderchat_ext.chatd.errors.ClassifiedError`
    with ``__cause__`` set to the last error: for a non-retryable error its text unchanged, after
    ``max_attempts`` failed calls "max retry attempts (25) exceeded: <err>", both with the
    error's classification. ``asyncio.CancelledError`` (and any other ``BaseException`` that is
    not an ``Exception``) propagates untouched.
    """
    attempt = 0
    while True:
        try:
            return await fn()
        except Exception as err:
            classified = classify(err, provider=provider)
            if not classified.error.retryable:
                raise ClassifiedError(str(err), classified.error, classified.retry_after) from err
            attempt += 1
            if attempt >= max_attempts:
                raise ClassifiedError(
                    f"max retry attempts ({max_attempts}) exceeded: {err}",
                    classified.error,
                    classified.retry_after,
                ) from err
            failure = err
        # Outside the except block, so a cancellation here does not carry `failure` as context.
        wait = delay(attempt - 1)
        if on_retry is not None:
            pending = on_retry(attempt, failure, classified, wait)
            if inspect.isawaitable(pending):
                await pending
        await sleep(wait)
