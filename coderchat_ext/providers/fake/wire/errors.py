"""HTTP error bodies of each wire as the live APIs send them (Anthropic compact JSON with a
``request_id``, OpenAI pretty-printed), and the in-stream error each wire sends by default."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..script import ErrorSpec, Wire
from ._common import dumps, random_id

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "prompt is too long: 208445 tokens > 200000 maximum"),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit "
        "(https://docs.anthropic.com/en/api/rate-limits); see the response headers for current "
        "usage. Please reduce the prompt length or the maximum tokens requested, or try again "
        "later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss "
        "your options for a rate limit increase.",
    ),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
# Anthropic error type -> the status the API sends it with (non-streaming mid-stream errors).
_ANTHROPIC_STATUS = {kind: status for status, (kind, _) in _ANTHROPIC_ERRORS.items()}

_OPENAI_SERVER_ERROR = (
    "The server had an error processing your request. Sorry about that! You can retry your "
    "request, or contact us through our help center at help.openai.com if you keep seeing this "
    "error."
)
_OPENAI_ERRORS: dict[int, tuple[str, str, str | None]] = {
    401: (
        "invalid_request_error",
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_api_key",
    ),
    403: ("invalid_request_error", "You are not allowed to access this resource.", None),
    404: (
        "invalid_request_error",
        "The model does not exist or you do not have access to it.",
        "model_not_found",
    ),
    429: (
        "requests",
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please "
        "try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.",
        "rate_limit_exceeded",
    ),
    500: ("server_error", _OPENAI_SERVER_ERROR, None),
    503: (
        "server_error",
        "The engine is currently overloaded, please try again later.",
        None,
    ),
}
_OPENAI_CONTEXT_LENGTH = {
    "chat": (
        "This model's maximum context length is 128000 tokens. However, your messages resulted "
        "in 131072 tokens. Please reduce the length of the messages.",
        "messages",
    ),
    "responses": (
        "Your input exceeds the context window of this model. Please adjust your input and try "
        "again.",
        "input",
    ),
}
ANTHROPIC_STREAM_ERROR = {"details": None, "type": "overloaded_error", "message": "Overloaded"}
RESPONSES_STREAM_ERROR = {
    "type": "server_error",
    "code": "server_error",
    "message": _OPENAI_SERVER_ERROR,
    "param": None,
}
CHAT_STREAM_ERROR = {
    "message": _OPENAI_SERVER_ERROR,
    "type": "server_error",
    "param": None,
    "code": None,
}


def merge_error(defaults: Mapping[str, Any], error: ErrorSpec | None) -> dict[str, Any]:
    merged = dict(defaults)
    if error is not None:
        merged.update(error.model_dump(exclude_none=True))
    return merged


def error_fields(wire: Wire, status: int, error: ErrorSpec | None) -> dict[str, Any]:
    """The ``error`` object of an HTTP error response: the wire's default for ``status``
    (400: context length exceeded) with ``error``'s fields laid over it."""
    if wire == "anthropic":
        kind, message = _ANTHROPIC_ERRORS.get(
            status,
            ("api_error", "Internal server error")
            if status >= 500
            else ("invalid_request_error", "Invalid request"),
        )
        defaults: dict[str, Any] = {"type": kind, "message": message}
        if status == 529:
            defaults = {"details": None, **defaults}
        return merge_error(defaults, error)
    if status == 400:
        message, param = _OPENAI_CONTEXT_LENGTH[wire]
        defaults = {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": "context_length_exceeded",
        }
    else:
        kind, message, code = _OPENAI_ERRORS.get(
            status,
            ("server_error", _OPENAI_SERVER_ERROR, None)
            if status >= 500
            else ("invalid_request_error", "Invalid request.", None),
        )
        defaults = {"message": message, "type": kind, "param": None, "code": code}
    return merge_error(defaults, error)


def error_body(wire: Wire, status: int, error: ErrorSpec | None, body: Any = None) -> bytes:
    """The body of an HTTP error response. ``body`` (a JSON value, or a string sent as is)
    replaces the default; Anthropic bodies are compact with a ``request_id``, OpenAI bodies
    pretty-printed with a 2-space indent, as the live APIs send them."""
    if isinstance(body, str):
        return body.encode("utf-8")
    if wire == "anthropic":
        value = (
            body
            if body is not None
            else {
                "type": "error",
                "error": error_fields(wire, status, error),
                "request_id": random_id("req_"),
            }
        )
        return dumps(value).encode("utf-8")
    value = body if body is not None else {"error": error_fields(wire, status, error)}
    return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8")


def midstream_status(wire: Wire, error: ErrorSpec | None) -> int:
    """The status a non-streaming request gets for a turn with ``error_midstream``: the status
    the API sends that error type with (Anthropic ``overloaded_error``: 529), else 500."""
    if wire == "anthropic":
        kind = (error.type if error is not None else None) or "overloaded_error"
        return _ANTHROPIC_STATUS.get(kind, 500)
    return 500


def midstream_http_error(wire: Wire, error: ErrorSpec | None) -> ErrorSpec:
    """The wire's in-stream error as the error fields of an HTTP error (non-streaming)."""
    defaults = {
        "anthropic": ANTHROPIC_STREAM_ERROR,
        "responses": RESPONSES_STREAM_ERROR,
        "chat": CHAT_STREAM_ERROR,
    }[wire]
    fields = {k: v for k, v in merge_error(defaults, error).items() if k != "details"}
    return ErrorSpec.model_validate(fields)
