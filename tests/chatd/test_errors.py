"""Error classification (docs/loop.md#error-classification): the tables of upstream Coder's
``classify_test.go``, their Python counterparts, and the errors the real anthropic and openai SDKs
raise for the recorded provider responses of ``acceptance/fixtures``."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import importlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from coderchat_ext.chatd.errors import (
    PROVIDER_TRANSPORT_RESET,
    Classification,
    ClassifiedError,
    classify,
    redact_secrets,
    retry_message,
    with_provider,
)
from coderchat_ext.models import ChatError
from coderchat_ext.providers.base import ProviderError

UNAVAILABLE = "The AI provider is temporarily unavailable."
CONFIG = (
    "The AI provider rejected the model configuration. "
    "Check the selected model and provider settings."
)
AUTH = "Authentication with the AI provider failed. Check the API key and permissions."
FAILED = "The chat request failed unexpectedly."
CANCELED = "The request was canceled before it completed."


def caused(err: BaseException, cause: BaseException) -> BaseException:
    """``err`` as if raised with ``raise err from cause``."""
    err.__cause__ = cause
    return err


def in_context(err: BaseException) -> BaseException:
    """A ``RuntimeError`` raised while handling ``err`` (linked by ``__context__`` only)."""
    wrapper = RuntimeError("cleanup failed")
    wrapper.__context__ = err
    return wrapper


SDK_TEXT = "(the SDK's own words, which change between releases: not asserted)"


def must_classify(err: BaseException | str) -> Classification:
    c = classify(err)
    assert c is not None
    return c


def disabled(name: str) -> str:
    return f'provider_disabled: AI provider "{name}" is disabled'


@pytest.mark.parametrize(
    ("err", "want"),
    [
        pytest.param(
            "status 529 from upstream",
            ChatError(
                message="The AI provider is temporarily overloaded.",
                detail="status 529 from upstream",
                kind="overloaded",
                retryable=True,
                status_code=529,
            ),
            id="ambiguous_overload_keeps_provider_unknown",
        ),
        pytest.param(
            "anthropic overloaded_error",
            ChatError(
                message="Anthropic is temporarily overloaded.",
                detail="anthropic overloaded_error",
                kind="overloaded",
                provider="anthropic",
                retryable=True,
            ),
            id="explicit_anthropic_overload",
        ),
        pytest.param(
            caused(RuntimeError("anthropic stream closed before message_stop"), EOFError()),
            ChatError(
                message="Anthropic stream closed unexpectedly before the response completed.",
                kind="timeout",
                provider="anthropic",
                retryable=True,
            ),
            id="anthropic_missing_message_stop",
        ),
        pytest.param(
            "openai responses stream closed before terminal event: EOF",
            ChatError(
                message="OpenAI stream closed unexpectedly before the response completed.",
                kind="timeout",
                provider="openai",
                retryable=True,
            ),
            id="openai_responses_missing_terminal_event",
        ),
        pytest.param(
            "authentication failed: invalid model",
            ChatError(message=AUTH, kind="auth"),
            id="auth_beats_config",
        ),
        pytest.param(
            "invalid model",
            ChatError(message=CONFIG, detail="invalid model", kind="config"),
            id="pure_config",
        ),
        pytest.param(
            "forbidden", ChatError(message=AUTH, kind="auth"), id="bare_forbidden_is_auth"
        ),
        pytest.param(
            "status 401 from upstream",
            ChatError(message=AUTH, kind="auth", status_code=401),
            id="status_401_is_auth",
        ),
        pytest.param(
            "status 403 from upstream",
            ChatError(message=AUTH, kind="auth", status_code=403),
            id="status_403_is_auth",
        ),
        pytest.param(
            "forbidden: context length exceeded",
            ChatError(message=CONFIG, detail="forbidden: context length exceeded", kind="config"),
            id="forbidden_context_length_is_config",
        ),
        pytest.param(
            "status 429 from upstream",
            ChatError(
                message="The AI provider is rate limiting requests.",
                detail="status 429 from upstream",
                kind="rate_limit",
                retryable=True,
                status_code=429,
            ),
            id="status_429_is_rate_limit",
        ),
        pytest.param(
            "status 429: invalid model",
            ChatError(
                message=CONFIG, detail="status 429: invalid model", kind="config", status_code=429
            ),
            id="rate_limit_does_not_beat_config",
        ),
        pytest.param(
            "status 429: invalid model quota",
            ChatError(
                message=CONFIG,
                detail="status 429: invalid model quota",
                kind="config",
                status_code=429,
            ),
            id="usage_limit_pattern_does_not_beat_config_with_429",
        ),
        pytest.param(
            "service unavailable",
            ChatError(
                message=UNAVAILABLE, detail="service unavailable", kind="timeout", retryable=True
            ),
            id="service_unavailable_is_retryable_timeout",
        ),
        pytest.param(
            "status 503: invalid model",
            ChatError(
                message=CONFIG, detail="status 503: invalid model", kind="config", status_code=503
            ),
            id="timeout_does_not_beat_config_via_status_code",
        ),
        pytest.param(
            "service unavailable: model not found",
            ChatError(message=CONFIG, detail="service unavailable: model not found", kind="config"),
            id="timeout_does_not_beat_config_via_message",
        ),
        pytest.param(
            "connection refused: unsupported model",
            ChatError(
                message=CONFIG, detail="connection refused: unsupported model", kind="config"
            ),
            id="connection_refused_unsupported_model_is_config",
        ),
        pytest.param(
            TimeoutError(),
            ChatError(message="The request timed out before it completed.", kind="timeout"),
            id="deadline_exceeded_stays_non_retryable_timeout",
        ),
        pytest.param(
            "context deadline exceeded",
            ChatError(
                message="The request timed out before it completed.",
                detail="context deadline exceeded",
                kind="timeout",
            ),
            id="deadline_exceeded_text_stays_non_retryable_timeout",
        ),
        pytest.param(
            caused(RuntimeError(PROVIDER_TRANSPORT_RESET), asyncio.CancelledError()),
            ChatError(
                message=UNAVAILABLE,
                detail="provider transport reset",
                kind="timeout",
                retryable=True,
            ),
            id="provider_transport_reset_is_retryable",
        ),
        pytest.param(
            asyncio.CancelledError(),
            ChatError(message=CANCELED, kind="generic"),
            id="bare_cancelled_stays_non_retryable",
        ),
        pytest.param(
            caused(RuntimeError("received status 500 from upstream"), asyncio.CancelledError()),
            ChatError(
                message="The AI provider returned an unexpected error.",
                detail="received status 500 from upstream",
                kind="generic",
                retryable=True,
                status_code=500,
            ),
            id="status_500_wrapping_cancelled_is_retryable",
        ),
        pytest.param(
            caused(
                RuntimeError("provider stream closed"),
                ProviderError("context canceled", status_code=500),
            ),
            ChatError(
                message="The AI provider returned an unexpected error.",
                detail="context canceled",
                kind="generic",
                retryable=True,
                status_code=500,
            ),
            id="provider_status_500_cancelled_is_retryable",
        ),
        pytest.param(
            ProviderError(disabled("openai") + "\n", status_code=503),
            ChatError(
                message=(
                    "The OpenAI provider has been disabled. "
                    "Contact your Jupyter server administrator."
                ),
                detail=disabled("openai"),
                kind="provider_disabled",
                provider="openai",
                status_code=503,
            ),
            id="provider_disabled_503",
        ),
        pytest.param(
            ProviderError(disabled("mycustomprovider") + "\n", status_code=503),
            ChatError(
                message=(
                    "The AI provider has been disabled. Contact your Jupyter server administrator."
                ),
                detail=disabled("mycustomprovider"),
                kind="provider_disabled",
                status_code=503,
            ),
            id="provider_disabled_503_unknown_provider",
        ),
        pytest.param(
            disabled("anthropic"),
            ChatError(
                message=(
                    "The Anthropic provider has been disabled. "
                    "Contact your Jupyter server administrator."
                ),
                detail=disabled("anthropic"),
                kind="provider_disabled",
                provider="anthropic",
            ),
            id="provider_disabled_plain_error_string",
        ),
        pytest.param(
            ProviderError(disabled("google") + "\n", status_code=503),
            ChatError(
                message=(
                    "The Google provider has been disabled. "
                    "Contact your Jupyter server administrator."
                ),
                detail=disabled("google"),
                kind="provider_disabled",
                provider="google",
                status_code=503,
            ),
            id="provider_disabled_beats_timeout_503",
        ),
        pytest.param(
            ProviderError("service unavailable", status_code=503),
            ChatError(
                message=UNAVAILABLE,
                detail="service unavailable",
                kind="timeout",
                retryable=True,
                status_code=503,
            ),
            id="generic_503_still_classifies_as_timeout",
        ),
    ],
)
def test_classify(err: BaseException | str, want: ChatError) -> None:
    assert must_classify(err).error == want


def test_classify_none_is_none() -> None:
    assert classify(None) is None


@pytest.mark.parametrize(
    ("err", "body", "want_detail", "forbidden"),
    [
        pytest.param(
            "No Tool Output Found For Function Call call_sensitive123",
            '{"error":{"message":"No tool output found for function call call_sensitive123"}}',
            "OpenAI Responses API request continuity diagnostic: "
            "match=function_call_output_missing.",
            ["call_sensitive123"],
            id="function_call_output_missing",
        ),
        pytest.param(
            "Item 'ws_sensitive123' of type 'web_search_call' WAS PROVIDED WITHOUT ITS REQUIRED "
            "'reasoning' item: 'rs_sensitive123'",
            '{"error":{"message":"Item \'ws_sensitive123\' of type \'web_search_call\' was '
            "provided without its required 'reasoning' item: 'rs_sensitive123'\"}}",
            "OpenAI Responses API request continuity diagnostic: "
            "match=web_search_reasoning_missing.",
            ["ws_sensitive123", "rs_sensitive123"],
            id="web_search_reasoning_missing",
        ),
    ],
)
@pytest.mark.parametrize("shape", ["bare_string", "wrapped_provider_error"])
def test_classify_openai_responses_api_diagnostics(
    err: str, body: str, want_detail: str, forbidden: list[str], shape: str
) -> None:
    if shape == "bare_string":
        c, want_status = must_classify(err), None
    else:
        wrapped = caused(
            RuntimeError("provider request failed"), ProviderError("", status_code=400, body=body)
        )
        c, want_status = must_classify(wrapped), 400

    assert (c.error.kind, c.error.retryable, c.error.status_code) == (
        "generic",
        False,
        want_status,
    )
    assert c.error.message == (
        "The chat continuation failed due to an internal state mismatch. "
        "This is not a configuration or billing issue."
    )
    assert c.error.detail == want_detail
    for value in forbidden:
        assert value not in c.error.message
        assert value not in (c.error.detail or "")


@pytest.mark.parametrize(
    ("err", "kind", "retryable"),
    [
        ("overloaded", "overloaded", True),
        ("rate limit", "rate_limit", True),
        ("rate_limit", "rate_limit", True),
        ("rate limited", "rate_limit", True),
        ("rate-limited", "rate_limit", True),
        ("too many requests", "rate_limit", True),
        ("timeout", "timeout", True),
        ("timed out", "timeout", True),
        ("service unavailable", "timeout", True),
        ("unavailable", "timeout", True),
        ("connection reset", "timeout", True),
        ("connection refused", "timeout", True),
        ("eof", "timeout", True),
        ("broken pipe", "timeout", True),
        ("bad gateway", "timeout", True),
        ("gateway timeout", "timeout", True),
        ("client conn", "timeout", True),
        ("goaway", "timeout", True),
        ("http2: stream closed", "timeout", True),
        ("use of closed network connection", "timeout", True),
        ("internal_error; received from peer", "timeout", True),
        ("refused_stream; received from peer", "timeout", True),
        ("cancel; received from peer", "timeout", True),
        ("enhance_your_calm; received from peer", "timeout", True),
        ("no_error; received from peer", "timeout", True),
        ("authentication", "auth", False),
        ("unauthorized", "auth", False),
        ("invalid api key", "auth", False),
        ("invalid_api_key", "auth", False),
        ("quota", "usage_limit", False),
        ("billing", "usage_limit", False),
        ("insufficient_quota", "usage_limit", False),
        ("payment required", "usage_limit", False),
        ("forbidden", "auth", False),
        ("invalid model", "config", False),
        ("model not found", "config", False),
        ("model_not_found", "config", False),
        ("unsupported model", "config", False),
        ("context length exceeded", "config", False),
        ("context_exceeded", "config", False),
        ("maximum context length", "config", False),
        ("Your input exceeds the context window of this model.", "config", False),
        ("code: context_length_exceeded", "config", False),
        ("prompt is too long: 210000 tokens > 200000 maximum", "config", False),
        ("malformed config", "config", False),
        ("malformed configuration", "config", False),
        ("server error", "generic", True),
        ("internal server error", "generic", True),
        ("chat interrupted", "generic", False),
        ("request interrupted", "generic", False),
        ("operation interrupted", "generic", False),
        ("status 408", "timeout", True),
        ("status 500", "generic", True),
        ("provider_disabled", "provider_disabled", False),
        ("boom", "generic", False),
    ],
)
def test_classify_pattern_coverage(err: str, kind: str, retryable: bool) -> None:
    c = must_classify(err)
    assert (c.error.kind, c.error.retryable) == (kind, retryable)


@pytest.mark.parametrize(
    "err", ["timeout", "eof", "broken pipe", "connection reset", "connection refused"]
)
def test_classify_transport_failures_use_broader_retry_message(err: str) -> None:
    c = must_classify(err)
    assert (c.error.kind, c.error.retryable, c.error.message) == ("timeout", True, UNAVAILABLE)


@pytest.mark.parametrize(
    "err",
    [
        "http2: client connection force closed via ClientConn.Close",
        "http2: Transport received Server's graceful shutdown GOAWAY",
        "http2: server sent GOAWAY and closed the connection",
        "http2: stream closed",
        "stream error: stream ID 455; INTERNAL_ERROR; received from peer",
        'Post "https://example.com/v1/messages": use of closed network connection',
        "http2: client conn is closed",
        "http2: client conn not usable",
        "http2: client conn could not be established",
        "http2: client connection lost",
        # The same failures as httpx and httpcore word them.
        "Server disconnected without sending a response.",
        "peer closed connection without sending complete message body (incomplete chunked read)",
        "<ConnectionTerminated error_code:0, last_stream_id:1, additional_data:None>",
    ],
)
def test_classify_http2_transport_errors_without_provider(err: str) -> None:
    c = must_classify(err)
    assert (c.error.kind, c.error.retryable, c.error.provider, c.error.message) == (
        "timeout",
        True,
        None,
        UNAVAILABLE,
    )


@pytest.mark.parametrize(
    ("err", "provider", "message"),
    [
        (
            'stream response: Post "https://api.anthropic.com/v1/messages": '
            "http2: client connection force closed via ClientConn.Close",
            "anthropic",
            "Anthropic is temporarily unavailable.",
        ),
        (
            'stream response: Post "https://api.openai.com/v1/chat/completions": '
            "http2: client connection force closed via ClientConn.Close",
            "openai",
            "OpenAI is temporarily unavailable.",
        ),
        (
            'stream response: Post "https://api.anthropic.com/v1/messages": '
            "stream error: stream ID 455; INTERNAL_ERROR; received from peer",
            "anthropic",
            "Anthropic is temporarily unavailable.",
        ),
        (
            'stream response: Post "https://generativelanguage.googleapis.com/v1beta/models/'
            'gemini-pro:streamGenerateContent": '
            "http2: server sent GOAWAY and closed the connection",
            "google",
            "Google is temporarily unavailable.",
        ),
    ],
)
def test_classify_http2_transport_errors_stamp_provider_from_host(
    err: str, provider: str, message: str
) -> None:
    c = must_classify(err)
    assert (c.error.kind, c.error.retryable, c.error.provider, c.error.message) == (
        "timeout",
        True,
        provider,
        message,
    )
    assert c.error.detail is None  # raw text holding a URL never becomes the detail


def stream_reset(code: str, remote: str | None = "True", stream_id: int = 455) -> Exception:
    """What httpcore raises for an h2 RST_STREAM (``str()`` of the ``StreamReset`` event)."""
    suffix = f", remote_reset:{remote}" if remote else ""
    return httpx.RemoteProtocolError(
        f"<StreamReset stream_id:{stream_id}, error_code:{code}{suffix}>"
    )


@pytest.mark.parametrize(
    ("err", "retryable"),
    [
        pytest.param(stream_reset("2"), True, id="peer_internal"),
        pytest.param(stream_reset("7"), True, id="peer_refused_stream"),
        pytest.param(stream_reset("8"), True, id="peer_cancel"),
        pytest.param(stream_reset("11"), True, id="peer_enhance_your_calm"),
        pytest.param(stream_reset("0"), True, id="peer_no_error"),
        pytest.param(stream_reset("ErrorCodes.INTERNAL_ERROR"), True, id="peer_internal_by_name"),
        pytest.param(stream_reset("2", remote=None), True, id="peer_internal_old_h2"),
        pytest.param(stream_reset("8", remote="False"), False, id="local_cancel"),
        pytest.param(stream_reset("2", remote="False"), False, id="local_internal"),
        pytest.param(stream_reset("1"), False, id="peer_protocol"),
        pytest.param(stream_reset("3"), False, id="peer_flow_control"),
        pytest.param(stream_reset("6"), False, id="peer_frame_size"),
        pytest.param(stream_reset("ErrorCodes.COMPRESSION_ERROR"), False, id="peer_compression"),
    ],
)
def test_classify_http2_stream_reset_values(err: Exception, retryable: bool) -> None:
    c = must_classify(err)
    if retryable:
        assert (c.error.kind, c.error.retryable, c.error.message) == ("timeout", True, UNAVAILABLE)
        assert c.error.detail == str(err)
    else:
        assert (c.error.kind, c.error.retryable, c.error.message) == ("generic", False, FAILED)


@pytest.mark.parametrize(
    ("err", "want"),
    [
        pytest.param(
            stream_reset("2", stream_id=401),
            ChatError(
                message=UNAVAILABLE,
                detail="<StreamReset stream_id:401, error_code:2, remote_reset:True>",
                kind="timeout",
                retryable=True,
            ),
            id="retryable_internal_with_auth_like_stream_id",
        ),
        pytest.param(
            stream_reset("1", stream_id=503),
            ChatError(
                message=FAILED,
                detail="<StreamReset stream_id:503, error_code:1, remote_reset:True>",
                kind="generic",
            ),
            id="non_retryable_protocol_with_timeout_like_stream_id",
        ),
        pytest.param(
            "stream error: stream ID 401; INTERNAL_ERROR; received from peer",
            ChatError(
                message=UNAVAILABLE,
                detail="stream error: stream ID 401; INTERNAL_ERROR; received from peer",
                kind="timeout",
                retryable=True,
            ),
            id="string_internal_with_auth_like_stream_id",
        ),
        pytest.param(
            "stream error: stream ID 503; PROTOCOL_ERROR; received from peer",
            ChatError(
                message=FAILED,
                detail="stream error: stream ID 503; PROTOCOL_ERROR; received from peer",
                kind="generic",
            ),
            id="string_protocol_with_timeout_like_stream_id",
        ),
    ],
)
def test_classify_http2_stream_id_does_not_become_status_code(
    err: BaseException | str, want: ChatError
) -> None:
    assert must_classify(err).error == want


def test_classify_status_code_beats_typed_http2_stream_error() -> None:
    err = caused(RuntimeError("provider returned status 401"), stream_reset("2"))
    assert must_classify(err).error == ChatError(message=AUTH, kind="auth", status_code=401)


@pytest.mark.parametrize(
    ("err", "status_code"),
    [
        pytest.param("dial tcp 10.0.0.7:503: connection refused", None, id="port_is_not_status"),
        pytest.param("proxy 10.0.0.7:429 answered 503", 503, id="later_standalone_code"),
        pytest.param("upstream said HTTP 502", 502, id="http_prefix"),
        pytest.param("status code=408", 408, id="status_code_equals"),
    ],
)
def test_classify_status_code_from_text(err: str, status_code: int | None) -> None:
    assert must_classify(err).error.status_code == status_code


@pytest.mark.parametrize(
    ("err", "kind", "status_code", "provider"),
    [
        pytest.param("unauthorized: insufficient_quota", "usage_limit", None, None, id="quota"),
        pytest.param("unauthorized", "auth", None, None, id="pure_auth_still_works"),
        pytest.param("status 401", "auth", 401, None, id="status_401_still_auth"),
        pytest.param(
            'stream response: received error while streaming: {"type":"insufficient_quota",'
            '"code":"insufficient_quota","message":"You exceeded your current quota, please check '
            "your plan and billing details. For more information on this error, read the docs: "
            'https://platform.openai.com/docs/guides/error-codes/api-errors.","param":null}',
            "usage_limit",
            None,
            "openai",
            id="openai_insufficient_quota_real_world",
        ),
    ],
)
def test_classify_usage_limit_beats_auth(
    err: str, kind: str, status_code: int | None, provider: str | None
) -> None:
    c = must_classify(err)
    assert (c.error.kind, c.error.retryable, c.error.status_code, c.error.provider) == (
        kind,
        False,
        status_code,
        provider,
    )


def test_classify_usage_limit_matches_structured_detail() -> None:
    err = ProviderError(
        "upstream failed",
        status_code=500,
        body='{"error":{"message":"check your billing plan"}}',
    )
    c = must_classify(err)
    assert (c.error.kind, c.error.retryable, c.error.status_code, c.error.detail) == (
        "usage_limit",
        False,
        500,
        "check your billing plan",
    )


@pytest.mark.parametrize(
    "err",
    [
        pytest.param("status 429: insufficient_quota", id="status_text"),
        pytest.param(
            ProviderError(
                "upstream failed",
                status_code=429,
                body={"error": {"message": "insufficient_quota"}},
            ),
            id="structured_provider_error",
        ),
        pytest.param(
            ProviderError(
                "upstream failed",
                status_code=429,
                body={"error": {"message": "You exceeded it.", "code": "insufficient_quota"}},
            ),
            id="structured_error_code",
        ),
    ],
)
def test_classify_insufficient_quota_beats_429_rate_limit(err: BaseException | str) -> None:
    c = must_classify(err)
    assert (c.error.kind, c.error.retryable, c.error.status_code) == ("usage_limit", False, 429)


@pytest.mark.parametrize(
    ("err", "provider"),
    [
        pytest.param(
            "gemini status 429: Resource has been exhausted (e.g. check quota).",
            "google",
            id="google_gemini_quota_text",
        ),
        pytest.param(
            "azure openai exceeded token rate limit; quota remaining: 0; status 429",
            "azure",
            id="azure_openai_quota_remaining",
        ),
        pytest.param(
            "status 429: rate limited: upgrade your billing plan for higher rate limits",
            None,
            id="billing_plan_rate_limit",
        ),
        pytest.param(
            ProviderError("Resource has been exhausted (e.g. check quota).", status_code=429),
            None,
            id="structured_provider_quota_text",
        ),
    ],
)
def test_classify_usage_limit_patterns_do_not_beat_429(
    err: BaseException | str, provider: str | None
) -> None:
    c = must_classify(err)
    assert (c.error.kind, c.error.retryable, c.error.status_code, c.error.provider) == (
        "rate_limit",
        True,
        429,
        provider,
    )


@pytest.mark.parametrize(
    ("err", "kind", "retryable", "status_code"),
    [
        ("http2: server error 429 Too Many Requests", "rate_limit", True, 429),
        ("http2: 401 unauthorized", "auth", False, 401),
        ("http2: client conn is closed: status 429 Too Many Requests", "rate_limit", True, 429),
        ("http2: server sent GOAWAY: status 401 unauthorized", "auth", False, 401),
    ],
)
def test_classify_status_code_beats_http2_transport(
    err: str, kind: str, retryable: bool, status_code: int
) -> None:
    c = must_classify(err)
    assert (c.error.kind, c.error.retryable, c.error.status_code) == (kind, retryable, status_code)


def test_classify_pre_attached_classification_wins() -> None:
    attached = ClassifiedError(
        "context canceled",
        ChatError(message="", kind="startup_timeout", provider="openai", retryable=True),
    )
    wrapped = caused(RuntimeError("invalid api key"), attached)

    assert str(attached) == "context canceled"
    assert must_classify(wrapped).error == ChatError(
        message="OpenAI did not start responding in time.",
        kind="startup_timeout",
        provider="openai",
        retryable=True,
    )


def test_classify_missing_key_pre_classified() -> None:
    err = ClassifiedError(
        "AI Gateway routing requires the active turn API key ID",
        ChatError(
            message="",
            kind="missing_key",
            detail="If this error persists after resending, please report it as a bug.",
        ),
    )
    assert must_classify(err).error == ChatError(
        message="This conversation was started with an API key that is no longer available. "
        "Send your message again to continue.",
        detail="If this error persists after resending, please report it as a bug.",
        kind="missing_key",
    )


def test_with_provider_uses_explicit_hint() -> None:
    c = must_classify("openai received status 429 from upstream")
    assert c.error.provider == "openai"

    assert with_provider(c, "azure openai").error == ChatError(
        message="Azure OpenAI is rate limiting requests.",
        detail="openai received status 429 from upstream",
        kind="rate_limit",
        provider="azure",
        retryable=True,
        status_code=429,
    )


def test_with_provider_adds_provider_when_unknown() -> None:
    c = must_classify("received status 429 from upstream")
    assert c.error.provider is None

    assert with_provider(c, "openai").error == ChatError(
        message="OpenAI is rate limiting requests.",
        detail="received status 429 from upstream",
        kind="rate_limit",
        provider="openai",
        retryable=True,
        status_code=429,
    )
    assert classify("received status 429 from upstream", provider="openai") == with_provider(
        c, "openai"
    )


def test_with_provider_preserves_retry_after() -> None:
    c = must_classify(ProviderError("", status_code=429, headers={"Retry-After": "30"}))

    assert with_provider(c, "openai") == Classification(
        ChatError(
            message="OpenAI is rate limiting requests.",
            kind="rate_limit",
            provider="openai",
            retryable=True,
            status_code=429,
        ),
        retry_after=30.0,
    )


@pytest.mark.parametrize(
    ("err", "provider", "message"),
    [
        pytest.param(asyncio.CancelledError(), "anthropic", CANCELED, id="canceled"),
        pytest.param(
            "No tool output found for function call call_1",
            "openai",
            "The chat continuation failed due to an internal state mismatch. "
            "This is not a configuration or billing issue.",
            id="continuity_diagnostic",
        ),
        pytest.param(
            "anthropic stream closed before message_stop",
            "bedrock",
            "AWS Bedrock stream closed unexpectedly before the response completed.",
            id="stream_closed_names_the_new_provider",
        ),
        pytest.param(
            "status 401",
            "scripted",
            "Authentication with Scripted model failed. Check the API key and permissions.",
            id="our_scripted_provider",
        ),
    ],
)
def test_with_provider_keeps_special_messages(
    err: BaseException | str, provider: str, message: str
) -> None:
    assert must_classify(err).error.provider != provider
    assert with_provider(must_classify(err), provider).error.message == message


def test_classify_uses_structured_provider_status_and_retry_after() -> None:
    c = must_classify(ProviderError("", status_code=429, headers={"Retry-After": "30"}))
    assert c == Classification(
        ChatError(
            message="The AI provider is rate limiting requests.",
            kind="rate_limit",
            retryable=True,
            status_code=429,
        ),
        retry_after=30.0,
    )


def test_classify_prefers_retry_after_ms_over_retry_after() -> None:
    err = ProviderError(
        "upstream failed", status_code=429, headers={"Retry-After": "30", "ReTrY-AfTeR-Ms": "1500"}
    )
    c = must_classify(err)
    assert (c.error.status_code, c.retry_after) == (429, 1.5)


def test_classify_parses_retry_after_http_date() -> None:
    # An HTTP date has whole seconds: round up so the parsed delay is never below 2 s.
    now = dt.datetime.now(dt.timezone.utc)
    target = now.replace(microsecond=0) + dt.timedelta(seconds=4)
    header = email.utils.format_datetime(target, usegmt=True)
    c = must_classify(
        ProviderError("upstream failed", status_code=429, headers={"Retry-After": header})
    )
    assert c.error.status_code == 429
    assert c.retry_after is not None
    assert 2.0 <= c.retry_after <= 4.0


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "definitely not a delay"},
        {"Retry-After": "0"},
        {"Retry-After": "-5"},
        {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
        {"retry-after-ms": "soon", "Retry-After": "nope"},
    ],
)
def test_classify_ignores_invalid_retry_after(headers: dict[str, str]) -> None:
    c = must_classify(ProviderError("upstream failed", status_code=429, headers=headers))
    assert (c.error.kind, c.retry_after) == ("rate_limit", None)


def test_classify_uses_structured_provider_detail_from_response_body() -> None:
    body = '{"error":{"type":"invalid_request_error","message":"Image exceeds 5 MB maximum."}}'
    assert must_classify(ProviderError("", status_code=400, body=body)).error == ChatError(
        message="The AI provider returned an unexpected error.",
        detail="Image exceeds 5 MB maximum.",
        kind="generic",
        status_code=400,
    )


def test_classify_auth_keeps_structured_provider_detail() -> None:
    err = ProviderError(
        "invalid api key test-key",
        status_code=401,
        body={"error": {"message": "Incorrect API key provided."}},
    )
    assert must_classify(err).error == ChatError(
        message=AUTH, detail="Incorrect API key provided.", kind="auth", status_code=401
    )


def test_classify_falls_back_to_provider_message_for_detail() -> None:
    err = ProviderError("  image exceeds 5 MB maximum  ", status_code=400, body={"unrelated": 1})
    assert must_classify(err).error.detail == "image exceeds 5 MB maximum"


def test_classify_unwraps_transport_wrapped_provider_message() -> None:
    body = (
        'POST "https://bedrock-runtime.us-east-1.amazonaws.com/model/x/invoke": 400 Bad Request '
        '{"message":"The provided model identifier is invalid."}'
    )
    err = ProviderError("bedrock request failed", status_code=400, body=body)
    c = must_classify(err)
    assert (c.error.detail, c.error.provider) == (
        "The provided model identifier is invalid.",
        "bedrock",
    )


def test_classify_truncates_provider_detail() -> None:
    body = json.dumps({"error": {"message": "x" * 510}})
    detail = must_classify(ProviderError("", status_code=400, body=body)).error.detail
    assert detail is not None
    assert len(detail) == 500
    assert detail.endswith("…")


@pytest.mark.parametrize(
    ("err", "retryable", "provider", "status_code"),
    [
        pytest.param(
            "Previous response with id 'resp_abc' not found.",
            True,
            "openai",
            None,
            id="bare_string",
        ),
        pytest.param(
            ProviderError(
                "Previous response with id "
                "'resp_096c70c5bb8d52bc0069fa11e0630c81a3ba210cddfa75bae9' not found.",
                status_code=404,
            ),
            True,
            "openai",
            404,
            id="provider_error",
        ),
        pytest.param(
            ProviderError("PREVIOUS RESPONSE WITH ID 'resp_abc' NOT FOUND.", status_code=404),
            True,
            "openai",
            404,
            id="case_insensitive",
        ),
        pytest.param(
            ProviderError("Previous response with id 'resp_abc' is invalid.", status_code=400),
            False,
            None,
            400,
            id="previous_response_without_not_found_is_not_chain_broken",
        ),
        pytest.param(
            ProviderError("resource not found", status_code=404),
            False,
            None,
            404,
            id="unrelated_not_found_is_not_chain_broken",
        ),
    ],
)
def test_classify_chain_broken(
    err: BaseException | str, retryable: bool, provider: str | None, status_code: int | None
) -> None:
    c = must_classify(err)
    assert (c.error.kind, c.error.retryable, c.error.provider, c.error.status_code) == (
        "generic",
        retryable,
        provider,
        status_code,
    )


@pytest.mark.parametrize(
    ("err", "kind", "retryable", "message"),
    [
        pytest.param(asyncio.CancelledError(), "generic", False, CANCELED, id="cancelled"),
        pytest.param(
            TimeoutError(),
            "timeout",
            False,
            "The request timed out before it completed.",
            id="bare_timeout_error_is_a_deadline",
        ),
        pytest.param(TimeoutError("timed out"), "timeout", True, UNAVAILABLE, id="socket_timeout"),
        pytest.param(
            ConnectionResetError(104, "Connection reset by peer"),
            "timeout",
            True,
            UNAVAILABLE,
            id="connection_reset",
        ),
        pytest.param(
            BrokenPipeError(32, "Broken pipe"), "timeout", True, UNAVAILABLE, id="broken_pipe"
        ),
        pytest.param(
            httpx.ReadTimeout("The read operation timed out"),
            "timeout",
            True,
            UNAVAILABLE,
            id="httpx_read_timeout",
        ),
        pytest.param(
            httpx.ConnectError("[Errno 111] Connection refused"),
            "timeout",
            True,
            UNAVAILABLE,
            id="httpx_connect_error",
        ),
        pytest.param(RuntimeError("boom"), "generic", False, FAILED, id="anything_else"),
        pytest.param(RuntimeError(), "generic", False, FAILED, id="no_text"),
    ],
)
def test_classify_python_exceptions(
    err: BaseException, kind: str, retryable: bool, message: str
) -> None:
    c = must_classify(err)
    assert (c.error.kind, c.error.retryable, c.error.message) == (kind, retryable, message)


def test_classify_treats_an_asyncio_deadline_as_not_retryable() -> None:
    async def wait_past_deadline() -> BaseException:
        try:
            await asyncio.wait_for(asyncio.Event().wait(), timeout=0)
        except asyncio.TimeoutError as err:
            return err
        raise AssertionError("wait_for did not time out")

    err = asyncio.run(wait_past_deadline())
    c = must_classify(caused(RuntimeError("model call failed"), err))
    assert (c.error.kind, c.error.retryable, c.error.message) == (
        "timeout",
        False,
        "The request timed out before it completed.",
    )


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            ChatError(message="", kind="auth", provider="anthropic"),
            "Authentication with Anthropic failed.",
        ),
        (
            ChatError(message="", kind="config", provider="openai"),
            "OpenAI rejected the model configuration.",
        ),
        (
            ChatError(message="", kind="usage_limit"),
            "The usage quota for the AI provider has been exceeded.",
        ),
        (
            ChatError(message="", kind="provider_disabled", provider="google"),
            "The Google provider has been disabled by an administrator.",
        ),
        (
            ChatError(message="", kind="missing_key"),
            "The API key for this conversation is no longer available.",
        ),
        (
            ChatError(message="", kind="timeout", status_code=None),
            UNAVAILABLE,
        ),
        (
            ChatError(message="", kind="generic", provider="demo"),
            "Offline demo model returned an unexpected error.",
        ),
        (
            ChatError(
                message="Anthropic is rate limiting requests.", kind="rate_limit", retryable=True
            ),
            "Anthropic is rate limiting requests.",
        ),
    ],
)
def test_retry_message_drops_remediation(error: ChatError, message: str) -> None:
    assert retry_message(Classification(error)) == message


# Recorded provider responses (acceptance/fixtures, see their SOURCES.md), served to the real SDKs.
ANTHROPIC_429 = {
    "type": "error",
    "error": {
        "type": "rate_limit_error",
        "message": "This request would exceed your organization's rate limit of 20,000,000 "
        "prompt bytes per hour (org: 5576611f-a1ee-427c-9800-298d9579899c, model: "
        "claude-sonnet-4-5-20250929). For details, refer to: "
        "https://docs.claude.com/en/api/rate-limits. You can see the response headers for "
        "current usage. Please reduce the prompt length or the maximum tokens requested, or try "
        "again later. You may also contact sales at https://www.anthropic.com/contact-sales to "
        "discuss your options for a rate limit increase.",
    },
    "request_id": "req_011CYK5n67SytMUxm8WMZUWY",
}
ANTHROPIC_529 = {
    "type": "error",
    "error": {"details": None, "type": "overloaded_error", "message": "Overloaded"},
}
OPENAI_400_CONTEXT = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 8227 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
OPENAI_429_QUOTA = {
    "error": {
        "message": QUOTA_MESSAGE,
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}
OPENAI_429_RATE = {
    "error": {
        "message": "Rate limit reached for gpt-4 in organization org-********** on tokens per min "
        "(TPM): Limit 10000, Used 9348, Requested 5086. Please try again in 26.604s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
OPENAI_500 = {
    "error": {
        "message": "The server had an error processing your request. Sorry about that! You can "
        "retry your request, or contact us through our help center at help.openai.com if you keep "
        "seeing this error. (Please include the request ID e5c949c8ec2c86be225544e5eefcbe4d in "
        "your email.)",
        "type": "server_error",
        "param": None,
        "code": None,
    }
}
# anthropic/error_overloaded_midstream.sse, verbatim.
ANTHROPIC_OVERLOADED_MIDSTREAM = b"""event: message_start
data: {"type":"message_start","message":{"model":"claude-haiku-4-5-20251001","id":"msg_016HxyUMAncysqX7dn1kWNRx","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":770,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":8,"service_tier":"standard","inference_geo":"not_available"}}   }

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}           }

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"The weather in San Francisco, CA is"}   }

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" currently"}   }

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":":"}      }

event: error
data: {"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"} }

"""  # noqa: E501
# The `error` event of openai_responses/error_insufficient_quota.sse, where the SDK raises.
OPENAI_RESPONSES_QUOTA_EVENT = (
    b"event: error\ndata: "
    + json.dumps(
        {
            "type": "error",
            "sequence_number": 2,
            "error": {
                "type": "insufficient_quota",
                "code": "insufficient_quota",
                "message": QUOTA_MESSAGE,
                "param": None,
            },
        }
    ).encode()
    + b"\n\n"
)


def sdk_http(sdk: Any) -> Any:
    """The HTTP library ``sdk`` runs on: ``httpx`` for older releases, ``httpx2`` for newer."""
    base = next(c for c in sdk.DefaultHttpxClient.__mro__ if c.__name__ == "Client")
    return importlib.import_module(base.__module__.split(".")[0])


# The anthropic and openai releases installed run on the same HTTP library.
http = sdk_http(openai)
assert sdk_http(anthropic) is http

Handler = Callable[[Any], Any]


def anthropic_error(handler: Handler) -> Exception:
    """The exception the real Anthropic SDK raises when the API answers with ``handler``."""
    client = anthropic.Anthropic(
        api_key="sk-test",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
    request = client.messages.stream(
        model="claude-haiku-4-5-20251001",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
    )
    with pytest.raises(anthropic.AnthropicError) as raised, request as stream:
        for _ in stream:
            pass
    return raised.value


def openai_chat_error(handler: Handler) -> Exception:
    """The exception the real OpenAI SDK raises for a Chat Completions call."""
    client = openai.OpenAI(
        api_key="sk-test",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
    with pytest.raises(openai.OpenAIError) as raised:
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    return raised.value


def openai_responses_error(handler: Handler) -> Exception:
    """The exception the real OpenAI SDK raises while streaming a Responses call."""
    client = openai.OpenAI(
        api_key="sk-test",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
    request = client.responses.stream(model="gpt-5-nano", input="hi")
    with pytest.raises(openai.OpenAIError) as raised, request as stream:
        for _ in stream:
            pass
    return raised.value


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: Any) -> Any:
        if isinstance(body, bytes):
            return http.Response(
                status, content=body, headers={"content-type": "text/event-stream"}
            )
        return http.Response(status, json=body, headers=headers)

    return handler


def fail(exc: Exception) -> Handler:
    def handler(request: Any) -> Any:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("raise_error", "want", "retry_after"),
    [
        pytest.param(
            lambda: anthropic_error(answer(429, ANTHROPIC_429, {"retry-after": "12"})),
            ChatError(
                message="Anthropic is rate limiting requests.",
                detail=ANTHROPIC_429["error"]["message"],  # type: ignore[index]
                kind="rate_limit",
                provider="anthropic",
                retryable=True,
                status_code=429,
            ),
            12.0,
            id="anthropic_429_rate_limit",
        ),
        pytest.param(
            lambda: anthropic_error(answer(529, ANTHROPIC_529)),
            ChatError(
                message="Anthropic is temporarily overloaded.",
                detail="Overloaded",
                kind="overloaded",
                provider="anthropic",
                retryable=True,
                status_code=529,
            ),
            None,
            id="anthropic_529_overloaded",
        ),
        pytest.param(
            lambda: anthropic_error(answer(200, ANTHROPIC_OVERLOADED_MIDSTREAM)),
            ChatError(
                message="Anthropic is temporarily overloaded.",
                detail="Overloaded",
                kind="overloaded",
                provider="anthropic",
                retryable=True,
            ),
            None,
            id="anthropic_overloaded_midstream",
        ),
        pytest.param(
            lambda: openai_chat_error(answer(400, OPENAI_400_CONTEXT)),
            ChatError(
                message="OpenAI rejected the model configuration. "
                "Check the selected model and provider settings.",
                detail=OPENAI_400_CONTEXT["error"]["message"],
                kind="config",
                provider="openai",
                status_code=400,
            ),
            None,
            id="openai_400_context_length_exceeded",
        ),
        pytest.param(
            lambda: openai_chat_error(answer(429, OPENAI_429_QUOTA)),
            ChatError(
                message="The usage quota for OpenAI has been exceeded. "
                "Check the billing and quota settings for the provider account.",
                detail=QUOTA_MESSAGE,
                kind="usage_limit",
                provider="openai",
                status_code=429,
            ),
            None,
            id="openai_429_insufficient_quota",
        ),
        pytest.param(
            lambda: openai_chat_error(
                answer(429, OPENAI_429_RATE, {"retry-after": "30", "retry-after-ms": "26604"})
            ),
            ChatError(
                message="OpenAI is rate limiting requests.",
                detail=OPENAI_429_RATE["error"]["message"],
                kind="rate_limit",
                provider="openai",
                retryable=True,
                status_code=429,
            ),
            26.604,
            id="openai_429_rate_limit_exceeded",
        ),
        pytest.param(
            lambda: openai_chat_error(answer(500, OPENAI_500)),
            ChatError(
                message="OpenAI returned an unexpected error.",
                detail=OPENAI_500["error"]["message"],
                kind="generic",
                provider="openai",
                retryable=True,
                status_code=500,
            ),
            None,
            id="openai_500_server_error",
        ),
        pytest.param(
            lambda: openai_responses_error(answer(200, OPENAI_RESPONSES_QUOTA_EVENT)),
            ChatError(
                message="The usage quota for OpenAI has been exceeded. "
                "Check the billing and quota settings for the provider account.",
                detail=QUOTA_MESSAGE,
                kind="usage_limit",
                provider="openai",
            ),
            None,
            id="openai_responses_insufficient_quota_midstream",
        ),
        pytest.param(
            lambda: openai_chat_error(answer(503, disabled("openai").encode())),
            ChatError(
                message=(
                    "The OpenAI provider has been disabled. "
                    "Contact your Jupyter server administrator."
                ),
                detail=disabled("openai"),
                kind="provider_disabled",
                provider="openai",
                status_code=503,
            ),
            None,
            id="openai_plain_text_provider_disabled",
        ),
        pytest.param(
            lambda: anthropic_error(fail(http.ReadTimeout("The read operation timed out"))),
            ChatError(
                message="Anthropic is temporarily unavailable.",
                detail=SDK_TEXT,
                kind="timeout",
                provider="anthropic",
                retryable=True,
            ),
            None,
            id="anthropic_timeout",
        ),
        pytest.param(
            lambda: openai_chat_error(fail(http.ConnectError("[Errno 111] Connection refused"))),
            ChatError(
                message="OpenAI is temporarily unavailable.",
                detail=SDK_TEXT,
                kind="timeout",
                provider="openai",
                retryable=True,
            ),
            None,
            id="openai_connection_refused",
        ),
        pytest.param(
            lambda: openai_chat_error(
                fail(http.RemoteProtocolError("<StreamReset stream_id:1, error_code:1>"))
            ),
            ChatError(
                message=FAILED,
                detail=SDK_TEXT,
                kind="generic",
                provider="openai",
            ),
            None,
            id="openai_peer_protocol_reset_beats_connection_error",
        ),
    ],
)
def test_classify_real_sdk_errors(
    raise_error: Callable[[], Exception], want: ChatError, retry_after: float | None
) -> None:
    err = raise_error()
    # The chat loop may wrap a provider error (``raise ... from`` or while handling it); the
    # classification stays the same.
    for shape in (err, caused(RuntimeError("model stream failed"), err), in_context(err)):
        c = must_classify(shape)
        assert c.error.model_dump(exclude={"detail"}) == want.model_dump(exclude={"detail"})
        assert c.retry_after == retry_after
        if want.detail != SDK_TEXT and shape is err:
            assert c.error.detail == want.detail


def test_importing_errors_imports_no_provider_sdk() -> None:
    code = (
        "import sys, coderchat_ext.chatd.errors\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'anthropic', 'openai'}))"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo
    ).stdout
    assert out.strip() == "[]"


def test_keys_quoted_in_a_provider_error_are_redacted() -> None:
    body = {"error": {"message": "Incorrect API key provided: sk-proj-abcdef123456789."}}
    err = openai.AuthenticationError(
        "Error code: 401 - Incorrect API key provided: sk-proj-abcdef123456789.",
        response=http.Response(401, request=http.Request("POST", "https://api.openai.com")),
        body=body,
    )
    classified = classify(err, provider="openai").error
    assert "sk-proj" not in str(classified.model_dump())
    assert classified.detail == "Incorrect API key provided: [redacted]."
    assert redact_secrets("Authorization: Bearer abc.def-123456") == "Authorization: [redacted]"
