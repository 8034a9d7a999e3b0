"""The client's exceptions: one base class, one subclass per way a call can fail."""

from __future__ import annotations

import json
from typing import Any

import pydantic

from ..models import ApiErrorBody, ApiValidation


class ChatClientError(Exception):
    """Base of every error the client raises on its own (transport errors from httpx and
    websockets that are not retried propagate unchanged)."""


class ApiError(ChatClientError):
    """Raised by the client when the server answered a request with an error (the error body of
    docs/api.md#errors), over REST or while refusing a WebSocket upgrade.

    Not to be confused with the server's ``coderchat_ext.errors.ApiError``, which handlers
    raise to *produce* such an answer: this one is what a caller of :class:`ChatClient` or
    :class:`AsyncChatClient` catches.

    ``status`` is the HTTP status code (``int``); ``message`` the body's one-line summary
    (``"Chat not found."``), or the response text when the body is not the JSON error body;
    ``detail`` its optional explanation; ``validations`` one :class:`~coderchat_ext.models.
    ApiValidation` (``field``, ``detail``) per refused field, ``[]`` when there are none.
    ``body`` is the whole decoded JSON body (``None`` when it was not JSON).
    """

    def __init__(
        self,
        status: int,
        message: str,
        detail: str | None = None,
        validations: list[ApiValidation] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{status}: {message}" + (f" ({detail})" if detail else ""))
        self.status = status
        self.message = message
        self.detail = detail
        self.validations = validations or []
        self.body = body

    @classmethod
    def from_response(cls, status: int, reason: str, content: bytes) -> ApiError:
        """Build from a raw response: the JSON error body when there is one, else the text
        (or the reason phrase when the body is empty)."""
        text = content.decode("utf-8", "replace")
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            body = None
        try:
            parsed = ApiErrorBody.model_validate(body)
        except pydantic.ValidationError:
            message = text.strip()[:500] or reason or f"HTTP {status}"
            return cls(status, message, None, None, body)
        return cls(status, parsed.message, parsed.detail, parsed.validations, body)


class ServerNotFound(ChatClientError):
    """No coderchat server could be discovered (see :func:`discover_server`)."""


class TurnTimeout(ChatClientError, TimeoutError):
    """``run_turn`` gave up waiting; the turn may still be running on the server
    (``chat_id`` says where)."""

    def __init__(self, chat_id: str, timeout: float) -> None:
        super().__init__(f"chat {chat_id}: the turn did not finish within {timeout:g} s")
        self.chat_id = chat_id
        self.timeout = timeout


class BuildTimeout(ChatClientError, TimeoutError):
    """``wait_for_build`` gave up waiting; the build keeps running on the server
    (``workspace_id`` says where)."""

    def __init__(self, workspace_id: str, timeout: float) -> None:
        super().__init__(f"workspace {workspace_id}: the build did not finish within {timeout:g} s")
        self.workspace_id = workspace_id
        self.timeout = timeout
