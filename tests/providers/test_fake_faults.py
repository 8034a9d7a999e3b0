"""Fault injection of the fake provider server, seen through the real SDKs: HTTP errors with
real error bodies and headers, errors mid-stream, stalls, dropped connections and per-chunk
latency. Each failure is also run through the daemon's classifier
(docs/loop.md#error-classification)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from coderchat_ext.chatd.errors import classify
from coderchat_ext.providers.fake import FakeProviderServer

USER = [{"role": "user", "content": "hello"}]
# The SDKs re-export the Timeout of the HTTP library they run on (httpx or httpx2).
ANTHROPIC_SHORT_READ = anthropic.Timeout(10.0, read=0.5)
OPENAI_SHORT_READ = openai.Timeout(10.0, read=0.5)


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as fake:
        yield fake


def anthropic_client(server: FakeProviderServer, **options: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=server.url, api_key="sk-ant-test", max_retries=0, **options
    )


def openai_client(server: FakeProviderServer, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key="sk-test", max_retries=0, **options
    )


async def anthropic_call(server: FakeProviderServer, **options: Any) -> Any:
    async with (
        anthropic_client(server, **options) as client,
        client.messages.stream(model="m", max_tokens=10, messages=USER) as stream,
    ):
        return await stream.get_final_message()


async def anthropic_events(server: FakeProviderServer, into: list[Any]) -> None:
    """Stream a message, appending its events to ``into`` (kept when the stream fails)."""
    async with (
        anthropic_client(server) as client,
        client.messages.stream(model="m", max_tokens=9, messages=USER) as stream,
    ):
        async for event in stream:
            into.append(event)


async def responses_call(server: FakeProviderServer, **options: Any) -> Any:
    async with (
        openai_client(server, **options) as client,
        client.responses.stream(model="m", input="hello") as stream,
    ):
        return await stream.get_final_response()


async def responses_events(server: FakeProviderServer, into: list[Any]) -> None:
    async with openai_client(server) as client:
        stream = await client.responses.create(model="m", input="x", stream=True)
        async for event in stream:
            into.append(event)


async def chat_chunks(server: FakeProviderServer, into: list[Any]) -> None:
    async with openai_client(server) as client:
        stream = await client.chat.completions.create(
            model="m",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
        )
        async for chunk in stream:
            into.append(chunk)


async def chat_call(server: FakeProviderServer, **options: Any) -> str:
    text = ""
    async with openai_client(server, **options) as client:
        stream = await client.chat.completions.create(
            model="m",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
        )
        async for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
    return text


# --- HTTP status errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "kind", "retryable"),
    [
        (400, "invalid_request_error", "config", False),
        (401, "authentication_error", "auth", False),
        (429, "rate_limit_error", "rate_limit", True),
        (500, "api_error", "generic", True),
        (529, "overloaded_error", "overloaded", True),
    ],
)
async def test_anthropic_status_raises_the_sdks_exception_with_the_real_error_body(
    server: FakeProviderServer, status: int, error_type: str, kind: str, retryable: bool
) -> None:
    server.push({"status": status})

    # Which APIStatusError subclass a status gets varies by release (OverloadedError is new).
    with pytest.raises(anthropic.APIStatusError) as caught:
        await anthropic_call(server)

    error = caught.value
    assert isinstance(error, anthropic.APIStatusError)
    assert error.status_code == status
    assert error.body["type"] == "error"  # type: ignore[index]
    assert error.body["error"]["type"] == error_type  # type: ignore[index]
    assert error.body["request_id"].startswith("req_")  # type: ignore[index]
    assert error.response.headers["request-id"].startswith("req_")
    classified = classify(error).error
    assert (classified.kind, classified.retryable, classified.status_code) == (
        kind,
        retryable,
        status,
    )


async def test_a_429_carries_retry_after_to_the_sdk_and_the_classifier(
    server: FakeProviderServer,
) -> None:
    server.push({"status": 429, "retry_after": 3})

    with pytest.raises(anthropic.RateLimitError) as caught:
        await anthropic_call(server)

    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.response.headers["x-should-retry"] == "true"
    assert classify(caught.value).retry_after == 3


@pytest.mark.parametrize(
    ("status", "exception", "code", "kind", "retryable"),
    [
        (400, openai.BadRequestError, "context_length_exceeded", "config", False),
        (401, openai.AuthenticationError, "invalid_api_key", "auth", False),
        (404, openai.NotFoundError, "model_not_found", "config", False),
        (429, openai.RateLimitError, "rate_limit_exceeded", "rate_limit", True),
        (500, openai.InternalServerError, None, "generic", True),
        (503, openai.InternalServerError, None, "overloaded", True),
    ],
)
@pytest.mark.parametrize("call", [responses_call, chat_call], ids=["responses", "chat"])
async def test_openai_status_raises_the_sdks_exception_with_the_real_error_body(
    server: FakeProviderServer,
    call: Any,
    status: int,
    exception: type[Exception],
    code: str | None,
    kind: str | None,
    retryable: bool,
) -> None:
    server.push({"status": status, "retry_after": "1.5"})

    with pytest.raises(exception) as caught:
        await call(server)

    error = caught.value
    assert isinstance(error, openai.APIStatusError)
    assert error.status_code == status
    assert error.code == code
    assert error.response.headers["retry-after"] == "1.5"
    # OpenAI pretty-prints error bodies.
    assert error.response.text.startswith('{\n  "error": {\n')
    classified = classify(error)
    assert classified.error.retryable == retryable
    if kind is not None:
        assert classified.error.kind == kind
    assert classified.retry_after == 1.5


async def test_context_length_400_bodies_follow_each_wire(server: FakeProviderServer) -> None:
    server.push({"status": 400}, {"status": 400})

    with pytest.raises(openai.BadRequestError) as chat:
        await chat_call(server)
    with pytest.raises(openai.BadRequestError) as responses:
        await responses_call(server)

    assert chat.value.param == "messages"
    assert "maximum context length" in chat.value.message
    assert classify(chat.value).error.kind == "config"
    assert responses.value.param == "input"
    assert "exceeds the context window" in responses.value.message
    assert classify(responses.value).error.kind == "config"


async def test_error_fields_and_whole_bodies_can_be_scripted(server: FakeProviderServer) -> None:
    server.push(
        {
            "status": 429,
            "error": {"type": "insufficient_quota", "code": "insufficient_quota"},
        },
        {"status": 402, "body": {"error": "payment required"}, "headers": {"x-extra": "1"}},
        {"status": 500, "body": "upstream exploded"},
    )

    async with openai_client(server) as client:
        with pytest.raises(openai.RateLimitError) as quota:
            await client.responses.create(model="m", input="x")
        with pytest.raises(openai.APIStatusError) as payment:
            await client.responses.create(model="m", input="x")
        with pytest.raises(openai.InternalServerError) as plain:
            await client.responses.create(model="m", input="x")

    assert quota.value.code == "insufficient_quota"
    assert quota.value.body["message"].startswith("Rate limit reached")  # type: ignore[index]
    assert classify(quota.value).error.kind == "usage_limit"
    assert payment.value.status_code == 402
    # The SDK unwraps the "error" member of a body.
    assert payment.value.body == "payment required"
    assert payment.value.response.json() == {"error": "payment required"}
    assert payment.value.response.headers["x-extra"] == "1"
    assert plain.value.response.text == "upstream exploded"


# --- errors mid-stream ---------------------------------------------------------------------


async def test_anthropic_error_midstream_raises_after_the_first_chunks(
    server: FakeProviderServer,
) -> None:
    server.push({"text": "abcdefghijkl", "chunk_size": 2, "error_midstream": 3})
    events: list[Any] = []

    with pytest.raises(anthropic.APIStatusError) as caught:
        await anthropic_events(server, events)

    assert [e.text for e in events if e.type == "text"] == ["ab", "cd", "ef"]
    assert caught.value.body == {  # type: ignore[comparison-overlap]
        "type": "error",
        "error": {"details": None, "type": "overloaded_error", "message": "Overloaded"},
    }
    classified = classify(caught.value).error
    assert (classified.kind, classified.retryable) == ("overloaded", True)


async def test_error_midstream_true_fails_after_the_text_before_the_tool_calls(
    server: FakeProviderServer,
) -> None:
    server.push(
        {
            "text": "Calling a tool.",
            "tool_calls": [{"name": "t", "arguments": {"x": 1}}],
            "error_midstream": True,
            "error": {"type": "api_error", "message": "Internal server error"},
        }
    )
    events: list[Any] = []

    with pytest.raises(anthropic.APIStatusError) as caught:
        await anthropic_events(server, events)

    assert [e.snapshot for e in events if e.type == "text"][-1] == "Calling a tool."
    assert "input_json" not in [e.type for e in events]
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]


async def test_responses_error_midstream_raises_with_the_error_object(
    server: FakeProviderServer,
) -> None:
    server.push(
        {
            "text": "partial answer",
            "error_midstream": 1,
            "error": {"type": "insufficient_quota", "code": "insufficient_quota"},
        }
    )
    events: list[Any] = []

    with pytest.raises(openai.APIError) as caught:
        await responses_events(server, events)

    assert [e.type for e in events].count("response.output_text.delta") == 1
    assert caught.value.body["code"] == "insufficient_quota"  # type: ignore[index]
    assert classify(caught.value).error.kind == "usage_limit"


async def test_responses_error_midstream_is_followed_by_response_failed(
    server: FakeProviderServer,
) -> None:
    server.push({"text": "partial", "error_midstream": 0})
    body = {"model": "m", "input": "x", "stream": True}

    async with httpx.AsyncClient() as client:
        response = await client.post(server.openai_base_url + "/responses", json=body)

    names = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "error",
        "response.failed",
    ]


async def test_chat_error_midstream_raises_and_sends_no_done(server: FakeProviderServer) -> None:
    server.push({"text": "abcdef", "chunk_size": 2, "error_midstream": 2})
    chunks: list[Any] = []

    with pytest.raises(openai.APIError) as caught:
        await chat_chunks(server, chunks)

    seen = [c.delta.content for chunk in chunks for c in chunk.choices if c.delta.content]
    assert seen == ["ab", "cd"]
    assert caught.value.body == {  # type: ignore[comparison-overlap]
        "message": caught.value.message,
        "type": "server_error",
        "param": None,
        "code": None,
    }


async def test_error_midstream_on_a_non_streaming_request_is_an_http_error(
    server: FakeProviderServer,
) -> None:
    server.push({"text": "x", "error_midstream": True})

    async with anthropic_client(server) as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(model="m", max_tokens=9, messages=USER)

    assert caught.value.status_code == 529


# --- stalls, drops, latency ----------------------------------------------------------------


async def failure(awaitable: Awaitable[Any]) -> BaseException:
    """What ``awaitable`` raises (whichever class the installed SDK release picks for it)."""
    try:
        await awaitable
    except Exception as exc:
        return exc
    raise AssertionError("no error was raised")


async def test_stall_sends_headers_then_holds_the_first_event(server: FakeProviderServer) -> None:
    server.push({"text": "late", "stall": 60})

    async with anthropic_client(server, timeout=ANTHROPIC_SHORT_READ) as client:
        stream = await client.messages.create(model="m", max_tokens=9, messages=USER, stream=True)
        # The SDK returned: the status line and headers arrived despite the stall.
        assert stream.response.status_code == 200
        error = await failure(stream.__anext__())

    classified = classify(error).error
    assert (classified.kind, classified.retryable, classified.status_code) == (
        "timeout",
        True,
        None,
    )


async def test_stall_delays_the_first_event_by_at_least_its_length(
    server: FakeProviderServer,
) -> None:
    server.push({"text": "late", "stall": 0.3})

    started = time.monotonic()
    message = await anthropic_call(server)

    assert time.monotonic() - started >= 0.3
    assert message.content[0].text == "late"


async def test_stall_headers_times_out_the_request_itself(server: FakeProviderServer) -> None:
    server.push({"text": "late", "stall_headers": 60})

    with pytest.raises(openai.APITimeoutError) as caught:
        await chat_call(server, timeout=OPENAI_SHORT_READ)

    classified = classify(caught.value).error
    assert (classified.kind, classified.retryable) == ("timeout", True)


@pytest.mark.parametrize("call", [anthropic_call, responses_call, chat_call])
async def test_drop_after_closes_the_connection_mid_stream(
    server: FakeProviderServer, call: Any
) -> None:
    server.push({"text": "abcdefgh", "chunk_size": 2, "drop_after": 2})

    # Whether an SDK wraps the transport error met while iterating differs between releases.
    error = await failure(call(server))

    classified = classify(error).error
    assert (classified.kind, classified.retryable, classified.status_code) == (
        "timeout",
        True,
        None,
    )
    assert server.pending == 0


async def test_drop_after_past_the_last_chunk_cuts_the_terminal_events(
    server: FakeProviderServer,
) -> None:
    server.push({"text": "abc", "drop_after": 99})
    body = {"model": "m", "max_tokens": 9, "messages": USER, "stream": True}
    pieces: list[bytes] = []

    async def read() -> None:
        async with (
            httpx.AsyncClient() as client,
            client.stream("POST", server.url + "/v1/messages", json=body) as response,
        ):
            async for piece in response.aiter_bytes():
                pieces.append(piece)

    with pytest.raises(httpx.RemoteProtocolError):
        await read()
    received = b"".join(pieces)

    assert b"text_delta" in received
    assert b"content_block_stop" in received
    assert b"message_delta" not in received
    assert b"message_stop" not in received


async def test_drop_after_on_a_non_streaming_request_closes_without_a_response(
    server: FakeProviderServer,
) -> None:
    server.push({"text": "x", "drop_after": 0})

    async with openai_client(server) as client:
        with pytest.raises(openai.APIConnectionError):
            await client.responses.create(model="m", input="x")


async def test_chunk_delay_spaces_the_deltas_as_they_stream(server: FakeProviderServer) -> None:
    delay = 0.1
    server.push({"text": "aaBBccDD", "chunk_size": 2, "chunk_delay": delay})
    arrivals: list[float] = []

    async with (
        anthropic_client(server) as client,
        client.messages.stream(model="m", max_tokens=9, messages=USER) as stream,
    ):
        async for event in stream:
            if event.type == "text":
                arrivals.append(time.monotonic())

    assert len(arrivals) == 4
    # Lower bounds only: each delta waits `delay`, so the four arrive spread over >= 3 delays
    # (less one delay of slack for uneven delivery); a buffered stream would arrive at once.
    assert arrivals[-1] - arrivals[0] >= 2 * delay


async def test_a_client_that_goes_away_during_a_stall_frees_the_server(
    server: FakeProviderServer,
) -> None:
    server.push({"text": "never", "stall": 600}, {"text": "next"})

    error = await failure(chat_call(server, timeout=OPENAI_SHORT_READ))
    assert classify(error).error.kind == "timeout"
    # The stalled handler ends with its connection; the server keeps answering.
    assert await chat_call(server) == "next"
