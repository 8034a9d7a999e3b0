"""What the two ``openai`` SDK adapters share: the cached client and in-stream errors."""

from __future__ import annotations

from typing import Any

import openai

from ._common import CLIENTS, CONNECT_TIMEOUT, READ_TIMEOUT
from .base import ProviderError

ERROR_STATUS = {
    "insufficient_quota": 429,
    "rate_limit_exceeded": 429,
    "server_error": 500,
    "context_length_exceeded": 400,
    "invalid_prompt": 400,
    "invalid_api_key": 401,
}
"""The HTTP status OpenAI documents for an error code, given to an error that arrives inside a
200 stream so it classifies like the same error before the stream."""


def client(
    provider: str, base_url: str, api_key: str, read_timeout: float = READ_TIMEOUT
) -> openai.AsyncOpenAI:
    """The cached ``AsyncOpenAI`` for these settings (``read_timeout`` in seconds): no SDK
    retries (the loop retries, docs/loop.md#retries) and an explicit key and base URL, so the
    SDK never falls back to ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` from the environment."""
    return CLIENTS.get(
        provider,
        base_url,
        api_key,
        read_timeout,
        lambda: openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=openai.Timeout(read_timeout, connect=CONNECT_TIMEOUT),
        ),
    )


def error_fields(error: Any) -> dict[str, Any]:
    """``{"type", "code", "message", "param"}`` of an SDK error object or dict."""
    if error is None:
        return {}
    if not isinstance(error, dict):
        error = {k: getattr(error, k, None) for k in ("type", "code", "message", "param")}
    return {k: v for k, v in error.items() if v is not None}


def stream_error(wire: str, error: Any) -> ProviderError:
    """A :class:`ProviderError` for an error reported inside a 200 stream (an ``error`` event or
    chunk, ``response.failed``), with the status documented for its code
    (:data:`ERROR_STATUS`) and the provider's error as the body."""
    fields = error_fields(error)
    code = str(fields.get("code") or fields.get("type") or "error")
    message = str(fields.get("message") or "")
    return ProviderError(
        f"{wire} stream error: {code}: {message}",
        status_code=ERROR_STATUS.get(code) or ERROR_STATUS.get(str(fields.get("type") or "")),
        body={"error": fields},
    )


def in_stream_error(wire: str, exc: Exception) -> ProviderError | None:
    """:func:`stream_error` for an exception the SDK raised for an error inside the stream;
    None for anything else (an HTTP status, a transport failure, our own errors)."""
    if isinstance(exc, openai.APIError) and not isinstance(
        exc, (openai.APIStatusError, openai.APIConnectionError)
    ):
        return stream_error(wire, exc.body or exc)
    return None
