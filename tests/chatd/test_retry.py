"""Retrying transient provider errors (docs/loop.md#retries): the tables of upstream
Coder's ``chatretry_test.go``. Async cases run their own loop with ``asyncio.run`` and a recording
``sleep``, so no test waits on a clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from coderchat_ext.chatd.errors import (
    Classification,
    ClassifiedError,
    classify,
    status_code_retryable,
)
from coderchat_ext.chatd.retry import MAX_ATTEMPTS, delay, is_retryable, retry
from coderchat_ext.providers.base import ProviderError


class RecordingSleep:
    """A ``sleep`` that returns at once and remembers the delays it was asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def failing(*errors: BaseException) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """A call that raises ``errors`` one by one, then returns "ok"; and its call counter."""
    calls = [0]

    async def fn() -> str:
        calls[0] += 1
        if calls[0] <= len(errors):
            raise errors[calls[0] - 1]
        return "ok"

    return fn, calls


@pytest.mark.parametrize(
    ("err", "retryable"),
    [
        pytest.param(None, False, id="none"),
        pytest.param(
            RuntimeError("received status 429 from upstream"), True, id="retryable_status"
        ),
        pytest.param(RuntimeError("service unavailable"), True, id="retryable_timeout"),
        pytest.param(RuntimeError("invalid api key"), False, id="non_retryable_auth"),
        pytest.param(RuntimeError("boom"), False, id="non_retryable_generic"),
    ],
)
def test_is_retryable_delegates_to_classification(
    err: BaseException | None, retryable: bool
) -> None:
    assert is_retryable(err) is retryable
    classified = classify(err)
    assert (classified is not None and classified.error.retryable) is retryable


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (529, True),
        (200, False),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
    ],
)
def test_status_code_retryable(code: int, retryable: bool) -> None:
    assert status_code_retryable(code) is retryable


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [
        (0, 1.0),
        (1, 2.0),
        (2, 4.0),
        (3, 8.0),
        (4, 16.0),
        (5, 32.0),
        (6, 60.0),
        (10, 60.0),
        (100, 60.0),
    ],
)
def test_delay(attempt: int, seconds: float) -> None:
    assert delay(attempt) == seconds


def test_retry_success_on_first_try() -> None:
    fn, calls = failing()
    sleep = RecordingSleep()

    assert asyncio.run(retry(fn, sleep=sleep)) == "ok"
    assert (calls[0], sleep.delays) == (1, [])


def test_retry_transient_then_success() -> None:
    fn, calls = failing(RuntimeError("service unavailable"))
    sleep = RecordingSleep()

    assert asyncio.run(retry(fn, sleep=sleep)) == "ok"
    assert (calls[0], sleep.delays) == (2, [1.0])


def test_retry_multiple_transient_then_success() -> None:
    fn, calls = failing(*(RuntimeError("overloaded") for _ in range(3)))
    sleep = RecordingSleep()

    assert asyncio.run(retry(fn, sleep=sleep)) == "ok"
    assert (calls[0], sleep.delays) == (4, [1.0, 2.0, 4.0])


def test_retry_non_retryable_error() -> None:
    original = RuntimeError("invalid api key")
    fn, calls = failing(original)
    sleep = RecordingSleep()

    with pytest.raises(ClassifiedError) as raised:
        asyncio.run(retry(fn, sleep=sleep))

    assert str(raised.value) == "invalid api key"
    assert raised.value.__cause__ is original
    assert raised.value.classification == classify(RuntimeError("invalid api key"))
    assert classify(raised.value) == classify(original)
    assert (calls[0], sleep.delays) == (1, [])


def test_retry_gives_up_after_max_attempts() -> None:
    errors = [RuntimeError("overloaded") for _ in range(MAX_ATTEMPTS)]
    fn, calls = failing(*errors)
    sleep = RecordingSleep()
    retries: list[int] = []

    def on_retry(attempt: int, err: BaseException, c: Classification, seconds: float) -> None:
        retries.append(attempt)

    with pytest.raises(ClassifiedError) as raised:
        asyncio.run(retry(fn, sleep=sleep, on_retry=on_retry))

    assert str(raised.value) == "max retry attempts (25) exceeded: overloaded"
    assert raised.value.__cause__ is errors[-1]
    assert raised.value.classification == classify(errors[-1])
    assert raised.value.error.kind == "overloaded"
    assert calls[0] == MAX_ATTEMPTS
    assert retries == list(range(1, MAX_ATTEMPTS))
    assert sleep.delays == [delay(n) for n in range(MAX_ATTEMPTS - 1)]
    assert sleep.delays[:8] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_retry_honours_max_attempts() -> None:
    fn, calls = failing(*(RuntimeError("overloaded") for _ in range(5)))

    with pytest.raises(ClassifiedError, match=r"^max retry attempts \(3\) exceeded: overloaded$"):
        asyncio.run(retry(fn, sleep=RecordingSleep(), max_attempts=3))
    assert calls[0] == 3


def test_retry_cancelled_during_wait() -> None:
    async def scenario() -> int:
        fn, calls = failing(RuntimeError("overloaded"))
        waiting = asyncio.Event()

        async def sleep_forever(seconds: float) -> None:
            waiting.set()
            await asyncio.Event().wait()

        task = asyncio.create_task(retry(fn, sleep=sleep_forever))
        await waiting.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return calls[0]

    assert asyncio.run(scenario()) == 1


def test_retry_cancelled_during_fn() -> None:
    async def scenario() -> list[int]:
        started = asyncio.Event()
        retries: list[int] = []

        async def fn() -> str:
            started.set()
            await asyncio.Event().wait()
            return "unreachable"

        task = asyncio.create_task(
            retry(fn, sleep=RecordingSleep(), on_retry=lambda a, e, c, d: retries.append(a))
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return retries

    assert asyncio.run(scenario()) == []


def test_retry_cancelled_error_from_fn_propagates_untouched() -> None:
    cancelled = asyncio.CancelledError("stop")
    fn, calls = failing(cancelled)

    with pytest.raises(asyncio.CancelledError) as raised:
        asyncio.run(retry(fn, sleep=RecordingSleep()))

    assert raised.value is cancelled
    assert calls[0] == 1


def test_retry_on_retry_called_with_correct_args() -> None:
    errors = [RuntimeError("received status 429 from upstream") for _ in range(2)]
    fn, _ = failing(*errors)
    records: list[tuple[int, BaseException, Classification, float]] = []

    def on_retry(attempt: int, err: BaseException, c: Classification, seconds: float) -> None:
        records.append((attempt, err, c, seconds))

    assert asyncio.run(retry(fn, sleep=RecordingSleep(), on_retry=on_retry)) == "ok"

    expected = classify(RuntimeError("received status 429 from upstream"))
    assert records == [
        (1, errors[0], expected, delay(0)),
        (2, errors[1], expected, delay(1)),
    ]


def test_retry_on_retry_none_does_not_fail() -> None:
    fn, calls = failing(RuntimeError("overloaded"))

    assert asyncio.run(retry(fn, on_retry=None, sleep=RecordingSleep())) == "ok"
    assert calls[0] == 2


def test_retry_awaits_async_on_retry_before_sleeping() -> None:
    fn, _ = failing(RuntimeError("overloaded"), RuntimeError("overloaded"))
    events: list[str] = []

    async def on_retry(attempt: int, err: BaseException, c: Classification, seconds: float) -> None:
        await asyncio.sleep(0)
        events.append(f"retry {attempt}")

    async def sleep(seconds: float) -> None:
        events.append(f"sleep {seconds:g}")

    assert asyncio.run(retry(fn, on_retry=on_retry, sleep=sleep)) == "ok"
    assert events == ["retry 1", "sleep 1", "retry 2", "sleep 2"]


def test_retry_applies_the_model_provider() -> None:
    fn, _ = failing(
        RuntimeError("received status 429 from upstream"), RuntimeError("invalid api key")
    )
    seen: list[Classification] = []

    with pytest.raises(ClassifiedError) as raised:
        asyncio.run(
            retry(
                fn,
                sleep=RecordingSleep(),
                provider="anthropic",
                on_retry=lambda a, e, c, d: seen.append(c),
            )
        )

    assert [c.error.message for c in seen] == ["Anthropic is rate limiting requests."]
    assert raised.value.error.provider == "anthropic"
    assert raised.value.error.message == (
        "Authentication with Anthropic failed. Check the API key and permissions."
    )


def test_retry_ignores_retry_after_for_the_delay() -> None:
    limited = ProviderError("slow down", status_code=429, headers={"Retry-After": "30"})
    fn, _ = failing(limited)
    sleep = RecordingSleep()
    seen: list[Classification] = []

    asyncio.run(retry(fn, sleep=sleep, on_retry=lambda a, e, c, d: seen.append(c)))

    assert [c.retry_after for c in seen] == [30.0]
    assert sleep.delays == [1.0]
