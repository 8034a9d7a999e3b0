"""One wire fault, one classification: every SDK adapter, fed the same fault by the fake
provider server, fails with the same user-facing error (kind, retryable, status code, message,
provider), whether the error is classified as the adapter raised it or wrapped in another error
(``raise ... from``, or raised while handling it). Nothing here reads an SDK's exception text,
so the table holds for every SDK release the adapters support
(docs/loop.md#error-classification)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from coderchat_ext.chatd.errors import PROVIDER_DISPLAY_NAMES, classify
from coderchat_ext.models import ChatErrorKind
from coderchat_ext.providers.anthropic import AnthropicModel
from coderchat_ext.providers.base import Model
from coderchat_ext.providers.fake import FakeProviderServer
from coderchat_ext.providers.openai_chat import OpenAIChatModel
from coderchat_ext.providers.openai_responses import OpenAIResponsesModel

from .streams import collect, user_request

READ_TIMEOUT = 0.5
"""Seconds of silence the adapters accept here, so a stall becomes a read timeout."""

ADAPTERS: dict[str, Callable[[FakeProviderServer], Model]] = {
    "anthropic": lambda fake: AnthropicModel(
        "claude-sonnet-5-5", api_key="sk-ant-test", base_url=fake.url, read_timeout=READ_TIMEOUT
    ),
    "openai": lambda fake: OpenAIResponsesModel(
        "gpt-6.2-sol", api_key="sk-test", base_url=fake.openai_base_url, read_timeout=READ_TIMEOUT
    ),
    "openai-compat": lambda fake: OpenAIChatModel(
        "llama3.2", base_url=fake.openai_base_url, read_timeout=READ_TIMEOUT
    ),
}

# (turn for the fake server, kind, status code, message with {p} for the provider's name);
# every fault here is transient, so every one is retryable.
FAULTS: dict[str, tuple[dict[str, Any], ChatErrorKind, int | None, str]] = {
    "429": ({"status": 429, "retry_after": 2}, "rate_limit", 429, "{p} is rate limiting requests."),
    "500": ({"status": 500}, "generic", 500, "{p} returned an unexpected error."),
    # One wording on every wire: OpenAI's own 503 body says "overloaded", and that word is the
    # provider's to choose (docs/loop.md#error-classification reads it).
    "503": (
        {"status": 503, "error": {"message": "Service Unavailable"}},
        "timeout",
        503,
        "{p} is temporarily unavailable.",
    ),
    "529": ({"status": 529}, "overloaded", 529, "{p} is temporarily overloaded."),
    "stall_before_headers": (
        {"text": "late", "stall_headers": 30},
        "timeout",
        None,
        "{p} is temporarily unavailable.",
    ),
    "stall_before_first_event": (
        {"text": "late", "stall": 30},
        "timeout",
        None,
        "{p} is temporarily unavailable.",
    ),
    "drop_mid_stream": (
        {"text": "cut off half way", "chunk_size": 4, "drop_after": 2},
        "timeout",
        None,
        "{p} is temporarily unavailable.",
    ),
    "drop_before_first_chunk": (
        {"text": "never sent", "drop_after": 0},
        "timeout",
        None,
        "{p} is temporarily unavailable.",
    ),
}


def wrapped_by_cause(err: BaseException) -> BaseException:
    try:
        raise RuntimeError("model stream failed") from err
    except RuntimeError as wrapper:
        return wrapper


def wrapped_by_context(err: BaseException) -> BaseException:
    try:
        try:
            raise err
        except BaseException:
            # Linked through __context__ only, as a failing cleanup would be.
            raise RuntimeError("cleanup after the stream failed")  # noqa: B904
    except RuntimeError as wrapper:
        return wrapper


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("provider", list(ADAPTERS))
def test_a_wire_fault_classifies_alike_on_every_adapter_raised_or_wrapped(
    fake: FakeProviderServer, provider: str, fault: str
) -> None:
    turn, kind, status_code, message = FAULTS[fault]
    fake.push(turn)

    collected = collect(ADAPTERS[provider](fake), user_request())

    assert collected.finish is None
    err = collected.error
    assert err is not None
    want = (kind, True, status_code, message.format(p=PROVIDER_DISPLAY_NAMES[provider]), provider)
    for shape in (err, wrapped_by_cause(err), wrapped_by_context(err)):
        classified = classify(shape, provider=provider)
        got = classified.error
        assert (got.kind, got.retryable, got.status_code, got.message, got.provider) == want
        assert classified.retry_after == (2.0 if status_code == 429 else None)
